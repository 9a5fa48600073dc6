//! The audit's order checks against a whole shop on ephemeral loopback ports: shoppers
//! record the orders they saw acknowledged (`--orders-log`), the audit finds every one of
//! them as its client last saw it, and it names each order the shop lost, moved back or
//! cancelled on its own, and each torn line of the log.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use goose::config::GooseConfiguration;
use loadtester::audit::orders::Kind;
use loadtester::orders_log::{self, Entry, Event};
use loadtester::{LoadTester, TesterOptions, audit};
use shop::RunningShop;
use uuid::Uuid;

mod support;

use support::direct_options;

fn options_for(shop: &RunningShop, orders_log: &Path) -> TesterOptions {
    let mut options = direct_options(shop);
    options.think_time_ms = "10-50".parse().unwrap();
    options.mix = "shopper=3,flashsale=1".parse().unwrap();
    options.cancel_percent = 0;
    options.orders_log = Some(orders_log.to_owned());
    options
}

fn append(path: &Path, line: &str) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    writeln!(file, "{line}").unwrap();
}

fn entry(order_id: Uuid, username: &str, event: Event, status: &str) -> String {
    serde_json::to_string(&Entry {
        order_id,
        username: username.to_owned(),
        event,
        status: Some(status.to_owned()),
        at: chrono::Utc::now(),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_finds_every_acknowledged_order_and_names_each_one_wronged() {
    // Orders stay pending for the whole test, so what the audit finds is what the test did.
    let shop = support::start_shop(|config| config.order.order_status_step_ms = 600_000).await;
    let log = std::env::temp_dir().join(format!("orders-{}.jsonl", Uuid::new_v4()));
    let options = options_for(&shop, &log);
    let tester = LoadTester::start(options.clone()).await.unwrap();
    let config = GooseConfiguration::parse_args_default(&[
        "--host",
        "http://127.0.0.1",
        "--users",
        "4",
        "--increase-rate",
        "100",
        "--run-time",
        "3s",
        "--no-telnet",
        "--quiet",
    ])
    .unwrap();
    tester.attack(config).await.expect("the attack runs");

    let settle = Duration::from_secs(3);
    let report = audit::run("http://127.0.0.1", &options, settle)
        .await
        .unwrap();
    let orders = report.orders.as_ref().expect("the orders were audited");
    assert!(report.passed(), "{}", report.render());
    assert!(orders.acknowledged > 0, "no order was placed");

    // Three wrongs: an acknowledged order the shop does not have, an order its client saw
    // further along than it is, and one an admin cancelled without its client asking.
    let placed = orders_log::read(&log).unwrap().orders;
    assert!(placed.len() >= 2, "two orders at least: {placed:?}");
    let owner = placed[0].username.clone();
    let lost = Uuid::new_v4();
    append(&log, &entry(lost, &owner, Event::Acknowledged, "pending"));
    let overtaken = placed[0].order_id;
    append(&log, &entry(overtaken, &owner, Event::Seen, "delivered"));
    let cancelled = placed.last().unwrap().order_id;
    let a = shop.addresses;
    let http = reqwest::Client::new();
    let token = support::admin_token(&shop, &http).await;
    let response = http
        .put(format!(
            "http://{}/order-api/orders/{cancelled}/status",
            a.order
        ))
        .bearer_auth(&token)
        .json(&serde_json::json!({"status": "cancelled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the admin cancels {cancelled}");
    append(&log, "{\"order_id\": \"half a li");

    let report = audit::run("http://127.0.0.1", &options, settle)
        .await
        .unwrap();
    std::fs::remove_file(&log).unwrap();
    shop.shutdown().await.unwrap();
    let text = report.render();
    assert!(!report.passed(), "{text}");
    let mut found: Vec<(Option<Uuid>, Kind)> = report
        .orders
        .unwrap()
        .findings
        .iter()
        .map(|f| (f.order_id, f.kind))
        .collect();
    found.sort();
    let mut expected = vec![
        (None, Kind::TornLine),
        (Some(lost), Kind::Unreadable),
        (Some(overtaken), Kind::Behind),
        (Some(cancelled), Kind::Behind),
    ];
    expected.sort();
    assert_eq!(found, expected, "{text}");
}
