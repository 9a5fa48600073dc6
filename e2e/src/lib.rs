//! End-to-end checks against a running native stack (`cargo xtask stack up`): traffic
//! through the gateway that exercises every documented operation, then what Prometheus,
//! Alertmanager, Jaeger and the log store make of it. One line per check, then
//! `N passed, M failed`.
//!
//! `cargo xtask e2e` runs [`run`] through the ignored test in `tests/e2e.rs`. The checks
//! run in one order, each on what the ones before it left: the cart-service outage before
//! the journey, the journey's traffic before the checks on it, Prometheus' scrapes of that
//! traffic before the rules and dashboards, and the Cassandra outage last, as it disturbs
//! every service. Whatever a check stops it starts again, whether it passes or not.
//!
//! - [`harness`]: the runner (one line per check), HTTP helpers and the stack's control;
//! - [`journey`]: every public operation through the gateway, and their coverage;
//! - [`edge`]: what the gateway lets through (internal routes, identity headers, limits);
//! - [`outages`]: the cart service and then Cassandra taken away under the running shop;
//! - [`traces`]: the checkout's trace in Jaeger;
//! - [`prometheus`]: scrape targets, metric lint, Alertmanager, waiting for scrapes;
//! - [`rules`] and [`dashboards`]: every rule's and panel's PromQL against the data;
//! - [`promql`]: reading PromQL expressions and the exposition format;
//! - [`logs`]: the log store.

mod dashboards;
mod edge;
mod harness;
mod journey;
mod logs;
mod outages;
mod prometheus;
mod promql;
mod rules;
mod traces;

use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};

use harness::{E2e, SCRAPE_WAIT, Stack};

/// Runs every check against the stack the environment names and prints a line for each;
/// true when all passed. An error means the suite could not start (no stack).
pub fn run() -> Result<bool> {
    // The test harness has printed the test's name without a newline: the checks start on
    // their own line.
    println!();
    let mut e2e = E2e::new(Stack::from_env()?);
    let started = Instant::now();
    let gateway = &e2e.stack.gateway;
    ensure!(
        e2e.client
            .get(format!("{gateway}/api/health/live"))
            .send()
            .is_ok_and(|response| response.status().is_success()),
        "the gateway does not answer {gateway}/api/health/live; start the stack with \
         `cargo xtask stack up`"
    );

    // --- traffic through the gateway
    let operations = e2e.check(
        "every service publishes its OpenAPI document through the gateway",
        |e2e| {
            let operations = e2e.operations()?;
            let count: usize = operations.values().map(BTreeSet::len).sum();
            Ok((operations, format!("{count} operations")))
        },
    );
    // First, so that the journey's traffic reaches the restarted cart service and is
    // scraped twice like the rest.
    e2e.outage();
    let journey = e2e.check("the customer journey through the gateway", |e2e| {
        let journey = e2e.journey()?;
        let detail = format!("{} requests", journey.requests);
        Ok((journey, detail))
    });
    if let (Some(operations), Some(journey)) = (&operations, &journey) {
        e2e.coverage(operations);
        e2e.identity(journey);
        e2e.trace(journey);
    }

    // --- the monitoring side
    e2e.promtool_metrics();
    e2e.check_unit("Alertmanager answers /api/v2/status", |e2e| {
        e2e.alertmanager()
    });
    e2e.check_unit("Prometheus sends alerts to Alertmanager", |e2e| {
        // Prometheus discovers its Alertmanagers up to 5 s after it starts.
        let started = Instant::now();
        loop {
            let data = e2e.prometheus_api("/api/v1/alertmanagers", &[])?;
            let active = data["activeAlertmanagers"].as_array().map_or(0, Vec::len);
            if active > 0 {
                return Ok(format!("{active} active"));
            }
            ensure!(
                started.elapsed() < SCRAPE_WAIT,
                "no active Alertmanager: {data}"
            );
            thread::sleep(Duration::from_secs(1));
        }
    });
    let rules = e2e.check(
        "Prometheus loads every rules file and lists the alert rules",
        |e2e| e2e.rules(),
    );
    e2e.targets();
    if let Some(rules) = rules {
        e2e.wait_for_scrapes();
        e2e.rule_queries(&rules);
        e2e.rule_metrics(&rules);
        e2e.dashboards(&rules);
    }
    e2e.gateway_hides_metrics();
    e2e.gateway_edge();
    e2e.gateway_limits_registration();
    e2e.logs();
    // Last: it disturbs every service.
    e2e.database_outage();

    println!("e2e finished in {:.0} s", started.elapsed().as_secs_f64());
    println!("{} passed, {} failed", e2e.passed, e2e.failed);
    Ok(e2e.failed == 0)
}
