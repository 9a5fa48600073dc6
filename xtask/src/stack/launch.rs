//! How each component is started: its program, its command line and environment, and how
//! its process is recognised afterwards.

use std::fs::{self, File};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use anyhow::{Context, Result, bail};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use super::components::{Component, Kind, SERVICES, Service};
use super::layout::Layout;
use super::{ADMIN_PASSWORD, cluster, logstore, replicas};

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

/// What starting a component needs to know about the stack it joins.
pub struct Launcher<'a> {
    pub layout: &'a Layout,
    tools: Tools,
    time_scale: u32,
    replicas: u8,
}

impl<'a> Launcher<'a> {
    pub fn new(layout: &'a Layout, time_scale: u32, replicas: u8) -> Result<Self> {
        Ok(Self {
            layout,
            tools: Tools::find()?,
            time_scale,
            replicas,
        })
    }

    /// Starts one component in the background, its output in its log, its pid in its pid
    /// file.
    pub fn spawn(&self, component: &Component) -> Result<Child> {
        let layout = self.layout;
        let child = super::process::supervised(layout, component)
            .start(
                self.command(component)?.current_dir(&layout.root),
                &layout.log(&component.name),
            )
            .with_context(|| {
                format!(
                    "could not start {} for {}",
                    self.program(component).display(),
                    component.name
                )
            })?;
        if matches!(component.kind, Kind::Prometheus) {
            fs::write(layout.time_scale_file(), self.time_scale.to_string())?;
        }
        Ok(child)
    }

    fn program(&self, component: &Component) -> PathBuf {
        let (layout, tools) = (self.layout, &self.tools);
        match component.kind {
            Kind::LogStore => layout.bin.join(logstore::BINARY),
            Kind::Jaeger => layout.bin.join("jaeger"),
            Kind::Service { service, .. } => layout.root.join("target/debug").join(service.name()),
            Kind::Docs => "python3".into(),
            Kind::Nginx => tools.nginx.clone(),
            Kind::Exporter => tools.exporter.clone(),
            Kind::Alertmanager => tools.alertmanager.clone(),
            Kind::Prometheus => tools.prometheus.clone(),
        }
    }

    fn command(&self, component: &Component) -> Result<Command> {
        let layout = self.layout;
        let obs = layout.root.join("observability");
        let mut command = Command::new(self.program(component));
        match component.kind {
            Kind::LogStore => logstore::configure(&mut command, &layout.work)?,
            Kind::Jaeger => {
                command.arg("--config").arg(obs.join("jaeger/config.yaml"));
            }
            Kind::Service { service, replica } => {
                self.configure_service(&mut command, service, replica)?;
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
                    .arg(replicas::nginx_conf(layout))
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
                        layout.prometheus_config(self.time_scale).display()
                    ))
                    .arg(format!("--storage.tsdb.path={}", storage.display()))
                    .arg("--web.listen-address=127.0.0.1:9090")
                    .arg("--web.enable-lifecycle");
            }
        }
        Ok(command)
    }

    fn configure_service(
        &self,
        command: &mut Command,
        service: &Service,
        replica: u8,
    ) -> Result<()> {
        let listen = service.placement.replica_port(replica);
        command.env(service.placement.listen_var, format!("127.0.0.1:{listen}"));
        for upstream in &SERVICES {
            command.env(
                upstream.placement.url_var,
                replicas::upstream_urls(upstream, self.replicas),
            );
        }
        command
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
                service_secret_file(&self.layout.work)?,
            )
            // Admins only, and the stack listens on loopback: alert reproduction
            // injects faults through it.
            .env("FAULTS_ENABLED", "true")
            // nginx has no health checks of its own: a starting replica that listened
            // before its store connected would get requests it can only answer 503.
            .env("LISTEN_WHEN_READY", "true");
        if service.signs_tokens {
            command.env("JWT_PRIVATE_KEY_FILE", token_key_file(&self.layout.work)?);
        }
        cluster::configure_service(command)?;
        limit_open_files(command);
        Ok(())
    }
}

impl Component {
    /// A string its process' command line contains, so that a pid recycled by another
    /// program after a crash is not mistaken for the component.
    pub fn marker(&self) -> &'static str {
        match self.kind {
            Kind::LogStore => "target/stack/bin/victoria-logs",
            Kind::Jaeger => "target/stack/bin/jaeger",
            Kind::Service { service, .. } => service.name(),
            Kind::Docs => "http.server",
            Kind::Nginx => "nginx",
            Kind::Exporter => "nginx-exporter",
            Kind::Alertmanager => "alertmanager",
            Kind::Prometheus => "prometheus",
        }
    }

    /// The log to read when it fails.
    pub fn log_file(&self, layout: &Layout) -> PathBuf {
        match self.kind {
            Kind::Nginx => layout.nginx_prefix().join("logs/error.log"),
            _ => layout.log(&self.name),
        }
    }
}

/// The file in `dir` holding the services' shared client-credentials secret: random, made
/// the first time and then kept, so that a service started later (`stack up backend`)
/// shares it with those already running. The services get only its path
/// (SERVICE_CLIENT_SECRET_FILE): the secret stays out of their environment.
pub fn service_secret_file(dir: &Path) -> Result<PathBuf> {
    kept_secret_file(&dir.join("service-client-secret"), |random| {
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}\n")
    })
}

/// The Ed25519 key every user-service replica signs tokens with (JWT_PRIVATE_KEY_FILE):
/// one key, so that a token one replica signed is valid at the others, and kept, so that
/// tokens survive a restart. PKCS#8 PEM: the fixed header of an Ed25519 private key, then
/// the 32 random bytes of its seed (as docker-compose's `jwt-key` step writes it).
fn token_key_file(dir: &Path) -> Result<PathBuf> {
    use base64::Engine;
    const PKCS8_ED25519_HEADER: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    kept_secret_file(&dir.join("jwt-ed25519.pem"), |seed| {
        let der = [&PKCS8_ED25519_HEADER[..], &seed[..]].concat();
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
    })
}

/// A file only its owner reads, made once from 32 random bytes and then kept.
fn kept_secret_file(path: &Path, render: impl FnOnce(&[u8; 32]) -> String) -> Result<PathBuf> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;

    if fs::metadata(path).is_ok_and(|meta| meta.len() > 0) {
        return Ok(path.to_owned());
    }
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .with_context(|| format!("cannot read /dev/urandom for {}", path.display()))?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(render(&bytes).as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path.to_owned())
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
pub struct Tools {
    pub nginx: PathBuf,
    exporter: PathBuf,
    alertmanager: PathBuf,
    prometheus: PathBuf,
}

impl Tools {
    pub fn find() -> Result<Self> {
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use base64::Engine;

    use super::*;

    #[test]
    fn the_token_key_is_an_ed25519_pkcs8_pem_made_once_for_its_owner_only() {
        let dir = std::env::temp_dir().join(format!("stack-token-key-{}", std::process::id()));
        let path = token_key_file(&dir).unwrap();
        let pem = fs::read_to_string(&path).unwrap();
        let body = pem
            .strip_prefix("-----BEGIN PRIVATE KEY-----\n")
            .and_then(|rest| rest.strip_suffix("\n-----END PRIVATE KEY-----\n"))
            .expect("one PEM block");
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        assert_eq!(der.len(), 48);
        assert_eq!(
            der[..16],
            [
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20
            ]
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        token_key_file(&dir).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            pem,
            "kept, not made again"
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
