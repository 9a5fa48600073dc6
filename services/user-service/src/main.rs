use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shop_common::logging::init();
    user_service::run(user_service::Config::parse()).await
}
