//! The processes the bench starts: each a child of this one, stopped by its own pid when the
//! bench ends or fails (and by Ctrl-C with it: they stay in the terminal's process group).

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::supervisor::{self, Readiness, Starting};

const READY_TIMEOUT: Duration = Duration::from_secs(90);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);

/// A running child, with its log and the URL that answers 2xx once it is ready.
pub struct Proc {
    pub name: String,
    child: Child,
    log: PathBuf,
    ready_url: String,
}

impl Proc {
    /// Starts `command` with its output in `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path, ready_url: String) -> Result<Self> {
        let child = supervisor::start(&mut command, log)
            .with_context(|| format!("could not start {name}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
            ready_url,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    /// SIGTERM (the services flush their spans on it), SIGKILL if it does not exit in time.
    fn drop(&mut self) {
        supervisor::stop_child(&mut self.child, STOP_TIMEOUT);
    }
}

/// A load generator's process, killed if the bench gives up on it before its end (an error
/// while it runs): it must not go on loading what the bench measures next.
pub struct Generating(Option<Child>);

impl Generating {
    pub fn spawn(command: &mut Command) -> std::io::Result<Self> {
        command.spawn().map(|child| Self(Some(child)))
    }

    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        match &mut self.0 {
            Some(child) => child.try_wait(),
            None => Err(std::io::Error::other(
                "the generator was already waited for",
            )),
        }
    }

    /// Waits for the end and collects the output the command pipes.
    pub fn wait_with_output(mut self) -> std::io::Result<Output> {
        self.0
            .take()
            .ok_or_else(|| std::io::Error::other("the generator was already waited for"))?
            .wait_with_output()
    }
}

impl Drop for Generating {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The processes whose CPU time each run accounts for, by name; a process's children
/// (nginx's workers) count with it.
pub struct Watched(Vec<(String, u32)>);

impl Watched {
    pub fn new<'a>(procs: impl IntoIterator<Item = &'a Proc>) -> Self {
        Self(
            procs
                .into_iter()
                .map(|proc| (proc.name.clone(), proc.pid()))
                .collect(),
        )
    }

    pub fn cpu(&self) -> Result<BTreeMap<String, Duration>> {
        let mut times = BTreeMap::new();
        for (name, pid) in &self.0 {
            let mut time = cpu_time(*pid)?;
            for child in children_of(*pid) {
                // A worker that exits between the scan and the read took its time with it.
                time += cpu_time(child).unwrap_or_default();
            }
            times.insert(name.clone(), time);
        }
        Ok(times)
    }
}

/// Waits until every process answers its ready URL; fails with the log of one that exits.
pub fn wait_ready(http: &reqwest::blocking::Client, procs: &mut [Proc]) -> Result<()> {
    let mut starting: Vec<Starting> = procs
        .iter_mut()
        .map(|proc| {
            let url = &proc.ready_url;
            Starting {
                probe: Box::new(move || supervisor::answers_http(http, url)),
                child: Some(&mut proc.child),
            }
        })
        .collect();
    let outcome = supervisor::wait_ready(&mut starting, READY_TIMEOUT, POLL)?;
    drop(starting);
    match outcome {
        Readiness::Ready => Ok(()),
        Readiness::Exited { index, status } => {
            let proc = &procs[index];
            bail!(
                "{} exited during start-up ({status}):\n{}\n(log: {})",
                proc.name,
                supervisor::tail(&proc.log, 10),
                proc.log.display()
            );
        }
        Readiness::TimedOut { waiting } => {
            let proc = &procs[waiting[0]];
            bail!(
                "{} did not answer {} within {} s; see {}",
                proc.name,
                proc.ready_url,
                READY_TIMEOUT.as_secs(),
                proc.log.display()
            );
        }
    }
}

/// Fails naming the first port something else listens on (another bench, most likely).
pub fn ensure_free(ports: &[u16]) -> Result<()> {
    for &port in ports {
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            bail!(
                "port {port} on 127.0.0.1 is taken; the bench needs 18300-18399 to itself \
                 (is another `cargo xtask bench` running?)"
            );
        }
    }
    Ok(())
}

/// Resident and peak resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

pub fn memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {name} in {path}"))
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// CPU time (user + system) of a running process, from /proc/<pid>/stat.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // utime and stime are fields 14 and 15: the 11th and 12th after the name.
    stat_ticks(&stat, &[11, 12]).with_context(|| format!("unexpected {path}"))
}

/// The processes whose parent is `pid` (nginx's workers, for its master).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .is_some_and(|parent| parent == pid.to_string())
            })
        })
        .collect()
}

/// The sum of the clock-tick fields at `indexes` (counted after the command name, which is
/// in parentheses and may hold spaces), as a duration.
fn stat_ticks(stat: &str, indexes: &[usize]) -> Option<Duration> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let mut ticks = 0;
    for &index in indexes {
        ticks += fields.get(index)?.parse::<u64>().ok()?;
    }
    // /proc reports in USER_HZ, which Linux fixes at 100 per second for user space.
    Some(Duration::from_millis(ticks * 10))
}

/// CPU time (user + system) of all the children this process has waited for. Taken before
/// and after waiting for one child, the difference is that child's CPU time.
pub fn children_cpu() -> Result<Duration> {
    let stat = fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    // cutime and cstime are fields 16 and 17: the 13th and 14th after the name.
    stat_ticks(&stat, &[13, 14]).context("unexpected /proc/self/stat")
}

/// A tool on PATH, as `cargo xtask stack` finds it, or in `/usr/sbin`, where Debian puts
/// nginx, which is not on every non-root PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    crate::stack::which(name).or_else(|| {
        let sbin = Path::new("/usr/sbin").join(name);
        sbin.is_file().then_some(sbin)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_ticks_follow_the_command_name() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0";
        assert_eq!(stat_ticks(stat, &[11, 12]), Some(Duration::from_secs(3)));
        assert_eq!(
            stat_ticks(stat, &[13, 14]),
            Some(Duration::from_millis(100))
        );
        assert_eq!(stat_ticks(stat, &[40]), None);
    }
}
