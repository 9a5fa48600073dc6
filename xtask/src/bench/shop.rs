//! The shop under test, on the bench's ports: the four services, the gateway (the
//! repository's nginx configuration) and a Jaeger to export traces to.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use shop_topology::{self as topology, Placement};

use super::procs::{self, Proc};
use super::{Env, configs, ports, seed};

pub struct Service {
    /// Its name, prefix and the variables that place it.
    placement: Placement,
    /// Where it listens on the bench: its own port, apart from the stack's.
    port: u16,
    /// With the cql store: the bench's own keyspace, apart from the stack's and the tests'.
    keyspace: &'static str,
}

/// The user service first: the others fetch its signing keys.
pub const SERVICES: [Service; 4] = [
    Service {
        placement: topology::USER,
        port: ports::USER,
        keyspace: "bench_users",
    },
    Service {
        placement: topology::BACKEND,
        port: ports::BACKEND,
        keyspace: "bench_backend",
    },
    Service {
        placement: topology::CART,
        port: ports::CART,
        keyspace: "bench_carts",
    },
    Service {
        placement: topology::ORDER,
        port: ports::ORDER,
        keyspace: "bench_orders",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    Memory,
    Cql,
}

impl Store {
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Cql => "cql",
        }
    }
}

/// Telemetry of the services under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Telemetry {
    /// Request metrics and spans, every trace sampled, exported to the bench's Jaeger when
    /// one runs.
    On { export: bool },
    /// Request metrics without the request span (`REQUEST_TRACING=false`), every trace
    /// sampled, no exporter: what the metrics alone cost.
    MetricsOnly,
    /// No request metrics or spans, nothing sampled, no exporter.
    Off,
}

/// Starts the four services and waits until they are ready.
pub fn start_services(env: &Env, store: Store, telemetry: Telemetry) -> Result<Vec<Proc>> {
    let mut procs = Vec::new();
    for service in &SERVICES {
        let name = service.placement.name;
        procs.push(spawn(env, service, name, service.port, store, telemetry)?);
    }
    procs::wait_ready(&env.http, &mut procs)?;
    Ok(procs)
}

/// The user service (which the backends fetch their signing keys from and the seeding logs
/// in to) and one backend per telemetry configuration, on `ports::SIDE_BY_SIDE`, with the
/// memory store; ready.
pub fn start_side_by_side(env: &Env, configurations: &[Telemetry]) -> Result<Vec<Proc>> {
    let [user, backend, ..] = &SERVICES;
    let mut procs = vec![spawn(
        env,
        user,
        user.placement.name,
        user.port,
        Store::Memory,
        Telemetry::Off,
    )?];
    for (index, (telemetry, port)) in configurations.iter().zip(ports::SIDE_BY_SIDE).enumerate() {
        let name = format!("{}-{}", backend.placement.name, index + 1);
        procs.push(spawn(env, backend, &name, port, Store::Memory, *telemetry)?);
    }
    procs::wait_ready(&env.http, &mut procs)?;
    Ok(procs)
}

/// Starts `service` as `name` on `port`, its output in the bench's log `name`.
fn spawn(
    env: &Env,
    service: &Service,
    name: &str,
    port: u16,
    store: Store,
    telemetry: Telemetry,
) -> Result<Proc> {
    let secret_file = crate::stack::service_secret_file(&env.work)?;
    let mut command = Command::new(env.bin.join(service.placement.name));
    service_env(&mut command, service, port, store, telemetry);
    command.env("SERVICE_CLIENT_SECRET_FILE", &secret_file);
    if let Some(cost) = env.plan.bcrypt_cost {
        command.env("BCRYPT_COST", cost.to_string());
    }
    let ready = format!(
        "{}{}/health/ready",
        ports::url(port),
        service.placement.prefix
    );
    let log = env.work.join(format!("logs/{name}.log"));
    Proc::spawn(name, command, &log, ready)
}

fn service_env(
    command: &mut Command,
    service: &Service,
    port: u16,
    store: Store,
    telemetry: Telemetry,
) {
    command.env(service.placement.listen_var, format!("127.0.0.1:{port}"));
    for upstream in &SERVICES {
        command.env(upstream.placement.url_var, ports::url(upstream.port));
    }
    command
        .env("LOG_FORMAT", "json")
        .env("STORAGE", store.name())
        .env("CQL_CONTACT_POINTS", super::CASSANDRA)
        .env("CQL_KEYSPACE", service.keyspace)
        .env("ADMIN_USERNAME", seed::ADMIN_USERNAME)
        .env("ADMIN_PASSWORD", seed::ADMIN_PASSWORD);
    // Whatever the caller's shell exports, each configuration is exactly what it says.
    for inherited in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_TRACES_SAMPLER_ARG",
        "REQUEST_TELEMETRY",
        "REQUEST_TRACING",
        "FAULTS_ENABLED",
        "PRODUCT_CACHE_TTL_MS",
        "CQL_CONSISTENCY",
        "CQL_BROWSE_CONSISTENCY",
        "RUST_LOG",
        "SERVICE_CLIENT_SECRET",
    ] {
        command.env_remove(inherited);
    }
    match telemetry {
        Telemetry::On { export } => {
            command.env("OTEL_TRACES_SAMPLER_ARG", "1");
            if export {
                command.env("OTEL_EXPORTER_OTLP_ENDPOINT", ports::url(ports::OTLP_HTTP));
            }
        }
        Telemetry::MetricsOnly => {
            command
                .env("REQUEST_TRACING", "false")
                .env("OTEL_TRACES_SAMPLER_ARG", "1");
        }
        Telemetry::Off => {
            command
                .env("REQUEST_TELEMETRY", "false")
                .env("OTEL_TRACES_SAMPLER_ARG", "0");
        }
    }
}

/// Spans the services' exporters dropped because their queue was full (the exporter could
/// not keep up), from the count each one logs when it stops.
pub fn spans_dropped(env: &Env) -> Result<u64> {
    let mut dropped = 0;
    for service in &SERVICES {
        let log = env
            .work
            .join(format!("logs/{}.log", service.placement.name));
        let text =
            fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))?;
        dropped += dropped_spans_in(&text);
    }
    Ok(dropped)
}

fn dropped_spans_in(log: &str) -> u64 {
    log.lines()
        .filter(|line| line.contains("BatchSpanProcessor.SpansDropped"))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|event| event["dropped_span_count"].as_u64())
        .sum()
}

/// Starts nginx in the foreground (so that the pid is the master's) on a bench copy of the
/// repository's configuration.
pub fn start_gateway(env: &Env) -> Result<Proc> {
    let prefix = env.work.join("nginx");
    let conf = configs::write_nginx(&env.root, &prefix)?;
    let mut command = Command::new(&env.nginx);
    command
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(prefix.join("logs/error.log"))
        .args(["-g", "daemon off;"]);
    let ready = format!("{}/stub_status", ports::url(ports::STUB_STATUS));
    let log = env.work.join("logs/nginx.log");
    let mut procs = vec![Proc::spawn("nginx", command, &log, ready)?];
    procs::wait_ready(&env.http, &mut procs)?;
    Ok(procs.remove(0))
}

/// The gateway's JSON access log, which grows by every request measured.
pub fn access_log(env: &Env) -> PathBuf {
    env.work.join("nginx/logs/access.json.log")
}

/// Requests nginx has served since it started, from its stub_status page.
pub fn gateway_requests(env: &Env) -> Result<u64> {
    let page = env
        .http
        .get(format!("{}/stub_status", ports::url(ports::STUB_STATUS)))
        .send()?
        .text()?;
    stub_status_requests(&page)
}

/// `server accepts handled requests` is followed by the three counts.
pub fn stub_status_requests(page: &str) -> Result<u64> {
    let mut lines = page.lines();
    lines.find(|line| line.trim() == "server accepts handled requests");
    lines
        .next()
        .and_then(|counts| counts.split_whitespace().nth(2))
        .and_then(|requests| requests.parse().ok())
        .with_context(|| format!("not a stub_status page: {page:?}"))
}

/// Starts Jaeger on the bench's ports, from a bench copy of the repository's configuration;
/// without one, a note for the report says that the spans went nowhere.
pub fn start_jaeger(env: &Env, notes: &mut Vec<String>) -> Result<Option<Proc>> {
    let Some(binary) = jaeger_binary(env)? else {
        notes.push(
            "Telemetry on ran without exporting spans: Jaeger is not built and Go (>= 1.24) \
             is not installed to build it. The telemetry cost shown leaves out the export."
                .to_owned(),
        );
        return Ok(None);
    };
    let config = env.work.join("jaeger.yaml");
    configs::write_jaeger(&env.root, &config)?;
    let mut command = Command::new(binary);
    command
        .arg("--config")
        .arg(&config)
        .env_remove("JAEGER_LISTEN_HOST");
    let ready = format!("{}/api/services", ports::url(ports::JAEGER_QUERY));
    let log = env.work.join("logs/jaeger.log");
    let mut procs = vec![Proc::spawn("jaeger", command, &log, ready)?];
    procs::wait_ready(&env.http, &mut procs)?;
    Ok(procs.pop())
}

/// The stack's Jaeger build when there is one, else the bench's own, built with Go the way
/// `cargo xtask stack up` builds it; `None` without Go.
fn jaeger_binary(env: &Env) -> Result<Option<PathBuf>> {
    let stacks = env.root.join("target/stack/bin/jaeger");
    // Outside the work directory, which every run starts afresh.
    let own_dir = env.root.join("target/bench/bin");
    let own = own_dir.join("jaeger");
    if let Some(built) = [stacks, own.clone()]
        .into_iter()
        .find(|path| path.is_file())
    {
        return Ok(Some(built));
    }
    if procs::which("go").is_none() {
        return Ok(None);
    }
    println!(
        "building Jaeger v2 from xtask/jaeger/go.mod into {} (several minutes the first time) ...",
        own_dir.display()
    );
    let status = Command::new("go")
        .current_dir(env.root.join("xtask/jaeger"))
        .args(["install", "-buildvcs=false", "tool"])
        .env("GOBIN", &own_dir)
        .status()
        .context("could not run go")?;
    if !status.success() {
        bail!("building Jaeger failed ({status}); is the Go module proxy reachable?");
    }
    Ok(Some(own))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_status_gives_the_request_count() {
        let page = "Active connections: 1 \nserver accepts handled requests\n 5 6 789 \n\
                    Reading: 0 Writing: 1 Waiting: 0 \n";
        assert_eq!(stub_status_requests(page).unwrap(), 789);
        assert!(stub_status_requests("<html>502</html>").is_err());
    }

    #[test]
    fn dropped_spans_are_read_from_the_logs() {
        let log = r#"{"level":"INFO","message":"backend listening"}
{"level":"WARN","name":"BatchSpanProcessor.SpanDroppingStarted","message":"dropped a Span"}
{"level":"WARN","name":"BatchSpanProcessor.SpansDropped","dropped_span_count":28474,"max_queue_size":2048}
"#;
        assert_eq!(dropped_spans_in(log), 28474);
        assert_eq!(
            dropped_spans_in(
                "not json
"
            ),
            0
        );
    }
}
