//! What is measured, per store: the static ceiling, each hot endpoint directly, through
//! nginx and through nginx at half its highest rate, memory idle, under load and over a soak,
//! all with telemetry on; then each endpoint directly with spans made but not exported;
//! product by id directly with the request metrics alone; then each endpoint directly and at
//! the same half rate with telemetry off.

use anyhow::{Result, bail};

use super::memory::{self, ServiceMemory};
use super::peer::{self, PeerResult};
use super::procs::{Proc, Watched};
use super::results::{EndpointResult, PRODUCT_BY_ID, StoreResult};
use super::seed::{self, Seed};
use super::shop::{self, Store, Telemetry};
use super::side_by_side;
use super::wrk::{self, Load, Outcome, Request};
use super::{Env, ports};

/// Connections for the GET endpoints and the ceiling: enough to keep two cores busy.
const CONNECTIONS: usize = 64;
/// Above this share of failed requests a run measured something else than the endpoint.
const MAX_ERROR_SHARE: f64 = 0.01;
/// The static answer the gateway serves without any service behind it.
pub const STATIC_PATH: &str = "/static-ok";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    ProductById,
    ProductList,
    CartAdd,
    Token,
    /// The cart service's own checkout (cart → order → backend), after a cart add.
    CartCheckout,
    /// The public checkout (user → cart → order → backend), after a cart add. Last: the
    /// orders the checkouts leave keep the order processor busy for a while.
    Checkout,
}

const ENDPOINTS: [Endpoint; 6] = [
    Endpoint::ProductById,
    Endpoint::ProductList,
    Endpoint::CartAdd,
    Endpoint::Token,
    Endpoint::CartCheckout,
    Endpoint::Checkout,
];

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Self::ProductById => PRODUCT_BY_ID,
            Self::ProductList => "product list page",
            Self::CartAdd => "cart add",
            Self::Token => "token",
            Self::CartCheckout => "cart add + cart checkout",
            Self::Checkout => "cart add + checkout",
        }
    }

    /// What wrk sends, for the report.
    fn requests(self) -> &'static str {
        match self {
            Self::ProductById => "GET /api/products/{id}",
            Self::ProductList => "GET /api/products/?limit=20",
            Self::CartAdd => "POST /cart-api/cart/items",
            Self::Token => "POST /user-api/token",
            Self::CartCheckout => "POST /cart-api/cart/items, POST /cart-api/cart/checkout",
            Self::Checkout => "POST /cart-api/cart/items, POST /user-api/users/me/orders",
        }
    }

    /// The service that answers it, and its port when wrk can reach it directly: the public
    /// checkout's cycle needs two services, which only the gateway puts behind one address.
    fn service(self) -> (&'static str, Option<u16>) {
        match self {
            Self::ProductById | Self::ProductList => ("backend", Some(ports::BACKEND)),
            Self::CartAdd | Self::CartCheckout => ("cart-service", Some(ports::CART)),
            Self::Token => ("user-service", Some(ports::USER)),
            Self::Checkout => ("user-service", None),
        }
    }

    /// A login is a bcrypt hash (tens of milliseconds of CPU) and a checkout runs through
    /// three or four services: a few connections keep the cores busy, more only queue.
    fn connections(self) -> usize {
        match self {
            Self::Token | Self::CartCheckout | Self::Checkout => 16,
            _ => CONNECTIONS,
        }
    }

    /// The gateway limits logins per client address (10 r/s, bursts of 20): through it,
    /// most of wrk's logins get 429.
    fn throttled_at_gateway(self) -> bool {
        self == Self::Token
    }

    fn fills_carts(self) -> bool {
        matches!(self, Self::CartAdd | Self::CartCheckout | Self::Checkout)
    }

    fn load(self, seed: &Seed, cart_products: usize) -> Load {
        match self {
            Self::ProductById => Load::Get(format!("/api/products/{}", seed.products[0])),
            Self::ProductList => Load::Get("/api/products/?limit=20".to_owned()),
            Self::CartAdd => Load::Rotate(cart_adds(seed, cart_products)),
            Self::Token => Load::Fixed(Request {
                lane: 0,
                method: "POST",
                path: "/user-api/token".to_owned(),
                headers: vec![("Content-Type", "application/x-www-form-urlencoded".into())],
                body: format!(
                    "username={}&password={}",
                    seed.users[0].username,
                    seed::PASSWORD
                ),
            }),
            Self::CartCheckout => Load::Rotate(checkout_cycles(
                seed,
                cart_products,
                "/cart-api/cart/checkout",
            )),
            Self::Checkout => Load::Rotate(checkout_cycles(
                seed,
                cart_products,
                "/user-api/users/me/orders",
            )),
        }
    }
}

/// Every user adds every cart product in turn, one unit at a time: users × products lines
/// of up to 100 units each.
fn cart_adds(seed: &Seed, cart_products: usize) -> Vec<Request> {
    let mut requests = Vec::new();
    for product in &seed.products[..cart_products] {
        for (lane, user) in seed.users.iter().enumerate() {
            requests.push(cart_add(lane, user, product));
        }
    }
    requests
}

/// Each user adds a product, then, once every other user of the thread has added theirs,
/// checks out at `checkout`: a cart is never empty at checkout, and no cart grows.
fn checkout_cycles(seed: &Seed, cart_products: usize, checkout: &str) -> Vec<Request> {
    let adds = seed.users.iter().enumerate().map(|(lane, user)| {
        let product = &seed.products[lane % cart_products];
        cart_add(lane, user, product)
    });
    let checkouts = seed.users.iter().enumerate().map(|(lane, user)| Request {
        lane,
        method: "POST",
        path: checkout.to_owned(),
        headers: vec![("Authorization", format!("Bearer {}", user.token))],
        body: String::new(),
    });
    adds.chain(checkouts).collect()
}

fn cart_add(lane: usize, user: &seed::User, product: &str) -> Request {
    Request {
        lane,
        method: "POST",
        path: "/cart-api/cart/items".to_owned(),
        headers: vec![
            ("Authorization", format!("Bearer {}", user.token)),
            ("Content-Type", "application/json".into()),
        ],
        body: format!(r#"{{"product_id":"{product}","quantity":1}}"#),
    }
}

/// The soak reads from all four services and writes nothing, so that the memory store's
/// growth by new data does not pass for a leak.
fn soak_load(seed: &Seed) -> Load {
    let mut requests = Vec::new();
    for (lane, user) in seed.users.iter().enumerate() {
        let product = &seed.products[lane % seed.products.len()];
        let auth = || vec![("Authorization", format!("Bearer {}", user.token))];
        for (path, headers) in [
            (format!("/api/products/{product}"), Vec::new()),
            ("/cart-api/cart/".to_owned(), auth()),
            ("/order-api/orders/?limit=10".to_owned(), auth()),
            ("/user-api/users/me".to_owned(), auth()),
        ] {
            requests.push(Request {
                lane,
                method: "GET",
                path,
                headers,
                body: String::new(),
            });
        }
    }
    Load::Rotate(requests)
}

/// Every figure of one store; `infra` (nginx, Jaeger) runs throughout and its CPU time is
/// accounted for too. When a telemetry pass after the first fails, the figures of the first
/// come back with its error: they are worth writing.
pub fn measure(
    env: &Env,
    store: Store,
    export: bool,
    infra: &[&Proc],
) -> Result<(StoreResult, Option<anyhow::Error>)> {
    println!("== {} store, telemetry on", store.name());
    let services = shop::start_services(env, store, Telemetry::On { export })?;
    let idle = memory::snapshot(&services)?;
    let on = Pass::new(env, store, &services, infra, "on")?;
    let ceiling = on.run(
        "ceiling",
        ports::GATEWAY,
        &Load::Get(STATIC_PATH.to_owned()),
        CONNECTIONS,
        None,
    )?;
    check(&ceiling, &on.log_name("ceiling"), false)?;
    let mut endpoints = Vec::new();
    for endpoint in ENDPOINTS {
        endpoints.push(on.measure(endpoint)?);
    }
    let peak = memory::snapshot(&services)?;
    // The peer keeps its products in memory: it is compared with the memory store.
    let peer_product = match store {
        Store::Memory => Some(peer::product(env, &on.seed.products[0])?),
        Store::Cql => None,
    };
    let soak = memory::soak(env, store, &services, &soak_load(&on.seed))?;
    check(&soak.outcome, &format!("{}-soak", store.name()), false)?;
    drop(services);
    let (peer, peer_failure) = match peer_product.map(|product| measure_peer(&on, &product)) {
        Some(Ok(peer)) => (Some(peer), None),
        Some(Err(error)) => (None, Some(error.context("the seed's stack as a peer"))),
        None => (None, None),
    };
    let mut result = StoreResult {
        store: store.name(),
        traces_exported: export,
        ceiling,
        endpoints,
        soak_minutes: env.plan.soak.as_secs_f64() / 60.0,
        soak: soak.outcome,
        memory: ServiceMemory::combine(&idle, &peak, &soak.samples),
        spans_dropped: shop::spans_dropped(env)?,
        peer,
        side_by_side: None,
    };
    let telemetry_failure = other_telemetry(env, store, export, infra, &mut result.endpoints).err();
    let side_by_side_failure = match store {
        Store::Memory => side_by_side::measure(env)
            .map(|measured| result.side_by_side = Some(measured))
            .err()
            .map(|error| error.context("the request telemetry side by side")),
        Store::Cql => None,
    };
    Ok((
        result,
        peer_failure.or(telemetry_failure).or(side_by_side_failure),
    ))
}

/// The peer serving `product`, once the services are stopped, with the load and the
/// connections of the Rust backend's product-by-id runs.
fn measure_peer(pass: &Pass, product: &serde_json::Value) -> Result<PeerResult> {
    let endpoint = Endpoint::ProductById;
    let load = endpoint.load(&pass.seed, pass.env.plan.cart_products);
    peer::measure(pass.env, product, |watched| {
        let name = pass.log_name("peer-product-by-id-direct");
        let run = wrk_run(pass.env, ports::PEER, &load, endpoint.connections(), None);
        let outcome = timed_run(pass.env, watched, &name, run)?;
        check(&outcome, &name, false)?;
        Ok(outcome)
    })
}

/// The passes that telemetry on is compared with.
fn other_telemetry(
    env: &Env,
    store: Store,
    export: bool,
    infra: &[&Proc],
    endpoints: &mut [EndpointResult],
) -> Result<()> {
    // Without export, the spans are made but go nowhere: what the instrumentation costs
    // apart from the exporter and the collector.
    if export {
        let no_export = Telemetry::On { export: false };
        let outcomes = direct_pass(env, store, no_export, "no-export", infra)?;
        for (result, outcome) in endpoints.iter_mut().zip(outcomes) {
            result.telemetry_no_export = outcome;
        }
    }
    off_pass(env, store, infra, endpoints)
}

/// Telemetry off: each endpoint directly, and through nginx offered what its half-load run
/// with telemetry on was offered, so that the tails compare at the same load.
fn off_pass(
    env: &Env,
    store: Store,
    infra: &[&Proc],
    endpoints: &mut [EndpointResult],
) -> Result<()> {
    println!("== {} store, telemetry off", store.name());
    let services = shop::start_services(env, store, Telemetry::Off)?;
    let pass = Pass::new(env, store, &services, infra, "off")?;
    for (endpoint, result) in ENDPOINTS.into_iter().zip(endpoints) {
        result.telemetry_off = pass.measure_direct(endpoint)?;
        result.half_telemetry_off =
            Some(pass.measure_half(endpoint, result.gateway.ok_per_s / 2.0)?);
    }
    Ok(())
}

/// Every endpoint directly, against services started with `telemetry`.
fn direct_pass(
    env: &Env,
    store: Store,
    telemetry: Telemetry,
    label: &'static str,
    infra: &[&Proc],
) -> Result<Vec<Option<Outcome>>> {
    println!("== {} store, telemetry {label}", store.name());
    let services = shop::start_services(env, store, telemetry)?;
    let pass = Pass::new(env, store, &services, infra, label)?;
    ENDPOINTS
        .into_iter()
        .map(|endpoint| pass.measure_direct(endpoint))
        .collect()
}

/// The runs against one start of the services, with the data seeded for them.
struct Pass<'a> {
    env: &'a Env,
    store: Store,
    seed: Seed,
    watched: Watched,
    telemetry: &'static str,
}

impl<'a> Pass<'a> {
    fn new(
        env: &'a Env,
        store: Store,
        services: &[Proc],
        infra: &[&Proc],
        telemetry: &'static str,
    ) -> Result<Self> {
        let plan = &env.plan;
        let run = format!("{}-{}-{telemetry}", env.run_id, store.name());
        Ok(Self {
            env,
            store,
            seed: seed::seed(&env.http, &run, plan.products, plan.users)?,
            watched: Watched::new(services.iter().chain(infra.iter().copied())),
            telemetry,
        })
    }

    /// Directly (when one service answers it), through nginx, and through nginx at half
    /// the rate nginx reached.
    fn measure(&self, endpoint: Endpoint) -> Result<EndpointResult> {
        let (service, _) = endpoint.service();
        let load = endpoint.load(&self.seed, self.env.plan.cart_products);
        let connections = endpoint.connections();
        let throttled = endpoint.throttled_at_gateway();
        let direct = self.measure_direct(endpoint)?;
        let gateway = self.endpoint_run(endpoint, "nginx", &load, connections, None)?;
        let half = self.measure_half(endpoint, gateway.ok_per_s / 2.0)?;
        Ok(EndpointResult {
            endpoint: endpoint.name(),
            service,
            requests: endpoint.requests(),
            throttled_at_gateway: throttled,
            direct,
            gateway,
            half,
            telemetry_no_export: None,
            telemetry_off: None,
            half_telemetry_off: None,
        })
    }

    /// Through nginx, offered `rate`, on the connections of the run at the highest rate: the
    /// two runs differ in their rate only.
    fn measure_half(&self, endpoint: Endpoint, rate: f64) -> Result<Outcome> {
        let load = endpoint.load(&self.seed, self.env.plan.cart_products);
        self.endpoint_run(
            endpoint,
            "nginx-half",
            &load,
            endpoint.connections(),
            Some(rate),
        )
    }

    /// Straight to the service; `None` for an endpoint no single service answers.
    fn measure_direct(&self, endpoint: Endpoint) -> Result<Option<Outcome>> {
        if endpoint.service().1.is_none() {
            return Ok(None);
        }
        let load = endpoint.load(&self.seed, self.env.plan.cart_products);
        let direct = self.endpoint_run(endpoint, "direct", &load, endpoint.connections(), None)?;
        Ok(Some(direct))
    }

    /// One run of an endpoint, `route` "direct" or through nginx, from empty carts.
    fn endpoint_run(
        &self,
        endpoint: Endpoint,
        route: &str,
        load: &Load,
        connections: usize,
        rate: Option<f64>,
    ) -> Result<Outcome> {
        if endpoint.fills_carts() {
            seed::empty_carts(&self.env.http, &self.seed.users)?;
        }
        let port = match (route, endpoint.service().1) {
            ("direct", Some(port)) => port,
            _ => ports::GATEWAY,
        };
        let name = format!(
            "{}-{route}",
            endpoint.name().replace(" + ", "-").replace(' ', "-")
        );
        let outcome = self.run(&name, port, load, connections, rate)?;
        let throttled = route != "direct" && endpoint.throttled_at_gateway();
        check(&outcome, &self.log_name(&name), throttled).map_err(|error| {
            if matches!(endpoint, Endpoint::CartAdd) {
                error.context(
                    "cart add has room for users × cart products × 100 adds (a cart line holds \
                     at most 100 units): a machine that serves more in one measurement fills \
                     the lines, and the cart service refuses the rest with 400",
                )
            } else {
                error
            }
        })?;
        Ok(outcome)
    }

    /// One wrk run against a port of 127.0.0.1, its report in the run's log, with the CPU
    /// time each process spent meanwhile.
    fn run(
        &self,
        name: &str,
        port: u16,
        load: &Load,
        connections: usize,
        rate: Option<f64>,
    ) -> Result<Outcome> {
        let run = wrk_run(self.env, port, load, connections, rate);
        timed_run(self.env, &self.watched, &self.log_name(name), run)
    }

    /// `<store>-<telemetry>-<run>`: the name of the run's log in target/bench/work/logs.
    fn log_name(&self, run: &str) -> String {
        format!("{}-{}-{run}", self.store.name(), self.telemetry)
    }
}

/// A wrk run of the plan's length against a port of 127.0.0.1.
fn wrk_run<'a>(
    env: &Env,
    port: u16,
    load: &'a Load,
    connections: usize,
    rate: Option<f64>,
) -> wrk::Run<'a> {
    wrk::Run {
        base: ports::url(port),
        load,
        connections,
        duration: env.plan.measure,
        rate,
    }
}

/// Executes `run`, its report in the log `name`, with the CPU time each `watched` process
/// spent meanwhile.
fn timed_run(env: &Env, watched: &Watched, name: &str, run: wrk::Run) -> Result<Outcome> {
    let cpu_before = watched.cpu()?;
    let mut outcome = run.execute(&env.wrk, &env.scripts(), &env.log(name))?;
    let cpu_after = watched.cpu()?;
    outcome.process_cpu_s = cpu_after
        .into_iter()
        .map(|(process, after)| {
            let spent = after.saturating_sub(cpu_before.get(&process).copied().unwrap_or_default());
            (process, spent.as_secs_f64())
        })
        .collect();
    // The access log grows by every request: keep the disk free during long runs.
    memory::truncate(&shop::access_log(env))?;
    println!(
        "  {name:<52} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>8.2} ms  errors {}",
        outcome.ok_per_s, outcome.p50_ms, outcome.p99_ms, outcome.errors
    );
    Ok(outcome)
}

/// A run that mostly failed measured the failure: stop and say where to look. A throttled
/// endpoint must get some requests through.
pub fn check(outcome: &Outcome, name: &str, throttled: bool) -> Result<()> {
    let failed = if throttled {
        outcome.ok_per_s <= 0.0
    } else {
        outcome.error_share() > MAX_ERROR_SHARE
    };
    if failed {
        bail!(
            "{name}: {} of {} requests failed; see target/bench/work/logs/{name}.log and the \
             services' logs next to it",
            outcome.errors,
            outcome.requests
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkouts_follow_their_users_cart_adds() {
        let seed = Seed {
            products: vec!["p0".into(), "p1".into()],
            users: (0..3)
                .map(|i| seed::User {
                    username: format!("u{i}"),
                    token: format!("t{i}"),
                })
                .collect(),
        };
        let requests = checkout_cycles(&seed, 2, "/user-api/users/me/orders");
        let paths: Vec<(usize, &str)> =
            requests.iter().map(|r| (r.lane, r.path.as_str())).collect();
        assert_eq!(
            paths,
            [
                (0, "/cart-api/cart/items"),
                (1, "/cart-api/cart/items"),
                (2, "/cart-api/cart/items"),
                (0, "/user-api/users/me/orders"),
                (1, "/user-api/users/me/orders"),
                (2, "/user-api/users/me/orders"),
            ]
        );
        assert!(requests[2].body.contains(r#""product_id":"p0""#));
        assert_eq!(requests[4].headers[0].1, "Bearer t1");
    }
}
