//! Each journey, run as a short goose attack against a whole shop on ephemeral loopback
//! ports (`--direct` with the shop's real ports): no request fails except the expected
//! outcomes, shoppers leave orders behind, the tester's metrics name every journey, and
//! goose writes its JSON report. The open model runs the same journeys at an arrival rate,
//! and drops what finds no free slot.

use std::time::{Duration, Instant};

use goose::config::GooseConfiguration;
use loadtester::journeys::{ALL, STATIC};
use loadtester::open_model::schedule::{Arrivals, Rate, Schedule};
use loadtester::seed::VICTIM_PASSWORD;
use loadtester::thresholds::{Figures, Scope};
use loadtester::{LoadTester, OpenPlan, TesterOptions, print_notable};
use serde_json::Value;
use shop::RunningShop;

mod support;

use support::direct_options;

/// Every journey but the static one: it loads the gateway's own `/static-ok`, and there is no
/// gateway here (`cargo xtask bench` runs it).
fn shop_journeys() -> impl Iterator<Item = &'static str> {
    ALL.iter().copied().filter(|journey| *journey != STATIC)
}

async fn start_shop() -> RunningShop {
    support::start_shop(|config| config.order.order_processor_tick_ms = 20).await
}

/// The tester's options for `shop`.
fn options_for(shop: &RunningShop) -> TesterOptions {
    let mut options = direct_options(shop);
    options.think_time_ms = "20-100".parse().unwrap();
    options.flash_stock = 5;
    // Every shopper cancels, so the cancel step runs in a short attack.
    options.cancel_percent = 100;
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_journey_runs_clean_against_the_shop() {
    let started = Instant::now();
    let shop = start_shop().await;
    let a = shop.addresses;
    let tester = LoadTester::start(options_for(&shop))
        .await
        .expect("the tester starts");

    let report =
        std::env::temp_dir().join(format!("loadtest-report-{}.json", uuid::Uuid::new_v4()));
    for journey in shop_journeys() {
        let mut args = vec![
            "--host",
            "http://127.0.0.1",
            "--users",
            "3",
            "--increase-rate",
            "100",
            "--run-time",
            "2s",
            "--scenarios",
            journey,
            "--no-telnet",
            "--quiet",
        ];
        let report_arg = format!("--report-file={}", report.display());
        if journey == "shopper" {
            args.push(&report_arg);
        }
        let config = GooseConfiguration::parse_args_default(&args).expect("goose options parse");
        let run = tester.attack(config).await.expect("the attack runs");
        print_notable(&run.notable, run.notable_total);
        let requests: usize = run
            .goose
            .requests
            .values()
            .map(|r| r.success_count + r.fail_count)
            .sum();
        let failed: Vec<String> = run
            .goose
            .requests
            .iter()
            .filter(|(_, r)| r.fail_count > 0)
            .map(|(name, r)| format!("{name}: {} failed", r.fail_count))
            .collect();
        assert!(requests > 0, "{journey}: no request was made");
        assert!(
            failed.is_empty(),
            "{journey}: {failed:?}; transaction errors: {:?}",
            run.goose.transaction_errors
        );
        assert!(
            run.goose.transaction_errors.is_empty(),
            "{journey}: {:?}",
            run.goose.transaction_errors
        );
    }

    // The shoppers' orders are there for the admin to see.
    let http = reqwest::Client::new();
    let token = support::admin_token(&shop, &http).await;
    let orders: Vec<Value> = http
        .get(format!(
            "http://{}/order-api/orders/?scope=all&limit=1000",
            a.order
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!orders.is_empty(), "the shoppers placed no order");
    assert!(
        orders.iter().any(|o| o["status"] == "cancelled"),
        "no order was cancelled"
    );

    // The tester's own metrics name every journey.
    let metrics = http
        .get(format!("http://{}/metrics", tester.metrics_address()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for journey in shop_journeys() {
        assert!(
            metrics.contains(&format!("loadtest_requests_total{{scenario=\"{journey}\"")),
            "no requests of {journey} in:\n{metrics}"
        );
    }
    assert!(metrics.contains("loadtest_request_duration_seconds_bucket{scenario=\"shopper\""));
    assert!(metrics.contains("loadtest_users 0"));

    // Goose wrote the JSON report.
    let report_text = std::fs::read_to_string(&report).expect("the JSON report is written");
    let _: Value = serde_json::from_str(&report_text).expect("the report is JSON");
    let _ = std::fs::remove_file(&report);

    drop(tester);
    shop.shutdown().await.expect("clean shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

fn open_plan(rate: f64, seconds: u64, max_in_flight: u32) -> OpenPlan {
    OpenPlan {
        schedule: Schedule::constant(Rate(rate), Duration::from_secs(seconds)),
        arrivals: Arrivals::Uniform,
        phase: 0.0,
        max_in_flight,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_model_starts_every_arrival_or_counts_it_dropped() {
    let shop = start_shop().await;
    let mut options = options_for(&shop);
    options.mix = "browser=1,shopper=1".parse().unwrap();
    let mut tester = LoadTester::start(options).await.expect("the tester starts");
    let config = || {
        GooseConfiguration::parse_args_default(&["--host", "http://127.0.0.1", "--no-telnet"])
            .expect("goose options parse")
    };
    let (_stop, never) = tokio::sync::watch::channel(false);

    // 20 arrivals a second for 2 s, slots to spare: all 40 start, none is dropped, and every
    // request is measured from its send time and from its intended start.
    let run = tester
        .attack_open(config(), open_plan(20.0, 2, 100), never.clone())
        .await
        .expect("the run completes");
    print_notable(&run.notable, run.notable_total);
    assert_eq!((run.report.started, run.report.dropped), (40, 0));
    let figures = Figures::of(&tester.metrics().samples(), &Scope::All, 2.0);
    assert_eq!((figures.iterations, figures.dropped), (40.0, 0.0));
    assert_eq!(figures.failures, 0.0, "{:?}", run.notable);
    assert!(figures.requests >= 40.0);
    assert_eq!(figures.intended.count(), figures.requests);
    assert_eq!(figures.latency.count(), figures.requests);
    assert!(run.report.target_rate > 19.9 && run.report.target_rate < 20.1);

    // One slot for 50 shoppers a second: a shopper's visit takes many requests, so arrivals
    // are dropped, and every arrival is either started or dropped.
    tester.options_mut().mix = "shopper=1".parse().unwrap();
    let run = tester
        .attack_open(config(), open_plan(50.0, 1, 1), never)
        .await
        .expect("the run completes");
    assert_eq!(run.report.started + run.report.dropped, 50);
    assert!(run.report.dropped > 0, "{:?}", run.report);
    let figures = Figures::of(
        &tester.metrics().samples(),
        &Scope::Journey("shopper".into()),
        1.0,
    );
    assert_eq!(figures.dropped, run.report.dropped as f64);

    drop(tester);
    shop.shutdown().await.expect("clean shutdown");
}

/// A journey whose sign-up or login failed ends there: that one failure is counted, and
/// the journey sends nothing more (before, each later step failed again with a 401).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journey_that_could_not_sign_in_sends_nothing_more() {
    let shop = support::start_shop(|config| config.user.faults.faults_enabled = true).await;
    let mut options = options_for(&shop);
    options.mix = "shopper=1".parse().unwrap();
    let tester = LoadTester::start(options).await.expect("the tester starts");
    // The tester seeds first (registering its victims too); once it has, while no shopper
    // has arrived yet, every registration starts failing, as when the user service's
    // database is unavailable.
    let user = shop.addresses.user;
    let registrations_fail = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let last_victim = format!("loadtest-victim-{}", loadtester::seed::VICTIMS - 1);
        let seeded = || {
            http.post(format!("http://{user}/user-api/token"))
                .form(&[
                    ("username", last_victim.as_str()),
                    ("password", VICTIM_PASSWORD),
                ])
                .send()
        };
        while !seeded().await.is_ok_and(|r| r.status().is_success()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let token = support::admin_token_at(user, &http).await;
        http.post(format!("http://{user}/user-api/admin/faults"))
            .bearer_auth(token)
            .json(&serde_json::json!({
                "kind": "error", "ttl_seconds": 60, "status": 503,
                "route": "/user-api/users/register",
            }))
            .send()
            .await
            .unwrap()
            .status()
    });
    let quiet_then_ten = OpenPlan {
        schedule: Schedule::new("5s:0/s,1s:10/s".parse().unwrap()),
        ..open_plan(10.0, 1, 100)
    };
    let config =
        GooseConfiguration::parse_args_default(&["--host", "http://127.0.0.1", "--no-telnet"])
            .expect("goose options parse");
    let (_stop, never) = tokio::sync::watch::channel(false);

    let run = tester
        .attack_open(config, quiet_then_ten, never)
        .await
        .expect("the run completes");
    let injected = registrations_fail.await.unwrap();
    assert!(injected.is_success(), "the fault was refused: {injected}");
    let figures = Figures::of(&tester.metrics().samples(), &Scope::All, 6.0);
    assert_eq!(figures.iterations, 10.0);
    assert_eq!(
        (figures.requests, figures.failures),
        (10.0, 10.0),
        "one failed sign-up per visit and nothing after it; the first failures: {:?}",
        run.notable.iter().take(5).collect::<Vec<_>>()
    );

    drop(tester);
    shop.shutdown().await.expect("clean shutdown");
}

/// A flash-sale buyer whose checkout failed (here the user service answers 503 for its first
/// seconds) races again once checkouts work. A failed checkout keeps the cart, so a buyer
/// that only ever added the deal again asked for one unit more than the stock, was refused
/// with a 409 every time, and the sale stalled for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_sale_buyers_race_again_after_a_failed_checkout() {
    let shop = support::start_shop(|config| config.user.faults.faults_enabled = true).await;
    let mut options = options_for(&shop);
    options.mix = "flashsale=1".parse().unwrap();
    options.flash_stock = 1;
    let tester = LoadTester::start(options).await.expect("the tester starts");
    let http = reqwest::Client::new();
    let token = support::admin_token(&shop, &http).await;
    let injected = http
        .post(format!(
            "http://{}/user-api/admin/faults",
            shop.addresses.user
        ))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "kind": "error", "ttl_seconds": 2, "status": 503,
            "route": "/user-api/users/me/orders",
        }))
        .send()
        .await
        .unwrap()
        .status();
    assert!(injected.is_success(), "the fault was refused: {injected}");
    let config = GooseConfiguration::parse_args_default(&[
        "--host",
        "http://127.0.0.1",
        "--users",
        "3",
        "--increase-rate",
        "100",
        "--run-time",
        "5s",
        "--scenarios",
        "flashsale",
        "--no-telnet",
        "--quiet",
    ])
    .expect("goose options parse");

    let run = tester.attack(config).await.expect("the attack runs");
    let checkouts = run
        .goose
        .requests
        .iter()
        .find(|(name, _)| name.contains("check out"))
        .map(|(_, checkouts)| &checkouts.status_code_counts)
        .expect("the buyers checked out");
    let answered = |status| checkouts.get(&status).copied().unwrap_or(0);
    assert!(
        answered(503) > 0,
        "no checkout met the fault: {checkouts:?}"
    );
    assert!(
        answered(201) > 0,
        "no buyer checked out once the fault was over: {checkouts:?}"
    );

    drop(tester);
    shop.shutdown().await.expect("clean shutdown");
}
