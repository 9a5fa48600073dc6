//! The stack's log store: VictoriaLogs, built once from its Go module into
//! `target/stack/bin`, keeping its data in `target/stack/victoria-logs`. The services ship
//! their lines to its OpenTelemetry endpoint, the gateway its access log to its syslog
//! receiver (observability/nginx/nginx.conf).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::which;

/// The Go package `go install` builds, at the version the stack runs.
const PACKAGE: &str = "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@v1.52.2";
pub const BINARY: &str = "victoria-logs";
/// Its HTTP API: LogsQL queries under /select, ingestion under /insert.
pub const URL: &str = "http://127.0.0.1:9428";
/// Where the services' log lines go (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT).
pub const OTLP_LOGS_ENDPOINT: &str = "http://127.0.0.1:9428/insert/opentelemetry/v1/logs";
/// The syslog address in nginx.conf's `access_log syslog:` line.
const SYSLOG_UDP: &str = "127.0.0.1:5514";
/// Retention: a week, and at most 2 GiB on disk (the oldest days go first).
const RETENTION_PERIOD: &str = "7d";
const RETENTION_MAX_DISK: &str = "2GiB";

/// The command line: its data under `work`, listening on loopback only.
pub fn configure(command: &mut Command, work: &Path) -> Result<()> {
    let data = work.join("victoria-logs");
    fs::create_dir_all(&data)?;
    command
        .arg(format!("-storageDataPath={}", data.display()))
        .arg("-httpListenAddr=127.0.0.1:9428")
        .arg(format!("-syslog.listenAddr.udp={SYSLOG_UDP}"))
        .arg(format!("-retentionPeriod={RETENTION_PERIOD}"))
        .arg(format!(
            "-retention.maxDiskSpaceUsageBytes={RETENTION_MAX_DISK}"
        ));
    Ok(())
}

/// Builds VictoriaLogs into `bin` unless the binary there was built from [`PACKAGE`].
pub fn build(bin: &Path) -> Result<()> {
    // The stamp is written last, so an interrupted build is never taken as complete.
    let stamp = bin.join("victoria-logs.package.done");
    if bin.join(BINARY).is_file() && fs::read_to_string(&stamp).is_ok_and(|done| done == PACKAGE) {
        return Ok(());
    }
    if which("go").is_none() {
        bail!("VictoriaLogs is built with Go, and `go` is not on PATH; install Go 1.24 or later");
    }
    println!(
        "building VictoriaLogs ({PACKAGE}) into {} ...",
        bin.display()
    );
    let started = Instant::now();
    let status = Command::new("go")
        .args(["install", "-buildvcs=false", PACKAGE])
        .env("GOBIN", bin)
        .status()
        .context("could not run go")?;
    if !status.success() {
        bail!("building VictoriaLogs failed ({status}); is the Go module proxy reachable?");
    }
    fs::write(stamp, PACKAGE)?;
    println!(
        "built VictoriaLogs in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
