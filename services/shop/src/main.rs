//! `shop`: all four services in one process with the embedded store.
//! Configured by the same environment variables as the separate service binaries.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = shop_common::telemetry::init("shop")?;
    if std::env::args().len() > 1 {
        println!(
            "shop: runs the backend (:8000), cart (:8001), order (:8002) and user (:8003) \
             services in one process.\nIt takes no arguments: configure it with the services' \
             environment variables (see the configuration reference in the docs)."
        );
        return Ok(());
    }
    let config = shop::ShopConfig::from_env().context("invalid configuration")?;
    let running = shop::start(config).await?;
    running.run_until(shop_common::shutdown::signal()).await
}
