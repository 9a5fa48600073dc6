//! `up`, `down`, `kill` and `status`: starting, stopping and reporting the components a
//! selection names.

use std::fs;
use std::io;
use std::process::{Child, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::build::{build_jaeger, build_services, prepare_docs};
use super::components::{Component, Kind, Selector};
use super::launch::Launcher;
use super::layout::Layout;
use super::process::{STOP_TIMEOUT, kill, running_pid, stop, supervised, wait_ready};
use super::{ADMIN_PASSWORD, cluster, logstore, replicas};
use crate::supervisor::{answers_http, http_client};

/// Starts the selected components that are not running and waits until each answers.
/// Service replicas listen only once ready (`LISTEN_WHEN_READY`), so the gateway may keep
/// them in its pools while they start: it retries a refused connection on another replica.
pub fn up(layout: &Layout, selector: &Selector, time_scale: u32) -> Result<()> {
    let selected = selector.running_set()?;
    let has = |kind: fn(&Kind) -> bool| selected.iter().any(|component| kind(&component.kind));
    let prometheus = has(|kind| matches!(kind, Kind::Prometheus));
    if prometheus {
        check_time_scale(layout, time_scale)?;
    }
    let selected = prepare(layout, selected, time_scale)?;
    let nginx_was_running = running_pid(layout, &named("nginx", 1))?;
    let upstreams_changed = replicas::write_nginx_conf(layout, selector.count)?;
    let launcher = Launcher::new(layout, time_scale, selector.count)?;

    let started_at = Instant::now();
    let client = http_client();
    let mut started: Vec<(&Component, Child)> = Vec::new();
    let mut pending: Vec<&Component> = Vec::new();
    for component in &selected {
        pending.push(component);
        if let Some(pid) = running_pid(layout, component)? {
            println!("{:<15} already running (pid {pid})", component.name);
            continue;
        }
        if answers_http(&client, &component.ready_url) {
            bail!(
                "{}: something else already answers {}; stop it first (`cargo xtask stack status`)",
                component.name,
                component.ready_url
            );
        }
        started.push((component, launcher.spawn(component)?));
    }

    println!("waiting until every component answers ...");
    wait_ready(layout, pending, &mut started)?;
    // Only now do the gateway and Prometheus learn of new replicas: they answer already.
    if upstreams_changed && let Some(pid) = nginx_was_running {
        replicas::reload_nginx(pid)?;
    }
    replicas::write_prometheus_targets(layout, selector.count)?;
    stop_surplus(layout, selector.count)?;
    if prometheus {
        replicas::wait_until_scraped(&client, selector.count);
    }
    println!(
        "answering after {:.1} s ({} replica(s) of each service):",
        started_at.elapsed().as_secs_f64(),
        selector.count
    );
    for component in &selected {
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
fn prepare(layout: &Layout, selected: Vec<Component>, time_scale: u32) -> Result<Vec<Component>> {
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
        .into_iter()
        .filter(|component| docs || !matches!(component.kind, Kind::Docs))
        .collect())
}

/// The component of that name in a one-replica stack (the gateway, Prometheus).
fn named(name: &str, replicas: u8) -> Component {
    super::components::catalogue(replicas)
        .into_iter()
        .find(|component| component.name == name)
        .expect("the stack has this component")
}

/// Stops the replicas a smaller `up --replicas` left over, once the gateway no longer
/// sends them requests.
fn stop_surplus(layout: &Layout, count: u8) -> Result<()> {
    let all = Selector::new(layout, Vec::new())?;
    for component in all.any_count() {
        if component.replica() <= count {
            continue;
        }
        if let Some(pid) = running_pid(layout, &component)? {
            stop(layout, &component, pid)?;
            println!(
                "{:<15} stopped (pid {pid}): beyond {count} replica(s)",
                component.name
            );
        }
    }
    Ok(())
}

/// Prometheus reads its rules once, at start: a running one keeps its time scale, so a
/// request for another must not pass as if it had been applied.
fn check_time_scale(layout: &Layout, wanted: u32) -> Result<()> {
    if running_pid(layout, &named("prometheus", 1))?.is_none() {
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

/// Stops the selected components, last started first, replicas beyond the count included.
/// A service replica stays in the gateway's pools: see [`stop_named`].
pub fn down(layout: &Layout, selector: &Selector) -> Result<()> {
    let selected = selector.any_count();
    let mut stuck = Vec::new();
    for component in selected.iter().rev() {
        let process = supervised(layout, component);
        let Some(pid) = process.running_pid()? else {
            // A component asked for by name gets an answer even without a pid file: a
            // service's replicas up to the count, and any replica named on its own.
            let asked = !selector.names_all()
                && (component.replica() <= selector.count || selector.names_exactly(component));
            if process.has_pid_file() || asked {
                println!("{:<15} was not running", component.name);
            }
            process.forget()?;
            continue;
        };
        if stop(layout, component, pid)? {
            stuck.push(component.name.clone());
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
    if selector.names_all() {
        println!("the stack is down");
    }
    Ok(())
}

/// Stops (SIGTERM, wait) every running component `name` selects; false if none ran.
///
/// A service replica stays in the gateway's pools: it drains (`shop_common::shutdown` in the
/// services), and once it stops accepting nginx's connections to it are refused, which
/// nginx retries on another replica whatever the method. Taking it out first would cost a
/// reload, and a reload closes clients' idle kept-alive connections under the requests
/// they may be sending on them.
pub fn stop_named(layout: &Layout, name: &str) -> Result<bool> {
    let selector = Selector::one(layout, name)?;
    let mut any = false;
    for component in selector.any_count() {
        if let Some(pid) = running_pid(layout, &component)? {
            stop(layout, &component, pid)?;
            any = true;
        }
    }
    Ok(any)
}

/// Those of `components` that are running, or with `running` false, those that are not.
fn running_or_not<'a>(
    layout: &Layout,
    components: &'a [Component],
    running: bool,
) -> Result<Vec<&'a Component>> {
    let mut chosen = Vec::new();
    for component in components {
        if running_pid(layout, component)?.is_some() == running {
            chosen.push(component);
        }
    }
    Ok(chosen)
}

/// SIGKILLs every running component `name` selects; false if none ran.
pub fn kill_named(layout: &Layout, name: &str) -> Result<bool> {
    if cluster::node_number(name).is_some() {
        bail!("{name} is a Cassandra node: `cargo xtask stack down {name}` stops it");
    }
    let mut any = false;
    for component in Selector::one(layout, name)?.any_count() {
        if let Some(pid) = running_pid(layout, &component)? {
            kill(layout, &component, pid)?;
            println!("{:<15} killed (pid {pid})", component.name);
            any = true;
        }
    }
    Ok(any)
}

/// Starts every component `name` selects that is not running, at the time scale
/// Prometheus last ran with, and waits until each answers. The gateway needs no reload: a
/// replica never leaves its pools, and listens only once ready (see [`up`]).
pub fn start_named(layout: &Layout, name: &str) -> Result<()> {
    let selector = Selector::one(layout, name)?;
    let launcher = Launcher::new(layout, recorded_time_scale(layout)?, selector.count)?;
    let selected = selector.running_set()?;
    let starting = running_or_not(layout, &selected, false)?;
    let mut started = Vec::new();
    for component in starting {
        started.push((component, launcher.spawn(component)?));
    }
    let pending = started.iter().map(|(component, _)| *component).collect();
    wait_ready(layout, pending, &mut started)
}

/// Not running is an answer rather than an error, but scripts need it in the exit code.
pub fn status(layout: &Layout) -> Result<ExitCode> {
    let client = http_client();
    let selector = Selector::new(layout, Vec::new())?;
    println!("{:<15} {}", "replicas", selector.count);
    let mut healthy = true;
    for component in selector.running_set()? {
        let pid = running_pid(layout, &component)?;
        let answering = answers_http(&client, &component.ready_url);
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
