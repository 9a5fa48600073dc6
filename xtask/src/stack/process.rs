//! The stack's processes: waiting until they answer, telling whether a pid is still the
//! component's, and stopping or killing them.

use std::fs;
use std::io;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::components::Component;
use super::layout::Layout;

/// Long enough for the services' first migrations on a three-node cluster of a busy 2-core
/// machine (73 s measured), which wait for every node to agree on each schema change.
const START_TIMEOUT: Duration = Duration::from_secs(180);
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(250);

/// Waits until every component in `pending` answers; fails when one of those `started`
/// exits first, or after START_TIMEOUT.
pub fn wait_ready(
    layout: &Layout,
    mut pending: Vec<&Component>,
    started: &mut [(&Component, Child)],
) -> Result<()> {
    let started_at = Instant::now();
    let client = http_client();
    loop {
        let mut still = Vec::new();
        for component in pending {
            if answers(&client, &component.ready_url) {
                continue;
            }
            if let Some((_, child)) = started
                .iter_mut()
                .find(|(started, _)| started.name == component.name)
                && let Some(exit) = child.try_wait()?
            {
                remove_file_if_exists(&layout.pid_file(&component.name))?;
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

/// SIGTERM, then SIGKILL after STOP_TIMEOUT; true if it had to be killed.
pub fn stop(layout: &Layout, component: &Component, pid: u32) -> Result<bool> {
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
    remove_file_if_exists(&layout.pid_file(&component.name))?;
    Ok(killed)
}

/// SIGKILL to the component's process group, as a crash would: no drain, no cleanup.
pub fn kill(layout: &Layout, component: &Component, pid: u32) -> Result<()> {
    signal(pid, "KILL")?;
    let asked = Instant::now();
    while is_component(pid, component)? {
        if asked.elapsed() > STOP_TIMEOUT {
            bail!(
                "{} (pid {pid}) survived SIGKILL for {} s",
                component.name,
                STOP_TIMEOUT.as_secs()
            );
        }
        thread::sleep(POLL);
    }
    remove_file_if_exists(&layout.pid_file(&component.name))?;
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

pub fn http_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("a plain HTTP client builds")
}

pub fn answers(client: &reqwest::blocking::Client, url: &str) -> bool {
    client
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .is_ok_and(|response| response.status().is_success())
}

/// The pid from the component's pid file, if that process is still the component.
pub fn running_pid(layout: &Layout, component: &Component) -> Result<Option<u32>> {
    let pid_file = layout.pid_file(&component.name);
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
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub fn remove_file_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        result => result,
    }
}
