//! One Cassandra node of the local cluster: its address, directories, configuration and
//! process.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use anyhow::{Context, Result, bail};
use regex::Regex;

use super::fetch::Artifacts;
use super::jvm::JVM_OPTIONS;
use crate::supervisor::{self, Detached};

pub const MAIN_CLASS: &str = "org.apache.cassandra.service.CassandraDaemon";
/// The first node's metrics port (the JMX exporter's HTTP server); node i listens on the
/// next ports, so that every node has a port of its own.
pub const FIRST_METRICS_PORT: u16 = 7070;
/// The address the single node has always used: its files stay where they were.
const FIRST_ADDRESS: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Where the local nodes live: target/cassandra.
pub struct Workspace {
    pub root: PathBuf,
    pub config_dir: PathBuf,
}

impl Workspace {
    pub fn new() -> Self {
        let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = xtask.parent().expect("xtask lives inside the workspace");
        Self {
            root: root.join("target/cassandra"),
            config_dir: root.join("observability/cassandra"),
        }
    }

    /// How many nodes the native stack runs, as `stack up --cassandra-nodes` last said.
    pub fn stack_nodes_file(&self) -> PathBuf {
        self.root.join("stack-nodes")
    }

    fn nodes_dir(&self) -> PathBuf {
        self.root.join("nodes")
    }

    /// The node on 127.0.0.1 keeps the single-node layout (target/cassandra/data, log,
    /// cassandra.pid), so a node started before clusters existed is still found and keeps
    /// its data; every other node has target/cassandra/nodes/<address>.
    fn node_dir(&self, address: Ipv4Addr) -> PathBuf {
        if address == FIRST_ADDRESS {
            self.root.clone()
        } else {
            self.nodes_dir().join(address.to_string())
        }
    }

    /// Every node that has a directory here, whether running or not.
    pub fn known_nodes(&self, port: u16) -> Result<Vec<Node>> {
        let mut addresses = Vec::new();
        if self.root.join("data").exists() || self.root.join("cassandra.pid").exists() {
            addresses.push(FIRST_ADDRESS);
        }
        if let Ok(entries) = fs::read_dir(self.nodes_dir()) {
            for entry in entries {
                let name = entry?.file_name();
                if let Some(address) = name.to_str().and_then(|name| name.parse().ok()) {
                    addresses.push(address);
                }
            }
        }
        addresses.sort();
        Ok(addresses
            .into_iter()
            .map(|address| self.node(address, port))
            .collect())
    }

    pub fn node(&self, address: Ipv4Addr, port: u16) -> Node {
        let dir = self.node_dir(address);
        Node {
            address,
            port,
            data: dir.join("data"),
            logs: dir.join("log"),
            config: dir.join("conf/cassandra.yaml"),
            pid_file: dir.join("cassandra.pid"),
        }
    }
}

pub struct Node {
    pub address: Ipv4Addr,
    /// CQL native protocol port.
    pub port: u16,
    pub data: PathBuf,
    logs: PathBuf,
    config: PathBuf,
    pid_file: PathBuf,
}

/// What a node needs to know about its cluster to start.
pub struct Role {
    pub seed: Ipv4Addr,
    pub storage_port: u16,
    pub metrics_port: u16,
}

impl Node {
    pub fn cql_address(&self) -> SocketAddr {
        SocketAddr::from((self.address, self.port))
    }

    pub fn system_log(&self) -> PathBuf {
        self.logs.join("system.log")
    }

    fn stdout_log(&self) -> PathBuf {
        self.logs.join("stdout.log")
    }

    /// Writes the node's configuration and starts it in the background.
    pub fn spawn(
        &self,
        workspace: &Workspace,
        artifacts: &Artifacts,
        role: &Role,
    ) -> Result<Child> {
        fs::create_dir_all(&self.data)?;
        fs::create_dir_all(&self.logs)?;
        self.write_config(workspace, role.seed)?;
        let exporter = format!(
            "-javaagent:{}={}:{}:{}",
            artifacts.jmx_exporter()?.display(),
            self.address,
            role.metrics_port,
            workspace.config_dir.join("jmx-exporter.yaml").display()
        );
        let mut command = Command::new(java());
        command
            .args(JVM_OPTIONS)
            .arg(exporter)
            .arg(format!(
                "-Dcassandra.config=file://{}",
                self.config.display()
            ))
            .arg(format!(
                "-Dlogback.configurationFile={}",
                workspace.config_dir.join("logback.xml").display()
            ))
            .arg(format!("-Dcassandra.logdir={}", self.logs.display()))
            .arg(format!("-Dcassandra.storagedir={}", self.data.display()))
            .arg(format!("-Dcassandra.native_transport_port={}", self.port))
            .arg(format!("-Dcassandra.storage_port={}", role.storage_port))
            .arg("-cp")
            .arg(artifacts.lib.join("*"))
            .arg(MAIN_CLASS);
        // Detached: a Ctrl-C while we wait does not kill the node.
        self.process()
            .start(&mut command, &self.stdout_log())
            .context("could not run java; install Java 17 or set JAVA_HOME")
    }

    /// The node's process, found again through its pid file.
    pub fn process(&self) -> Detached<'static> {
        Detached {
            name: "Cassandra",
            pid_file: self.pid_file.clone(),
            marker: MAIN_CLASS,
        }
    }

    /// The shared cassandra.yaml with this node's addresses and its cluster's seed.
    fn write_config(&self, workspace: &Workspace, seed: Ipv4Addr) -> Result<()> {
        let template_path = workspace.config_dir.join("cassandra.yaml");
        let template = fs::read_to_string(&template_path)
            .with_context(|| format!("reading {}", template_path.display()))?;
        let config = node_config(&template, self.address, seed)
            .with_context(|| format!("in {}", template_path.display()))?;
        fs::create_dir_all(self.config.parent().expect("the config lives in conf/"))?;
        fs::write(&self.config, config)?;
        Ok(())
    }

    /// True when a CQL server answers on the node's address.
    pub fn answers_cql(&self) -> bool {
        supervisor::answers_cql(self.cql_address())
    }

    /// The last lines of the node's console output and of its system log: a configuration
    /// error (a port in use) is printed last on the console, a failure to join in the log.
    pub fn log_tail(&self) -> String {
        format!(
            "--- {}:\n{}\n--- {}:\n{}",
            self.stdout_log().display(),
            supervisor::tail(&self.stdout_log(), 5),
            self.system_log().display(),
            supervisor::tail(&self.system_log(), 10)
        )
    }
}

/// `template` with the node's listen and client addresses and the cluster's seed put in;
/// fails when the template lacks one of those settings, rather than start a node that
/// listens where it should not.
pub fn node_config(template: &str, address: Ipv4Addr, seed: Ipv4Addr) -> Result<String> {
    let settings = [
        (
            r"(?m)^listen_address:.*$",
            format!("listen_address: {address}"),
        ),
        (r"(?m)^rpc_address:.*$", format!("rpc_address: {address}")),
        (r#"(?m)^(\s*- seeds:).*$"#, format!(r#"${{1}} "{seed}""#)),
    ];
    let mut config = template.to_owned();
    for (pattern, replacement) in settings {
        let setting = Regex::new(pattern).expect("a valid pattern");
        let found = setting.find_iter(&config).count();
        if found != 1 {
            bail!("expected one line matching {pattern}, found {found}");
        }
        config = setting.replace(&config, replacement.as_str()).into_owned();
    }
    Ok(config)
}

fn java() -> PathBuf {
    std::env::var_os("JAVA_HOME")
        .map_or_else(|| "java".into(), |home| Path::new(&home).join("bin/java"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "cluster_name: x\nlisten_address: 127.0.0.1\nrpc_address: 127.0.0.1\n\
        seed_provider:\n  - class_name: S\n    parameters:\n      - seeds: \"127.0.0.1\"\n";

    #[test]
    fn a_node_listens_on_its_own_address_and_knows_the_seed() {
        let config =
            node_config(TEMPLATE, Ipv4Addr::new(127, 0, 0, 3), Ipv4Addr::LOCALHOST).unwrap();
        assert!(config.contains("listen_address: 127.0.0.3\n"), "{config}");
        assert!(config.contains("rpc_address: 127.0.0.3\n"), "{config}");
        assert!(
            config.contains("      - seeds: \"127.0.0.1\"\n"),
            "{config}"
        );
        assert!(config.starts_with("cluster_name: x\n"), "{config}");
    }

    #[test]
    fn a_template_without_an_address_setting_is_refused() {
        let template = TEMPLATE.replace("rpc_address: 127.0.0.1\n", "");
        let err = node_config(&template, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST).unwrap_err();
        assert!(err.to_string().contains("rpc_address"), "{err}");
    }

    #[test]
    fn the_first_node_keeps_the_single_node_layout() {
        let workspace = Workspace::new();
        let first = workspace.node(Ipv4Addr::LOCALHOST, 9042);
        assert_eq!(first.data, workspace.root.join("data"));
        let third = workspace.node(Ipv4Addr::new(127, 0, 0, 3), 9042);
        assert_eq!(third.data, workspace.root.join("nodes/127.0.0.3/data"));
    }
}
