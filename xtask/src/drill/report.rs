//! A drill's report, `target/drills/<name>.json` and `.md`, and its verdict against the
//! drill's target.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::alerts::Alert;
use super::load::{Audit, Failure, Figures};
use super::{Drill, Fault};

#[derive(Serialize)]
pub struct Report {
    #[serde(serialize_with = "drill_name")]
    pub drill: Drill,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// Journey arrivals per second of the load.
    pub rate: f64,
    pub figures: Figures,
    pub audit: Audit,
    #[serde(serialize_with = "fault_events")]
    pub fault: Fault,
    pub alerts: Result<Vec<Alert>, String>,
    pub verdict: Verdict,
}

fn drill_name<S: serde::Serializer>(drill: &Drill, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(drill.name())
}

fn fault_events<S: serde::Serializer>(fault: &Fault, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Events<'a> {
        events: Vec<(String, &'a str)>,
        in_flight_at_kill: Option<u64>,
    }
    Events {
        events: fault
            .events
            .iter()
            .map(|(at, what)| (at.to_rfc3339(), what.as_str()))
            .collect(),
        in_flight_at_kill: fault.in_flight,
    }
    .serialize(s)
}

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub passed: bool,
    /// What the drill must achieve.
    pub target: String,
    /// Why it did not, when it did not.
    pub misses: Vec<String>,
}

impl Verdict {
    pub fn judge(
        drill: Drill,
        figures: &Figures,
        audit: &Audit,
        fault: &Fault,
        fault_error: Option<&str>,
    ) -> Self {
        let mut misses = Vec::new();
        if let Some(error) = fault_error {
            misses.push(format!("the fault was not carried out as planned: {error}"));
        }
        if figures.requests == 0 {
            misses.push("the load sent no request".to_owned());
        }
        let failed = figures.failed;
        let (target, allowed) = match drill {
            Drill::CassandraNode => (
                "0 failed requests: a quorum of 3 holds with one node down".to_owned(),
                Some(0),
            ),
            Drill::RollingRestart => ("0 failed requests".to_owned(), Some(0)),
            Drill::ReplicaKill => (
                "no request fails but at the kill (502, no response, or 503 for an internal \
                 call that lost its connection), and no more of those than the requests in \
                 flight on the killed processes"
                    .to_owned(),
                fault.in_flight.map(|in_flight| {
                    kill_pinned(figures, fault).min(in_flight.max(cut_at_killed(figures, fault)))
                }),
            ),
            Drill::Partition => (
                format!(
                    "no request fails outside the cut and the {} s after the heal, and those \
                     inside fail only as unavailable (503, 504)",
                    PARTITION_GRACE.num_seconds()
                ),
                Some(partition_excused(figures, fault)),
            ),
        };
        match allowed {
            Some(allowed) if failed > allowed => {
                misses.push(format!("{failed} requests failed, {allowed} at most might"));
            }
            Some(_) => {}
            None => misses.push("the requests in flight at the kill are unknown".to_owned()),
        }
        if !audit.passed {
            misses.push("the audit failed".to_owned());
        }
        match audit.acknowledged {
            Some(0) => misses.push("no order was acknowledged, so the audit proves nothing".into()),
            None => misses.push("the audit did not say how many orders it checked".into()),
            Some(_) => {}
        }
        Self {
            passed: misses.is_empty(),
            target: format!("{target}; 0 acknowledged orders lost; the audit passes"),
            misses,
        }
    }
}

/// How long after the last kill a failure is still pinned to it: nginx meets a dead
/// replica's connections at once.
const KILL_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// The failed requests a kill explains, from the first kill to two seconds after the last:
/// those the gateway answered 502 (the killed replica reset the connection under a
/// request nginx may not send again), those not answered at all, those a service
/// answered 503 because its own call to the killed replica lost its connection mid-call
/// (the services' client says "<upstream> dropped the connection"; that call, too, was in
/// flight on the killed process and counts in its gauge), and those the gateway sent to a
/// killed replica and then, the connection lost, to another: a repeated `DELETE` whose
/// first attempt had already removed the line answers 404.
fn kill_pinned(figures: &Figures, fault: &Fault) -> u64 {
    failures_within(figures, fault, KILL_GRACE, |failure| {
        matches!(failure.status, 0 | 502)
            || (failure.status == 503 && failure.detail.contains(CONNECTION_LOST))
            || repeated_off_a_killed_replica(failure, &fault.killed)
    })
}

/// The requests the gateway itself saw cut off by the kill: answered 502 by a killed
/// replica, its last attempt. Each was in flight on that process when it died, even if it
/// arrived after the drill read the process's in-flight gauge, just before the kill.
fn cut_at_killed(figures: &Figures, fault: &Fault) -> u64 {
    failures_within(figures, fault, KILL_GRACE, |failure| {
        failure.status == 502
            && failure
                .gateway_attempts
                .last()
                .is_some_and(|address| fault.killed.contains(address))
    })
}

fn repeated_off_a_killed_replica(failure: &Failure, killed: &[String]) -> bool {
    match failure.gateway_attempts.split_last() {
        Some((_, earlier)) => earlier.iter().any(|address| killed.contains(address)),
        None => false,
    }
}

/// How the services' problem detail names an internal call whose connection broke after
/// the request went out (`UpstreamError::ConnectionLost`).
const CONNECTION_LOST: &str = "dropped the connection";

fn failures_within(
    figures: &Figures,
    fault: &Fault,
    grace: chrono::TimeDelta,
    counts: impl Fn(&Failure) -> bool,
) -> u64 {
    let Some((from, to)) = fault.window else {
        return 0;
    };
    let window = from..=to + grace;
    figures
        .failures
        .iter()
        .filter(|f| window.contains(&f.at) && counts(f))
        .count() as u64
}

/// How long after a partition heals the isolated node may still fail requests: gossip
/// takes a few seconds to see it again.
const PARTITION_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// The failed requests a partition may cause: those that the cut node could not
/// coordinate while it was cut off (it still takes clients' requests, and times out
/// waiting for replicas it cannot reach), answered as unavailable, not as an error.
fn partition_excused(figures: &Figures, fault: &Fault) -> u64 {
    failures_within(figures, fault, PARTITION_GRACE, |failure| {
        matches!(failure.status, 503 | 504)
    })
}

impl Report {
    /// The report of a drill that could not run: it fails, saying why.
    pub fn broken(drill: Drill, why: String) -> Self {
        let now = Utc::now();
        Self {
            drill,
            started: now,
            finished: now,
            rate: 0.0,
            figures: Figures::default(),
            audit: Audit {
                passed: false,
                acknowledged: None,
                output: String::new(),
            },
            fault: Fault::default(),
            alerts: Ok(Vec::new()),
            verdict: Verdict {
                passed: false,
                target: "the drill runs".to_owned(),
                misses: vec![why],
            },
        }
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let name = self.drill.name();
        let json = dir.join(format!("{name}.json"));
        fs::write(&json, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", json.display()))?;
        let markdown = dir.join(format!("{name}.md"));
        fs::write(&markdown, self.markdown())
            .with_context(|| format!("writing {}", markdown.display()))
    }

    pub fn summary(&self) -> String {
        let mut out = format!(
            "drill {}: {} requests, {} failed, {} orders acknowledged, audit {}: {}",
            self.drill.name(),
            self.figures.requests,
            self.figures.failed,
            self.audit
                .acknowledged
                .map_or_else(|| "?".to_owned(), |n| n.to_string()),
            if self.audit.passed {
                "passed"
            } else {
                "FAILED"
            },
            if self.verdict.passed {
                "PASSED"
            } else {
                "FAILED"
            },
        );
        for miss in &self.verdict.misses {
            let _ = write!(out, "\n  - {miss}");
        }
        out
    }

    fn markdown(&self) -> String {
        let mut md = format!("# Drill {}\n\n", self.drill.name());
        let f = &self.figures;
        let _ = writeln!(
            md,
            "{} to {}, load {} journeys/s.\n\n**{}**. Target: {}.\n",
            self.started.format("%Y-%m-%d %H:%M:%S UTC"),
            self.finished.format("%H:%M:%S"),
            self.rate,
            if self.verdict.passed {
                "Passed"
            } else {
                "Failed"
            },
            self.verdict.target
        );
        for miss in &self.verdict.misses {
            let _ = writeln!(md, "- missed: {miss}");
        }
        let _ = writeln!(
            md,
            "\n| requests | failed | iterations | orders acknowledged | in flight at the kill |\n| --- | --- | --- | --- | --- |\n| {} | {} | {} | {} | {} |\n",
            f.requests,
            f.failed,
            f.iterations,
            self.audit
                .acknowledged
                .map_or("?".into(), |n| n.to_string()),
            self.fault.in_flight.map_or("-".into(), |n| n.to_string()),
        );
        let statuses: Vec<String> = f
            .responses_by_status
            .iter()
            .map(|(status, n)| format!("{status}: {n}"))
            .collect();
        let _ = writeln!(md, "Responses by status: {}.\n", statuses.join(", "));
        if !f.failed_by_status.is_empty() {
            let failed: Vec<String> = f
                .failed_by_status
                .iter()
                .map(|(status, n)| {
                    format!(
                        "{}: {n}",
                        if *status == 0 {
                            "no response".to_owned()
                        } else {
                            status.to_string()
                        }
                    )
                })
                .collect();
            let _ = writeln!(md, "Failed requests by status: {}.\n", failed.join(", "));
        }
        md += "## Fault\n\n";
        for (at, what) in &self.fault.events {
            let _ = writeln!(md, "- {} {what}", at.format("%H:%M:%S%.3f"));
        }
        if !f.failures.is_empty() {
            md += "\n## Failed requests\n\n| at | status | journey: step | gateway tried | detail |\n| --- | --- | --- | --- | --- |\n";
            for failure in f.failures.iter().take(50) {
                let detail: String = failure.detail.chars().take(120).collect();
                let _ = writeln!(
                    md,
                    "| {} | {} | {}: {} | {} | {} |",
                    failure.at.format("%H:%M:%S%.3f"),
                    failure.status,
                    failure.scenario,
                    failure.step,
                    failure.gateway_attempts.join(", "),
                    detail.replace('|', "/").replace('\n', " ")
                );
            }
        }
        md += "\n## Alerts\n\n";
        match &self.alerts {
            Err(why) => {
                let _ = writeln!(md, "Prometheus could not say: {why}");
            }
            Ok(alerts) if alerts.is_empty() => md += "None fired.\n",
            Ok(alerts) => {
                md += "| alert | labels | firing from | to | resolved |\n| --- | --- | --- | --- | --- |\n";
                for alert in alerts {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {} | {} | {} |",
                        alert.name,
                        alert.labels,
                        alert.first_firing.format("%H:%M:%S"),
                        alert.last_firing.format("%H:%M:%S"),
                        if alert.resolved { "yes" } else { "no" }
                    );
                }
            }
        }
        let _ = writeln!(md, "\n## Audit\n\n```\n{}```", self.audit.output);
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(at: DateTime<Utc>, status: u16) -> Failure {
        failure_saying(at, status, "")
    }

    fn failure_saying(at: DateTime<Utc>, status: u16, detail: &str) -> Failure {
        serde_json::from_value(serde_json::json!({
            "at": at, "status": status, "scenario": "shopper", "step": "check out",
            "detail": detail, "trace_id": "0", "kind": "failed"
        }))
        .unwrap()
    }

    fn judge(drill: Drill, failures: Vec<Failure>, fault: &Fault) -> Verdict {
        let figures = Figures {
            requests: 100,
            failed: failures.len() as u64,
            failures,
            ..Figures::default()
        };
        let audit = Audit {
            passed: true,
            acknowledged: Some(5),
            output: String::new(),
        };
        Verdict::judge(drill, &figures, &audit, fault, None)
    }

    #[test]
    fn a_kill_may_fail_what_was_in_flight_at_it_and_nothing_else() {
        let killed = Utc::now();
        let fault = Fault {
            in_flight: Some(1),
            window: Some((killed, killed)),
            ..Fault::default()
        };
        let at_kill = killed + chrono::TimeDelta::milliseconds(150);
        let later = killed + chrono::TimeDelta::seconds(30);
        assert!(judge(Drill::ReplicaKill, vec![failure(at_kill, 502)], &fault).passed);
        let two = vec![failure(at_kill, 502), failure(at_kill, 0)];
        assert!(
            !judge(Drill::ReplicaKill, two, &fault).passed,
            "more than in flight"
        );
        let apart = vec![failure(later, 502)];
        assert!(
            !judge(Drill::ReplicaKill, apart, &fault).passed,
            "not at the kill"
        );
        let unknown = Fault::default();
        assert!(!judge(Drill::ReplicaKill, Vec::new(), &unknown).passed);
    }

    #[test]
    fn an_internal_call_cut_off_by_the_kill_counts_as_in_flight_and_other_503s_do_not() {
        let killed = Utc::now();
        let fault = Fault {
            in_flight: Some(2),
            window: Some((killed, killed)),
            ..Fault::default()
        };
        let at_kill = killed + chrono::TimeDelta::milliseconds(300);
        let cut_off = r#"unexpected status 503: {"status":503,"detail":"cart-service dropped the connection"}"#;
        let database =
            r#"unexpected status 503: {"status":503,"detail":"the database is unavailable"}"#;
        let dropped = vec![failure(at_kill, 502), failure_saying(at_kill, 503, cut_off)];
        assert!(judge(Drill::ReplicaKill, dropped, &fault).passed);
        let unavailable = vec![failure_saying(at_kill, 503, database)];
        assert!(!judge(Drill::ReplicaKill, unavailable, &fault).passed);
        let later = killed + chrono::TimeDelta::seconds(30);
        let late = vec![failure_saying(later, 503, cut_off)];
        assert!(!judge(Drill::ReplicaKill, late, &fault).passed);
    }

    #[test]
    fn a_request_the_gateway_repeated_off_a_killed_replica_counts_as_in_flight() {
        let killed = Utc::now();
        let fault = Fault {
            in_flight: Some(2),
            window: Some((killed, killed)),
            killed: vec!["127.0.0.1:8011".to_owned()],
            ..Fault::default()
        };
        let at_kill = killed + chrono::TimeDelta::milliseconds(100);
        let tried = |addresses: &[&str]| {
            let mut repeated = failure(at_kill, 404);
            repeated.gateway_attempts = addresses.iter().map(|a| a.to_string()).collect();
            repeated
        };
        let off_killed = tried(&["127.0.0.1:8011", "127.0.0.1:8001"]);
        assert!(judge(Drill::ReplicaKill, vec![off_killed], &fault).passed);
        let off_other = tried(&["127.0.0.1:8001", "127.0.0.1:8011"]);
        assert!(
            !judge(Drill::ReplicaKill, vec![off_other], &fault).passed,
            "the last attempt on the killed replica answered it"
        );
        let once = tried(&["127.0.0.1:8011"]);
        assert!(!judge(Drill::ReplicaKill, vec![once], &fault).passed);
        let untried = failure(at_kill, 404);
        assert!(!judge(Drill::ReplicaKill, vec![untried], &fault).passed);
    }

    #[test]
    fn a_502_from_a_killed_replica_was_in_flight_though_the_gauge_read_before_missed_it() {
        let killed = Utc::now();
        let fault = Fault {
            in_flight: Some(0),
            window: Some((killed, killed)),
            killed: vec!["127.0.0.1:8013".to_owned()],
            ..Fault::default()
        };
        let at_kill = killed + chrono::TimeDelta::milliseconds(20);
        let cut_at = |address: &str| {
            let mut cut = failure(at_kill, 502);
            cut.gateway_attempts = vec![address.to_owned()];
            cut
        };
        assert!(judge(Drill::ReplicaKill, vec![cut_at("127.0.0.1:8013")], &fault).passed);
        assert!(
            !judge(Drill::ReplicaKill, vec![cut_at("127.0.0.1:8003")], &fault).passed,
            "the replica that answered 502 was not killed"
        );
        let two = vec![cut_at("127.0.0.1:8013"), failure(at_kill, 0)];
        assert!(
            !judge(Drill::ReplicaKill, two, &fault).passed,
            "the request with no response has no evidence of its own"
        );
    }

    #[test]
    fn a_partition_may_fail_requests_as_unavailable_only_while_it_lasts() {
        let cut = Utc::now();
        let healed = cut + chrono::TimeDelta::seconds(20);
        let fault = Fault {
            window: Some((cut, healed)),
            ..Fault::default()
        };
        let during = cut + chrono::TimeDelta::seconds(5);
        let inside = vec![failure(during, 503), failure(healed, 504)];
        assert!(judge(Drill::Partition, inside, &fault).passed);
        assert!(!judge(Drill::Partition, vec![failure(during, 500)], &fault).passed);
        let after = healed + chrono::TimeDelta::seconds(30);
        assert!(!judge(Drill::Partition, vec![failure(after, 503)], &fault).passed);
        assert!(!judge(Drill::CassandraNode, vec![failure(during, 503)], &fault).passed);
    }
}
