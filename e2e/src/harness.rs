//! The runner, one line per check (`ok`, `FAILED`, or a `note` that is neither); the HTTP
//! helpers every check uses; and the stack: where its components answer and how a check
//! stops one and starts it again, both given by `cargo xtask e2e`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::Value;
use shop_topology::Placement;

/// How long Prometheus may take to scrape, discover or evaluate what a check waits for.
pub const SCRAPE_WAIT: Duration = Duration::from_secs(90);

/// The stack under test, as `cargo xtask e2e` describes it in the environment: the suite
/// runs only when told where the stack is (the gate that keeps a plain `cargo test` off
/// a stack it would disturb).
pub struct Stack {
    pub gateway: String,
    pub prometheus: String,
    pub alertmanager: String,
    pub jaeger: String,
    pub log_store: String,
    /// The password of the account `admin` the stack's user service starts with.
    pub admin_password: String,
    /// How many replicas of each service the stack runs (`stack up --replicas N`).
    pub replicas: u8,
    /// The xtask that started the stack, which stops and starts its components.
    xtask: PathBuf,
}

/// One process of a service: replica r of the stack's `--replicas N`.
pub struct Replica {
    /// As the stack names it: the service's name for replica 1, `<service>-<r>` after.
    pub name: String,
    /// Its base URL, where it answers directly (not through the gateway).
    pub url: String,
    pub port: u16,
}

impl Stack {
    /// Every replica of `service`, the first (the service's own port) first.
    pub fn replicas(&self, service: &Placement) -> Vec<Replica> {
        (1..=self.replicas)
            .map(|replica| {
                let port = service.replica_port(replica);
                Replica {
                    name: service.replica_name(replica),
                    url: format!("http://127.0.0.1:{port}"),
                    port,
                }
            })
            .collect()
    }

    pub fn from_env() -> Result<Self> {
        let var = |name: &str| {
            env::var(name).with_context(|| {
                format!(
                    "{name} is not set: the suite runs against the stack `cargo xtask e2e` names"
                )
            })
        };
        Ok(Self {
            gateway: var("E2E_GATEWAY_URL")?,
            prometheus: var("E2E_PROMETHEUS_URL")?,
            alertmanager: var("E2E_ALERTMANAGER_URL")?,
            jaeger: var("E2E_JAEGER_URL")?,
            log_store: var("E2E_LOG_STORE_URL")?,
            admin_password: var("E2E_ADMIN_PASSWORD")?,
            replicas: var("E2E_REPLICAS")?
                .parse()
                .ok()
                .filter(|count| *count > 0)
                .context("E2E_REPLICAS is not a number of replicas (1 or more)")?,
            xtask: var("E2E_XTASK")?.into(),
        })
    }
}

pub struct E2e {
    pub stack: Stack,
    pub client: Client,
    /// The workspace, for the repository's files (rules, dashboards) and `cargo xtask`.
    pub root: PathBuf,
    pub passed: usize,
    pub failed: usize,
}

impl E2e {
    pub fn new(stack: Stack) -> Self {
        Self {
            stack,
            client: Client::builder()
                .timeout(Duration::from_secs(10))
                .connect_timeout(Duration::from_secs(2))
                .build()
                .expect("a plain HTTP client builds"),
            root: Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("the e2e crate lives inside the workspace")
                .to_path_buf(),
            passed: 0,
            failed: 0,
        }
    }

    /// Runs one check and prints one line for it.
    pub fn check<T>(
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

    pub fn check_unit(&mut self, name: &str, body: impl FnOnce(&mut Self) -> Result<String>) {
        self.check(name, |e2e| body(e2e).map(|detail| ((), detail)));
    }

    pub fn note(&self, text: &str) {
        println!("note    {text}");
    }

    // ----- HTTP helpers

    pub fn gateway(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.stack.gateway))
            // A fixed client address for the login rate limit is ours alone: stay under it.
            .header("User-Agent", "xtask-e2e")
    }

    /// Sends a request and insists on one status; returns the JSON body (Null if empty).
    pub fn expect(&self, request: RequestBuilder, status: StatusCode, what: &str) -> Result<Value> {
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

    /// One replica's own metrics, read directly: the gateway does not serve them.
    pub fn replica_metrics(&self, service: &Placement, replica: &Replica) -> Result<String> {
        self.client
            .get(format!("{}{}/metrics", replica.url, service.prefix))
            .send()
            .and_then(reqwest::blocking::Response::error_for_status)
            .and_then(reqwest::blocking::Response::text)
            .with_context(|| format!("{}'s metrics", replica.name))
    }

    /// Every replica's metrics of `service`, each beside its replica.
    pub fn service_metrics(&self, service: &Placement) -> Result<Vec<(Replica, String)>> {
        self.stack
            .replicas(service)
            .into_iter()
            .map(|replica| {
                let text = self.replica_metrics(service, &replica)?;
                Ok((replica, text))
            })
            .collect()
    }

    // ----- the stack's control

    /// Stops one component of the stack (`cassandra`: every node of its cluster); false if
    /// it was not running.
    pub fn stop_component(&self, name: &str) -> Result<bool> {
        Ok(self.control("stop", name)? == "stopped")
    }

    /// Starts one stopped component again and waits until it answers.
    pub fn start_component(&self, name: &str) -> Result<()> {
        self.control("start", name).map(drop)
    }

    /// `xtask e2e stop|start NAME`, which answers with one word.
    fn control(&self, action: &str, name: &str) -> Result<String> {
        let output = Command::new(&self.stack.xtask)
            .current_dir(&self.root)
            .args(["e2e", action, name])
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.stack.xtask.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        ensure!(
            output.status.success(),
            "`xtask e2e {action} {name}` failed ({}): {stdout} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(stdout)
    }
}

pub fn string(value: &Value, field: &str) -> Result<String> {
    value[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no `{field}` in {}", truncate(&value.to_string(), 200)))
}

pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use shop_topology::BACKEND;

    use super::Stack;

    fn stack(replicas: u8) -> Stack {
        Stack {
            gateway: String::new(),
            prometheus: String::new(),
            alertmanager: String::new(),
            jaeger: String::new(),
            log_store: String::new(),
            admin_password: String::new(),
            replicas,
            xtask: "xtask".into(),
        }
    }

    #[test]
    fn one_replica_is_the_service_on_its_own_port() {
        let replicas = stack(1).replicas(&BACKEND);
        let found: Vec<(&str, &str)> = replicas
            .iter()
            .map(|replica| (replica.name.as_str(), replica.url.as_str()))
            .collect();
        assert_eq!(found, [("backend", "http://127.0.0.1:8000")]);
    }
}
