//! `loadtester`: goose journeys against the shop. `loadtester demo` starts the shop in this
//! process first. `--help` lists the project's options and goose's.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use goose::config::GooseConfiguration;
use loadtester::{Cli, LoadTester, Mode, print_notable};
use shop::ShopConfig;

/// Where `loadtester demo` writes its report unless --report-file says otherwise.
const DEMO_REPORT: &str = "target/loadtest-report.html";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("loadtester: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Cli {
        mode,
        alerts,
        mut tester,
        reproduce,
        settle,
        mut goose,
    } = cli;
    if mode == Mode::Audit {
        let host = goose.host.as_deref().unwrap_or(loadtester::routes::NATIVE_GATEWAY);
        return loadtester::audit::command(host, &tester, Duration::from_secs(settle)).await;
    }
    if mode == Mode::Reproduce {
        return loadtester::reproduce::command(&alerts, reproduce, tester, goose).await;
    }
    if !alerts.is_empty() {
        anyhow::bail!("alert names only go with `reproduce`: {}", alerts.join(" "));
    }
    let shop = if mode == Mode::Demo {
        // The services log through `tracing`; without a subscriber of their own their events
        // would reach goose's console logger. The demo shows goose's output only.
        let _ =
            tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default());
        let (shop, admin_password) = start_shop().await?;
        let a = shop.addresses;
        tester.direct = true;
        tester.direct_ports = loadtester::routes::ServicePorts {
            backend: a.backend.port(),
            cart: a.cart.port(),
            order: a.order.port(),
            user: a.user.port(),
        };
        tester.admin_password = Some(admin_password);
        goose.host = Some("http://127.0.0.1".into());
        demo_defaults(&mut goose)?;
        println!(
            "The shop is running in this process: backend {}, cart {}, order {}, user {} (in-memory store).",
            a.backend, a.cart, a.order, a.user
        );
        Some(shop)
    } else {
        None
    };
    let tester = LoadTester::start(tester).await?;
    println!(
        "Load tester metrics: http://{}/metrics",
        tester.metrics_address()
    );
    let run = tester.attack(goose).await;
    if let Some(shop) = shop {
        shop.shutdown().await?;
    }
    let run = run?;
    print_notable(&run);
    let failed: usize = run.goose.requests.values().map(|r| r.fail_count).sum();
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        println!("{failed} requests failed.");
        ExitCode::from(1)
    })
}

/// The whole shop on its in-memory store, on the configured ports (8000–8003 unless
/// `*_LISTEN` say otherwise), or on any free ports when those are taken.
async fn start_shop() -> anyhow::Result<(shop::RunningShop, String)> {
    let config = ShopConfig::from_env().context("the shop's configuration")?;
    let admin_password = config.user.admin_password.clone();
    match shop::start(config).await {
        Ok(shop) => Ok((shop, admin_password)),
        Err(err) => {
            eprintln!("{err:#}; starting the shop on free ports instead");
            let mut config = ShopConfig::from_env()?;
            let any: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
            config.backend.listen = any;
            config.user.listen = any;
            config.cart.listen = any;
            config.order.listen = any;
            Ok((shop::start(config).await?, admin_password))
        }
    }
}

/// Thirty seconds of ten users and an HTML report, unless the command line says otherwise.
fn demo_defaults(goose: &mut GooseConfiguration) -> anyhow::Result<()> {
    // The test plan is private to goose; its serialized form tells whether one was given.
    let has_test_plan = !serde_json::to_value(&*goose)?["test_plan"].is_null();
    if !has_test_plan {
        goose.users.get_or_insert(10);
        if goose.increase_time.is_none() {
            goose.increase_rate.get_or_insert_with(|| "5".into());
        }
        goose.run_time.get_or_insert_with(|| "30s".into());
    }
    if goose.report_file.is_empty() {
        std::fs::create_dir_all("target").context("cannot create target/")?;
        goose.report_file.push(DEMO_REPORT.into());
    }
    goose.no_telnet = true;
    Ok(())
}
