//! The customer journey: every public operation of every service called through the
//! gateway, as a customer and as the admin would, and then each service's own count of
//! 2xx answers, so that an operation the journey forgets fails.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, anyhow, ensure};
use reqwest::StatusCode;
use reqwest::blocking::RequestBuilder;
use serde_json::{Value, json};
use shop_topology::{self as topology, Placement};

use crate::harness::{E2e, string};
use crate::promql::parse_samples;

/// What the journey left behind for the checks that follow it.
pub struct Journey {
    pub requests: usize,
    pub user_a: User,
    pub user_b: User,
    /// The checkout through the user service, with the trace id we chose.
    pub checkout_trace_id: String,
    pub checkout_parent_span: String,
}

pub struct User {
    pub id: String,
    pub token: String,
}

impl E2e {
    /// Every documented operation of every service, from its OpenAPI document as served
    /// through the gateway: service -> {"METHOD /path/{param}"}.
    pub fn operations(&self) -> Result<BTreeMap<&'static str, BTreeSet<String>>> {
        let mut all = BTreeMap::new();
        for Placement {
            name: service,
            prefix,
            ..
        } in topology::ALL
        {
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

    pub fn token(&self, username: &str, password: &str) -> Result<String> {
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

    pub fn register(&self, username: &str) -> Result<User> {
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
    pub fn journey(&self) -> Result<Journey> {
        use reqwest::Method as M;
        let requests = Cell::new(0);
        let call = |request: RequestBuilder, status: StatusCode, what: &str| {
            requests.set(requests.get() + 1);
            self.expect(request, status, what)
        };
        let ok = StatusCode::OK;
        let created = StatusCode::CREATED;
        let no_content = StatusCode::NO_CONTENT;

        for Placement {
            name: service,
            prefix,
            ..
        } in topology::ALL
        {
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
        let admin = self.token("admin", &self.stack.admin_password)?;
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
        let suffix = format!("{:x}", fastrand::u64(..));
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
        let checkout_trace_id = format!("{:032x}", fastrand::u128(..));
        let checkout_parent_span = format!("{:016x}", fastrand::u64(..));
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
        // A replica keeps its faults to itself, so each is called directly: through the
        // gateway, the list and the removal could reach another replica than the fault.
        for placement in topology::ALL {
            for replica in self.stack.replicas(&placement) {
                let faults = format!("{}{}/admin/faults", replica.url, placement.prefix);
                let route = format!("{}/health/live", placement.prefix);
                self.replica_fault_api(&call, &bearer(&admin), &faults, &route, &replica.name)?;
            }
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

    /// One replica's fault API, called directly: a fault that never fires is injected on
    /// `route`, listed, removed, and then every fault removed.
    fn replica_fault_api(
        &self,
        call: &impl Fn(RequestBuilder, StatusCode, &str) -> Result<Value>,
        admin: &str,
        faults: &str,
        route: &str,
        replica: &str,
    ) -> Result<()> {
        use reqwest::Method as M;
        let direct = |method: M, url: &str| {
            self.client
                .request(method, url)
                .header("Authorization", admin)
        };
        let fault = call(
            direct(M::POST, faults).json(&json!({
                "kind": "latency",
                "route": route,
                "delay_ms": 1,
                "fraction": 0.0,
                "ttl_seconds": 30
            })),
            StatusCode::CREATED,
            &format!("{replica}: inject a fault"),
        )?;
        let id = fault["id"].as_str().context("the fault has no id")?;
        let listed = call(
            direct(M::GET, faults),
            StatusCode::OK,
            &format!("{replica}: list faults"),
        )?;
        ensure!(
            listed
                .as_array()
                .is_some_and(|all| all.iter().any(|f| f["id"] == id)),
            "{replica} does not list the fault it accepted: {listed}"
        );
        call(
            direct(M::DELETE, &format!("{faults}/{id}")),
            StatusCode::NO_CONTENT,
            &format!("{replica}: remove the fault"),
        )?;
        call(
            direct(M::DELETE, faults),
            StatusCode::NO_CONTENT,
            &format!("{replica}: remove every fault"),
        )?;
        Ok(())
    }

    /// Every documented operation answered 2xx at least once, by one replica or another,
    /// according to the replicas' own `http_server_requests_total`: a new endpoint that the
    /// journey forgets fails here.
    pub fn coverage(&mut self, operations: &BTreeMap<&'static str, BTreeSet<String>>) {
        for placement in topology::ALL {
            let service = placement.name;
            let name = format!("every {service} operation answered 2xx at least once");
            self.check_unit(&name, |e2e| {
                let metrics = e2e.service_metrics(&placement)?;
                let mut succeeded = BTreeSet::new();
                let samples = metrics
                    .iter()
                    .flat_map(|(_, text)| parse_samples(text, "http_server_requests_total"));
                for sample in samples {
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
                Ok(format!(
                    "{} operations over {} replicas",
                    expected.len(),
                    metrics.len()
                ))
            });
        }
    }
}
