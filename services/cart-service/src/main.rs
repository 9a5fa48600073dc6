use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shop_common::logging::init();
    cart_service::run(cart_service::Config::parse()).await
}
