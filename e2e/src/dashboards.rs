//! Grafana's dashboards, checked like the rules: every PromQL query of every panel reads
//! metrics that exist, and every panel has a query that returns data, with Grafana's
//! variables replaced by values that match anything.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::harness::E2e;
use crate::logs::is_logsql;
use crate::promql::metric_names;
use crate::rules::{Rules, known_reason};

/// Where Grafana dashboards live; each one's expressions are checked like the rules'.
const DASHBOARD_DIRS: &[&str] = &["observability/grafana/dashboards", "grafana/dashboards"];

/// How long a dashboard may take to show data: a freshly started Cassandra node's JMX
/// exporter answers its first scrapes slowly, so its series can trail the stack's start.
const SETTLE: Duration = Duration::from_secs(60);
const SETTLE_POLL: Duration = Duration::from_secs(5);

/// What Grafana's interval variables become: Prometheus needs a duration there.
const INTERVAL: &str = "5m";

impl E2e {
    /// Grafana dashboards' expressions, checked like the rules: each reads metrics that
    /// exist and returns data, unless it reads only known-missing metrics or alerts.
    pub fn dashboards(&mut self, rules: &Rules) {
        let mut files: Vec<PathBuf> = DASHBOARD_DIRS
            .iter()
            .filter_map(|dir| fs::read_dir(self.root.join(dir)).ok())
            .flatten()
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        files.sort();
        if files.is_empty() {
            self.note(&format!(
                "no Grafana dashboards ({}/*.json): no dashboard expression to check",
                DASHBOARD_DIRS.join("/*.json, ")
            ));
            return;
        }
        for file in files {
            let shown = file
                .strip_prefix(&self.root)
                .unwrap_or(&file)
                .display()
                .to_string();
            let name = format!(
                "dashboard {shown}: every expression reads existing metrics and returns data"
            );
            self.check_unit(&name, |e2e| {
                let deadline = Instant::now() + SETTLE;
                loop {
                    match e2e.dashboard_shows_data(&file, &shown, rules) {
                        Err(_) if Instant::now() < deadline => std::thread::sleep(SETTLE_POLL),
                        settled => return settled,
                    }
                }
            });
        }
    }

    /// One look at a dashboard: its panels' expressions against what Prometheus has now.
    fn dashboard_shows_data(&mut self, file: &Path, shown: &str, rules: &Rules) -> Result<String> {
        let dashboard: Value = serde_json::from_str(&fs::read_to_string(file)?)
            .with_context(|| format!("{shown} is not JSON"))?;
        let mut panels = Vec::new();
        collect_exprs(&dashboard, &mut panels);
        let present = self.metric_names_present()?;
        let mut problems = Vec::new();
        let mut known = 0;
        let mut count = 0;
        for (panel, exprs) in &panels {
            // A panel shows something when one of its queries has data (a 3xx
            // series next to 2xx/4xx/5xx is legitimately empty).
            let mut shows = false;
            let mut checked = false;
            for expr in exprs {
                count += 1;
                let expr = grafana_to_promql(expr)?;
                let names = metric_names(&expr);
                if names.iter().all(|name| name.starts_with("ALERTS")) {
                    // Empty while nothing fires, which is the normal state.
                    continue;
                }
                let missing: Vec<&String> = names
                    .iter()
                    .filter(|name| !present.contains(*name))
                    .collect();
                if missing.is_empty() && !self.query(&expr)?.is_empty() {
                    shows = true;
                    continue;
                }
                // Known-missing metrics excuse an expression only while they are
                // missing: once they exist, their panel is checked like any other.
                if known_reason(&expr, rules).is_some() {
                    known += 1;
                    continue;
                }
                checked = true;
                if !missing.is_empty() {
                    problems.push(format!("panel {panel}: `{expr}` reads missing {missing:?}"));
                }
            }
            if checked && !shows {
                problems.push(format!("panel {panel}: no query returns data"));
            }
        }
        ensure!(problems.is_empty(), "{}", problems.join("; "));
        Ok(format!(
            "{} panels, {count} expressions ({known} read known-missing metrics)",
            panels.len()
        ))
    }
}

/// The expressions of a Grafana dashboard, by panel: (panel title, its targets'
/// expressions). Expressions outside panels (templating, annotations) stand alone.
fn collect_exprs(value: &Value, out: &mut Vec<(String, Vec<String>)>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(targets)) = map.get("targets") {
                let exprs: Vec<String> = targets
                    .iter()
                    // LogsQL, which the log store checks (logs.rs).
                    .filter(|target| !is_logsql(target))
                    .filter_map(|target| target["expr"].as_str())
                    .filter(|expr| !expr.trim().is_empty())
                    .map(str::to_owned)
                    .collect();
                if !exprs.is_empty() {
                    let title = map
                        .get("title")
                        .and_then(Value::as_str)
                        .unwrap_or("untitled");
                    out.push((format!("\"{title}\""), exprs));
                }
            }
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("targets", _) => {}
                    ("expr", Value::String(expr)) if !expr.trim().is_empty() => {
                        out.push((format!("`{expr}`"), vec![expr.clone()]));
                    }
                    _ => collect_exprs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_exprs(item, out)),
        _ => {}
    }
}

/// Replaces Grafana's variables with values Prometheus accepts: the interval variables
/// become a duration, and every template variable (`$var`, `${var}`, `${var:format}`)
/// matches anything, as Grafana's "All" would. A label matcher whose value holds one
/// becomes a regex matcher (`=` becomes `=~`, `!=` becomes `!~`): `instance="$instance"`
/// would otherwise match only the literal `.*`.
fn grafana_to_promql(expr: &str) -> Result<String> {
    let expr = expr
        .replace("$__rate_interval", INTERVAL)
        .replace("$__interval", INTERVAL)
        .replace("$__range", INTERVAL);
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr.as_str();
    while let Some(open) = rest.find('"') {
        let (before, quoted) = rest.split_at(open);
        let close = closing_quote(&quoted[1..])
            .with_context(|| format!("an unterminated string in `{expr}`"))?;
        let value = &quoted[1..=close];
        rest = &quoted[close + 2..];
        let replaced = replace_variables(value, ".*");
        if replaced == value {
            out.push_str(before);
            out.push_str(&quoted[..close + 2]);
            continue;
        }
        let operator_start = before.trim_end();
        if let Some(not) = operator_start.strip_suffix("!=") {
            out.push_str(not);
            out.push_str("!~");
        } else if let Some(equals) = operator_start
            .strip_suffix('=')
            .filter(|equals| !equals.ends_with(['=', '!', '<', '>']))
        {
            out.push_str(equals);
            out.push_str("=~");
        } else {
            out.push_str(before);
        }
        out.push('"');
        out.push_str(&replaced);
        out.push('"');
    }
    out.push_str(&replace_variables(rest, ".*"));
    Ok(out)
}

/// The index of the quote that ends a string whose opening quote came just before `text`.
fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(at),
            _ => escaped = false,
        }
    }
    None
}

/// Every Grafana template variable in `text` (`$var`, `${var}`, `${var:format}`) replaced
/// by `value`; a `$` that starts no name (a regex's end anchor) stays.
pub fn replace_variables(text: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let len = match after.strip_prefix('{') {
            Some(inner) => inner.find('}').map_or(after.len(), |end| end + 2),
            None => after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len()),
        };
        if len == 0 {
            out.push('$');
        } else {
            out.push_str(value);
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafana_variables_become_promql() {
        assert_eq!(
            grafana_to_promql(r#"rate(x{service=~"$service",route="${route}"}[$__rate_interval])"#)
                .unwrap(),
            r#"rate(x{service=~".*",route=~".*"}[5m])"#
        );
    }

    #[test]
    fn a_matcher_with_a_variable_matches_every_instance() {
        assert_eq!(
            grafana_to_promql(
                r#"up{job="backend", instance = "$instance", pod!="${pod:regex}", host="$host:9100"}"#
            )
            .unwrap(),
            r#"up{job="backend", instance =~".*", pod!~".*", host=~".*:9100"}"#
        );
    }

    #[test]
    fn strings_without_variables_are_kept_as_they_are() {
        let expr = r#"sum by (route) (rate(x{route="/api/\"odd\"", status=~"^5..$"}[1m]))"#;
        assert_eq!(grafana_to_promql(expr).unwrap(), expr);
        assert!(grafana_to_promql(r#"x{a="$b}"#).is_err());
    }
}
