//! Outages under the running shop: the cart service stopped (the user service's calls to
//! it fail, are retried and open its circuit; readiness stays up), and Cassandra stopped
//! (503 while away, served again without a restart). Each starts what it stopped again,
//! whatever it found.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use reqwest::StatusCode;
use shop_topology::{CART, USER};

use crate::harness::{E2e, Replica};
use crate::promql::parse_samples;

impl E2e {
    /// A dependency outage, briefly: the cart service is stopped (every replica), the user
    /// service's calls to it fail and are retried, the customer gets 5xx. This is what the
    /// error-ratio and retry rules are about; a healthy run alone would leave them without
    /// data. The cart service is started again (empty: it keeps carts in memory).
    pub fn outage(&mut self) {
        self.check_unit(
            "a cart-service outage shows as 5xx and failed, retried calls in the user service",
            |e2e| {
                let user = e2e.register(&format!("e2e-outage-{:x}", fastrand::u64(..)))?;
                let bearer = format!("Bearer {}", user.token);
                ensure!(
                    e2e.stop_component(CART.name)?,
                    "cart-service was not started by `cargo xtask stack up`"
                );
                let calls = (|| -> Result<Vec<u16>> {
                    let mut statuses = Vec::new();
                    for _ in 0..3 {
                        let status = e2e
                            .gateway(reqwest::Method::GET, "/user-api/users/me/cart")
                            .header("Authorization", &bearer)
                            .send()?
                            .status();
                        ensure!(
                            status.is_server_error(),
                            "users/me/cart without the cart service answered {status}"
                        );
                        statuses.push(status.as_u16());
                    }
                    Ok(statuses)
                })();
                let restarted = e2e
                    .start_component(CART.name)
                    .context("starting cart-service again");
                let statuses = calls?;
                restarted?;
                // Each user-service replica's circuit to the cart service opened: each stays
                // ready (login does not need the cart), only degraded. Once BREAKER_OPEN_MS
                // (5 s) has passed the circuit is half-open, and the report is "ok" again with
                // no traffic at all. Each replica is asked directly, as each has its own
                // circuits and the gateway would ask whichever it likes.
                let recovering = Instant::now();
                for replica in e2e.stack.replicas(&USER) {
                    e2e.wait_until_ready_again(&replica, recovering)?;
                }
                e2e.expect(
                    e2e.gateway(reqwest::Method::GET, "/user-api/users/me/cart")
                        .header("Authorization", &bearer),
                    StatusCode::OK,
                    "users/me/cart after the outage",
                )?;
                // Summed over the user service's replicas: the gateway spread the calls.
                let metrics = e2e.service_metrics(&USER)?;
                let total = |metric: &str, outcome: Option<&str>| -> f64 {
                    metrics
                        .iter()
                        .flat_map(|(_, text)| parse_samples(text, metric))
                        .filter(|sample| {
                            sample.labels.get("upstream").is_some_and(|up| up == CART.name)
                                && outcome.is_none_or(|outcome| {
                                    sample.labels.get("outcome").is_some_and(|o| o != "success" && o == outcome)
                                })
                        })
                        .map(|sample| sample.value)
                        .sum()
                };
                let retries = total("http_client_retries_total", None);
                let failed = total("http_client_requests_total", Some("connect_error"));
                ensure!(
                    retries > 0.0 && failed > 0.0,
                    "user-service counted {retries} retries and {failed} connect errors to cart-service"
                );
                Ok(format!(
                    "answers {statuses:?}; {failed} connect errors, {retries} retries; \
                     ready again {:.1} s after the cart service came back",
                    recovering.elapsed().as_secs_f64()
                ))
            },
        );
    }

    /// Waits until a user-service replica reports itself ready and not degraded, up to 30 s
    /// after `recovering`; it must stay ready (200) all along.
    fn wait_until_ready_again(&self, replica: &Replica, recovering: Instant) -> Result<()> {
        loop {
            let ready = self
                .client
                .get(format!("{}{}/health/ready", replica.url, USER.prefix))
                .send()?;
            let status = ready.status();
            ensure!(
                status.is_success(),
                "{} readiness answered {status} while only the cart service was away",
                replica.name
            );
            let report: serde_json::Value = ready.json()?;
            if report["status"] == "ok" {
                return Ok(());
            }
            ensure!(
                recovering.elapsed() < Duration::from_secs(30),
                "{} readiness still reports {report} 30 s after the cart service came back",
                replica.name
            );
            thread::sleep(Duration::from_millis(500));
        }
    }

    /// The database stops and starts again under the running services: they answer 503
    /// while it is away and serve again by themselves, without a restart.
    pub fn database_outage(&mut self) {
        self.check_unit(
            "Cassandra stopped and started under the running services: 503 while away, then served again",
            |e2e| {
                e2e.stop_component("cassandra")?;
                let while_away = (|| -> Result<(StatusCode, StatusCode)> {
                    let products = e2e
                        .gateway(reqwest::Method::GET, "/api/products/")
                        .send()?
                        .status();
                    let ready = e2e
                        .gateway(reqwest::Method::GET, "/api/health/ready")
                        .send()?
                        .status();
                    Ok((products, ready))
                })();
                e2e.start_component("cassandra")?;
                let (products, ready) = while_away?;
                ensure!(
                    products == StatusCode::SERVICE_UNAVAILABLE
                        && ready == StatusCode::SERVICE_UNAVAILABLE,
                    "with Cassandra stopped the products answered {products} and readiness {ready}"
                );
                let back = Instant::now();
                loop {
                    let status = e2e
                        .gateway(reqwest::Method::GET, "/api/products/")
                        .send()?
                        .status();
                    if status.is_success() {
                        break;
                    }
                    ensure!(
                        back.elapsed() < Duration::from_secs(60),
                        "the products still answer {status} 60 s after Cassandra came back"
                    );
                    thread::sleep(Duration::from_millis(500));
                }
                Ok(format!(
                    "503 while away; served again {:.1} s after Cassandra answered",
                    back.elapsed().as_secs_f64()
                ))
            },
        );
    }
}
