//! Bad input on the command line: a one-line error that names the flag, a non-zero exit,
//! and no panic, from the binary itself.

use std::process::Command;

/// Runs the load tester with `args` and none of the caller's `LOADTEST_*` settings;
/// returns its exit code and standard error.
fn loadtester(args: &[&str]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loadtester"));
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LOADTEST_") {
            command.env_remove(name);
        }
    }
    let output = command.output().expect("the load tester runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_refused(args: &[&str], flag: &str, why: &str) {
    let (code, stderr) = loadtester(args);
    assert!(
        code.is_some_and(|code| code != 0),
        "{args:?} exited with {code:?}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?} printed more than one line: {stderr}"
    );
    assert!(
        lines[0].contains(flag),
        "{args:?} does not name {flag}: {stderr}"
    );
    assert!(
        lines[0].contains(why),
        "{args:?} does not say {why:?}: {stderr}"
    );
}

const HOST: [&str; 2] = ["--host", "http://127.0.0.1:1"];

#[test]
fn a_malformed_arrival_rate_names_the_flag() {
    assert_refused(
        &[&HOST[..], &["--arrival-rate", "fast", "-t", "1m"]].concat(),
        "--arrival-rate",
        "200/s",
    );
    assert_refused(
        &[&HOST[..], &["--arrival-rate", "200", "-t", "1m"]].concat(),
        "--arrival-rate",
        "200/s",
    );
}

#[test]
fn malformed_stages_name_the_flag() {
    assert_refused(
        &[&HOST[..], &["--stages", "30s"]].concat(),
        "--stages",
        "DURATION:RATE",
    );
    assert_refused(
        &[&HOST[..], &["--stages", "0s:10/s"]].concat(),
        "--stages",
        "zero",
    );
}

#[test]
fn malformed_thresholds_name_the_flag() {
    assert_refused(
        &[&HOST[..], &["--threshold", "p99<"]].concat(),
        "--threshold",
        "p99<",
    );
    assert_refused(
        &[&HOST[..], &["--threshold", "latency<3ms"]].concat(),
        "--threshold",
        "unknown metric",
    );
    assert_refused(
        &["verdict", "--threshold", "p100<3ms"],
        "--threshold",
        "unknown metric",
    );
}

#[test]
fn a_worker_index_past_the_workers_names_the_flag() {
    assert_refused(
        &[
            &HOST[..],
            &["--workers", "2", "--worker-index", "2", "-u", "4"],
        ]
        .concat(),
        "--worker-index",
        "below --workers 2",
    );
}

#[test]
fn an_unreachable_prometheus_names_the_flag() {
    assert_refused(
        &[
            "verdict",
            "--prometheus-url",
            "http://127.0.0.1:1",
            "--since",
            "5m",
            "--threshold",
            "errors<1%",
        ],
        "--prometheus-url",
        "http://127.0.0.1:1",
    );
}
