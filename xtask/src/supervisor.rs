//! The one supervisor of the processes xtask starts: the native stack's components, the
//! local Cassandra nodes and the bench's shop. It starts a program with its output in a
//! log, keeps the pid of one that outlives this process in a pid file, waits until a probe
//! (HTTP ready, CQL answers) says it is ready, shows the log's last lines when it fails,
//! and stops it: SIGTERM, then SIGKILL after a timeout.
//!
//! The timeouts and the failure messages stay with the callers: a Cassandra node takes
//! longer than nginx, and each command names its own way out.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustix::process::{Pid, Signal, kill_process, kill_process_group};

/// How often a stop polls whether the process is gone.
const STOP_POLL: Duration = Duration::from_millis(250);

/// Starts `command` with no input and its output (stdout and stderr) in `log`, made anew.
pub fn start(command: &mut Command, log: &Path) -> Result<Child> {
    let output = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .spawn()
        .with_context(|| format!("could not run {}", command.get_program().to_string_lossy()))
}

/// A process that outlives this one: started in its own process group (a Ctrl-C in this
/// terminal does not stop it, and a stop reaches everything it forked, nginx's workers
/// too) and found again through its pid file.
pub struct Detached<'a> {
    /// What error messages call it.
    pub name: &'a str,
    pub pid_file: PathBuf,
    /// A string its command line contains, so that a pid recycled by another program
    /// after a crash is not mistaken for it.
    pub marker: &'a str,
}

impl Detached<'_> {
    /// Starts it in the background (see [`start`]) and writes its pid file.
    pub fn start(&self, command: &mut Command, log: &Path) -> Result<Child> {
        let child = start(command.process_group(0), log)?;
        fs::write(&self.pid_file, child.id().to_string())
            .with_context(|| format!("writing {}", self.pid_file.display()))?;
        Ok(child)
    }

    /// The pid from the pid file, if that process is still this one.
    pub fn running_pid(&self) -> Result<Option<u32>> {
        let Ok(text) = fs::read_to_string(&self.pid_file) else {
            return Ok(None);
        };
        let pid = text
            .trim()
            .parse()
            .with_context(|| format!("{} does not hold a pid", self.pid_file.display()))?;
        Ok(self.is_alive(pid)?.then_some(pid))
    }

    /// True while a pid file says it was started and not stopped since, even if it died.
    pub fn has_pid_file(&self) -> bool {
        self.pid_file.exists()
    }

    pub fn forget(&self) -> io::Result<()> {
        remove_file_if_exists(&self.pid_file)
    }

    /// Asks `ps` for the command line rather than just probing the pid, so that a
    /// recycled pid does not count. A zombie (exited, not yet reaped) does not count.
    pub fn is_alive(&self, pid: u32) -> Result<bool> {
        let output = Command::new("ps")
            .args(["-p", &pid.to_string(), "-o", "stat=,args="])
            .output()
            .context("could not run ps")?;
        let line = String::from_utf8_lossy(&output.stdout);
        let line = line.trim();
        Ok(!line.starts_with('Z') && line.contains(self.marker))
    }

    /// Sends SIGTERM to its process group; the caller waits with [`Self::exited_within`].
    pub fn terminate(&self, pid: u32) -> Result<()> {
        signal_group(pid, Signal::TERM)
    }

    /// Waits until it is gone or `timeout` has passed since `asked`; true if it is gone.
    pub fn exited_within(&self, pid: u32, asked: Instant, timeout: Duration) -> Result<bool> {
        while self.is_alive(pid)? {
            if asked.elapsed() > timeout {
                return Ok(false);
            }
            thread::sleep(STOP_POLL);
        }
        Ok(true)
    }

    /// SIGTERM, then SIGKILL after `timeout`; forgets the pid file. True if it had to be
    /// killed.
    pub fn stop(&self, pid: u32, timeout: Duration) -> Result<bool> {
        self.terminate(pid)?;
        let killed = !self.exited_within(pid, Instant::now(), timeout)?;
        if killed {
            signal_group(pid, Signal::KILL)?;
        }
        self.forget()?;
        Ok(killed)
    }

    /// SIGKILL, as a crash would: no drain, no cleanup. Waits until it is gone (at most
    /// `timeout`) and forgets the pid file.
    pub fn kill(&self, pid: u32, timeout: Duration) -> Result<()> {
        signal_group(pid, Signal::KILL)?;
        if !self.exited_within(pid, Instant::now(), timeout)? {
            bail!(
                "{} (pid {pid}) survived SIGKILL for {} s",
                self.name,
                timeout.as_secs()
            );
        }
        self.forget()?;
        Ok(())
    }
}

/// Signals the process group `pid` leads, or the process alone when there is no such
/// group any more; a process already gone is not an error.
pub fn signal_group(pid: u32, signal: Signal) -> Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .with_context(|| format!("{pid} is not a process id"))?;
    if kill_process_group(pid, signal).is_err() {
        let _ = kill_process(pid, signal);
    }
    Ok(())
}

/// Stops a child of this process: SIGTERM (the services flush their spans on it), SIGKILL
/// if it does not exit within `timeout`. Already exited is fine.
pub fn stop_child(child: &mut Child, timeout: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    if let Some(pid) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, Signal::TERM);
    }
    let asked = Instant::now();
    while asked.elapsed() < timeout {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        thread::sleep(STOP_POLL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// One process being waited for: its readiness probe, and the child itself when this
/// process started it (so that an exit during start-up is seen at once).
pub struct Starting<'a> {
    pub probe: Box<dyn FnMut() -> bool + 'a>,
    pub child: Option<&'a mut Child>,
}

/// How a wait for readiness ended; indexes are into the slice given to [`wait_ready`].
#[derive(Debug)]
pub enum Readiness {
    Ready,
    Exited { index: usize, status: ExitStatus },
    TimedOut { waiting: Vec<usize> },
}

/// Polls every probe until each has said yes once, one of the children exits, or
/// `timeout` passes.
pub fn wait_ready(
    starting: &mut [Starting],
    timeout: Duration,
    poll: Duration,
) -> Result<Readiness> {
    let started = Instant::now();
    let mut waiting: Vec<usize> = (0..starting.len()).collect();
    loop {
        let mut still = Vec::new();
        for index in waiting {
            let process = &mut starting[index];
            if (process.probe)() {
                continue;
            }
            if let Some(child) = &mut process.child
                && let Some(status) = child.try_wait()?
            {
                return Ok(Readiness::Exited { index, status });
            }
            still.push(index);
        }
        waiting = still;
        if waiting.is_empty() {
            return Ok(Readiness::Ready);
        }
        if started.elapsed() > timeout {
            return Ok(Readiness::TimedOut { waiting });
        }
        thread::sleep(poll);
    }
}

/// The HTTP client the readiness probes use: short timeouts, no proxy surprises.
pub fn http_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("a plain HTTP client builds")
}

/// Readiness probe: `url` answers 2xx within two seconds.
pub fn answers_http(client: &reqwest::blocking::Client, url: &str) -> bool {
    client
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .is_ok_and(|response| response.status().is_success())
}

/// Readiness probe: a CQL server answers an OPTIONS request with SUPPORTED; an open port
/// alone could belong to something else or a half-started node.
pub fn answers_cql(address: SocketAddr) -> bool {
    let probe = || -> io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        // Protocol v4 header: version, flags, stream id (2 bytes), opcode OPTIONS, body length 0.
        stream.write_all(&[0x04, 0, 0, 1, 0x05, 0, 0, 0, 0])?;
        let mut header = [0; 9];
        stream.read_exact(&mut header)?;
        // A v4 response: version with the response bit set, opcode SUPPORTED.
        Ok(header[0] == 0x84 && header[4] == 0x06)
    };
    probe().unwrap_or(false)
}

/// The last `lines` lines of a log, for error messages; empty when there is no log.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("xtask-supervisor-{}-{name}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn sleeper(dir: &Path, marker: &'static str) -> (Detached<'static>, Command) {
        let process = Detached {
            name: "sleeper",
            pid_file: dir.join("sleeper.pid"),
            marker,
        };
        let mut command = Command::new("sh");
        // The marker is the shell's $0, so that ps shows it in the command line.
        command.args(["-c", "echo started; sleep 600", marker]);
        (process, command)
    }

    #[test]
    fn a_detached_process_is_found_through_its_pid_file_and_stopped() {
        let dir = scratch("stop");
        let (process, mut command) = sleeper(&dir, "supervisor-test-stop");
        let mut child = process.start(&mut command, &dir.join("log")).unwrap();
        let pid = child.id();
        assert_eq!(process.running_pid().unwrap(), Some(pid));
        assert!(
            !process.stop(pid, Duration::from_secs(10)).unwrap(),
            "SIGTERM sufficed"
        );
        child.wait().unwrap();
        assert!(!process.has_pid_file());
        assert_eq!(process.running_pid().unwrap(), None);
        assert_eq!(tail(&dir.join("log"), 5), "started");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_recycled_pid_does_not_pass_for_the_process() {
        let dir = scratch("recycled");
        let (process, _) = sleeper(&dir, "supervisor-test-no-such-marker");
        fs::write(&process.pid_file, std::process::id().to_string()).unwrap();
        assert_eq!(process.running_pid().unwrap(), None);
        assert!(process.has_pid_file(), "a dead process keeps its pid file");
        fs::write(&process.pid_file, "not a pid").unwrap();
        let err = process.running_pid().unwrap_err().to_string();
        assert!(err.contains("does not hold a pid"), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_process_that_exits_during_start_up_is_reported_with_its_index() {
        let dir = scratch("exits");
        let mut child = start(Command::new("false").arg("x"), &dir.join("log")).unwrap();
        let mut starting = [
            Starting {
                probe: Box::new(|| true),
                child: None,
            },
            Starting {
                probe: Box::new(|| false),
                child: Some(&mut child),
            },
        ];
        let outcome = wait_ready(
            &mut starting,
            Duration::from_secs(10),
            Duration::from_millis(10),
        )
        .unwrap();
        assert!(
            matches!(outcome, Readiness::Exited { index: 1, status } if !status.success()),
            "{outcome:?}"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_probe_that_never_answers_times_out_naming_only_the_waiting() {
        let mut calls = 0;
        let mut starting = [
            Starting {
                probe: Box::new(|| false),
                child: None,
            },
            Starting {
                probe: Box::new(|| {
                    calls += 1;
                    calls > 2
                }),
                child: None,
            },
        ];
        let outcome = wait_ready(
            &mut starting,
            Duration::from_millis(100),
            Duration::from_millis(5),
        )
        .unwrap();
        assert!(
            matches!(&outcome, Readiness::TimedOut { waiting } if waiting == &[0]),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_child_that_ignores_sigterm_is_killed_after_the_timeout() {
        let dir = scratch("ignores");
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "trap '' TERM; echo trapped; while :; do sleep 1; done",
        ]);
        let mut child = start(&mut command, &dir.join("log")).unwrap();
        while tail(&dir.join("log"), 1) != "trapped" {
            thread::sleep(Duration::from_millis(10));
        }
        let asked = Instant::now();
        stop_child(&mut child, Duration::from_millis(300));
        assert!(child.try_wait().unwrap().is_some(), "reaped");
        assert!(asked.elapsed() >= Duration::from_millis(300));
        fs::remove_dir_all(dir).unwrap();
    }
}
