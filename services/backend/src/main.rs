use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = shop_common::telemetry::init(backend::SERVICE_NAME)?;
    backend::run(backend::Config::parse()).await
}
