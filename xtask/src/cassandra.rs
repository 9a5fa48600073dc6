//! A local single-node Cassandra 5.0 for development and CI.
//!
//! Only Java 17 and Maven are required: the official `cassandra-all` jar and its
//! dependencies come from Maven Central (the one artifact source that every
//! developer machine and CI can reach), so there is no tarball or Docker image.
//! Everything lives under `target/cassandra/`; data survives `stop`/`start`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Subcommand;

const MAIN_CLASS: &str = "org.apache.cassandra.service.CassandraDaemon";
const START_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(500);

/// JVM options from Cassandra 5.0's conf/jvm*-server.options that the daemon
/// needs on JDK 17 (it reaches into JDK internals), plus a heap sized for a
/// shared 2-core machine rather than Cassandra's auto-sizing.
const JVM_OPTIONS: &[&str] = &[
    "-Xms512m",
    "-Xmx1g",
    // Cassandra warns that running on after an OutOfMemoryError risks corrupting data.
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.net.preferIPv4Stack=true",
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports=java.sql/java.sql=ALL-UNNAMED",
    "--add-exports=java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports=jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    // Without it Netty falls back to slower direct buffers that count against MaxDirectMemory.
    "-Dio.netty.tryReflectionSetAccessible=true",
    // Keeps stdout/stderr (redirected to a file) open, so JVM-level failures are recorded.
    "-Dcassandra-foreground=yes",
];

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    /// CQL native protocol port on 127.0.0.1.
    #[arg(long, global = true, env = "CASSANDRA_PORT", default_value_t = DEFAULT_PORT)]
    port: u16,
}

#[derive(Subcommand)]
enum Action {
    /// Start the node in the background (downloading it on first use) and wait until CQL answers.
    Start {
        /// Delete all data before starting.
        #[arg(long)]
        clean: bool,
        /// Inter-node port on 127.0.0.1 (unused by clients, but it must be free).
        #[arg(long, env = "CASSANDRA_STORAGE_PORT", default_value_t = DEFAULT_STORAGE_PORT)]
        storage_port: u16,
    },
    /// Stop the node with SIGTERM and wait for it to exit.
    Stop,
    /// Report whether the node is running and answering CQL; exits non-zero if not.
    Status,
}

/// Starts the node on the default ports unless it runs already: the native stack keeps the
/// services' data in it.
pub fn ensure_running() -> Result<()> {
    start(&Layout::new(), DEFAULT_PORT, DEFAULT_STORAGE_PORT, false)
}

/// Stops the local node: the end-to-end checks take the database away under the services.
pub fn stop_local() -> Result<()> {
    stop(&Layout::new())
}

pub const DEFAULT_PORT: u16 = 9042;
const DEFAULT_STORAGE_PORT: u16 = 7000;

pub fn run(args: Args) -> Result<ExitCode> {
    let layout = Layout::new();
    match args.action {
        Action::Start {
            clean,
            storage_port,
        } => start(&layout, args.port, storage_port, clean)?,
        Action::Stop => stop(&layout)?,
        Action::Status => return status(&layout, args.port),
    }
    Ok(ExitCode::SUCCESS)
}

struct Layout {
    pom: PathBuf,
    config_dir: PathBuf,
    lib: PathBuf,
    data: PathBuf,
    logs: PathBuf,
    pid_file: PathBuf,
}

impl Layout {
    fn new() -> Self {
        let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = xtask.parent().expect("xtask lives inside the workspace");
        let work = root.join("target/cassandra");
        Self {
            pom: xtask.join("cassandra/pom.xml"),
            config_dir: root.join("observability/cassandra"),
            lib: work.join("lib"),
            data: work.join("data"),
            logs: work.join("log"),
            pid_file: work.join("cassandra.pid"),
        }
    }

    fn system_log(&self) -> PathBuf {
        self.logs.join("system.log")
    }

    fn stdout_log(&self) -> PathBuf {
        self.logs.join("stdout.log")
    }
}

fn start(layout: &Layout, port: u16, storage_port: u16, clean: bool) -> Result<()> {
    if let Some(pid) = running_pid(layout)? {
        if clean {
            bail!("Cassandra is running (pid {pid}); stop it before using --clean");
        }
        println!("Cassandra is already running (pid {pid}) on 127.0.0.1:{port}");
        return Ok(());
    }
    if cql_answers(port) {
        bail!(
            "something else already answers CQL on 127.0.0.1:{port}; stop it or set CASSANDRA_PORT"
        );
    }
    fetch(layout)?;
    if clean {
        remove_dir_if_exists(&layout.data)?;
    }
    fs::create_dir_all(&layout.data)?;
    fs::create_dir_all(&layout.logs)?;

    let started = Instant::now();
    let output = File::create(layout.stdout_log())?;
    let mut child = Command::new(java())
        .args(JVM_OPTIONS)
        .arg(format!(
            "-Dcassandra.config=file://{}",
            layout.config_dir.join("cassandra.yaml").display()
        ))
        .arg(format!(
            "-Dlogback.configurationFile={}",
            layout.config_dir.join("logback.xml").display()
        ))
        .arg(format!("-Dcassandra.logdir={}", layout.logs.display()))
        .arg(format!("-Dcassandra.storagedir={}", layout.data.display()))
        .arg(format!("-Dcassandra.native_transport_port={port}"))
        .arg(format!("-Dcassandra.storage_port={storage_port}"))
        .arg("-cp")
        .arg(layout.lib.join("*"))
        .arg(MAIN_CLASS)
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        // Its own process group, so a Ctrl-C while we wait does not kill the node.
        .process_group(0)
        .spawn()
        .context("could not run java; install Java 17 or set JAVA_HOME")?;
    fs::write(&layout.pid_file, child.id().to_string())?;
    println!(
        "Started Cassandra (pid {}), waiting for CQL on 127.0.0.1:{port} ...",
        child.id()
    );

    while !cql_answers(port) {
        if let Some(exit) = child.try_wait()? {
            fs::remove_file(&layout.pid_file)?;
            // Configuration errors (e.g. a port in use) are printed last on stdout.
            let output = fs::read_to_string(layout.stdout_log()).unwrap_or_default();
            let lines: Vec<&str> = output.lines().collect();
            bail!(
                "Cassandra exited during startup ({exit}):\n{}\nsee {} and {}",
                lines[lines.len().saturating_sub(5)..].join("\n"),
                layout.system_log().display(),
                layout.stdout_log().display()
            );
        }
        if started.elapsed() > START_TIMEOUT {
            bail!(
                "Cassandra (pid {}) did not answer CQL on 127.0.0.1:{port} within {} s; see {} \
                 (`cargo xtask cassandra stop` stops it)",
                child.id(),
                START_TIMEOUT.as_secs(),
                layout.system_log().display()
            );
        }
        thread::sleep(POLL);
    }
    println!(
        "Cassandra answers CQL on 127.0.0.1:{port} after {:.1} s (log: {})",
        started.elapsed().as_secs_f64(),
        layout.system_log().display()
    );
    Ok(())
}

fn stop(layout: &Layout) -> Result<()> {
    let Some(pid) = running_pid(layout)? else {
        remove_file_if_exists(&layout.pid_file)?;
        println!("Cassandra is not running");
        return Ok(());
    };
    check(Command::new("kill").args(["-TERM", &pid.to_string()]))?;
    let asked = Instant::now();
    while is_cassandra(pid)? {
        if asked.elapsed() > STOP_TIMEOUT {
            bail!(
                "Cassandra (pid {pid}) did not exit within {} s of SIGTERM; see {} (`kill -9 {pid}` forces it)",
                STOP_TIMEOUT.as_secs(),
                layout.system_log().display()
            );
        }
        thread::sleep(POLL);
    }
    fs::remove_file(&layout.pid_file)?;
    println!("Cassandra stopped");
    Ok(())
}

/// Not running is an answer rather than an error, but scripts need it in the exit code.
fn status(layout: &Layout, port: u16) -> Result<ExitCode> {
    let Some(pid) = running_pid(layout)? else {
        println!("Cassandra is not running");
        return Ok(ExitCode::FAILURE);
    };
    if cql_answers(port) {
        println!("Cassandra is running (pid {pid}) and answers CQL on 127.0.0.1:{port}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Cassandra is running (pid {pid}) but does not answer CQL on 127.0.0.1:{port} \
         (still starting, or started with another CASSANDRA_PORT?); see {}",
        layout.system_log().display()
    );
    Ok(ExitCode::FAILURE)
}

/// Copies the artifacts named in pom.xml into target/cassandra/lib, unless a
/// previous run already did so for the same pom.xml.
fn fetch(layout: &Layout) -> Result<()> {
    let pom = fs::read_to_string(&layout.pom)
        .with_context(|| format!("reading {}", layout.pom.display()))?;
    // The stamp is written last, so an interrupted download is never taken as complete.
    let stamp = layout.lib.join("pom.xml.done");
    if fs::read_to_string(&stamp).is_ok_and(|done| done == pom) {
        return Ok(());
    }
    println!(
        "Fetching Cassandra from Maven Central ({}) into {} ...",
        layout.pom.display(),
        layout.lib.display()
    );
    // A fresh directory, so jars of a previous version do not end up on the classpath.
    remove_dir_if_exists(&layout.lib)?;
    check(
        Command::new("mvn")
            .args(["--batch-mode", "--quiet", "--file"])
            .arg(&layout.pom)
            .arg("dependency:copy-dependencies")
            .arg(format!("-DoutputDirectory={}", layout.lib.display())),
    )
    .context(
        "could not fetch Cassandra with Maven; is `mvn` installed and Maven Central reachable?",
    )?;
    fs::write(stamp, pom)?;
    Ok(())
}

/// True when a CQL server answers an OPTIONS request with SUPPORTED: an open
/// port alone could belong to something else or a half-started node.
fn cql_answers(port: u16) -> bool {
    let probe = || -> io::Result<bool> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
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

/// The pid from the pid file, if that process is still our Cassandra.
fn running_pid(layout: &Layout) -> Result<Option<u32>> {
    let Ok(text) = fs::read_to_string(&layout.pid_file) else {
        return Ok(None);
    };
    let pid = text
        .trim()
        .parse()
        .with_context(|| format!("{} does not hold a pid", layout.pid_file.display()))?;
    Ok(is_cassandra(pid)?.then_some(pid))
}

/// Asks `ps` for the command line rather than just probing the pid, so a pid
/// recycled by some other program after a crash is not mistaken for the node.
fn is_cassandra(pid: u32) -> Result<bool> {
    let output = Command::new("ps")
        .args(["-p", &pid.to_string(), "-o", "args="])
        .output()
        .context("could not run ps")?;
    Ok(String::from_utf8_lossy(&output.stdout).contains(MAIN_CLASS))
}

fn java() -> PathBuf {
    std::env::var_os("JAVA_HOME")
        .map_or_else(|| "java".into(), |home| Path::new(&home).join("bin/java"))
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

fn remove_file_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        result => result,
    }
}
