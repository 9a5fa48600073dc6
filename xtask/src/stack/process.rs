//! The stack's components as supervised processes (see [`crate::supervisor`]): each found
//! through its pid file in target/stack/run, waited for until its ready URL answers, and
//! stopped or killed with the stack's timeouts and messages.

use std::process::Child;
use std::time::Duration;

use anyhow::{Result, bail};

use super::components::Component;
use super::layout::Layout;
use crate::supervisor::{self, Detached, Readiness, Starting, answers_http, http_client};

/// Long enough for the services' first migrations on a three-node cluster of a busy 2-core
/// machine (73 s measured), which wait for every node to agree on each schema change.
const START_TIMEOUT: Duration = Duration::from_secs(180);
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(250);

/// The component's process: its pid file, and what its command line holds.
pub fn supervised<'a>(layout: &Layout, component: &'a Component) -> Detached<'a> {
    Detached {
        name: &component.name,
        pid_file: layout.pid_file(&component.name),
        marker: component.marker(),
    }
}

/// Waits until every component in `pending` answers; fails when one of those `started`
/// exits first, or after START_TIMEOUT.
pub fn wait_ready(
    layout: &Layout,
    pending: Vec<&Component>,
    started: &mut [(&Component, Child)],
) -> Result<()> {
    let client = http_client();
    let mut children: Vec<Option<&mut Child>> = pending.iter().map(|_| None).collect();
    for (component, child) in started.iter_mut() {
        if let Some(index) = pending.iter().position(|p| p.name == component.name) {
            children[index] = Some(child);
        }
    }
    let mut starting: Vec<Starting> = pending
        .iter()
        .zip(children)
        .map(|(component, child)| Starting {
            probe: Box::new(|| answers_http(&client, &component.ready_url)),
            child,
        })
        .collect();
    match supervisor::wait_ready(&mut starting, START_TIMEOUT, POLL)? {
        Readiness::Ready => Ok(()),
        Readiness::Exited { index, status } => {
            let component = pending[index];
            supervised(layout, component).forget()?;
            let log = component.log_file(layout);
            bail!(
                "{} exited during startup ({status}):\n{}\nsee {} (other components keep \
                 running: `cargo xtask stack down` stops them)",
                component.name,
                supervisor::tail(&log, 8),
                log.display()
            );
        }
        Readiness::TimedOut { waiting } => {
            let names: Vec<String> = waiting
                .into_iter()
                .map(|index| {
                    let component = pending[index];
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
    }
}

/// SIGTERM, then SIGKILL after STOP_TIMEOUT; true if it had to be killed.
pub fn stop(layout: &Layout, component: &Component, pid: u32) -> Result<bool> {
    supervised(layout, component).stop(pid, STOP_TIMEOUT)
}

/// SIGKILL to the component's process group, as a crash would: no drain, no cleanup.
pub fn kill(layout: &Layout, component: &Component, pid: u32) -> Result<()> {
    supervised(layout, component).kill(pid, STOP_TIMEOUT)
}

/// The pid from the component's pid file, if that process is still the component.
pub fn running_pid(layout: &Layout, component: &Component) -> Result<Option<u32>> {
    supervised(layout, component).running_pid()
}
