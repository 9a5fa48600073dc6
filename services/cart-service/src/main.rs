use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = shop_common::telemetry::init(cart_service::SERVICE_NAME)?;
    cart_service::run(cart_service::Config::parse()).await
}
