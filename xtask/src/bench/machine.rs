//! The machine the figures come from: they mean nothing without it.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

use super::Env;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    pub cpu: String,
    /// CPUs this process may run on (the bench, the shop and wrk share them).
    pub cores: usize,
    pub memory_gib: f64,
    pub os: String,
    pub kernel: String,
    pub rustc: String,
    pub nginx: String,
    pub wrk: String,
    /// The cargo profile of the binaries measured.
    pub profile: String,
    /// The 1-minute load average before the bench started anything: what else ran.
    pub load_before: f64,
}

/// The 1-minute load average, 0 when unknown.
pub fn load_average() -> f64 {
    read("/proc/loadavg")
        .split_whitespace()
        .next()
        .and_then(|load| load.parse().ok())
        .unwrap_or_default()
}

pub fn describe(env: &Env, load_before: f64) -> Machine {
    Machine {
        cpu: cpu_model(),
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        memory_gib: memory_gib(),
        os: os_name(),
        kernel: read("/proc/sys/kernel/osrelease"),
        rustc: first_line(&env.root, "rustc", &["--version"]),
        nginx: first_line(&env.root, &env.nginx.to_string_lossy(), &["-v"])
            .trim_start_matches("nginx version: ")
            .to_owned(),
        wrk: first_line(&env.root, &env.wrk.to_string_lossy(), &["--version"])
            .split(" Copyright")
            .next()
            .unwrap_or_default()
            .to_owned(),
        profile: env.plan.profile.to_owned(),
        load_before,
    }
}

fn read(path: &str) -> String {
    fs::read_to_string(path)
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn cpu_model() -> String {
    let info = read("/proc/cpuinfo");
    info.lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or_else(
            || "unknown".to_owned(),
            |(_, model)| model.trim().to_owned(),
        )
}

fn memory_gib() -> f64 {
    let kib: f64 = read("/proc/meminfo")
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_default();
    (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0
}

fn os_name() -> String {
    read("/etc/os-release")
        .lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME="))
        .map_or_else(
            || "unknown".to_owned(),
            |name| name.trim_matches('"').to_owned(),
        )
}

/// The first line a program prints about itself, on stdout or (nginx) stderr; wrk exits
/// non-zero after printing its version, so the status is not checked.
fn first_line(root: &Path, program: &str, args: &[&str]) -> String {
    let Ok(output) = Command::new(program).args(args).current_dir(root).output() else {
        return "unknown".to_owned();
    };
    let text = [output.stdout, output.stderr]
        .iter()
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
        .collect::<String>();
    text.lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("unknown")
        .trim()
        .to_owned()
}
