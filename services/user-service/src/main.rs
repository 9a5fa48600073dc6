use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = shop_common::telemetry::init(user_service::SERVICE_NAME)?;
    user_service::run(user_service::Config::parse()).await
}
