//! Drill (d): one Cassandra node cut off from the others, then healed, with iptables.
//!
//! Every node listens for the others on its own loopback address, port 7000, but its own
//! outgoing connections leave from 127.0.0.1 like everyone's (the kernel picks the source
//! address), so the address alone cannot tell the node's traffic from the others'. The cut
//! has three parts: packets to the node's port 7000 are dropped; the node's process is
//! moved into a cgroup (v2) of its own, and packets to port 7000 from sockets of that
//! cgroup are dropped (`-m cgroup --path`); and the connections it had already, in both
//! directions, are destroyed (`ss -K`), so it must reconnect, and cannot. Its CQL port
//! stays open: clients still reach it, as they would a node behind a broken switch.
//!
//! Every rule carries the comment `shop-drill-partition`, so healing (and the start of
//! the next drill) removes exactly the rules the drill added.

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::Utc;

use super::Fault;
use crate::cassandra;

const TAG: &str = "shop-drill-partition";
const STORAGE_PORT: &str = "7000";
/// How long the node stays cut off.
const CUT_FOR: Duration = Duration::from_secs(20);

/// Fails, with the exact errors, when this machine cannot cut a node off: no iptables, no
/// cgroup v2, or a kernel without the cgroup match. Removes rules a drill left behind.
pub fn check_available() -> Result<()> {
    iptables(&["-S", "OUTPUT"]).context(
        "the partition drill needs iptables and the right to change the firewall \
         (root): `apt-get install -y iptables`",
    )?;
    let group = cgroup()?;
    fs::create_dir_all(&group)
        .with_context(|| format!("creating the cgroup {}", group.display()))?;
    iptables(&drop_rule(&OWN_TRAFFIC))
        .context("the kernel refused a rule matching a cgroup (-m cgroup --path)")?;
    heal_rules()?;
    Ok(())
}

pub fn cut_and_heal(node: u8, fault: &mut Fault) -> Result<()> {
    let (address, pid) = cassandra::stack_node_process(node)?;
    let pid = pid.with_context(|| format!("Cassandra node {node} ({address}) is not running"))?;
    let cut = cut(address, pid);
    let cut_at = Utc::now();
    if cut.is_ok() {
        fault.note(format!(
            "Cassandra node {node} ({address}) cut off from the others (port {STORAGE_PORT})"
        ));
        thread::sleep(CUT_FOR);
    }
    let healed = heal(pid);
    if cut.is_ok() && healed.is_ok() {
        fault.window = Some((cut_at, Utc::now()));
        fault.note(format!("Cassandra node {node} healed: its rules removed"));
    }
    cut.and(healed)
}

fn cut(address: Ipv4Addr, pid: u32) -> Result<()> {
    let group = cgroup()?;
    fs::create_dir_all(&group)?;
    // Its threads go with it; sockets it opens from now on belong to the cgroup.
    fs::write(group.join("cgroup.procs"), pid.to_string())
        .with_context(|| format!("moving Cassandra (pid {pid}) into {}", group.display()))?;
    let to_node = address.to_string();
    iptables(&drop_rule(&["-d", &to_node]))?;
    iptables(&drop_rule(&OWN_TRAFFIC))?;
    // Established connections: the others' to the node, the node's own (found by its pid)
    // to the others.
    ss_kill(&["dst", &format!("{to_node}:{STORAGE_PORT}")])?;
    ss_kill(&["src", &format!("{to_node}:{STORAGE_PORT}")])?;
    for (local, peer) in connections_of(pid)? {
        ss_kill(&["src", &local, "dst", &peer])?;
    }
    Ok(())
}

fn heal(pid: u32) -> Result<()> {
    heal_rules()?;
    let group = cgroup()?;
    let root = group.parent().context("the cgroup has a parent")?;
    fs::write(root.join("cgroup.procs"), pid.to_string())
        .with_context(|| format!("moving Cassandra (pid {pid}) back to {}", root.display()))?;
    fs::remove_dir(&group).with_context(|| format!("removing {}", group.display()))
}

/// Deletes every OUTPUT rule tagged by the drill.
fn heal_rules() -> Result<()> {
    for rule in iptables(&["-S", "OUTPUT"])?
        .lines()
        .filter(|l| l.contains(TAG))
    {
        let Some(spec) = rule.strip_prefix("-A ") else {
            continue;
        };
        let mut args = vec!["-D"];
        args.extend(spec.split_whitespace().map(|word| word.trim_matches('"')));
        iptables(&args)?;
    }
    Ok(())
}

/// Packets from sockets of the drill's cgroup.
const OWN_TRAFFIC: [&str; 4] = ["-m", "cgroup", "--path", TAG];

/// A rule, tagged as the drill's, dropping TCP packets to port 7000 that `matches` selects.
fn drop_rule<'a>(matches: &[&'a str]) -> Vec<&'a str> {
    let mut rule = vec!["-A", "OUTPUT", "-p", "tcp"];
    rule.extend_from_slice(matches);
    rule.extend([
        "--dport",
        STORAGE_PORT,
        "-m",
        "comment",
        "--comment",
        TAG,
        "-j",
        "DROP",
    ]);
    rule
}

/// The drill's cgroup, under the cgroup v2 hierarchy (`/sys/fs/cgroup` on a unified
/// system, `/sys/fs/cgroup/unified` on a hybrid one).
fn cgroup() -> Result<PathBuf> {
    let mounts = fs::read_to_string("/proc/mounts").context("reading /proc/mounts")?;
    let root = mounts
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(2) == Some(&"cgroup2"))
        .and_then(|fields| fields.get(1).map(PathBuf::from));
    match root {
        Some(root) => Ok(root.join(TAG)),
        None => bail!(
            "no cgroup v2 hierarchy is mounted (/proc/mounts): the drill needs one to tell \
             the node's own connections from the others'"
        ),
    }
}

/// Local and peer address of each established TCP connection of process `pid` to a port 7000.
fn connections_of(pid: u32) -> Result<Vec<(String, String)>> {
    let output = run(
        "ss",
        &["-tnpH", "state", "established", "dport", "=", ":7000"],
    )?;
    let owner = format!("pid={pid},");
    Ok(output
        .lines()
        .filter(|line| line.contains(&owner))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Recv-Q, Send-Q, local, peer, process (the state is left out with a state filter).
            Some((fields.get(2)?.to_string(), fields.get(3)?.to_string()))
        })
        .collect())
}

fn ss_kill(filter: &[&str]) -> Result<()> {
    let mut args = vec!["-K", "-tn"];
    args.extend_from_slice(filter);
    run("ss", &args).map(drop)
}

fn iptables(args: &[&str]) -> Result<String> {
    // -w: wait for the xtables lock rather than fail when another change holds it.
    let mut all = vec!["-w"];
    all.extend_from_slice(args);
    run("iptables", &all)
}

/// Runs a program; fails with its exact error output.
fn run(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("could not run {program}"))?;
    if !output.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
