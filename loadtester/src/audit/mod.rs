//! `loadtester audit`: asks a running shop's backend for its stock books and says whether
//! they balance. For every product, stock on the shelf plus the units held by reservations
//! (those of live orders included) must equal the units it ever received, and no
//! reservation may still hold stock past its expiry without an order. Given the orders log
//! of a load test (`--orders-log`), it also checks every order the test saw acknowledged
//! ([`orders`]).
//!
//! The backend reads its books one table after another, not at one instant, so an audit
//! taken while orders are still being placed can be off by what moved meanwhile: the
//! command asks again until the books balance or `--settle` runs out, so it can run right
//! after a load test.

pub mod orders;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::TesterOptions;
use crate::routes::Routes;
use crate::seed::Seeder;

/// How long to wait between two looks at books that do not balance yet.
const RETRY_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize)]
struct StockAudit {
    products: Vec<ProductLedger>,
    overdue: Vec<Overdue>,
    in_flight: i64,
    committed: i64,
    /// The backend's verdict: every product conserved, nothing overdue.
    #[serde(rename = "passed")]
    balanced: bool,
}

impl StockAudit {
    fn negative(&self) -> impl Iterator<Item = &ProductLedger> {
        self.products.iter().filter(|p| p.stock < 0)
    }

    /// The backend's verdict, and no product below zero.
    fn passed(&self) -> bool {
        self.balanced && self.negative().next().is_none()
    }
}

#[derive(Debug, Deserialize)]
struct ProductLedger {
    product_id: Uuid,
    name: String,
    stock: i64,
    held: i64,
    received: Option<i64>,
    conserved: bool,
}

#[derive(Debug, Deserialize)]
struct Overdue {
    reservation_id: Uuid,
    state: String,
    expires_at: String,
}

/// Audits the shop at `host` and prints the result; exit 0 when it passed, 1 when not.
pub async fn command(
    host: &str,
    tester: &TesterOptions,
    settle: Duration,
) -> anyhow::Result<ExitCode> {
    let report = run(host, tester, settle).await?;
    print!("{}", report.render());
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The stock books, and the orders of `--orders-log` when given.
pub struct Report {
    stock: StockAudit,
    pub orders: Option<orders::OrdersAudit>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.stock.passed() && self.orders.as_ref().is_none_or(orders::OrdersAudit::passed)
    }

    pub fn render(&self) -> String {
        let orders = self.orders.as_ref().map(orders::OrdersAudit::render);
        render(&self.stock) + &orders.unwrap_or_default()
    }
}

/// Audits the shop at `host`, waiting up to `settle` for books that do not balance yet
/// and for order views that disagree.
pub async fn run(host: &str, tester: &TesterOptions, settle: Duration) -> anyhow::Result<Report> {
    let routes = Routes::new(host, tester.direct.then_some(tester.direct_ports))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let seeder = Seeder {
        http,
        routes: &routes,
    };
    let token = seeder
        .admin_token(&tester.admin_username, &tester.admin_password())
        .await?;
    let shop = Shop {
        seeder,
        admin_token: &token,
    };
    let deadline = Instant::now() + settle;
    // Books that do not balance yet, or a shop that cannot answer for a moment (a replica
    // restarting), are asked again until the settle time runs out.
    let stock = loop {
        let audit = shop
            .get_json::<StockAudit>("/api/admin/stock-audit", &token)
            .await;
        let last_look = Instant::now() + RETRY_EVERY > deadline;
        match audit {
            Ok(audit) if audit.passed() || last_look => break audit,
            Err(err) if last_look => return Err(err),
            _ => tokio::time::sleep(RETRY_EVERY).await,
        }
    };
    let orders = match &tester.orders_log {
        Some(path) => Some(orders::audit(&shop, path, crate::journeys::PASSWORD, deadline).await?),
        None => None,
    };
    Ok(Report { stock, orders })
}

/// The shop as the audit reads it.
pub struct Shop<'a> {
    seeder: Seeder<'a>,
    admin_token: &'a str,
}

impl Shop<'_> {
    async fn log_in(&self, username: &str, password: &str) -> anyhow::Result<String> {
        self.seeder
            .admin_token(username, password)
            .await
            .with_context(|| format!("the audit reads {username}'s orders as {username}"))
    }

    /// A JSON document the audit cannot do without: any failure ends the audit.
    async fn get_json<T: DeserializeOwned>(&self, path: &str, token: &str) -> anyhow::Result<T> {
        let url = self.seeder.routes.url(path);
        let response = self
            .seeder
            .http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("cannot reach the shop at {url}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!("{url} answered {status}: {body}");
        }
        response
            .json()
            .await
            .with_context(|| format!("{url} sent an unreadable answer"))
    }

    /// One order, or why it could not be read: a finding about that order, not the end of
    /// the audit.
    async fn get_order<T: DeserializeOwned>(&self, path: &str, token: &str) -> Result<T, String> {
        self.get_json(path, token)
            .await
            .map_err(|err| format!("{err:#}"))
    }
}

fn render(audit: &StockAudit) -> String {
    let unbalanced: Vec<&ProductLedger> = audit.products.iter().filter(|p| !p.conserved).collect();
    let mut out = format!(
        "Stock audit: {} products, {} committed reservations, {} in flight, {} overdue: {}\n",
        audit.products.len(),
        audit.committed,
        audit.in_flight,
        audit.overdue.len(),
        if audit.passed() { "PASSED" } else { "FAILED" }
    );
    for product in unbalanced {
        out += &format!(
            "  not conserved: {} ({}): stock {} + held {} != received {}\n",
            product.name,
            product.product_id,
            product.stock,
            product.held,
            product
                .received
                .map_or("unknown".to_owned(), |r| r.to_string())
        );
    }
    for product in audit.negative() {
        out += &format!(
            "  negative stock: {} ({}): {}\n",
            product.name, product.product_id, product.stock
        );
    }
    for finding in &audit.overdue {
        out += &format!(
            "  overdue: reservation {} still {} since its expiry at {}\n",
            finding.reservation_id, finding.state, finding.expires_at
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_audit_names_what_does_not_balance() {
        let audit = StockAudit {
            products: vec![ProductLedger {
                product_id: Uuid::nil(),
                name: "mug".into(),
                stock: 3,
                held: 1,
                received: Some(5),
                conserved: false,
            }],
            overdue: vec![Overdue {
                reservation_id: Uuid::nil(),
                state: "reserved".into(),
                expires_at: "2026-01-01T00:00:00Z".into(),
            }],
            in_flight: 0,
            committed: 2,
            balanced: false,
        };
        let text = render(&audit);
        assert!(text.contains("FAILED"), "{text}");
        assert!(
            text.contains(
                "mug (00000000-0000-0000-0000-000000000000): stock 3 + held 1 != received 5"
            ),
            "{text}"
        );
        assert!(text.contains("still reserved since its expiry"), "{text}");
    }

    #[test]
    fn negative_stock_fails_books_the_backend_found_balanced() {
        let audit = StockAudit {
            products: vec![ProductLedger {
                product_id: Uuid::nil(),
                name: "kite".into(),
                stock: -2,
                held: 2,
                received: Some(0),
                conserved: true,
            }],
            overdue: Vec::new(),
            in_flight: 0,
            committed: 1,
            balanced: true,
        };
        assert!(!audit.passed());
        let text = render(&audit);
        assert!(text.contains("FAILED"), "{text}");
        assert!(text.contains("negative stock: kite"), "{text}");
    }
}
