//! Drill (a): one Cassandra node killed (SIGKILL) under load, then started again. With
//! three replicas of every row, a quorum of two answers every read and write while it is
//! away, so no request should fail.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustix::process::Signal;

use super::Fault;
use crate::{cassandra, supervisor};

/// How long the node stays dead before it is started again.
const DOWN_FOR: Duration = Duration::from_secs(15);
const DEATH_TIMEOUT: Duration = Duration::from_secs(10);

/// The node the Cassandra drills break: the last one, never node 1 (the seed). Fails when
/// the cluster is too small for a quorum to survive it, or the node does not run.
pub fn victim() -> Result<u8> {
    let nodes = cassandra::stack_nodes()?;
    if nodes < 3 {
        bail!(
            "this drill needs a Cassandra cluster of three nodes at least, so that a quorum \
             of two holds with one away; the stack runs {nodes} (`cargo xtask stack up \
             --cassandra-nodes 3`)"
        );
    }
    let (address, pid) = cassandra::stack_node_process(nodes)?;
    if pid.is_none() {
        bail!(
            "Cassandra node {nodes} ({address}) is not running, so there is nothing to \
             break; `cargo xtask stack up cassandra-{nodes}` starts it"
        );
    }
    Ok(nodes)
}

pub fn kill_and_restart(node: u8, fault: &mut Fault) -> Result<()> {
    let (address, pid) = cassandra::stack_node_process(node)?;
    let pid =
        pid.with_context(|| format!("Cassandra node {node} ({address}) stopped by itself"))?;
    supervisor::signal_group(pid, Signal::KILL)
        .with_context(|| format!("SIGKILL to Cassandra node {node} (pid {pid}) failed"))?;
    fault.note(format!(
        "SIGKILL Cassandra node {node} ({address}, pid {pid})"
    ));
    let killed = Instant::now();
    while cassandra::stack_node_process(node)?.1.is_some() {
        if killed.elapsed() > DEATH_TIMEOUT {
            bail!("Cassandra node {node} (pid {pid}) still runs {DEATH_TIMEOUT:?} after SIGKILL");
        }
        thread::sleep(Duration::from_millis(200));
    }
    thread::sleep(DOWN_FOR);
    fault.note(format!("starting Cassandra node {node} again"));
    cassandra::ensure_running()?;
    fault.note(format!("Cassandra node {node} answers CQL again"));
    Ok(())
}
