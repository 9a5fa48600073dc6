//! A local Apache Cassandra 5.0 for development and CI: one node, or a cluster of a few
//! on consecutive loopback addresses (127.0.0.1, 127.0.0.2, ...), each with its own
//! directories, a 1 GiB heap and the Prometheus JMX exporter on a port of its own.
//!
//! Cassandra and the exporter come from Maven Central (see `fetch`). Everything lives under
//! `target/cassandra/`; data survives `stop`/`start`.

mod fetch;
mod jvm;
mod node;

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use fetch::Artifacts;
use node::{FIRST_METRICS_PORT, Node, Role, Workspace};

use crate::supervisor::{self, Readiness, Starting};

/// A node restarted under load on a busy 2-core machine (the cassandra-node drill) took
/// 167 s to answer, once more than 180 s. A node that exits is reported at once; only one
/// that hangs is waited for this long.
const START_TIMEOUT: Duration = Duration::from_secs(600);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(500);

pub const DEFAULT_PORT: u16 = 9042;
const DEFAULT_STORAGE_PORT: u16 = 7000;
/// Each node takes a 1 GiB heap (about 1.5 GiB of memory in all) and a share of the cores:
/// more than this on one machine is a mistake rather than a test.
pub const MAX_NODES: u8 = 5;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    /// CQL native protocol port of every node.
    #[arg(long, global = true, env = "CASSANDRA_PORT", default_value_t = DEFAULT_PORT)]
    port: u16,
}

#[derive(Subcommand)]
enum Action {
    /// Start the nodes in the background (downloading Cassandra on first use), one after
    /// the other, and wait until each answers CQL.
    Start {
        /// How many nodes: node i listens on the i-th loopback address from the first.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_nodes)]
        nodes: u8,
        /// The first node's address; a cluster beside the usual node on 127.0.0.1 can
        /// start from e.g. 127.0.0.11.
        #[arg(long, env = "CASSANDRA_FIRST_ADDRESS", default_value_t = Ipv4Addr::LOCALHOST)]
        first_address: Ipv4Addr,
        /// Delete the data of every node that is not running before starting.
        #[arg(long)]
        clean: bool,
        /// Inter-node port on each node's address.
        #[arg(long, env = "CASSANDRA_STORAGE_PORT", default_value_t = DEFAULT_STORAGE_PORT)]
        storage_port: u16,
    },
    /// Stop every running node with SIGTERM and wait for them to exit.
    Stop,
    /// Report each node started here as running and answering CQL or not; exits non-zero
    /// unless every one is.
    Status,
}

/// clap prints this next to the flag's name when a count is refused.
pub fn parse_nodes(value: &str) -> Result<u8, String> {
    let nodes: u64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number of nodes"))?;
    if nodes == 0 || nodes > u64::from(MAX_NODES) {
        return Err(format!(
            "a local cluster has 1 to {MAX_NODES} nodes (each takes a 1 GiB heap), not {nodes}"
        ));
    }
    Ok(nodes as u8)
}

pub fn run(args: Args) -> Result<ExitCode> {
    let workspace = Workspace::new();
    match args.action {
        Action::Start {
            nodes,
            first_address,
            clean,
            storage_port,
        } => {
            let cluster = Cluster {
                first_address,
                nodes,
                port: args.port,
                storage_port,
            };
            start(&workspace, &cluster, clean)?;
        }
        Action::Stop => stop(&workspace, args.port)?,
        Action::Status => return status(&workspace, args.port),
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a cluster's nodes listen.
pub struct Cluster {
    pub first_address: Ipv4Addr,
    pub nodes: u8,
    pub port: u16,
    pub storage_port: u16,
}

impl Cluster {
    /// The native stack's cluster: `nodes` nodes from 127.0.0.1 on the default ports.
    pub fn local(nodes: u8) -> Self {
        Self {
            first_address: Ipv4Addr::LOCALHOST,
            nodes,
            port: DEFAULT_PORT,
            storage_port: DEFAULT_STORAGE_PORT,
        }
    }

    pub fn addresses(&self) -> Result<Vec<Ipv4Addr>> {
        let first = u32::from(self.first_address);
        (0..u32::from(self.nodes))
            .map(|index| {
                let address = first
                    .checked_add(index)
                    .map(Ipv4Addr::from)
                    .filter(Ipv4Addr::is_loopback);
                address.ok_or_else(|| {
                    anyhow::anyhow!(
                        "{} nodes from {} do not all have loopback addresses (127.0.0.0/8); \
                         local nodes listen on loopback only",
                        self.nodes,
                        self.first_address
                    )
                })
            })
            .collect()
    }

    /// host:port of every node's CQL server, for the services' CQL_CONTACT_POINTS.
    pub fn contact_points(&self) -> Result<Vec<String>> {
        Ok(self
            .addresses()?
            .iter()
            .map(|address| format!("{address}:{}", self.port))
            .collect())
    }

    /// host:port of every node's metrics, for Prometheus.
    pub fn metrics_targets(&self) -> Result<Vec<String>> {
        Ok(self
            .addresses()?
            .iter()
            .zip(FIRST_METRICS_PORT..)
            .map(|(address, port)| format!("{address}:{port}"))
            .collect())
    }
}

/// Makes the native stack's cluster `nodes` nodes large from now on.
pub fn remember_stack_nodes(nodes: u8) -> Result<()> {
    let workspace = Workspace::new();
    fs::create_dir_all(&workspace.root)?;
    fs::write(workspace.stack_nodes_file(), nodes.to_string())?;
    Ok(())
}

/// Starts the nodes of the native stack's cluster that are not running (the services keep
/// their data there): at `stack up`, after the end-to-end checks took the database away,
/// or a node that was stopped.
pub fn ensure_running() -> Result<()> {
    start(&Workspace::new(), &Cluster::local(stack_nodes()?), false)
}

/// How many nodes the native stack last started with; 1 when it never said.
pub fn stack_nodes() -> Result<u8> {
    let path = Workspace::new().stack_nodes_file();
    match fs::read_to_string(&path) {
        Ok(text) => {
            parse_nodes(text.trim()).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(1),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// Stops every local node: the end-to-end checks take the database away under the services.
pub fn stop_local() -> Result<()> {
    stop(&Workspace::new(), DEFAULT_PORT)
}

fn start(workspace: &Workspace, cluster: &Cluster, clean: bool) -> Result<()> {
    let nodes: Vec<Node> = cluster
        .addresses()?
        .into_iter()
        .map(|address| workspace.node(address, cluster.port))
        .collect();
    if clean {
        clean_data(workspace, &nodes)?;
    }
    let artifacts = Artifacts::fetch(workspace)?;
    let started = Instant::now();
    // One after the other: a node joining a cluster streams its share of the data, and
    // Cassandra lets only one node join at a time.
    for (node, metrics_port) in nodes.iter().zip(FIRST_METRICS_PORT..) {
        let role = Role {
            seed: cluster.first_address,
            storage_port: cluster.storage_port,
            metrics_port,
        };
        start_node(workspace, &artifacts, node, &role)?;
    }
    if nodes.len() > 1 {
        println!(
            "{} nodes answer CQL after {:.1} s; `cargo xtask cassandra status` lists them",
            nodes.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Deletes the data of every node that is not running; refuses while one to be started runs.
fn clean_data(workspace: &Workspace, cluster: &[Node]) -> Result<()> {
    for node in cluster {
        if let Some(pid) = node.process().running_pid()? {
            bail!(
                "Cassandra on {} is running (pid {pid}); stop it before using --clean",
                node.address
            );
        }
    }
    for node in workspace.known_nodes(DEFAULT_PORT)? {
        if node.process().running_pid()?.is_none() {
            remove_dir_if_exists(&node.data)?;
        }
    }
    Ok(())
}

fn start_node(
    workspace: &Workspace,
    artifacts: &Artifacts,
    node: &Node,
    role: &Role,
) -> Result<()> {
    let cql = node.cql_address();
    if let Some(pid) = node.process().running_pid()? {
        println!("Cassandra is already running (pid {pid}) on {cql}");
        return Ok(());
    }
    if node.answers_cql() {
        bail!("something else already answers CQL on {cql}; stop it or set CASSANDRA_PORT");
    }
    let started = Instant::now();
    let mut child = node.spawn(workspace, artifacts, role)?;
    println!(
        "Started Cassandra (pid {}), waiting for CQL on {cql} (metrics on {}:{}) ...",
        child.id(),
        node.address,
        role.metrics_port
    );
    wait_for_cql(node, &mut child, started)?;
    println!(
        "Cassandra answers CQL on {cql} after {:.1} s (log: {})",
        started.elapsed().as_secs_f64(),
        node.system_log().display()
    );
    Ok(())
}

fn wait_for_cql(node: &Node, child: &mut Child, started: Instant) -> Result<()> {
    let cql = node.cql_address();
    let pid = child.id();
    let mut starting = [Starting {
        probe: Box::new(|| node.answers_cql()),
        child: Some(child),
    }];
    let timeout = START_TIMEOUT.saturating_sub(started.elapsed());
    match supervisor::wait_ready(&mut starting, timeout, POLL)? {
        Readiness::Ready => Ok(()),
        Readiness::Exited { status, .. } => {
            node.process().forget()?;
            bail!(
                "Cassandra on {cql} exited during startup ({status}):\n{}",
                node.log_tail()
            );
        }
        Readiness::TimedOut { .. } => bail!(
            "Cassandra (pid {pid}) did not answer CQL on {cql} within {} s \
             (`cargo xtask cassandra stop` stops it):\n{}",
            START_TIMEOUT.as_secs(),
            node.log_tail()
        ),
    }
}

/// The nodes with a pid file: those started here and not stopped since.
fn started_nodes(workspace: &Workspace, port: u16) -> Result<Vec<Node>> {
    Ok(workspace
        .known_nodes(port)?
        .into_iter()
        .filter(|node| node.process().has_pid_file())
        .collect())
}

fn stop(workspace: &Workspace, port: u16) -> Result<()> {
    stop_nodes(started_nodes(workspace, port)?)
}

/// Stops one node of the native stack's cluster (node 1 is 127.0.0.1): for alert
/// reproduction and failure drills.
pub fn stop_stack_node(number: u8) -> Result<()> {
    stop_nodes(vec![stack_node(number)?])
}

/// Node `number` of the native stack's cluster: its address, and its pid when it runs
/// (failure drills kill it, or cut it off from the others).
pub fn stack_node_process(number: u8) -> Result<(Ipv4Addr, Option<u32>)> {
    let node = stack_node(number)?;
    Ok((node.address, node.process().running_pid()?))
}

fn stack_node(number: u8) -> Result<Node> {
    let nodes = stack_nodes()?;
    if number == 0 || number > nodes {
        bail!("the stack's cluster has nodes 1 to {nodes}, not {number}");
    }
    let address = Cluster::local(nodes).addresses()?[usize::from(number - 1)];
    Ok(Workspace::new().node(address, DEFAULT_PORT))
}

fn stop_nodes(nodes: Vec<Node>) -> Result<()> {
    let mut stopping = Vec::new();
    for node in nodes {
        let process = node.process();
        match process.running_pid()? {
            Some(pid) => {
                // All at once: each takes seconds to flush and exit.
                process.terminate(pid)?;
                stopping.push((node, pid));
            }
            None => process.forget()?,
        }
    }
    if stopping.is_empty() {
        println!("Cassandra is not running");
        return Ok(());
    }
    let asked = Instant::now();
    for (node, pid) in stopping {
        let process = node.process();
        if !process.exited_within(pid, asked, STOP_TIMEOUT)? {
            bail!(
                "Cassandra on {} (pid {pid}) did not exit within {} s of SIGTERM; see {} \
                 (`kill -9 {pid}` forces it)",
                node.address,
                STOP_TIMEOUT.as_secs(),
                node.system_log().display()
            );
        }
        process.forget()?;
        println!("Cassandra on {} stopped", node.address);
    }
    Ok(())
}

/// Not running is an answer rather than an error, but scripts need it in the exit code.
/// A node that was killed keeps its pid file, so it is reported as down.
fn status(workspace: &Workspace, port: u16) -> Result<ExitCode> {
    let nodes = started_nodes(workspace, port)?;
    if nodes.is_empty() {
        println!("Cassandra is not running");
        return Ok(ExitCode::FAILURE);
    }
    let mut healthy = true;
    for node in nodes {
        let cql = node.cql_address();
        let state = match node.process().running_pid()? {
            None => format!(
                "Cassandra on {cql} is NOT running (killed, or exited); see {}",
                node.system_log().display()
            ),
            Some(pid) if node.answers_cql() => {
                println!("Cassandra is running (pid {pid}) and answers CQL on {cql}");
                continue;
            }
            Some(pid) => format!(
                "Cassandra is running (pid {pid}) but does not answer CQL on {cql} (still \
                 starting, or started with another CASSANDRA_PORT?); see {}",
                node.system_log().display()
            ),
        };
        healthy = false;
        println!("{state}");
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs a command quietly, showing its output only if it fails (Maven's `--quiet`
/// still prints stray terminal escape codes).
fn check(command: &mut Command) -> Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .output()
        .with_context(|| format!("could not run {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn remove_dir_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        result => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_has_one_to_five_nodes() {
        assert_eq!(parse_nodes("3"), Ok(3));
        for refused in ["0", "6", "1000", "many", ""] {
            let err = parse_nodes(refused).unwrap_err();
            assert!(!err.is_empty(), "{refused:?} was refused without a reason");
        }
        assert!(parse_nodes("0").unwrap_err().contains("1 to 5"));
    }

    #[test]
    fn nodes_take_consecutive_loopback_addresses_and_ports_of_their_own() {
        let cluster = Cluster {
            first_address: Ipv4Addr::new(127, 0, 0, 11),
            ..Cluster::local(3)
        };
        assert_eq!(
            cluster.contact_points().unwrap(),
            ["127.0.0.11:9042", "127.0.0.12:9042", "127.0.0.13:9042"]
        );
        assert_eq!(
            cluster.metrics_targets().unwrap(),
            ["127.0.0.11:7070", "127.0.0.12:7071", "127.0.0.13:7072"]
        );
        let beyond_loopback = Cluster {
            first_address: Ipv4Addr::new(127, 255, 255, 254),
            ..Cluster::local(3)
        };
        let err = beyond_loopback.addresses().unwrap_err().to_string();
        assert!(err.contains("loopback"), "{err}");
    }
}
