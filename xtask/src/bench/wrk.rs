//! The external load generator: wrk runs, their Lua scripts (request bodies, rotating
//! requests, pacing) and the parsing of wrk's `--latency` report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::procs;

/// Longer than the slowest request the bench makes (a login under load): a wrk timeout
/// would count as an error rather than as latency.
const TIMEOUT: &str = "10s";

/// One request for a Lua script.
#[derive(Debug, Clone)]
pub struct Request {
    /// Requests of one lane (one user) all go to the same wrk thread, in order, so that a
    /// user's checkout follows that user's cart add.
    pub lane: usize,
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// What wrk sends.
#[derive(Debug, Clone)]
pub enum Load {
    /// The same GET every time: no script, wrk's cheapest mode.
    Get(String),
    /// The same request with a body every time.
    Fixed(Request),
    /// Each thread cycles through the requests of its lanes.
    Rotate(Vec<Request>),
}

impl Load {
    /// The path shown in the report.
    pub fn path(&self) -> &str {
        match self {
            Self::Get(path) => path,
            Self::Fixed(request) => &request.path,
            Self::Rotate(requests) => requests.first().map_or("", |request| &request.path),
        }
    }
}

/// One wrk invocation.
pub struct Run<'a> {
    pub base: String,
    pub load: &'a Load,
    pub connections: usize,
    pub duration: Duration,
    /// The rate to offer, in requests per second, instead of wrk's highest.
    pub rate: Option<f64>,
}

/// What one run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Outcome {
    pub connections: usize,
    pub seconds: f64,
    /// Responses received, of any status.
    pub requests: u64,
    /// Responses with a status of 400 or more, and requests that got no answer (socket
    /// errors other than connect errors).
    pub errors: u64,
    /// Of `errors`, the responses with a status of 400 or more.
    pub failed_responses: u64,
    /// Responses below 400 per second.
    pub ok_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// wrk's own CPU time (user + system).
    pub cpu_s: f64,
    /// CPU time of each process under test during the run (nginx with its workers).
    pub process_cpu_s: BTreeMap<String, f64>,
}

impl Outcome {
    /// Failed requests among all requests sent: responses and requests without one.
    pub fn error_share(&self) -> f64 {
        let unanswered = self.errors.saturating_sub(self.failed_responses);
        let sent = self.requests + unanswered;
        if sent == 0 {
            1.0
        } else {
            self.errors as f64 / sent as f64
        }
    }
}

impl Run<'_> {
    /// Runs wrk to the end; its report goes to `log` as well.
    pub fn execute(&self, wrk: &Path, scripts: &Path, log: &Path) -> Result<Outcome> {
        let mut command = self.command(wrk, scripts)?;
        let cpu_before = procs::children_cpu()?;
        let output = command
            .output()
            .with_context(|| format!("could not run {}", wrk.display()))?;
        let cpu = procs::children_cpu()? - cpu_before;
        self.outcome(&command, &output, cpu, log)
    }

    /// The wrk command line, its Lua script written into `scripts` when it needs one.
    pub fn command(&self, wrk: &Path, scripts: &Path) -> Result<Command> {
        let threads = self.threads();
        let mut command = Command::new(wrk);
        command
            .arg(format!("--threads={threads}"))
            .arg(format!("--connections={}", self.connections))
            .arg(format!("--duration={}s", self.duration.as_secs().max(1)))
            .arg(format!("--timeout={TIMEOUT}"))
            .arg("--latency");
        let pace = self.rate.map(|rate| Pace { rate });
        if let Some(script) = lua(self.load, threads, pace) {
            let path = script_path(scripts, &script);
            fs::write(&path, script)?;
            command.arg(format!("--script={}", path.display()));
        }
        command.arg(format!("{}{}", self.base, self.load.path()));
        Ok(command)
    }

    /// One per core, never more than connections (wrk refuses that).
    fn threads(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        self.connections.min(cores)
    }

    /// Reads a finished run's report, which is also written to `log`.
    pub fn outcome(
        &self,
        command: &Command,
        output: &Output,
        cpu: Duration,
        log: &Path,
    ) -> Result<Outcome> {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        fs::write(log, format!("{command:?}\n{stdout}{stderr}"))?;
        if !output.status.success() {
            bail!(
                "wrk failed ({}): {stderr}{stdout}(log: {})",
                output.status,
                log.display()
            );
        }
        let mut outcome =
            parse(&stdout).with_context(|| format!("reading wrk's report {}", log.display()))?;
        outcome.connections = self.connections;
        outcome.cpu_s = cpu.as_secs_f64();
        Ok(outcome)
    }
}

/// Scripts are named by content, so that a run's log names the script it used.
fn script_path(dir: &Path, script: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    script.hash(&mut hasher);
    dir.join(format!("{:016x}.lua", hasher.finish()))
}

/// An offered rate, in requests per second, kept by pausing each connection between a
/// response and its next request (wrk's `delay()`).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub rate: f64,
}

/// The Lua script for a load, or none when wrk needs none.
pub fn lua(load: &Load, threads: usize, pace: Option<Pace>) -> Option<String> {
    let mut script = String::from("-- Generated by `cargo xtask bench`.\n");
    match load {
        Load::Get(_) if pace.is_none() => return None,
        Load::Get(_) => {}
        Load::Fixed(request) => {
            let _ = writeln!(script, "wrk.method = {}", quote(request.method));
            let _ = writeln!(script, "wrk.body = {}", quote(&request.body));
            for (name, value) in &request.headers {
                let _ = writeln!(script, "wrk.headers[{}] = {}", quote(name), quote(value));
            }
        }
        Load::Rotate(requests) => rotation(&mut script, requests, threads),
    }
    if let Some(pace) = pace {
        pacing(&mut script, pace, threads);
    }
    Some(script)
}

/// Each thread offers its share of the rate on an even timeline of slots: a connection done
/// with a response takes the next free slot and waits for it. A thread that fell behind
/// (all connections busy) starts again from now rather than sending a burst to catch up.
/// wrk's Lua has no clock, LuaJIT's FFI reads the monotonic one.
fn pacing(script: &mut String, pace: Pace, threads: usize) {
    let interval_ms = 1000.0 * threads as f64 / pace.rate;
    let _ = write!(
        script,
        r#"local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end
local interval = {interval_ms}
local slot = 0
function delay()
  local now = now_ms()
  slot = math.max(slot, now) + interval
  return math.floor(slot - now + 0.5)
end
"#
    );
}

/// Each thread keeps the requests of its own lanes, formatted once, and cycles through them.
fn rotation(script: &mut String, requests: &[Request], threads: usize) {
    let _ = writeln!(script, "local threads = {threads}\nlocal all = {{");
    for request in requests {
        let headers: Vec<String> = request
            .headers
            .iter()
            .map(|(name, value)| format!("[{}] = {}", quote(name), quote(value)))
            .collect();
        let _ = writeln!(
            script,
            "  {{{}, {}, {}, {{{}}}, {}}},",
            request.lane,
            quote(request.method),
            quote(&request.path),
            headers.join(", "),
            quote(&request.body)
        );
    }
    script.push_str(
        r#"}
local started = 0
function setup(thread)
  thread:set("id", started)
  started = started + 1
end
local mine = {}
local index = 0
function init(args)
  for _, r in ipairs(all) do
    if r[1] % threads == id then
      mine[#mine + 1] = wrk.format(r[2], r[3], r[4], r[5])
    end
  end
  if #mine == 0 then
    error("thread " .. id .. " has no requests")
  end
  -- wrk calls request() once more on the first thread, to check the script, and does not
  -- send that request: let it be the last of the cycle, not a cart add a checkout needs.
  if id == 0 then
    index = #mine - 1
  end
end
function request()
  index = index % #mine + 1
  return mine[index]
end
"#,
    );
}

/// A Lua string literal.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Reads wrk's report (with `--latency`): the request count and duration, the latency
/// distribution, socket errors and non-2xx/3xx responses.
pub fn parse(report: &str) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let (mut p50, mut p99, mut total) = (None, None, None);
    for line in report.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("50%") {
            p50 = Some(millis(value.trim())?);
        } else if let Some(value) = line.strip_prefix("99%") {
            p99 = Some(millis(value.trim())?);
        } else if let Some((count, rest)) = line.split_once(" requests in ") {
            let seconds = rest.split(',').next().unwrap_or_default().trim();
            total = Some((
                count.trim().parse::<u64>().context("request count")?,
                millis(seconds)? / 1000.0,
            ));
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            outcome.errors += socket_errors(errors)?;
        } else if let Some(count) = line.strip_prefix("Non-2xx or 3xx responses:") {
            outcome.failed_responses = count.trim().parse::<u64>().context("non-2xx count")?;
            outcome.errors += outcome.failed_responses;
        }
    }
    let (Some(p50), Some(p99), Some((requests, seconds))) = (p50, p99, total) else {
        bail!("no latency distribution or request count (was --latency given?)");
    };
    if seconds <= 0.0 {
        bail!("a run of {seconds} s");
    }
    outcome.p50_ms = p50;
    outcome.p99_ms = p99;
    outcome.requests = requests;
    outcome.seconds = seconds;
    // Socket errors are requests without a response: the count of responses holds none.
    outcome.ok_per_s = requests.saturating_sub(outcome.failed_responses) as f64 / seconds;
    Ok(outcome)
}

/// `connect 0, read 1, write 0, timeout 2`: connect errors are not responses, the others
/// are requests that got none.
fn socket_errors(text: &str) -> Result<u64> {
    let mut sum = 0;
    for part in text.split(',') {
        let (kind, count) = part
            .trim()
            .split_once(' ')
            .with_context(|| format!("socket errors: {text:?}"))?;
        let count: u64 = count.trim().parse().context("socket error count")?;
        if kind != "connect" {
            sum += count;
        }
    }
    Ok(sum)
}

/// wrk's durations: `635.91us`, `1.79ms`, `2.00s`, `1.50m`, `1.00h`.
fn millis(text: &str) -> Result<f64> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("no unit in {text:?}"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .trim()
        .parse()
        .with_context(|| format!("not a duration: {text:?}"))?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => bail!("unknown unit in {text:?}"),
    };
    Ok(number * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:18380/static-ok
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   635.91us    0.89ms  12.92ms   93.69%
    Req/Sec    56.20k     5.93k   62.03k    86.50%
  Latency Distribution
     50%  250.00us
     75%  491.00us
     90%    1.79ms
     99%    4.49ms
  1117991 requests in 10.00s, 145.01MB read
  Socket errors: connect 3, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 12
Requests/sec: 111799.10
Transfer/sec:     14.50MB
";

    #[test]
    fn a_report_is_read() {
        let outcome = parse(REPORT).unwrap();
        assert_eq!(outcome.requests, 1_117_991);
        assert_eq!(outcome.seconds, 10.0);
        assert!((outcome.p50_ms - 0.25).abs() < 1e-9);
        assert!((outcome.p99_ms - 4.49).abs() < 1e-9);
        // read + timeout + non-2xx; connect errors sent no request.
        assert_eq!(outcome.errors, 15);
        assert_eq!(outcome.failed_responses, 12);
        // Responses less the 12 failed ones: the 3 without a response are not among them.
        assert!((outcome.ok_per_s - 111_797.9).abs() < 1e-6);
        assert!((outcome.error_share() - 15.0 / 1_117_994.0).abs() < 1e-15);
    }

    #[test]
    fn a_clean_report_has_no_errors() {
        let report = "  Latency Distribution\n     50%    1.50ms\n     75%    2.00ms\n\
                      \n     90%    3.00ms\n     99%    1.02s \n  20 requests in 2.00s, 1.00KB read\n";
        let outcome = parse(report).unwrap();
        assert_eq!(outcome.errors, 0);
        assert_eq!(outcome.p99_ms, 1020.0);
        assert_eq!(outcome.ok_per_s, 10.0);
    }

    #[test]
    fn a_report_without_latencies_is_an_error() {
        let report = "  1117991 requests in 10.00s, 145.01MB read\nRequests/sec: 111799.10\n";
        assert!(parse(report).is_err());
        assert!(parse("unable to connect to 127.0.0.1:18380 Connection refused").is_err());
    }

    #[test]
    fn durations_carry_their_unit() {
        assert_eq!(millis("250.00us").unwrap(), 0.25);
        assert_eq!(millis("2.00s").unwrap(), 2000.0);
        assert_eq!(millis("1.50m").unwrap(), 90_000.0);
        assert!(millis("12").is_err());
        assert!(millis("3.0parsecs").is_err());
    }

    #[test]
    fn scripts_quote_bodies_and_keep_lanes() {
        let request = |lane| Request {
            lane,
            method: "POST",
            path: "/cart-api/cart/items".into(),
            headers: vec![("Content-Type", "application/json".into())],
            body: r#"{"quantity":1}"#.into(),
        };
        let pace = Pace { rate: 100.0 };
        let script = lua(&Load::Rotate(vec![request(0), request(1)]), 2, Some(pace)).unwrap();
        assert!(script.contains(r#"{1, "POST", "/cart-api/cart/items", {["Content-Type"] = "application/json"}, "{\"quantity\":1}"},"#), "{script}");
        assert!(script.contains("local threads = 2"));
        // 50 requests per second per thread: 20 ms apart.
        assert!(script.contains("local interval = 20\n"), "{script}");
        assert!(lua(&Load::Get("/static-ok".into()), 2, None).is_none());
    }
}
