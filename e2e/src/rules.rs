//! The rules Prometheus loaded: every rules file of the repository among them, every
//! recording rule's expression returning data and every metric a rule reads present,
//! unless it is known to be missing for a reason that is reported.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, ensure};

use crate::harness::E2e;
use crate::promql::metric_names;

/// The rules Prometheus loaded.
pub struct Rules {
    /// (record name, expression)
    pub recording: Vec<(String, String)>,
    /// (alert name, expression)
    pub alerting: Vec<(String, String)>,
}

impl E2e {
    pub fn rules(&self) -> Result<(Rules, String)> {
        let data = self.prometheus_api("/api/v1/rules", &[])?;
        let mut rules = Rules {
            recording: Vec::new(),
            alerting: Vec::new(),
        };
        let mut files = BTreeSet::new();
        for group in data["groups"].as_array().into_iter().flatten() {
            if let Some(file) = group["file"].as_str() {
                files.insert(
                    Path::new(file)
                        .file_name()
                        .map(|name| name.to_string_lossy().into_owned()),
                );
            }
            for rule in group["rules"].as_array().into_iter().flatten() {
                let entry = (
                    rule["name"].as_str().unwrap_or_default().to_owned(),
                    rule["query"].as_str().unwrap_or_default().to_owned(),
                );
                match rule["type"].as_str() {
                    Some("recording") => rules.recording.push(entry),
                    Some("alerting") => rules.alerting.push(entry),
                    _ => {}
                }
            }
        }
        let dir = self.root.join("observability/prometheus/rules");
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".yml") || name.ends_with(".yaml") {
                ensure!(
                    files.contains(&Some(name.clone())),
                    "rules/{name} is not loaded by Prometheus (missing from rule_files in prometheus.yml?)"
                );
            }
        }
        ensure!(!rules.alerting.is_empty(), "Prometheus lists no alert rule");
        let detail = format!(
            "{} alert rules, {} recording rules",
            rules.alerting.len(),
            rules.recording.len()
        );
        Ok((rules, detail))
    }

    /// Every recording rule's expression, evaluated now, returns data.
    pub fn rule_queries(&mut self, rules: &Rules) {
        self.check_unit("every recording rule's expression returns data", |e2e| {
            let mut empty = Vec::new();
            let mut known = Vec::new();
            for (record, expr) in &rules.recording {
                if e2e.query(expr)?.is_empty() {
                    match known_reason(expr, rules) {
                        Some(reason) => known.push(format!("{record} ({reason})")),
                        None => empty.push(record.as_str()),
                    }
                }
            }
            if !known.is_empty() {
                e2e.note(&format!(
                    "known empty recording rules: {}",
                    known.join(", ")
                ));
            }
            ensure!(empty.is_empty(), "no data for {}", empty.join(", "));
            Ok(format!(
                "{} of {} ({} known empty)",
                rules.recording.len() - known.len(),
                rules.recording.len(),
                known.len()
            ))
        });
    }

    /// Every metric a rule reads exists in Prometheus; only the CQL store's are known missing.
    pub fn rule_metrics(&mut self, rules: &Rules) {
        let mut referenced = BTreeSet::new();
        for (_, expr) in rules.recording.iter().chain(&rules.alerting) {
            referenced.extend(metric_names(expr));
        }
        // Recorded series are covered by the check above; here the raw metrics.
        referenced.retain(|name| !name.contains(':'));
        self.check_unit("every metric the rules read exists", |e2e| {
            let present = e2e.metric_names_present()?;
            let mut known = Vec::new();
            let mut missing = Vec::new();
            for name in referenced.iter().filter(|name| !present.contains(*name)) {
                match known_missing(name) {
                    Some(reason) => known.push(format!("{name} ({reason})")),
                    None => missing.push(name.as_str()),
                }
            }
            if !known.is_empty() {
                e2e.note(&format!("known missing metrics: {}", known.join(", ")));
            }
            ensure!(missing.is_empty(), "missing from Prometheus: {missing:?}");
            Ok(format!(
                "{} of {} present",
                referenced.len() - known.len(),
                referenced.len()
            ))
        });
    }
}

/// Metrics that do not exist yet for a known reason: reported, not failed.
fn known_missing(name: &str) -> Option<&'static str> {
    if name.starts_with("loadtest_") {
        return Some("the load tester does not run in the stack");
    }
    (name == "cassandra_hints_delivered_total")
        .then_some("Cassandra registers its hint-delivery meters at the first delivery")
}

/// Why an expression may be empty: it reads a known-missing metric, directly or through
/// a recording rule.
pub fn known_reason(expr: &str, rules: &Rules) -> Option<&'static str> {
    metric_names(expr).iter().find_map(|name| {
        known_missing(name).or_else(|| {
            rules
                .recording
                .iter()
                .filter(|(record, _)| record == name)
                .find_map(|(_, source)| known_reason(source, rules))
        })
    })
}
