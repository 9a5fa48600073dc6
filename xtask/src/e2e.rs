//! End-to-end checks against a running native stack (`cargo xtask stack up`): traffic
//! through the gateway that exercises every documented operation, then what Prometheus,
//! Alertmanager and Jaeger make of it. One line per check, then `N passed, M failed`.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail, ensure};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{Value, json};

use crate::stack::{self, ADMIN_PASSWORD, ALERTMANAGER, GATEWAY, JAEGER, PROMETHEUS, http_client};

mod edge;
mod logs;

/// Service name, public prefix and direct port, as in prometheus.yml's jobs.
const SERVICES: &[(&str, &str, u16)] = &[
    ("backend", "/api", 8000),
    ("cart-service", "/cart-api", 8001),
    ("order-service", "/order-api", 8002),
    ("user-service", "/user-api", 8003),
];

/// The load tester serves metrics only while a load test runs.
const LOADTESTER_JOB: &str = "loadtester";

/// Where Grafana dashboards will live; each one's expressions are checked like the rules'.
const DASHBOARD_DIRS: &[&str] = &["observability/grafana/dashboards", "grafana/dashboards"];

const SCRAPE_WAIT: Duration = Duration::from_secs(90);
const TRACE_WAIT: Duration = Duration::from_secs(60);

pub fn run() -> Result<ExitCode> {
    let mut e2e = E2e {
        client: http_client(),
        root: Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives inside the workspace")
            .to_path_buf(),
        passed: 0,
        failed: 0,
    };
    let started = Instant::now();
    ensure!(
        e2e.client
            .get(format!("{GATEWAY}/api/health/live"))
            .send()
            .is_ok_and(|response| response.status().is_success()),
        "the gateway does not answer {GATEWAY}/api/health/live; start the stack with \
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
    Ok(if e2e.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

struct E2e {
    client: Client,
    root: PathBuf,
    passed: usize,
    failed: usize,
}

/// What the journey left behind for the checks that follow it.
struct Journey {
    requests: usize,
    user_a: User,
    user_b: User,
    /// The checkout through the user service, with the trace id we chose.
    checkout_trace_id: String,
    checkout_parent_span: String,
}

struct User {
    id: String,
    token: String,
}

/// The rules Prometheus loaded.
struct Rules {
    /// (record name, expression)
    recording: Vec<(String, String)>,
    /// (alert name, expression)
    alerting: Vec<(String, String)>,
}

impl E2e {
    /// Runs one check and prints one line for it.
    fn check<T>(
        &mut self,
        name: &str,
        body: impl FnOnce(&mut Self) -> Result<(T, String)>,
    ) -> Option<T> {
        match body(self) {
            Ok((value, detail)) => {
                self.passed += 1;
                if detail.is_empty() {
                    println!("ok      {name}");
                } else {
                    println!("ok      {name}: {detail}");
                }
                Some(value)
            }
            Err(error) => {
                self.failed += 1;
                println!("FAILED  {name}: {error:#}");
                None
            }
        }
    }

    fn check_unit(&mut self, name: &str, body: impl FnOnce(&mut Self) -> Result<String>) {
        self.check(name, |e2e| body(e2e).map(|detail| ((), detail)));
    }

    fn note(&self, text: &str) {
        println!("note    {text}");
    }

    // ----- HTTP helpers

    fn gateway(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{GATEWAY}{path}"))
            // A fixed client address for the login rate limit is ours alone: stay under it.
            .header("User-Agent", "xtask-e2e")
    }

    /// Sends a request and insists on one status; returns the JSON body (Null if empty).
    fn expect(&self, request: RequestBuilder, status: StatusCode, what: &str) -> Result<Value> {
        let response = request
            .send()
            .with_context(|| format!("{what}: no answer"))?;
        let got = response.status();
        let body = response.text().unwrap_or_default();
        if got != status {
            bail!(
                "{what}: expected {status}, got {got}: {}",
                truncate(&body, 300)
            );
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&body).or_else(|_| Ok(Value::String(body)))
    }

    // ----- the traffic

    /// Every documented operation of every service, from its OpenAPI document as served
    /// through the gateway: service -> {"METHOD /path/{param}"}.
    fn operations(&self) -> Result<BTreeMap<&'static str, BTreeSet<String>>> {
        let mut all = BTreeMap::new();
        for &(service, prefix, _) in SERVICES {
            let document = self.expect(
                self.gateway(reqwest::Method::GET, &format!("{prefix}/openapi.json")),
                StatusCode::OK,
                &format!("{service}'s OpenAPI document"),
            )?;
            let paths = document["paths"]
                .as_object()
                .ok_or_else(|| anyhow!("{service}'s OpenAPI document has no paths"))?;
            let mut operations = BTreeSet::new();
            for (path, item) in paths {
                for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
                    if item.get(method).is_some() {
                        operations.insert(format!("{} {path}", method.to_uppercase()));
                    }
                }
            }
            ensure!(!operations.is_empty(), "{service} documents no operation");
            all.insert(service, operations);
        }
        Ok(all)
    }

    fn token(&self, username: &str, password: &str) -> Result<String> {
        let body = self.expect(
            self.gateway(reqwest::Method::POST, "/user-api/token")
                .form(&[("username", username), ("password", password)]),
            StatusCode::OK,
            &format!("token for {username}"),
        )?;
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("token response without access_token: {body}"))
    }

    fn register(&self, username: &str) -> Result<User> {
        let password = "correct horse battery";
        let user = self.expect(
            self.gateway(reqwest::Method::POST, "/user-api/users/register")
                .json(&json!({
                    "username": username,
                    "email": format!("{username}@example.com"),
                    "password": password,
                })),
            StatusCode::CREATED,
            "register",
        )?;
        Ok(User {
            id: string(&user, "id")?,
            token: self.token(username, password)?,
        })
    }

    /// Calls every public operation at least once, as a customer and as the admin would.
    /// Internal operations are called by the services along the way (checkout reserves
    /// stock, cancel releases it, every status change notifies the user service).
    fn journey(&self) -> Result<Journey> {
        use reqwest::Method as M;
        let requests = Cell::new(0);
        let call = |request: RequestBuilder, status: StatusCode, what: &str| {
            requests.set(requests.get() + 1);
            self.expect(request, status, what)
        };
        let ok = StatusCode::OK;
        let created = StatusCode::CREATED;
        let no_content = StatusCode::NO_CONTENT;

        for &(service, prefix, _) in SERVICES {
            for path in ["health/live", "health/ready"] {
                call(
                    self.gateway(M::GET, &format!("{prefix}/{path}")),
                    ok,
                    &format!("{service} {path}"),
                )?;
            }
        }
        call(
            self.gateway(M::GET, "/api/system/health"),
            ok,
            "system health",
        )?;
        call(
            self.gateway(M::GET, "/user-api/.well-known/jwks.json"),
            ok,
            "jwks",
        )?;

        // The admin manages the catalogue.
        let admin = self.token("admin", ADMIN_PASSWORD)?;
        requests.set(requests.get() + 1);
        let bearer = |token: &str| format!("Bearer {token}");
        let product = |name: &str, stock: i64| json!({"name": name, "price_cents": 1250, "stock": stock, "category": "e2e"});
        let new_product = |name: &str| -> Result<String> {
            let body = call(
                self.gateway(M::POST, "/api/products/")
                    .header("Authorization", bearer(&admin))
                    .json(&product(name, 1000)),
                created,
                "create product",
            )?;
            string(&body, "id")
        };
        let mug = new_product("E2E mug")?;
        let pen = new_product("E2E pen")?;
        let doomed = new_product("E2E discontinued")?;
        call(
            self.gateway(M::GET, "/api/products/?limit=5"),
            ok,
            "list products",
        )?;
        call(
            self.gateway(M::GET, &format!("/api/products/{mug}")),
            ok,
            "get product",
        )?;
        call(
            self.gateway(M::PUT, &format!("/api/products/{mug}"))
                .header("Authorization", bearer(&admin))
                .json(&json!({"price_cents": 1500})),
            ok,
            "update product",
        )?;
        call(
            self.gateway(M::DELETE, &format!("/api/products/{doomed}"))
                .header("Authorization", bearer(&admin)),
            no_content,
            "delete product",
        )?;

        // Two customers.
        let suffix = format!("{:x}", random_u64());
        let user_a = self.register(&format!("e2e-a-{suffix}"))?;
        let user_b = self.register(&format!("e2e-b-{suffix}"))?;
        requests.set(requests.get() + 4);
        let a = bearer(&user_a.token);
        call(
            self.gateway(M::GET, "/user-api/users/me")
                .header("Authorization", &a),
            ok,
            "get me",
        )?;
        call(
            self.gateway(M::PUT, "/user-api/users/me")
                .header("Authorization", &a)
                .json(&json!({"full_name": "E2E Customer A"})),
            ok,
            "update me",
        )?;

        // The cart: add, change, remove, look.
        let add = |product: &str, quantity: i64| {
            self.gateway(M::POST, "/cart-api/cart/items")
                .header("Authorization", &a)
                .json(&json!({"product_id": product, "quantity": quantity}))
        };
        call(add(&mug, 1), created, "add to cart")?;
        let cart = call(add(&pen, 1), created, "add to cart")?;
        let line = |cart: &Value, product: &str| -> Result<String> {
            cart["items"]
                .as_array()
                .and_then(|items| items.iter().find(|item| item["product_id"] == product))
                .and_then(|item| item["id"].as_str())
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("cart without a line for {product}: {cart}"))
        };
        let mug_line = line(&cart, &mug)?;
        let pen_line = line(&cart, &pen)?;
        call(
            self.gateway(M::PUT, &format!("/cart-api/cart/items/{mug_line}"))
                .header("Authorization", &a)
                .json(&json!({"quantity": 2})),
            ok,
            "update cart line",
        )?;
        call(
            self.gateway(M::DELETE, &format!("/cart-api/cart/items/{pen_line}"))
                .header("Authorization", &a),
            ok,
            "remove cart line",
        )?;
        call(
            self.gateway(M::GET, "/cart-api/cart/")
                .header("Authorization", &a),
            ok,
            "get cart",
        )?;
        call(
            self.gateway(M::GET, "/cart-api/cart/total")
                .header("Authorization", &a),
            ok,
            "cart total",
        )?;
        call(
            self.gateway(M::GET, "/user-api/users/me/cart")
                .header("Authorization", &a),
            ok,
            "my cart",
        )?;

        // Checkout through the user service, in a trace whose id we know.
        let checkout_trace_id = format!("{:016x}{:016x}", random_u64(), random_u64());
        let checkout_parent_span = format!("{:016x}", random_u64());
        let order = call(
            self.gateway(M::POST, "/user-api/users/me/orders")
                .header("Authorization", &a)
                .header(
                    "traceparent",
                    format!("00-{checkout_trace_id}-{checkout_parent_span}-01"),
                ),
            created,
            "checkout through the user service",
        )?;
        let order_id = string(&order, "id")?;

        // A second order, checked out at the cart service directly, then cancelled.
        call(add(&pen, 3), created, "add to cart")?;
        let second = call(
            self.gateway(M::POST, "/cart-api/cart/checkout")
                .header("Authorization", &a),
            created,
            "checkout at the cart service",
        )?;
        let second_id = string(&second, "id")?;
        call(
            self.gateway(M::PUT, &format!("/order-api/orders/{second_id}/cancel"))
                .header("Authorization", &a),
            ok,
            "cancel order",
        )?;
        // A cart that is emptied instead of ordered.
        call(add(&mug, 1), created, "add to cart")?;
        call(
            self.gateway(M::DELETE, "/cart-api/cart/")
                .header("Authorization", &a),
            ok,
            "clear cart",
        )?;

        // Orders, seen by the customer and the admin.
        call(
            self.gateway(M::GET, "/order-api/orders/")
                .header("Authorization", &a),
            ok,
            "list orders",
        )?;
        call(
            self.gateway(M::GET, &format!("/order-api/orders/{order_id}"))
                .header("Authorization", &a),
            ok,
            "get order",
        )?;
        call(
            self.gateway(M::GET, "/order-api/orders/summary")
                .header("Authorization", &a),
            ok,
            "order summary",
        )?;
        call(
            self.gateway(M::GET, "/order-api/orders/statuses/list"),
            ok,
            "order statuses",
        )?;
        call(
            self.gateway(M::GET, "/order-api/orders/?scope=all&limit=10")
                .header("Authorization", bearer(&admin)),
            ok,
            "list all orders as admin",
        )?;
        // The background processor may move the order meanwhile (409): ask again.
        let mut delivered = Err(anyhow!("not tried"));
        for _ in 0..3 {
            delivered = call(
                self.gateway(M::PUT, &format!("/order-api/orders/{order_id}/status"))
                    .header("Authorization", bearer(&admin))
                    .json(&json!({"status": "delivered"})),
                ok,
                "set order status as admin",
            );
            if delivered.is_ok() {
                break;
            }
        }
        delivered?;
        call(
            self.gateway(M::GET, "/cart-api/carts/?limit=10")
                .header("Authorization", bearer(&admin)),
            ok,
            "list carts as admin",
        )?;
        // The admin's stock audit, here while the shop is busy with nothing else: the stock
        // of every product the journey ordered, cancelled and delivered balances.
        let audit = call(
            self.gateway(M::GET, "/api/admin/stock-audit")
                .header("Authorization", bearer(&admin)),
            ok,
            "stock audit as admin",
        )?;
        ensure!(audit["passed"] == true, "the stock audit failed: {audit}");

        // Each service's fault API (the stack enables it), with a fault that never fires.
        for &(service, prefix, _) in SERVICES {
            let faults = format!("{prefix}/admin/faults");
            let fault = call(
                self.gateway(M::POST, &faults)
                    .header("Authorization", bearer(&admin))
                    .json(&json!({
                        "kind": "latency",
                        "route": format!("{prefix}/health/live"),
                        "delay_ms": 1,
                        "fraction": 0.0,
                        "ttl_seconds": 30
                    })),
                created,
                &format!("{service}: inject a fault"),
            )?;
            let id = fault["id"].as_str().context("the fault has no id")?;
            let listed = call(
                self.gateway(M::GET, &faults)
                    .header("Authorization", bearer(&admin)),
                ok,
                &format!("{service}: list faults"),
            )?;
            ensure!(
                listed
                    .as_array()
                    .is_some_and(|all| all.iter().any(|f| f["id"] == id)),
                "{service} does not list the fault it accepted: {listed}"
            );
            call(
                self.gateway(M::DELETE, &format!("{faults}/{id}"))
                    .header("Authorization", bearer(&admin)),
                no_content,
                &format!("{service}: remove the fault"),
            )?;
            call(
                self.gateway(M::DELETE, &faults)
                    .header("Authorization", bearer(&admin)),
                no_content,
                &format!("{service}: remove every fault"),
            )?;
        }

        // The customer's views that the user service assembles from the others.
        for path in ["profile", "orders", "total-spent"] {
            call(
                self.gateway(M::GET, &format!("/user-api/users/me/{path}"))
                    .header("Authorization", &a),
                ok,
                &format!("users/me/{path}"),
            )?;
        }
        Ok(Journey {
            requests: requests.get(),
            user_a,
            user_b,
            checkout_trace_id,
            checkout_parent_span,
        })
    }

    // ----- the checks on the traffic

    /// Every documented operation answered 2xx at least once, according to the service's
    /// own `http_server_requests_total`: a new endpoint that the journey forgets fails here.
    fn coverage(&mut self, operations: &BTreeMap<&'static str, BTreeSet<String>>) {
        for &(service, prefix, port) in SERVICES {
            let name = format!("every {service} operation answered 2xx at least once");
            self.check_unit(&name, |e2e| {
                let text = e2e
                    .client
                    .get(format!("http://127.0.0.1:{port}{prefix}/metrics"))
                    .send()?
                    .error_for_status()?
                    .text()?;
                let mut succeeded = BTreeSet::new();
                for sample in parse_samples(&text, "http_server_requests_total") {
                    if sample
                        .labels
                        .get("status")
                        .is_some_and(|status| status.starts_with('2'))
                        && sample.value > 0.0
                    {
                        succeeded.insert(format!(
                            "{} {}",
                            sample.labels.get("method").map_or("", String::as_str),
                            sample.labels.get("route").map_or("", String::as_str)
                        ));
                    }
                }
                let expected = &operations[service];
                let missing: Vec<&String> = expected.difference(&succeeded).collect();
                ensure!(missing.is_empty(), "never answered 2xx: {missing:?}");
                Ok(format!("{} operations", expected.len()))
            });
        }
    }

    /// Identity comes from the bearer token only: identity headers from the client are
    /// removed by the gateway (and ignored by the services).
    fn identity(&mut self, journey: &Journey) {
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

    /// The checkout's trace in Jaeger: every service, and parent links that hold together.
    fn trace(&mut self, journey: &Journey) {
        let id = &journey.checkout_trace_id;
        let trace = self.check("Jaeger has the checkout trace from every service", |e2e| {
            let trace = e2e.wait_for_trace(id)?;
            let services: BTreeSet<&str> = trace
                .spans
                .iter()
                .map(|span| span.service.as_str())
                .collect();
            Ok((
                trace.clone(),
                format!("trace {id}: {} spans from {services:?}", trace.spans.len()),
            ))
        });
        let Some(trace) = trace else { return };
        self.check_unit(
            "the checkout trace's parent-child links are consistent",
            |_| {
                let by_id: BTreeMap<&str, &Span> = trace
                    .spans
                    .iter()
                    .map(|span| (span.id.as_str(), span))
                    .collect();
                let mut roots = Vec::new();
                for span in &trace.spans {
                    match span.parent.as_deref() {
                        Some(parent) if by_id.contains_key(parent) => {}
                        Some(parent) if parent == journey.checkout_parent_span => roots.push(span),
                        Some(parent) => bail!(
                            "{} has a parent {parent} that is not in the trace",
                            span.describe()
                        ),
                        None => bail!(
                            "{} has no parent, although the request carried one",
                            span.describe()
                        ),
                    }
                }
                ensure!(
                    roots.len() == 1,
                    "expected one child of our traceparent, found {}",
                    roots.len()
                );
                let root = roots[0];
                ensure!(
                    root.service == "user-service"
                        && root.kind == "server"
                        && root.name == "POST /user-api/users/me/orders",
                    "the root is {}, not the user service's server span of the checkout",
                    root.describe()
                );
                // Across services, a server span's parent is a client span of the caller.
                let mut edges = BTreeSet::new();
                for span in trace
                    .spans
                    .iter()
                    .filter(|span| span.kind == "server" && span.id != root.id)
                {
                    let parent = by_id[span.parent.as_deref().unwrap_or_default()];
                    ensure!(
                        parent.kind == "client" && parent.service != span.service,
                        "{} is a child of {}, not of a client span in another service",
                        span.describe(),
                        parent.describe()
                    );
                    edges.insert(format!("{} -> {}", parent.service, span.service));
                }
                for edge in [
                    "user-service -> cart-service",
                    "cart-service -> order-service",
                    "order-service -> backend",
                ] {
                    ensure!(
                        edges.contains(edge),
                        "no call {edge} in the trace; calls: {edges:?}"
                    );
                }
                Ok(format!("one root, calls {edges:?}"))
            },
        );
        self.check_unit(
            "every HTTP span of the checkout trace carries its status code",
            |_| {
                let http_spans: Vec<&Span> = trace
                    .spans
                    .iter()
                    .filter(|span| span.tags.contains_key("http.request.method"))
                    // A call that failed in transport (and was retried) has no answer.
                    .filter(|span| span.tags.get("error").is_none_or(|error| error != "true"))
                    .collect();
                for span in &http_spans {
                    let status = span.tags.get("http.response.status_code");
                    ensure!(
                        status.is_some_and(|status| status.parse::<u16>().is_ok()),
                        "{} has no status code: {:?}",
                        span.describe(),
                        span.tags
                    );
                }
                Ok(format!("{} server and client spans", http_spans.len()))
            },
        );
        self.check_unit(
            "the checkout trace has database spans, children of the services' spans",
            |_| {
                let ids: BTreeSet<&str> = trace.spans.iter().map(|span| span.id.as_str()).collect();
                let services: BTreeSet<&str> = trace
                    .spans
                    .iter()
                    .filter(|span| {
                        span.tags
                            .get("db.system.name")
                            .is_some_and(|v| v == "cassandra")
                    })
                    .map(|span| {
                        ensure!(
                            span.parent
                                .as_ref()
                                .is_some_and(|parent| ids.contains(parent.as_str())),
                            "database span {} has no parent in the trace",
                            span.describe()
                        );
                        Ok(span.service.as_str())
                    })
                    .collect::<Result<_>>()?;
                for service in ["backend", "cart-service", "order-service"] {
                    ensure!(
                        services.contains(service),
                        "no database span from {service}; database spans came from {services:?}"
                    );
                }
                Ok(format!("from {services:?}"))
            },
        );
    }

    fn wait_for_trace(&self, id: &str) -> Result<Trace> {
        let wanted = ["user-service", "cart-service", "order-service", "backend"];
        let started = Instant::now();
        let mut last_count = 0;
        let mut last = None;
        loop {
            if let Ok(response) = self.client.get(format!("{JAEGER}/api/traces/{id}")).send()
                && response.status().is_success()
            {
                let body: Value = response.json()?;
                let trace = Trace::parse(&body["data"][0])?;
                let complete = wanted
                    .iter()
                    .all(|service| trace.spans.iter().any(|span| span.service == *service));
                // Services export in batches: wait until the span count stops growing.
                if complete && trace.spans.len() == last_count {
                    return Ok(trace);
                }
                last_count = trace.spans.len();
                last = Some(trace);
            }
            if started.elapsed() > TRACE_WAIT {
                let seen: BTreeSet<String> = last
                    .map(|trace| trace.spans.into_iter().map(|span| span.service).collect())
                    .unwrap_or_default();
                bail!(
                    "after {} s the trace has spans from {seen:?}, not from all of {wanted:?} \
                     (see target/stack/logs/jaeger.log and the services' logs)",
                    TRACE_WAIT.as_secs()
                );
            }
            thread::sleep(Duration::from_secs(2));
        }
    }

    /// A dependency outage, briefly: the cart service is stopped, the user service's calls
    /// to it fail and are retried, the customer gets 5xx. This is what the error-ratio and
    /// retry rules are about; a healthy run alone would leave them without data. The
    /// cart service is started again (empty: it keeps carts in memory).
    fn outage(&mut self) {
        self.check_unit(
            "a cart-service outage shows as 5xx and failed, retried calls in the user service",
            |e2e| {
                let user = e2e.register(&format!("e2e-outage-{:x}", random_u64()))?;
                let bearer = format!("Bearer {}", user.token);
                ensure!(
                    stack::stop_component("cart-service")?,
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
                let restarted = stack::start_component("cart-service")
                    .context("starting cart-service again");
                let statuses = calls?;
                restarted?;
                // The user service's circuit to the cart service opened: the user service stays
                // ready (login does not need the cart), only degraded. Once BREAKER_OPEN_MS (5 s)
                // has passed the circuit is half-open, and the report is "ok" again with no
                // traffic at all.
                let recovering = Instant::now();
                loop {
                    let ready = e2e
                        .gateway(reqwest::Method::GET, "/user-api/health/ready")
                        .send()?;
                    let status = ready.status();
                    ensure!(
                        status.is_success(),
                        "user-service readiness answered {status} while only the cart service was away"
                    );
                    let report: serde_json::Value = ready.json()?;
                    if report["status"] == "ok" {
                        break;
                    }
                    ensure!(
                        recovering.elapsed() < Duration::from_secs(30),
                        "user-service readiness still reports {report} 30 s after the cart service came back"
                    );
                    thread::sleep(Duration::from_millis(500));
                }
                e2e.expect(
                    e2e.gateway(reqwest::Method::GET, "/user-api/users/me/cart")
                        .header("Authorization", &bearer),
                    StatusCode::OK,
                    "users/me/cart after the outage",
                )?;
                let text = e2e
                    .client
                    .get("http://127.0.0.1:8003/user-api/metrics")
                    .send()?
                    .error_for_status()?
                    .text()?;
                let total = |metric: &str, outcome: Option<&str>| -> f64 {
                    parse_samples(&text, metric)
                        .iter()
                        .filter(|sample| {
                            sample.labels.get("upstream").is_some_and(|up| up == "cart-service")
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

    /// Prometheus scrapes the services directly; the public gateway does not serve metrics.
    fn gateway_hides_metrics(&mut self) {
        self.check_unit("the gateway does not serve the services' metrics", |e2e| {
            for &(_, prefix, _) in SERVICES {
                e2e.expect(
                    e2e.gateway(reqwest::Method::GET, &format!("{prefix}/metrics")),
                    StatusCode::NOT_FOUND,
                    &format!("{prefix}/metrics through the gateway"),
                )?;
            }
            Ok(format!("{} services", SERVICES.len()))
        });
    }

    /// The database stops and starts again under the running services: they answer 503
    /// while it is away and serve again by themselves, without a restart.
    fn database_outage(&mut self) {
        self.check_unit(
            "Cassandra stopped and started under the running services: 503 while away, then served again",
            |e2e| {
                crate::cassandra::stop_local()?;
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
                crate::cassandra::ensure_running()?;
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

    // ----- the monitoring side

    /// Each service's exposition passes `promtool check metrics` (naming and format lint).
    fn promtool_metrics(&mut self) {
        for &(service, prefix, port) in SERVICES {
            self.check_unit(&format!("promtool check metrics: {service}"), |e2e| {
                let body = e2e
                    .client
                    .get(format!("http://127.0.0.1:{port}{prefix}/metrics"))
                    .send()?
                    .error_for_status()?
                    .bytes()?;
                let mut child = Command::new("promtool")
                    .args(["check", "metrics"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .context("could not run promtool (bash .ci/install-observability.sh)")?;
                child
                    .stdin
                    .take()
                    .expect("stdin is piped")
                    .write_all(&body)?;
                let output = child.wait_with_output()?;
                ensure!(
                    output.status.success(),
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout).trim(),
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                Ok(format!("{} bytes", body.len()))
            });
        }
    }

    fn alertmanager(&self) -> Result<String> {
        let status: Value = self
            .client
            .get(format!("{ALERTMANAGER}/api/v2/status"))
            .send()?
            .error_for_status()?
            .json()?;
        ensure!(
            status["config"]["original"]
                .as_str()
                .is_some_and(|config| config.contains("receivers")),
            "no configuration in /api/v2/status: {}",
            truncate(&status.to_string(), 200)
        );
        Ok(format!(
            "version {}, cluster {}",
            status["versionInfo"]["version"].as_str().unwrap_or("?"),
            status["cluster"]["status"].as_str().unwrap_or("?")
        ))
    }

    fn prometheus_api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let body: Value = self
            .client
            .get(format!("{PROMETHEUS}{path}"))
            .query(query)
            .send()
            .with_context(|| format!("Prometheus {path}: no answer"))?
            .json()?;
        ensure!(body["status"] == "success", "Prometheus {path}: {body}");
        Ok(body["data"].clone())
    }

    fn query(&self, expr: &str) -> Result<Vec<Value>> {
        let data = self.prometheus_api("/api/v1/query", &[("query", expr)])?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    fn rules(&self) -> Result<(Rules, String)> {
        let data = self.prometheus_api("/api/v1/rules", &[])?;
        let mut rules = Rules {
            recording: Vec::new(),
            alerting: Vec::new(),
        };
        let mut files = BTreeSet::new();
        for group in data["groups"].as_array().into_iter().flatten() {
            if let Some(file) = group["file"].as_str() {
                files.insert(
                    Path::new(file)
                        .file_name()
                        .map(|name| name.to_string_lossy().into_owned()),
                );
            }
            for rule in group["rules"].as_array().into_iter().flatten() {
                let entry = (
                    rule["name"].as_str().unwrap_or_default().to_owned(),
                    rule["query"].as_str().unwrap_or_default().to_owned(),
                );
                match rule["type"].as_str() {
                    Some("recording") => rules.recording.push(entry),
                    Some("alerting") => rules.alerting.push(entry),
                    _ => {}
                }
            }
        }
        let dir = self.root.join("observability/prometheus/rules");
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".yml") || name.ends_with(".yaml") {
                ensure!(
                    files.contains(&Some(name.clone())),
                    "rules/{name} is not loaded by Prometheus (missing from rule_files in prometheus.yml?)"
                );
            }
        }
        ensure!(!rules.alerting.is_empty(), "Prometheus lists no alert rule");
        let detail = format!(
            "{} alert rules, {} recording rules",
            rules.alerting.len(),
            rules.recording.len()
        );
        Ok((rules, detail))
    }

    /// Every job of the running configuration has targets, all up; the load tester's is
    /// down unless a load test runs, which is said rather than hidden.
    fn targets(&mut self) {
        self.check_unit("every Prometheus scrape target is up", |e2e| {
            let config = e2e.prometheus_api("/api/v1/status/config", &[])?;
            let jobs: BTreeSet<String> = config["yaml"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .filter_map(|line| line.trim().strip_prefix("- job_name:"))
                .map(|job| job.trim().trim_matches('"').to_owned())
                .collect();
            // A target is "unknown" until its first scrape, up to 15 s after Prometheus starts...
            let started = Instant::now();
            let data = loop {
                let data = e2e.prometheus_api("/api/v1/targets", &[("state", "active")])?;
                // ... and the cart service is down at a scrape during the outage check. Before
                // its first service discovery (up to 5 s after it starts) Prometheus has none.
                let targets = data["activeTargets"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let pending = targets.is_empty()
                    || targets.iter().any(|target| {
                        target["health"] != "up" && target["labels"]["job"] != LOADTESTER_JOB
                    });
                if !pending || started.elapsed() > SCRAPE_WAIT {
                    break data;
                }
                thread::sleep(Duration::from_secs(1));
            };
            let mut by_job: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
            for target in data["activeTargets"].as_array().into_iter().flatten() {
                by_job
                    .entry(
                        target["labels"]["job"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                    .or_default()
                    .push((
                        target["scrapeUrl"].as_str().unwrap_or_default().to_owned(),
                        target["health"].as_str().unwrap_or_default().to_owned(),
                        target["lastError"].as_str().unwrap_or_default().to_owned(),
                    ));
            }
            let mut problems = Vec::new();
            let mut up = 0;
            for job in &jobs {
                let targets = by_job.get(job).map(Vec::as_slice).unwrap_or_default();
                if targets.is_empty() {
                    problems.push(format!("{job}: no target"));
                }
                for (url, health, error) in targets {
                    if health == "up" {
                        up += 1;
                    } else if job == LOADTESTER_JOB {
                        e2e.note(&format!(
                            "{job} target {url} is {health}: expected, the load tester serves \
                             metrics only while a load test runs; not a failure"
                        ));
                    } else {
                        problems.push(format!("{job} {url} is {health} ({error})"));
                    }
                }
            }
            if !jobs.contains(LOADTESTER_JOB) {
                e2e.note(&format!(
                    "the running configuration has no {LOADTESTER_JOB} job"
                ));
            }
            ensure!(problems.is_empty(), "{}", problems.join("; "));
            Ok(format!("{up} targets up in {} jobs", jobs.len()))
        });
    }

    /// Waits until every service has been scraped twice since the traffic, so that
    /// rate() over the new counters has two samples.
    fn wait_for_scrapes(&mut self) {
        let jobs: Vec<&str> = SERVICES.iter().map(|(service, ..)| *service).collect();
        let selector = format!("timestamp(up{{job=~\"{}\"}})", jobs.join("|"));
        self.check_unit("Prometheus scrapes every service twice after the traffic", |e2e| {
            let traffic_end = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
            let started = Instant::now();
            let scraped = |e2e: &E2e| -> Result<BTreeMap<String, f64>> {
                Ok(e2e
                    .query(&selector)?
                    .iter()
                    .filter_map(|sample| {
                        let job = sample["metric"]["job"].as_str()?.to_owned();
                        let at = sample["value"][1].as_str()?.parse().ok()?;
                        Some((job, at))
                    })
                    .collect())
            };
            let mut first: BTreeMap<String, f64> = BTreeMap::new();
            loop {
                let now = scraped(e2e)?;
                for (job, at) in &now {
                    if *at > traffic_end {
                        first.entry(job.clone()).or_insert(*at);
                    }
                }
                let done = jobs.iter().all(|job| {
                    matches!((first.get(*job), now.get(*job)), (Some(first), Some(now)) if now > first)
                });
                if done {
                    // Rules that read recorded series need one evaluation after the scrapes.
                    let scraped = now.values().copied().fold(0.0, f64::max);
                    e2e.wait_for_rule_evaluation(scraped)?;
                    return Ok(format!(
                        "and the rules evaluated, after {:.0} s",
                        started.elapsed().as_secs_f64()
                    ));
                }
                ensure!(
                    started.elapsed() < SCRAPE_WAIT,
                    "not every service was scraped twice within {} s: {now:?}",
                    SCRAPE_WAIT.as_secs()
                );
                thread::sleep(Duration::from_secs(1));
            }
        });
    }

    /// Waits until every rule group was evaluated after `after` (Unix seconds).
    fn wait_for_rule_evaluation(&self, after: f64) -> Result<()> {
        let started = Instant::now();
        loop {
            let data = self.prometheus_api("/api/v1/rules", &[])?;
            let stale: Vec<&str> = data["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|group| {
                    group["lastEvaluation"]
                        .as_str()
                        .and_then(unix_seconds)
                        .is_none_or(|at| at <= after)
                })
                .filter_map(|group| group["name"].as_str())
                .collect();
            if stale.is_empty() {
                return Ok(());
            }
            ensure!(
                started.elapsed() < SCRAPE_WAIT,
                "rule groups not evaluated since the last scrape: {stale:?}"
            );
            thread::sleep(Duration::from_secs(1));
        }
    }

    /// Every recording rule's expression, evaluated now, returns data.
    fn rule_queries(&mut self, rules: &Rules) {
        self.check_unit("every recording rule's expression returns data", |e2e| {
            let mut empty = Vec::new();
            let mut known = Vec::new();
            for (record, expr) in &rules.recording {
                if e2e.query(expr)?.is_empty() {
                    match known_reason(expr, rules) {
                        Some(reason) => known.push(format!("{record} ({reason})")),
                        None => empty.push(record.as_str()),
                    }
                }
            }
            if !known.is_empty() {
                e2e.note(&format!(
                    "known empty recording rules: {}",
                    known.join(", ")
                ));
            }
            ensure!(empty.is_empty(), "no data for {}", empty.join(", "));
            Ok(format!(
                "{} of {} ({} known empty)",
                rules.recording.len() - known.len(),
                rules.recording.len(),
                known.len()
            ))
        });
    }

    /// Every metric a rule reads exists in Prometheus; only the CQL store's are known missing.
    fn rule_metrics(&mut self, rules: &Rules) {
        let mut referenced = BTreeSet::new();
        for (_, expr) in rules.recording.iter().chain(&rules.alerting) {
            referenced.extend(metric_names(expr));
        }
        // Recorded series are covered by the check above; here the raw metrics.
        referenced.retain(|name| !name.contains(':'));
        self.check_unit("every metric the rules read exists", |e2e| {
            let present = e2e.metric_names_present()?;
            let mut known = Vec::new();
            let mut missing = Vec::new();
            for name in referenced.iter().filter(|name| !present.contains(*name)) {
                match known_missing(name) {
                    Some(reason) => known.push(format!("{name} ({reason})")),
                    None => missing.push(name.as_str()),
                }
            }
            if !known.is_empty() {
                e2e.note(&format!("known missing metrics: {}", known.join(", ")));
            }
            ensure!(missing.is_empty(), "missing from Prometheus: {missing:?}");
            Ok(format!(
                "{} of {} present",
                referenced.len() - known.len(),
                referenced.len()
            ))
        });
    }

    fn metric_names_present(&self) -> Result<BTreeSet<String>> {
        let names = self.prometheus_api("/api/v1/label/__name__/values", &[])?;
        Ok(names
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect())
    }

    /// Grafana dashboards' expressions, checked like the rules: each reads metrics that
    /// exist and returns data, unless it reads only known-missing metrics or alerts.
    fn dashboards(&mut self, rules: &Rules) {
        let mut files: Vec<PathBuf> = DASHBOARD_DIRS
            .iter()
            .filter_map(|dir| fs::read_dir(self.root.join(dir)).ok())
            .flatten()
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        files.sort();
        if files.is_empty() {
            self.note(&format!(
                "no Grafana dashboards ({}/*.json): no dashboard expression to check",
                DASHBOARD_DIRS.join("/*.json, ")
            ));
            return;
        }
        for file in files {
            let shown = file
                .strip_prefix(&self.root)
                .unwrap_or(&file)
                .display()
                .to_string();
            let name = format!(
                "dashboard {shown}: every expression reads existing metrics and returns data"
            );
            self.check_unit(&name, |e2e| {
                let dashboard: Value = serde_json::from_str(&fs::read_to_string(&file)?)
                    .with_context(|| format!("{shown} is not JSON"))?;
                let mut panels = Vec::new();
                collect_exprs(&dashboard, &mut panels);
                let present = e2e.metric_names_present()?;
                let mut problems = Vec::new();
                let mut known = 0;
                let mut count = 0;
                for (panel, exprs) in &panels {
                    // A panel shows something when one of its queries has data (a 3xx
                    // series next to 2xx/4xx/5xx is legitimately empty).
                    let mut shows = false;
                    let mut checked = false;
                    for expr in exprs {
                        count += 1;
                        let expr = grafana_to_promql(expr);
                        let names = metric_names(&expr);
                        if names.iter().all(|name| name.starts_with("ALERTS")) {
                            // Empty while nothing fires, which is the normal state.
                            continue;
                        }
                        let missing: Vec<&String> = names
                            .iter()
                            .filter(|name| !present.contains(*name))
                            .collect();
                        if missing.is_empty() && !e2e.query(&expr)?.is_empty() {
                            shows = true;
                            continue;
                        }
                        // Known-missing metrics excuse an expression only while they are
                        // missing: once they exist, their panel is checked like any other.
                        if known_reason(&expr, rules).is_some() {
                            known += 1;
                            continue;
                        }
                        checked = true;
                        if !missing.is_empty() {
                            problems
                                .push(format!("panel {panel}: `{expr}` reads missing {missing:?}"));
                        }
                    }
                    if checked && !shows {
                        problems.push(format!("panel {panel}: no query returns data"));
                    }
                }
                ensure!(problems.is_empty(), "{}", problems.join("; "));
                Ok(format!(
                    "{} panels, {count} expressions ({known} read known-missing metrics)",
                    panels.len()
                ))
            });
        }
    }
}

/// Metrics that do not exist yet for a known reason: reported, not failed.
fn known_missing(name: &str) -> Option<&'static str> {
    if name.starts_with("loadtest_") {
        return Some("the load tester does not run in the stack");
    }
    (name == "cassandra_hints_delivered_total")
        .then_some("Cassandra registers its hint-delivery meters at the first delivery")
}

/// Why an expression may be empty: it reads a known-missing metric, directly or through
/// a recording rule.
fn known_reason(expr: &str, rules: &Rules) -> Option<&'static str> {
    metric_names(expr).iter().find_map(|name| {
        known_missing(name).or_else(|| {
            rules
                .recording
                .iter()
                .filter(|(record, _)| record == name)
                .find_map(|(_, source)| known_reason(source, rules))
        })
    })
}

// ----- traces

#[derive(Clone)]
struct Trace {
    spans: Vec<Span>,
}

#[derive(Clone)]
struct Span {
    id: String,
    parent: Option<String>,
    name: String,
    service: String,
    kind: String,
    tags: BTreeMap<String, String>,
}

impl Span {
    fn describe(&self) -> String {
        format!("{} span \"{}\" of {}", self.kind, self.name, self.service)
    }
}

impl Trace {
    /// Jaeger's query API format: spans with CHILD_OF references, processes by id.
    fn parse(trace: &Value) -> Result<Self> {
        let processes = &trace["processes"];
        let mut spans = Vec::new();
        for span in trace["spans"].as_array().into_iter().flatten() {
            let tags: BTreeMap<String, String> = span["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|tag| {
                    let value = match &tag["value"] {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    Some((tag["key"].as_str()?.to_owned(), value))
                })
                .collect();
            let parent = span["references"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|reference| reference["refType"] == "CHILD_OF")
                .and_then(|reference| reference["spanID"].as_str())
                .map(str::to_owned);
            let process = span["processID"].as_str().unwrap_or_default();
            spans.push(Span {
                id: string(span, "spanID")?,
                parent,
                name: string(span, "operationName")?,
                service: processes[process]["serviceName"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned(),
                kind: tags.get("span.kind").cloned().unwrap_or_default(),
                tags,
            });
        }
        Ok(Self { spans })
    }
}

// ----- PromQL and exposition helpers

struct Sample {
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of one metric in the Prometheus text format.
fn parse_samples(text: &str, metric: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(rest) => match rest.rsplit_once('}') {
                Some((labels, value)) => (labels, value),
                None => continue,
            },
            None if rest.starts_with(' ') => ("", rest),
            None => continue,
        };
        let mut map = BTreeMap::new();
        // Label values here never contain `",` (routes, methods, statuses).
        for pair in labels.split("\",").filter(|pair| !pair.is_empty()) {
            if let Some((name, value)) = pair.split_once("=\"") {
                map.insert(
                    name.trim_matches(',').to_owned(),
                    value.trim_end_matches('"').to_owned(),
                );
            }
        }
        let value = value
            .split_whitespace()
            .next()
            .and_then(|value| value.parse().ok());
        if let Some(value) = value {
            samples.push(Sample { labels: map, value });
        }
    }
    samples
}

/// The metric names a PromQL expression reads: identifiers that are not functions,
/// keywords, label names or durations.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "atan2",
    ];
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_label_list = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            if chars[i] == '\\' {
                                i += 1;
                            }
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_label_list => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
                skip_label_list = false;
            }
            c if c.is_ascii_digit() => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let rest: String = chars[next..].iter().take(8).collect();
                // `sum(...)`, `sum by (x) (...)`, `sum without (x) (...)`.
                let is_call = rest.starts_with('(')
                    || (AGGREGATIONS.contains(&word.as_str())
                        && (rest.starts_with("by") || rest.starts_with("without")));
                if LABEL_LISTS.contains(&word.as_str()) {
                    // `group_left` may come without a label list.
                    skip_label_list = rest.starts_with('(');
                } else if !is_call && !KEYWORDS.contains(&word.as_str()) {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// The expressions of a Grafana dashboard, by panel: (panel title, its targets'
/// expressions). Expressions outside panels (templating, annotations) stand alone.
fn collect_exprs(value: &Value, out: &mut Vec<(String, Vec<String>)>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(targets)) = map.get("targets") {
                let exprs: Vec<String> = targets
                    .iter()
                    // LogsQL, which the log store checks (logs.rs).
                    .filter(|target| !logs::is_logsql(target))
                    .filter_map(|target| target["expr"].as_str())
                    .filter(|expr| !expr.trim().is_empty())
                    .map(str::to_owned)
                    .collect();
                if !exprs.is_empty() {
                    let title = map
                        .get("title")
                        .and_then(Value::as_str)
                        .unwrap_or("untitled");
                    out.push((format!("\"{title}\""), exprs));
                }
            }
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("targets", _) => {}
                    ("expr", Value::String(expr)) if !expr.trim().is_empty() => {
                        out.push((format!("`{expr}`"), vec![expr.clone()]));
                    }
                    _ => collect_exprs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_exprs(item, out)),
        _ => {}
    }
}

/// Replaces Grafana's variables with values Prometheus accepts: intervals become 5m,
/// template variables match anything.
fn grafana_to_promql(expr: &str) -> String {
    let mut out = expr
        .replace("$__rate_interval", "5m")
        .replace("$__interval", "5m")
        .replace("$__range", "5m");
    while let Some(start) = out.find('$') {
        let rest = &out[start + 1..];
        let len = if let Some(inner) = rest.strip_prefix('{') {
            inner.find('}').map_or(rest.len(), |end| end + 2)
        } else {
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len())
        };
        out.replace_range(start..start + 1 + len, ".*");
    }
    // `label="$var"` became `label=".*"`, which matches only that literal: make it a regex.
    let mut fixed = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(at) = rest.find("=\".*\"") {
        let before = &rest[..at];
        fixed.push_str(before);
        // `!=` becomes `!~`, `=` becomes `=~`.
        fixed.push_str(if before.ends_with('!') {
            "~\".*\""
        } else {
            "=~\".*\""
        });
        rest = &rest[at + "=\".*\"".len()..];
    }
    fixed.push_str(rest);
    fixed
}

/// An RFC 3339 UTC timestamp as Prometheus writes it (`2025-01-02T03:04:05.678Z`), in
/// Unix seconds.
fn unix_seconds(text: &str) -> Option<f64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.split('-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let mut time = time.split(':');
    let hours: f64 = time.next()?.parse().ok()?;
    let minutes: f64 = time.next()?.parse().ok()?;
    let seconds: f64 = time.next()?.parse().ok()?;
    // Days from the civil calendar (Howard Hinnant's algorithm).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days as f64 * 86_400.0 + hours * 3_600.0 + minutes * 60.0 + seconds)
}

fn string(value: &Value, field: &str) -> Result<String> {
    value[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no `{field}` in {}", truncate(&value.to_string(), 200)))
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

fn random_u64() -> u64 {
    RandomState::new().build_hasher().finish()
        ^ SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_skip_functions_labels_and_durations() {
        let names = metric_names(
            r#"sum by (service, le) (rate(http_server_requests_total{status=~"5.."}[5m]))
               / on (service) group_left service:http_server_requests:rate5m > 0.05
               and max(process_open_fds) / process_max_fds > bool 0.8
               or sum without (instance) (up)"#,
        );
        let expected: BTreeSet<String> = [
            "http_server_requests_total",
            "service:http_server_requests:rate5m",
            "process_open_fds",
            "process_max_fds",
            "up",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn samples_are_parsed_with_their_labels() {
        let text = "# HELP x\nhttp_server_requests_total{method=\"GET\",route=\"/api/products/{product_id}\",status=\"200\",service=\"backend\"} 3\nhttp_server_requests_total_other 1\n";
        let samples = parse_samples(text, "http_server_requests_total");
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].labels["route"], "/api/products/{product_id}");
        assert_eq!(samples[0].labels["status"], "200");
        assert!((samples[0].value - 3.0).abs() < f64::EPSILON);
    }

    #[test]
    fn rfc3339_timestamps_become_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            unix_seconds("2024-03-01T12:00:00.5Z"),
            Some(1_709_294_400.5)
        );
        assert_eq!(unix_seconds("2024-03-01T12:00:00+01:00"), None);
    }

    #[test]
    fn grafana_variables_become_promql() {
        assert_eq!(
            grafana_to_promql(r#"rate(x{service=~"$service",route="${route}"}[$__rate_interval])"#),
            r#"rate(x{service=~".*",route=~".*"}[5m])"#
        );
    }
}
