//! The gateway as the shop's public edge: what it must not let through (internal routes,
//! the services' metrics, forged identity headers, the client-credentials grant, floods of
//! registrations), and that its own errors are problem documents like the services'.

use anyhow::{Context, Result, bail, ensure};
use reqwest::blocking::RequestBuilder;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use shop_topology as topology;

use crate::harness::{E2e, truncate};
use crate::journey::Journey;

/// An id for the routes that take one: any id, as none of them may be reached.
const SOME_ID: &str = "00000000-0000-4000-8000-000000000000";

/// Far past the gateway's burst of 20 registrations per address.
const REGISTRATION_BURST: usize = 60;

impl E2e {
    /// Prometheus scrapes the services directly; the public gateway does not serve metrics.
    pub fn gateway_hides_metrics(&mut self) {
        self.check_unit("the gateway does not serve the services' metrics", |e2e| {
            for topology::Placement { prefix, .. } in topology::ALL {
                e2e.expect(
                    e2e.gateway(reqwest::Method::GET, &format!("{prefix}/metrics")),
                    StatusCode::NOT_FOUND,
                    &format!("{prefix}/metrics through the gateway"),
                )?;
            }
            Ok(format!("{} services", topology::ALL.len()))
        });
    }

    /// Identity comes from the bearer token only: identity headers from the client are
    /// removed by the gateway (and ignored by the services).
    pub fn identity(&mut self, journey: &Journey) {
        use reqwest::Method as M;
        let a = &journey.user_a;
        let b = &journey.user_b;
        self.check_unit(
            "a forged X-User-ID without a token is anonymous (401)",
            |e2e| {
                for path in [
                    "/user-api/users/me",
                    "/cart-api/cart/",
                    "/order-api/orders/",
                ] {
                    for header in ["X-User-ID", "X-Forwarded-User", "X-Auth-User"] {
                        e2e.expect(
                            e2e.gateway(M::GET, path).header(header, &a.id),
                            StatusCode::UNAUTHORIZED,
                            &format!("GET {path} with {header}"),
                        )?;
                    }
                }
                Ok("user, cart and order service".to_owned())
            },
        );
        self.check_unit("a forged X-User-ID with B's token gets B's data", |e2e| {
            let bearer = format!("Bearer {}", b.token);
            let me = e2e.expect(
                e2e.gateway(M::GET, "/user-api/users/me")
                    .header("Authorization", &bearer)
                    .header("X-User-ID", &a.id)
                    .header("X-User-Role", "admin"),
                StatusCode::OK,
                "GET /user-api/users/me",
            )?;
            ensure!(
                me["id"] == b.id.as_str(),
                "users/me answered for {} instead of B",
                me["id"]
            );
            let cart = e2e.expect(
                e2e.gateway(M::GET, "/cart-api/cart/")
                    .header("Authorization", &bearer)
                    .header("X-User-ID", &a.id),
                StatusCode::OK,
                "GET /cart-api/cart/",
            )?;
            ensure!(
                cart["user_id"] == b.id.as_str(),
                "the cart of {} instead of B's",
                cart["user_id"]
            );
            let orders = e2e.expect(
                e2e.gateway(M::GET, "/order-api/orders/")
                    .header("Authorization", &bearer)
                    .header("X-User-ID", &a.id),
                StatusCode::OK,
                "GET /order-api/orders/",
            )?;
            let count = orders.as_array().map_or(usize::MAX, Vec::len);
            ensure!(
                count == 0,
                "B, who ordered nothing, sees {count} orders (A's?)"
            );
            // Admin-only with a forged role: still forbidden.
            e2e.expect(
                e2e.gateway(M::GET, "/cart-api/carts/")
                    .header("Authorization", &bearer)
                    .header("X-User-Role", "admin"),
                StatusCode::FORBIDDEN,
                "GET /cart-api/carts/ with X-User-Role: admin",
            )?;
            Ok(
                "users/me, cart and orders are B's; X-User-Role: admin does not make B an admin"
                    .to_owned(),
            )
        });
    }

    pub fn gateway_edge(&mut self) {
        self.check_unit(
            "the gateway routes no internal route: 404 problems under every prefix and spelling",
            |e2e| {
                let mut calls = vec![
                    (Method::PUT, format!("/api/internal/reservations/{SOME_ID}")),
                    (
                        Method::DELETE,
                        format!("/api/internal/reservations/{SOME_ID}"),
                    ),
                    (Method::POST, "/user-api/internal/order-events".to_owned()),
                    // Spellings nginx normalizes before it matches a location.
                    (
                        Method::PUT,
                        format!("/api/%69nternal/reservations/{SOME_ID}"),
                    ),
                    (
                        Method::PUT,
                        format!("/api//internal/reservations/{SOME_ID}"),
                    ),
                    (Method::PUT, format!("/api/INTERNAL/reservations/{SOME_ID}")),
                ];
                for service in topology::ALL {
                    let prefix = service.prefix;
                    calls.push((Method::GET, format!("{prefix}/internal/")));
                    calls.push((Method::POST, format!("{prefix}/internal/anything")));
                }
                for (method, path) in &calls {
                    let request = e2e
                        .gateway(method.clone(), path)
                        .header("Content-Type", "application/json")
                        .body("{}");
                    e2e.expect_problem(
                        request,
                        StatusCode::NOT_FOUND,
                        &format!("{method} {path}"),
                    )?;
                }
                Ok(format!("{} requests", calls.len()))
            },
        );
        self.check_unit(
            "the gateway serves no client-credentials grant, even with the right secret (404 problem)",
            |e2e| {
                // The stack's own secret (`stack up` writes it), so that only the gateway
                // can be what refuses.
                let file = e2e.root.join("target/stack/service-client-secret");
                let secret = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read the stack's secret {}", file.display()))?;
                for client_id in [topology::ORDER, topology::CART, topology::BACKEND].map(|service| service.name) {
                    let request = e2e.gateway(Method::POST, "/user-api/token").form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", client_id),
                        ("client_secret", secret.trim()),
                    ]);
                    e2e.expect_problem(
                        request,
                        StatusCode::NOT_FOUND,
                        &format!("the client-credentials grant for {client_id}"),
                    )?;
                }
                Ok("3 services".to_owned())
            },
        );
        self.check_unit(
            "nginx's own errors are problem documents: GET /order-api/orders/%00 answers 400",
            |e2e| {
                let problem = e2e.expect_problem(
                    e2e.gateway(Method::GET, "/order-api/orders/%00"),
                    StatusCode::BAD_REQUEST,
                    "GET /order-api/orders/%00",
                )?;
                ensure!(
                    problem["type"] == "/docs/reference/problems/#bad-request",
                    "GET /order-api/orders/%00: {problem}"
                );
                Ok(String::new())
            },
        );
    }

    /// Registration costs a bcrypt hash, so the gateway limits it per address like login.
    /// The bodies are invalid: the service refuses them before hashing, and no account is
    /// made.
    pub fn gateway_limits_registration(&mut self) {
        self.check_unit(
            "the gateway limits registrations per address (429 problem with Retry-After)",
            |e2e| {
                let mut limited = None;
                for sent in 1..=REGISTRATION_BURST {
                    let response = e2e
                        .gateway(Method::POST, "/user-api/users/register")
                        .header("Content-Type", "application/json")
                        .body("{}")
                        .send()
                        .context("POST /user-api/users/register: no answer")?;
                    if response.status() == StatusCode::TOO_MANY_REQUESTS {
                        ensure!(
                            response.headers().contains_key("retry-after"),
                            "the 429 has no Retry-After"
                        );
                        limited = Some(sent);
                        break;
                    }
                }
                let Some(sent) = limited else {
                    bail!("{REGISTRATION_BURST} registrations in a row were all let through");
                };
                let problem = e2e.expect_problem(
                    e2e.gateway(Method::POST, "/user-api/users/register")
                        .header("Content-Type", "application/json")
                        .body("{}"),
                    StatusCode::TOO_MANY_REQUESTS,
                    "a registration past the limit",
                )?;
                ensure!(
                    problem["type"] == "/docs/reference/problems/#too-many-requests",
                    "{problem}"
                );
                // The limit refills at 10 a second: leave later checks a full burst.
                std::thread::sleep(std::time::Duration::from_secs(3));
                Ok(format!("limited after {sent} requests"))
            },
        );
    }

    /// Sends the request and checks that it answers an RFC 9457 problem with this status.
    fn expect_problem(
        &self,
        request: RequestBuilder,
        status: StatusCode,
        what: &str,
    ) -> Result<Value> {
        let response = request
            .send()
            .with_context(|| format!("{what}: no answer"))?;
        let got = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.text().unwrap_or_default();
        if got != status || content_type != "application/problem+json" {
            bail!(
                "{what}: expected a {status} problem, got {got} ({content_type}): {}",
                truncate(&body, 300)
            );
        }
        let problem: Value = serde_json::from_str(&body)
            .with_context(|| format!("{what}: not JSON: {}", truncate(&body, 300)))?;
        ensure!(
            problem["status"] == status.as_u16() && problem["title"].is_string(),
            "{what}: not a problem document: {problem}"
        );
        Ok(problem)
    }
}
