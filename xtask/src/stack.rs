//! The native observability stack: the four services, the nginx gateway and its
//! exporter, Prometheus, Alertmanager, Jaeger and the log store (VictoriaLogs, see
//! [`logstore`]), each a process on 127.0.0.1,
//! run from the repository's own configuration files (the ones docker-compose uses), with
//! the services keeping their data in the local Cassandra (`cargo xtask cassandra`), which
//! `up` starts when it is not running and `down` leaves running.
//!
//! Debian's packages provide nginx, Prometheus, Alertmanager and the nginx exporter
//! (`.ci/install-observability.sh`, `.ci/install-stack.sh`); Jaeger v2 is built once
//! from its Go module (`xtask/jaeger/go.mod`) into `target/stack/bin`. Everything
//! the stack writes lives under `target/stack/`: pid files, logs (`logs/<name>.log`),
//! Prometheus' and Alertmanager's storage, the nginx prefix.
//!
//! Components can be started and stopped one by one (`up backend`, `down nginx-exporter`)
//! to make alerts fire, and Prometheus can run in compressed time (`up --time-scale 30`,
//! its configuration generated into `target/stack/prometheus-scaled` by `rules scale`).
//! The services run with the fault-injection API on and 4096 open files at most, so that
//! faults can drive every alert, FileDescriptorsNearLimit included.

use std::fs::{self, File};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

mod cluster;
pub mod logstore;

/// The admin password the stack's user service starts with (user `admin`).
/// A development value: the stack listens on loopback only.
pub const ADMIN_PASSWORD: &str = "stack-admin-dev";
/// Orders move on every 2 s, so tests see the whole life cycle quickly.
const ORDER_STATUS_STEP_MS: &str = "2000";
/// Reservations no order committed go back after 20 s, so StockReservationsReclaimed fires
/// within a reproduction; far above a checkout's duration all the same.
const RESERVATION_TTL_SECONDS: &str = "20";
/// The services' soft limit on open files: a common server setting, and low enough that
/// a fault holding 85% of it open makes FileDescriptorsNearLimit fire.
const SERVICE_OPEN_FILES: u64 = 4096;
/// Where the services send spans: Jaeger's OTLP/HTTP receiver.
const OTLP_ENDPOINT: &str = "http://127.0.0.1:4318";
pub const GATEWAY: &str = "http://127.0.0.1:8080";
pub const PROMETHEUS: &str = "http://127.0.0.1:9090";
pub const ALERTMANAGER: &str = "http://127.0.0.1:9093";
pub const JAEGER: &str = "http://127.0.0.1:16686";

/// Long enough for the services' first migrations on a three-node cluster of a busy 2-core
/// machine (73 s measured), which wait for every node to agree on each schema change.
const START_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(250);

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Build what is missing, start every component (or the ones named) that is not
    /// running, and wait until each one answers.
    ///
    /// The services run from debug builds with JSON logs (shipped to VictoriaLogs too),
    /// traces exported to Jaeger, orders moving on every 2 s, the admin account `admin` / `stack-admin-dev`, the
    /// fault-injection API (FAULTS_ENABLED=true) and a soft limit of 4096 open files.
    /// Components already running are left alone. Needs Debian's nginx, prometheus,
    /// prometheus-alertmanager and prometheus-nginx-exporter (`bash
    /// .ci/install-observability.sh && bash .ci/install-stack.sh`) and Go (Jaeger is
    /// built once from xtask/jaeger/go.mod, a few minutes the first time, VictoriaLogs
    /// once from its Go module).
    #[command(verbatim_doc_comment)]
    Up {
        /// Start only these components (all when none are named); `cassandra-<n>` starts
        /// node n of the stack's Cassandra cluster again.
        #[arg(value_name = "COMPONENT", value_parser = component_or_node)]
        components: Vec<String>,
        /// Run the services on a Cassandra cluster of M nodes on 127.0.0.1 to 127.0.0.M
        /// (keyspaces with min(M, 3) replicas), each scraped by Prometheus; remembered
        /// until given again. 1 when never given.
        #[arg(long, value_name = "M", value_parser = crate::cassandra::parse_nodes)]
        cassandra_nodes: Option<u8>,
        /// Start Prometheus in compressed time: rule durations divided by N, scrapes and
        /// evaluations every second (see `cargo xtask rules scale`); 1 is real time.
        /// Refused when Prometheus already runs with another factor.
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(u32).range(1..))]
        time_scale: u32,
    },
    /// Stop every component `up` started, or the ones named (SIGTERM, then SIGKILL
    /// after 20 s).
    Down {
        /// Stop only these components (all when none are named); `cassandra-<n>` stops
        /// node n of the stack's Cassandra cluster.
        #[arg(value_name = "COMPONENT", value_parser = component_or_node)]
        components: Vec<String>,
    },
    /// List each component as running or not and answering or not, and Prometheus' time
    /// scale; exits non-zero unless all run and answer.
    Status,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let layout = Layout::new();
    match args.action {
        Action::Up {
            components,
            time_scale,
            cassandra_nodes,
        } => {
            if let Some(nodes) = cassandra_nodes {
                cluster::set_nodes(&layout.root, nodes)?;
            }
            let (nodes, components) = cluster::partition(components);
            cluster::start_nodes(&nodes)?;
            if nodes.is_empty() || !components.is_empty() {
                up(&layout, &select(&components), time_scale)?;
            }
        }
        Action::Down { components } => {
            let all = components.is_empty();
            let (nodes, components) = cluster::partition(components);
            cluster::stop_nodes(&nodes)?;
            if nodes.is_empty() || !components.is_empty() {
                down(&layout, &select(&components), all)?;
            }
        }
        Action::Status => return status(&layout),
    }
    Ok(ExitCode::SUCCESS)
}

pub struct Layout {
    root: PathBuf,
    work: PathBuf,
    bin: PathBuf,
    logs: PathBuf,
    run: PathBuf,
}

impl Layout {
    pub fn new() -> Self {
        let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = xtask
            .parent()
            .expect("xtask lives inside the workspace")
            .to_path_buf();
        let work = root.join("target/stack");
        Self {
            bin: work.join("bin"),
            logs: work.join("logs"),
            run: work.join("run"),
            work,
            root,
        }
    }

    fn log(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }

    fn pid_file(&self, name: &str) -> PathBuf {
        self.run.join(format!("{name}.pid"))
    }

    fn site(&self) -> PathBuf {
        self.root.join("target/site")
    }

    fn nginx_prefix(&self) -> PathBuf {
        self.work.join("nginx")
    }
    /// Where `up --time-scale N` generates Prometheus' configuration and rules.
    fn scaled_prometheus(&self) -> PathBuf {
        self.work.join("prometheus-scaled")
    }

    /// The time scale of the Prometheus last started, for `status` and `up`.
    fn time_scale_file(&self) -> PathBuf {
        self.work.join("time-scale")
    }

    fn prometheus_config(&self, time_scale: u32) -> PathBuf {
        if time_scale == 1 {
            self.root.join("observability/prometheus/prometheus.yml")
        } else {
            self.scaled_prometheus().join("prometheus.yml")
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    LogStore,
    Jaeger,
    Service { port: u16, listen_var: &'static str },
    Docs,
    Nginx,
    Exporter,
    Alertmanager,
    Prometheus,
}

struct Component {
    name: &'static str,
    kind: Kind,
    /// Answers 2xx when the component is ready.
    ready_url: &'static str,
    /// What to open, printed by `up` and `status`.
    url: &'static str,
}

/// In start order: the log store and Jaeger before the services (they export to them), the services
/// before the gateway, the gateway before its exporter, Prometheus last.
const COMPONENTS: &[Component] = &[
    Component {
        name: "victoria-logs",
        kind: Kind::LogStore,
        ready_url: "http://127.0.0.1:9428/health",
        url: "http://127.0.0.1:9428/select/vmui/ (OTLP logs at /insert/opentelemetry; syslog on udp 127.0.0.1:5514)",
    },
    Component {
        name: "jaeger",
        kind: Kind::Jaeger,
        ready_url: "http://127.0.0.1:16686/api/services",
        url: "http://127.0.0.1:16686 (OTLP on 127.0.0.1:4317 gRPC, :4318 HTTP; metrics :8888)",
    },
    Component {
        name: "user-service",
        kind: Kind::Service {
            port: 8003,
            listen_var: "USER_LISTEN",
        },
        ready_url: "http://127.0.0.1:8003/user-api/health/ready",
        url: "http://127.0.0.1:8003/user-api/",
    },
    Component {
        name: "backend",
        kind: Kind::Service {
            port: 8000,
            listen_var: "BACKEND_LISTEN",
        },
        ready_url: "http://127.0.0.1:8000/api/health/ready",
        url: "http://127.0.0.1:8000/api/",
    },
    Component {
        name: "cart-service",
        kind: Kind::Service {
            port: 8001,
            listen_var: "CART_LISTEN",
        },
        ready_url: "http://127.0.0.1:8001/cart-api/health/ready",
        url: "http://127.0.0.1:8001/cart-api/",
    },
    Component {
        name: "order-service",
        kind: Kind::Service {
            port: 8002,
            listen_var: "ORDER_LISTEN",
        },
        ready_url: "http://127.0.0.1:8002/order-api/health/ready",
        url: "http://127.0.0.1:8002/order-api/",
    },
    Component {
        name: "docs",
        kind: Kind::Docs,
        ready_url: "http://127.0.0.1:8004/docs/",
        url: "http://127.0.0.1:8080/docs/ (target/site)",
    },
    Component {
        name: "nginx",
        kind: Kind::Nginx,
        ready_url: "http://127.0.0.1:8081/stub_status",
        url: "http://127.0.0.1:8080 (gateway; stub_status on 127.0.0.1:8081)",
    },
    Component {
        name: "nginx-exporter",
        kind: Kind::Exporter,
        ready_url: "http://127.0.0.1:9113/metrics",
        url: "http://127.0.0.1:9113/metrics",
    },
    Component {
        name: "alertmanager",
        kind: Kind::Alertmanager,
        ready_url: "http://127.0.0.1:9093/-/ready",
        url: "http://127.0.0.1:9093",
    },
    Component {
        name: "prometheus",
        kind: Kind::Prometheus,
        ready_url: "http://127.0.0.1:9090/-/ready",
        url: "http://127.0.0.1:9090",
    },
];

/// A name `up` and `down` accept: a component's, or a Cassandra node's.
fn component_or_node(name: &str) -> Result<String, String> {
    if cluster::node_number(name).is_some() || COMPONENTS.iter().any(|c| c.name == name) {
        return Ok(name.to_owned());
    }
    let names: Vec<&str> = COMPONENTS.iter().map(|component| component.name).collect();
    Err(format!(
        "no component {name:?}; expected one of {}, or cassandra-<n> (node n of the \
         stack's Cassandra cluster)",
        names.join(", ")
    ))
}

/// The named components in start order, or all of them when none is named.
fn select(names: &[String]) -> Vec<&'static Component> {
    COMPONENTS
        .iter()
        .filter(|component| names.is_empty() || names.iter().any(|name| name == component.name))
        .collect()
}

/// The service binaries, built together.
const SERVICE_PACKAGES: &[&str] = &["backend", "user-service", "cart-service", "order-service"];

impl Component {
    /// The program and a string its command line contains, so that a pid recycled by
    /// another program after a crash is not mistaken for the component.
    fn program(&self, layout: &Layout, tools: &Tools) -> PathBuf {
        match self.kind {
            Kind::LogStore => layout.bin.join(logstore::BINARY),
            Kind::Jaeger => layout.bin.join("jaeger"),
            Kind::Service { .. } => layout.root.join("target/debug").join(self.name),
            Kind::Docs => "python3".into(),
            Kind::Nginx => tools.nginx.clone(),
            Kind::Exporter => tools.exporter.clone(),
            Kind::Alertmanager => tools.alertmanager.clone(),
            Kind::Prometheus => tools.prometheus.clone(),
        }
    }

    fn marker(&self) -> &'static str {
        match self.kind {
            Kind::LogStore => "target/stack/bin/victoria-logs",
            Kind::Jaeger => "target/stack/bin/jaeger",
            Kind::Service { .. } => self.name,
            Kind::Docs => "http.server",
            Kind::Nginx => "nginx",
            Kind::Exporter => "nginx-exporter",
            Kind::Alertmanager => "alertmanager",
            Kind::Prometheus => "prometheus",
        }
    }

    /// The log to read when it fails.
    fn log_file(&self, layout: &Layout) -> PathBuf {
        match self.kind {
            Kind::Nginx => layout.nginx_prefix().join("logs/error.log"),
            _ => layout.log(self.name),
        }
    }

    fn command(&self, layout: &Layout, tools: &Tools, time_scale: u32) -> Result<Command> {
        let obs = layout.root.join("observability");
        let mut command = Command::new(self.program(layout, tools));
        match self.kind {
            Kind::LogStore => logstore::configure(&mut command, &layout.work)?,
            Kind::Jaeger => {
                command.arg("--config").arg(obs.join("jaeger/config.yaml"));
            }
            Kind::Service {
                port, listen_var, ..
            } => {
                command
                    .env(listen_var, format!("127.0.0.1:{port}"))
                    .env("BACKEND_URL", "http://127.0.0.1:8000")
                    .env("CART_SERVICE_URL", "http://127.0.0.1:8001")
                    .env("ORDER_SERVICE_URL", "http://127.0.0.1:8002")
                    .env("USER_SERVICE_URL", "http://127.0.0.1:8003")
                    .env("LOG_FORMAT", "json")
                    .env("STORAGE", "cql")
                    .env("OTEL_EXPORTER_OTLP_ENDPOINT", OTLP_ENDPOINT)
                    .env(
                        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                        logstore::OTLP_LOGS_ENDPOINT,
                    )
                    .env("ORDER_STATUS_STEP_MS", ORDER_STATUS_STEP_MS)
                    .env("RESERVATION_TTL_SECONDS", RESERVATION_TTL_SECONDS)
                    .env("ADMIN_USERNAME", "admin")
                    .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
                    .env_remove("SERVICE_CLIENT_SECRET")
                    .env(
                        "SERVICE_CLIENT_SECRET_FILE",
                        service_secret_file(&layout.work)?,
                    )
                    // Admins only, and the stack listens on loopback: alert reproduction
                    // injects faults through it.
                    .env("FAULTS_ENABLED", "true");
                cluster::configure_service(&mut command)?;
                limit_open_files(&mut command);
            }
            Kind::Docs => {
                command
                    .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
                    .arg(layout.work.join("docs-root"))
                    .arg("8004");
            }
            Kind::Nginx => {
                let prefix = layout.nginx_prefix();
                fs::create_dir_all(prefix.join("logs"))?;
                command
                    .arg("-p")
                    .arg(&prefix)
                    .arg("-c")
                    .arg(obs.join("nginx/nginx.conf"))
                    .arg("-e")
                    .arg(prefix.join("logs/error.log"))
                    // In the foreground, so the pid we record is the master's.
                    .args(["-g", "daemon off;"]);
            }
            Kind::Exporter => {
                command.args([
                    "-nginx.scrape-uri=http://127.0.0.1:8081/stub_status",
                    "-web.listen-address=127.0.0.1:9113",
                    // It exits when nginx does not answer at start-up; nginx starts just before.
                    "-nginx.retries=20",
                    "-nginx.retry-interval=500ms",
                ]);
            }
            Kind::Alertmanager => {
                let storage = layout.work.join("alertmanager");
                fs::create_dir_all(&storage)?;
                command
                    .arg(format!(
                        "--config.file={}",
                        obs.join("alertmanager/alertmanager.yml").display()
                    ))
                    .arg(format!("--storage.path={}", storage.display()))
                    .arg("--web.listen-address=127.0.0.1:9093")
                    // A single instance: no gossip port.
                    .arg("--cluster.listen-address=");
            }
            Kind::Prometheus => {
                let storage = layout.work.join("prometheus");
                fs::create_dir_all(&storage)?;
                command
                    .arg(format!(
                        "--config.file={}",
                        layout.prometheus_config(time_scale).display()
                    ))
                    .arg(format!("--storage.tsdb.path={}", storage.display()))
                    .arg("--web.listen-address=127.0.0.1:9090")
                    .arg("--web.enable-lifecycle");
            }
        }
        Ok(command)
    }
}

/// The file in `dir` holding the services' shared client-credentials secret: random, made
/// the first time and then kept, so that a service started later (`stack up backend`)
/// shares it with those already running. The services get only its path
/// (SERVICE_CLIENT_SECRET_FILE): the secret stays out of their environment.
pub fn service_secret_file(dir: &Path) -> Result<PathBuf> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;

    let path = dir.join("service-client-secret");
    if fs::metadata(&path).is_ok_and(|meta| meta.len() > 0) {
        return Ok(path);
    }
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for the service secret")?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    fs::create_dir_all(dir)?;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| writeln!(file, "{secret}"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Lowers the soft limit on open files in the child, between fork and exec, so the pid
/// and command line stay the service's own. The hard limit is kept; the soft one never
/// exceeds it (an unprivileged process cannot raise it).
fn limit_open_files(command: &mut Command) {
    let Rlimit { maximum, .. } = getrlimit(Resource::Nofile);
    let soft = maximum.map_or(SERVICE_OPEN_FILES, |hard| hard.min(SERVICE_OPEN_FILES));
    let limit = Rlimit {
        current: Some(soft),
        maximum,
    };
    // SAFETY: the closure makes one system call and allocates nothing, which is all that
    // is allowed between fork and exec.
    unsafe {
        command.pre_exec(move || setrlimit(Resource::Nofile, limit).map_err(io::Error::from));
    }
}

/// Paths of the system programs the stack runs.
struct Tools {
    nginx: PathBuf,
    exporter: PathBuf,
    alertmanager: PathBuf,
    prometheus: PathBuf,
}

impl Tools {
    fn find() -> Result<Self> {
        let mut missing = Vec::new();
        let mut find = |names: &[&str], package: &'static str| {
            let found = names.iter().find_map(|name| which(name));
            if found.is_none() {
                missing.push(package);
            }
            found.unwrap_or_default()
        };
        let tools = Self {
            nginx: find(&["nginx", "/usr/sbin/nginx"], "nginx"),
            exporter: find(
                &["prometheus-nginx-exporter", "nginx-prometheus-exporter"],
                "prometheus-nginx-exporter",
            ),
            alertmanager: find(
                &["prometheus-alertmanager", "alertmanager"],
                "prometheus-alertmanager",
            ),
            prometheus: find(&["prometheus"], "prometheus"),
        };
        if !missing.is_empty() {
            bail!(
                "missing Debian packages: {}; install them with \
                 `bash .ci/install-observability.sh && bash .ci/install-stack.sh`",
                missing.join(", ")
            );
        }
        Ok(tools)
    }
}

/// `command -v`, through the shell, so that PATH is searched as a user's shell does.
pub fn which(name: &str) -> Option<PathBuf> {
    if name.starts_with('/') {
        return Path::new(name).is_file().then(|| name.into());
    }
    let output = Command::new("sh")
        .args(["-c", "command -v \"$1\"", "sh", name])
        .output()
        .ok()?;
    let path = String::from_utf8(output.stdout).ok()?;
    let path = path.trim();
    (output.status.success() && !path.is_empty()).then(|| path.into())
}

fn up(layout: &Layout, selected: &[&'static Component], time_scale: u32) -> Result<()> {
    let tools = Tools::find()?;
    let prometheus = selected
        .iter()
        .any(|component| matches!(component.kind, Kind::Prometheus));
    if prometheus {
        check_time_scale(layout, time_scale)?;
    }
    let selected = prepare(layout, selected, time_scale)?;

    let started_at = Instant::now();
    let client = http_client();
    let mut started: Vec<(&Component, Child)> = Vec::new();
    let mut pending: Vec<&Component> = Vec::new();
    for &component in &selected {
        pending.push(component);
        if let Some(pid) = running_pid(layout, component)? {
            println!("{:<15} already running (pid {pid})", component.name);
            continue;
        }
        if answers(&client, component.ready_url) {
            bail!(
                "{}: something else already answers {}; stop it first (`cargo xtask stack status`)",
                component.name,
                component.ready_url
            );
        }
        started.push((component, spawn(layout, &tools, component, time_scale)?));
    }

    println!("waiting until every component answers ...");
    wait_ready(layout, pending, &mut started)?;
    println!(
        "answering after {:.1} s:",
        started_at.elapsed().as_secs_f64()
    );
    for component in selected {
        println!("  {:<15} {}", component.name, component.url);
    }
    if prometheus && time_scale > 1 {
        println!(
            "  Prometheus in compressed time ({time_scale}x): rules from {}",
            layout.scaled_prometheus().display()
        );
    }
    println!(
        "  admin login: admin / {ADMIN_PASSWORD}; logs: {}; stop: cargo xtask stack down",
        layout.logs.display()
    );
    Ok(())
}

/// Builds and generates what the selected components need, and starts Cassandra for the
/// services; returns the components to start (docs only when there is a site to serve).
fn prepare(
    layout: &Layout,
    selected: &[&'static Component],
    time_scale: u32,
) -> Result<Vec<&'static Component>> {
    let has = |kind: fn(&Kind) -> bool| selected.iter().any(|component| kind(&component.kind));
    for dir in [&layout.bin, &layout.logs, &layout.run] {
        fs::create_dir_all(dir)?;
    }
    let services = has(|kind| matches!(kind, Kind::Service { .. }));
    if services {
        build_services(layout)?;
    }
    if has(|kind| matches!(kind, Kind::Jaeger)) {
        build_jaeger(layout)?;
    }
    if has(|kind| matches!(kind, Kind::LogStore)) {
        logstore::build(&layout.bin)?;
    }
    if services {
        crate::cassandra::ensure_running()?;
    }
    if has(|kind| matches!(kind, Kind::Prometheus)) && time_scale > 1 {
        crate::rules::write_scaled(&layout.root, time_scale, &layout.scaled_prometheus())?;
    }
    let docs = prepare_docs(layout)?;
    if !docs && has(|kind| matches!(kind, Kind::Docs)) {
        println!(
            "{:<15} not started: no target/site (`bash .ci/docs.sh` builds it); /docs/ answers 502",
            "docs"
        );
    }
    Ok(selected
        .iter()
        .copied()
        .filter(|component| docs || !matches!(component.kind, Kind::Docs))
        .collect())
}

/// Prometheus reads its rules once, at start: a running one keeps its time scale, so a
/// request for another must not pass as if it had been applied.
fn check_time_scale(layout: &Layout, wanted: u32) -> Result<()> {
    if running_pid(layout, component("prometheus")?)?.is_none() {
        return Ok(());
    }
    let running = recorded_time_scale(layout)?;
    if running != wanted {
        bail!(
            "prometheus is running with time scale {running}, not {wanted}; stop it first \
             (`cargo xtask stack down prometheus`), then run `up` again"
        );
    }
    Ok(())
}

/// The time scale the last Prometheus started with; 1 when none was recorded.
fn recorded_time_scale(layout: &Layout) -> Result<u32> {
    let path = layout.time_scale_file();
    match fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("{} does not hold a time scale", path.display())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(1),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// Waits until every component in `pending` answers; fails when one of those `started`
/// exits first, or after START_TIMEOUT.
fn wait_ready(
    layout: &Layout,
    mut pending: Vec<&Component>,
    started: &mut [(&Component, Child)],
) -> Result<()> {
    let started_at = Instant::now();
    let client = http_client();
    loop {
        let mut still = Vec::new();
        for component in pending {
            if answers(&client, component.ready_url) {
                continue;
            }
            if let Some((_, child)) = started
                .iter_mut()
                .find(|(started, _)| started.name == component.name)
                && let Some(exit) = child.try_wait()?
            {
                remove_file_if_exists(&layout.pid_file(component.name))?;
                bail!(
                    "{} exited during startup ({exit}):\n{}\nsee {} (other components keep \
                     running: `cargo xtask stack down` stops them)",
                    component.name,
                    tail(&component.log_file(layout), 8),
                    component.log_file(layout).display()
                );
            }
            still.push(component);
        }
        pending = still;
        if pending.is_empty() {
            return Ok(());
        }
        if started_at.elapsed() > START_TIMEOUT {
            let names: Vec<String> = pending
                .iter()
                .map(|component| {
                    format!(
                        "{} (no answer from {}; see {})",
                        component.name,
                        component.ready_url,
                        component.log_file(layout).display()
                    )
                })
                .collect();
            bail!(
                "not ready within {} s: {}\n(`cargo xtask stack down` stops the stack)",
                START_TIMEOUT.as_secs(),
                names.join(", ")
            );
        }
        thread::sleep(POLL);
    }
}

/// Starts one component in the background, its output in its log, its pid in its pid file.
fn spawn(layout: &Layout, tools: &Tools, component: &Component, time_scale: u32) -> Result<Child> {
    let log_path = layout.log(component.name);
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let child = component
        .command(layout, tools, time_scale)?
        .current_dir(&layout.root)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C in this terminal does not stop the stack,
        // and `down` stops the whole group (nginx's workers too).
        .process_group(0)
        .spawn()
        .with_context(|| {
            format!(
                "could not run {} for {}",
                component.program(layout, tools).display(),
                component.name
            )
        })?;
    fs::write(layout.pid_file(component.name), child.id().to_string())?;
    if matches!(component.kind, Kind::Prometheus) {
        fs::write(layout.time_scale_file(), time_scale.to_string())?;
    }
    Ok(child)
}

fn component(name: &str) -> Result<&'static Component> {
    COMPONENTS
        .iter()
        .find(|component| component.name == name)
        .ok_or_else(|| anyhow::anyhow!("the stack has no component {name}"))
}

/// Stops one component of a running stack (for failure drills); false if it was not running.
pub fn stop_component(name: &str) -> Result<bool> {
    let layout = Layout::new();
    let component = component(name)?;
    let Some(pid) = running_pid(&layout, component)? else {
        return Ok(false);
    };
    stop(&layout, component, pid)?;
    Ok(true)
}

/// Starts one stopped component again, at the time scale Prometheus last ran with, and
/// waits until it answers.
pub fn start_component(name: &str) -> Result<()> {
    let layout = Layout::new();
    let component = component(name)?;
    if running_pid(&layout, component)?.is_some() {
        return Ok(());
    }
    let time_scale = recorded_time_scale(&layout)?;
    let child = spawn(&layout, &Tools::find()?, component, time_scale)?;
    wait_ready(&layout, vec![component], &mut [(component, child)])
}

/// SIGTERM, then SIGKILL after STOP_TIMEOUT; true if it had to be killed.
fn stop(layout: &Layout, component: &Component, pid: u32) -> Result<bool> {
    // The whole process group: nginx's workers, anything a component forked.
    signal(pid, "TERM")?;
    let asked = Instant::now();
    let mut killed = false;
    while is_component(pid, component)? {
        if asked.elapsed() > STOP_TIMEOUT {
            signal(pid, "KILL")?;
            killed = true;
            break;
        }
        thread::sleep(POLL);
    }
    remove_file_if_exists(&layout.pid_file(component.name))?;
    Ok(killed)
}

fn build_services(layout: &Layout) -> Result<()> {
    let mut command = Command::new("cargo");
    command.current_dir(&layout.root).args(["build", "--bins"]);
    for package in SERVICE_PACKAGES {
        command.args(["-p", package]);
    }
    println!("building the services (cargo build --bins, debug profile) ...");
    let status = command.status().context("could not run cargo")?;
    if !status.success() {
        bail!("cargo build of the services failed ({status})");
    }
    Ok(())
}

/// Builds Jaeger v2 into target/stack/bin unless the binary there was built from the
/// current xtask/jaeger/go.mod. The Go caches make a rebuild after a go.mod change fast.
fn build_jaeger(layout: &Layout) -> Result<()> {
    let module = layout.root.join("xtask/jaeger");
    let go_mod = fs::read_to_string(module.join("go.mod"))
        .with_context(|| format!("reading {}", module.join("go.mod").display()))?;
    // The stamp is written last, so an interrupted build is never taken as complete.
    let stamp = layout.bin.join("jaeger.go.mod.done");
    if layout.bin.join("jaeger").is_file()
        && fs::read_to_string(&stamp).is_ok_and(|done| done == go_mod)
    {
        return Ok(());
    }
    if which("go").is_none() {
        bail!("Jaeger is built with Go, and `go` is not on PATH; install Go 1.24 or later");
    }
    println!(
        "building Jaeger v2 from {} into {} (the first time takes several minutes) ...",
        module.join("go.mod").display(),
        layout.bin.display()
    );
    let started = Instant::now();
    let status = Command::new("go")
        .current_dir(&module)
        .args(["install", "-buildvcs=false", "tool"])
        .env("GOBIN", &layout.bin)
        .status()
        .context("could not run go")?;
    if !status.success() {
        bail!("building Jaeger failed ({status}); is the Go module proxy reachable?");
    }
    fs::write(stamp, go_mod)?;
    println!("built Jaeger in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The docs server serves target/stack/docs-root, where `docs` links to target/site: the
/// gateway passes `/docs/...` through unchanged. False when there is no site to serve.
fn prepare_docs(layout: &Layout) -> Result<bool> {
    let site = layout.site();
    if !site.is_dir() {
        return Ok(false);
    }
    let root = layout.work.join("docs-root");
    fs::create_dir_all(&root)?;
    let link = root.join("docs");
    if fs::read_link(&link).ok().as_deref() != Some(site.as_path()) {
        remove_file_if_exists(&link)?;
        std::os::unix::fs::symlink(&site, &link)
            .with_context(|| format!("linking {} to {}", link.display(), site.display()))?;
    }
    Ok(true)
}

/// Stops the selected components, last started first; `all` when none was named.
fn down(layout: &Layout, selected: &[&Component], all: bool) -> Result<()> {
    let mut stuck = Vec::new();
    for component in selected.iter().rev() {
        let pid_file = layout.pid_file(component.name);
        let Some(pid) = running_pid(layout, component)? else {
            // A component asked for by name gets an answer even without a pid file.
            if pid_file.exists() || !all {
                println!("{:<15} was not running", component.name);
            }
            remove_file_if_exists(&pid_file)?;
            continue;
        };
        if stop(layout, component, pid)? {
            stuck.push(component.name);
        }
        println!("{:<15} stopped (pid {pid})", component.name);
    }
    if !stuck.is_empty() {
        println!(
            "killed with SIGKILL after {} s: {} (see their logs in {})",
            STOP_TIMEOUT.as_secs(),
            stuck.join(", "),
            layout.logs.display()
        );
    }
    if all {
        println!("the stack is down");
    }
    Ok(())
}

fn signal(pid: u32, signal: &str) -> Result<()> {
    // Only this component's process group: `up` made each one a group leader.
    let status = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status()
        .context("could not run kill")?;
    if !status.success() {
        // The group may be gone already; signal the process itself.
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
    Ok(())
}

/// Not running is an answer rather than an error, but scripts need it in the exit code.
fn status(layout: &Layout) -> Result<ExitCode> {
    let client = http_client();
    let mut healthy = true;
    for component in COMPONENTS {
        let pid = running_pid(layout, component)?;
        let answering = answers(&client, component.ready_url);
        let state = match (pid, answering) {
            (Some(pid), true) if matches!(component.kind, Kind::Prometheus) => format!(
                "running (pid {pid}), answering, time scale {}",
                recorded_time_scale(layout)?
            ),
            (Some(pid), true) => format!("running (pid {pid}), answering"),
            (Some(pid), false) => {
                healthy = false;
                format!(
                    "running (pid {pid}), NOT answering {}; see {}",
                    component.ready_url,
                    component.log_file(layout).display()
                )
            }
            (None, true) => {
                healthy = false;
                format!(
                    "not started by the stack, but something answers {}",
                    component.ready_url
                )
            }
            (None, false) if matches!(component.kind, Kind::Docs) && !layout.site().is_dir() => {
                "not running (no target/site to serve)".to_owned()
            }
            (None, false) => {
                healthy = false;
                "not running".to_owned()
            }
        };
        println!("{:<15} {state}", component.name);
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn http_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("a plain HTTP client builds")
}

fn answers(client: &reqwest::blocking::Client, url: &str) -> bool {
    client
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .is_ok_and(|response| response.status().is_success())
}

/// The pid from the component's pid file, if that process is still the component.
fn running_pid(layout: &Layout, component: &Component) -> Result<Option<u32>> {
    let pid_file = layout.pid_file(component.name);
    let Ok(text) = fs::read_to_string(&pid_file) else {
        return Ok(None);
    };
    let pid = text
        .trim()
        .parse()
        .with_context(|| format!("{} does not hold a pid", pid_file.display()))?;
    Ok(is_component(pid, component)?.then_some(pid))
}

/// Asks `ps` for the command line rather than just probing the pid, so that a pid
/// recycled by another program is not mistaken for the component. A zombie (exited,
/// not yet reaped) does not count.
fn is_component(pid: u32, component: &Component) -> Result<bool> {
    let output = Command::new("ps")
        .args(["-p", &pid.to_string(), "-o", "stat=,args="])
        .output()
        .context("could not run ps")?;
    let line = String::from_utf8_lossy(&output.stdout);
    let line = line.trim();
    Ok(!line.starts_with('Z') && line.contains(component.marker()))
}

/// The last `lines` lines of a log, for error messages.
fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn remove_file_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        result => result,
    }
}
