use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shop_common::logging::init();
    order_service::run(order_service::Config::parse()).await
}
