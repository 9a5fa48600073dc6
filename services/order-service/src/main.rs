use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = shop_common::telemetry::init(order_service::SERVICE_NAME)?;
    order_service::run(order_service::Config::parse()).await
}
