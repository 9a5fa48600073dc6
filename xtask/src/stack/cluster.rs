//! The native stack's Cassandra cluster: how many nodes it runs (`up --cassandra-nodes M`,
//! remembered until changed), the services' contact points and replication, Prometheus'
//! targets for every node, and the `cassandra-<n>` components that stop and start node n.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use super::replicas::write_extra_targets;
use crate::cassandra::{self, Cluster};

const NODE_PREFIX: &str = "cassandra-";
/// The datacenter of every local node: SimpleSnitch (observability/cassandra/cassandra.yaml)
/// puts them all in this one.
const DATACENTER: &str = "datacenter1";
/// Replicas of each keyspace on a cluster large enough: a quorum (2) survives one node lost.
const REPLICAS: u8 = 3;

/// Makes the stack run `nodes` nodes from now on: remembered for the services and for
/// `cassandra::ensure_running`, and Prometheus scrapes each of them.
pub fn set_nodes(root: &Path, nodes: u8) -> Result<()> {
    cassandra::remember_stack_nodes(nodes)?;
    write_prometheus_targets(root, nodes)
}

/// The native Prometheus configuration scrapes targets/cassandra*.yml: the committed
/// cassandra.yml names the first node, and this file the others when there are any.
fn write_prometheus_targets(root: &Path, nodes: u8) -> Result<()> {
    let targets = Cluster::local(nodes).metrics_targets()?;
    write_extra_targets(
        &extra_targets_file(root),
        &format!(
            "`cargo xtask stack up --cassandra-nodes {nodes}`: the nodes after the first \
             (targets/cassandra.yml)"
        ),
        targets.get(1..).unwrap_or_default(),
    )
}

fn extra_targets_file(root: &Path) -> PathBuf {
    root.join("observability/prometheus/targets/cassandra-cluster.yml")
}

/// Points a service at every node, with as many replicas as the cluster can hold.
pub fn configure_service(command: &mut Command) -> Result<()> {
    let nodes = cassandra::stack_nodes()?;
    command
        .env(
            "CQL_CONTACT_POINTS",
            Cluster::local(nodes).contact_points()?.join(","),
        )
        .env("CQL_REPLICATION", replication(nodes));
    Ok(())
}

fn replication(nodes: u8) -> String {
    format!(
        "{{'class': 'NetworkTopologyStrategy', '{DATACENTER}': {}}}",
        nodes.min(REPLICAS)
    )
}

/// The node a component name such as `cassandra-2` names.
pub fn node_number(name: &str) -> Option<u8> {
    name.strip_prefix(NODE_PREFIX)?.parse().ok()
}

/// Splits component names into node numbers and the other components.
pub fn partition(names: Vec<String>) -> (Vec<u8>, Vec<String>) {
    let (nodes, components): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|name| node_number(name).is_some());
    (
        nodes.iter().filter_map(|name| node_number(name)).collect(),
        components,
    )
}

pub fn stop_nodes(nodes: &[u8]) -> Result<()> {
    for &node in nodes {
        cassandra::stop_stack_node(node)?;
    }
    Ok(())
}

/// Starts the stack's nodes that are not running, the named ones among them.
pub fn start_nodes(nodes: &[u8]) -> Result<()> {
    if nodes.is_empty() {
        return Ok(());
    }
    cassandra::ensure_running()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_nodes_hold_three_replicas_and_five_still_three() {
        assert_eq!(
            replication(1),
            "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}"
        );
        assert!(replication(3).ends_with("'datacenter1': 3}"));
        assert!(replication(5).ends_with("'datacenter1': 3}"));
    }

    #[test]
    fn node_components_are_told_from_the_others() {
        let names = ["backend", "cassandra-2", "cassandra-x", "prometheus"];
        let (nodes, components) = partition(names.map(String::from).to_vec());
        assert_eq!(nodes, [2]);
        assert_eq!(components, ["backend", "cassandra-x", "prometheus"]);
    }
}
