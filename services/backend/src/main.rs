use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shop_common::logging::init();
    backend::run(backend::Config::parse()).await
}
