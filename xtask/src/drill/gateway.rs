//! What the gateway did with the drill's failed requests: the upstreams nginx tried for
//! each, from its JSON access log (`upstream_addr`, joined with ", " when it tried more
//! than one), found by the trace id the load tester sent.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::load::Failure;

#[derive(Deserialize)]
struct AccessLine {
    trace_id: String,
    upstream_addr: String,
}

/// Fills in every failure's `gateway_attempts` from the access log at `path`.
pub fn add_attempts(failures: &mut [Failure], path: &Path) -> Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    let file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    fill_in(failures, BufReader::new(file)).with_context(|| format!("reading {}", path.display()))
}

fn fill_in(failures: &mut [Failure], log: impl BufRead) -> std::io::Result<()> {
    let mut attempts: HashMap<String, Vec<String>> = failures
        .iter()
        .map(|failure| (failure.trace_id.clone(), Vec::new()))
        .collect();
    for line in log.lines() {
        // Lines of another shape (none today) say nothing about the failures.
        let Ok(entry) = serde_json::from_str::<AccessLine>(&line?) else {
            continue;
        };
        if let Some(tried) = attempts.get_mut(&entry.trace_id) {
            tried.extend(upstreams(&entry.upstream_addr));
        }
    }
    for failure in failures {
        failure.gateway_attempts = attempts[&failure.trace_id].clone();
    }
    Ok(())
}

/// `127.0.0.1:8011, 127.0.0.1:8001` (and `-` for none) as the addresses tried, in order.
fn upstreams(field: &str) -> impl Iterator<Item = String> + '_ {
    field
        .split(',')
        .map(str::trim)
        .filter(|address| !address.is_empty() && *address != "-")
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(trace_id: &str) -> Failure {
        serde_json::from_value(serde_json::json!({
            "at": "2026-12-07T13:23:47Z", "status": 404, "scenario": "shopper",
            "step": "remove cart item", "detail": "", "trace_id": trace_id, "kind": "failed"
        }))
        .unwrap()
    }

    #[test]
    fn every_upstream_the_gateway_tried_is_found_by_trace_id() {
        let log = concat!(
            r#"{"trace_id":"a","upstream_addr":"127.0.0.1:8011, 127.0.0.1:8001","status":404}"#,
            "\n",
            r#"{"trace_id":"b","upstream_addr":"127.0.0.1:8000","status":200}"#,
            "\nnot json\n",
            r#"{"trace_id":"c","upstream_addr":"-","status":502}"#,
            "\n",
        );
        let mut failures = vec![failure("a"), failure("c"), failure("d")];
        fill_in(&mut failures, log.as_bytes()).unwrap();
        assert_eq!(
            failures[0].gateway_attempts,
            ["127.0.0.1:8011", "127.0.0.1:8001"]
        );
        assert!(failures[1].gateway_attempts.is_empty());
        assert!(failures[2].gateway_attempts.is_empty());
    }

    #[test]
    fn a_missing_log_is_an_error_when_there_are_failures_to_explain() {
        let missing = std::env::temp_dir().join(format!("no-access-log-{}", std::process::id()));
        assert!(add_attempts(&mut [failure("a")], &missing).is_err());
        assert!(add_attempts(&mut [], &missing).is_ok());
    }
}
