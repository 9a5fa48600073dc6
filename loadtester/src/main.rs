//! `loadtester`: goose journeys against the shop. `loadtester demo` starts the shop in this
//! process first. `--help` lists the project's options and goose's.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use goose::config::GooseConfiguration;
use loadtester::open_model::{self, OpenModelOptions};
use loadtester::thresholds::{self, Figures, Scope, Threshold};
use loadtester::workers::Worker;
use loadtester::{Cli, LoadTester, Mode, OpenPlan, print_notable};
use shop::ShopConfig;
use tokio::sync::watch;

/// Where `loadtester demo` writes its report unless --report-file says otherwise.
const DEMO_REPORT: &str = "target/loadtest-report.html";

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print and succeed.
        Err(err) if !err.use_stderr() => err.exit(),
        Err(err) => {
            // clap's first line names the flag and says what is wrong; usage follows it.
            let text = err.to_string();
            let line = text.lines().next().unwrap_or_default();
            eprintln!("loadtester: {}", line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
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

async fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    cli.thresholds()?;
    let Cli {
        mode,
        alerts,
        mut tester,
        open,
        verdict,
        workers,
        reproduce,
        settle,
        mut goose,
    } = cli;
    if mode == Mode::Verdict {
        return loadtester::verdict::command(&reproduce.prometheus_url, &verdict).await;
    }
    if mode == Mode::Audit {
        let host = goose
            .host
            .as_deref()
            .unwrap_or(loadtester::routes::NATIVE_GATEWAY);
        return loadtester::audit::command(host, &tester, Duration::from_secs(settle)).await;
    }
    if mode == Mode::Reproduce {
        return loadtester::reproduce::command(&alerts, reproduce, tester, goose).await;
    }
    if !alerts.is_empty() {
        anyhow::bail!("alert names only go with `reproduce`: {}", alerts.join(" "));
    }
    let mut shop = if mode == Mode::Demo {
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
        if open.arrival_rate.is_none() && open.stages.is_none() {
            demo_defaults(&mut goose)?;
        }
        println!(
            "The shop is running in this process: backend {}, cart {}, order {}, user {} (in-memory store).",
            a.backend, a.cart, a.order, a.user
        );
        Some(shop)
    } else {
        None
    };
    let worker = workers.worker()?;
    tester.metrics_listen = worker.metrics_listen(tester.metrics_listen)?;
    tester.worker = worker;
    let plan = open_plan(&open, &mut goose, worker)?;
    if plan.is_none() && worker.count > 1 {
        let users = goose
            .users
            .context("--workers shares out --users: give the fleet's total, e.g. -u 20")?;
        goose.users = Some(worker.users(users));
    }
    let tester = LoadTester::start(tester).await?;
    println!(
        "Load tester metrics: http://{}/metrics{}",
        tester.metrics_address(),
        if worker.count > 1 {
            format!(" (worker {} of {})", worker.index, worker.count)
        } else {
            String::new()
        }
    );
    let (stop, stopped) = watch::channel(false);
    let started = std::time::Instant::now();
    let schedule = plan.as_ref().map(|plan| plan.schedule.clone());
    // Live target and achieved rates, from when the arrivals began (after seeding).
    let rates = {
        let metrics = tester.metrics().clone();
        move || {
            let schedule = schedule.as_ref()?;
            let began = (*metrics.arrivals_began.lock().ok()?)?;
            let started = Figures::of(&metrics.samples(), &Scope::All, 0.0).iterations;
            Some(open_model::rates(schedule, began.elapsed(), started))
        }
    };
    let watcher = verdict.abort_on_fail.then(|| {
        tokio::spawn(abort_on_fail(
            tester.metrics().clone(),
            verdict.thresholds.clone(),
            started,
            rates,
            stop.clone(),
        ))
    });
    let mut open_rates = None;
    let notable = match plan {
        Some(plan) => {
            let stop = stop.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    let _ = stop.send(true);
                }
            });
            let run = tester.attack_open(goose, plan, stopped).await;
            if let Some(shop) = shop.take() {
                shop.shutdown().await?;
            }
            let run = run?;
            run.report.print();
            open_rates = Some((run.report.target_rate, run.report.achieved_rate));
            Some((run.notable, run.notable_total))
        }
        None => {
            let mut stopped = stopped;
            let run = tokio::select! {
                run = tester.attack(goose) => Some(run),
                _ = stopped.wait_for(|stop| *stop) => None,
            };
            if let Some(shop) = shop.take() {
                shop.shutdown().await?;
            }
            match run.transpose()? {
                Some(run) => Some((run.notable, run.notable_total)),
                None => {
                    println!("\nStopped early (--abort-on-fail).");
                    None
                }
            }
        }
    };
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    let elapsed = started.elapsed();
    if let Some((notable, total)) = &notable {
        print_notable(notable, *total);
    }
    let samples = tester.metrics().samples();
    thresholds::print_figures(&samples, elapsed.as_secs_f64(), false);
    let code = if verdict.thresholds.is_empty() {
        let failed = Figures::of(&samples, &Scope::All, 0.0).failures;
        if failed == 0.0 {
            ExitCode::SUCCESS
        } else {
            println!("{failed} requests failed.");
            ExitCode::from(1)
        }
    } else {
        let judgements: Vec<_> = verdict
            .thresholds
            .iter()
            .map(|t| t.judge(&samples, elapsed.as_secs_f64(), open_rates))
            .collect();
        if thresholds::print_judgements(&judgements) {
            println!("\nThresholds: pass");
            ExitCode::SUCCESS
        } else {
            println!("\nThresholds: FAIL");
            ExitCode::from(2)
        }
    };
    if !workers.linger.is_zero() {
        println!(
            "Serving /metrics for {} more (--linger).",
            humantime_serde::re::humantime::format_duration(workers.linger)
        );
        tokio::time::sleep(workers.linger).await;
    }
    Ok(code)
}

/// The open model's plan for this worker, when --arrival-rate or --stages ask for it.
fn open_plan(
    open: &OpenModelOptions,
    goose: &mut GooseConfiguration,
    worker: Worker,
) -> anyhow::Result<Option<OpenPlan>> {
    let run_time = match goose.run_time.as_deref() {
        Some(text) => Some(Duration::from_secs(
            goose::util::parse_timespan(text)
                .with_context(|| format!("--run-time {text:?} is not a duration such as 2m"))?
                as u64,
        )),
        None => None,
    };
    let Some(schedule) = open.schedule(run_time)? else {
        return Ok(None);
    };
    if goose.users.is_some() {
        anyhow::bail!(
            "--users goes with the closed model; with --arrival-rate or --stages, \
             --max-in-flight bounds the iterations running at once"
        );
    }
    if !goose.report_file.is_empty() {
        anyhow::bail!("--report-file: goose's report covers the closed model only");
    }
    Ok(Some(OpenPlan {
        schedule: schedule.share(worker.count),
        arrivals: open.arrivals,
        phase: worker.phase(),
        max_in_flight: open.max_in_flight,
    }))
}

/// Judges the thresholds every few seconds and stops the run at the first failure.
async fn abort_on_fail(
    metrics: std::sync::Arc<loadtester::telemetry::LoadMetrics>,
    thresholds: Vec<Threshold>,
    started: std::time::Instant,
    rates: impl Fn() -> Option<(f64, f64)>,
    stop: watch::Sender<bool>,
) {
    const EVERY: Duration = Duration::from_secs(5);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
    loop {
        ticks.tick().await;
        let elapsed = started.elapsed();
        let samples = metrics.samples();
        let failed = thresholds
            .iter()
            .map(|t| t.judge(&samples, elapsed.as_secs_f64(), rates()))
            // Mid-run, a threshold without figures yet (a journey not run so far, the
            // rates before the first arrival) waits rather than fails.
            .find(|judgement| judgement.value.is_some() && !judgement.passed);
        if let Some(judgement) = failed {
            eprintln!(
                "loadtester: threshold {} failed after {:.0} s; stopping (--abort-on-fail)",
                judgement.threshold.text,
                elapsed.as_secs_f64()
            );
            let _ = stop.send(true);
            return;
        }
    }
}

/// The whole shop on its in-memory store, on the configured ports (8000–8003 unless
/// `*_LISTEN` say otherwise), or on any free ports when those are taken.
async fn start_shop() -> anyhow::Result<(shop::RunningShop, String)> {
    let config = ShopConfig::from_env().context("the shop's configuration")?;
    let admin_password = config.user.admin_password()?;
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
