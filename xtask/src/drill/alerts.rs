//! The alerts that fired while a drill ran, from Prometheus' `ALERTS` series, and whether
//! each has resolved by the time the drill reports.

use anyhow::{Context, Result};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::stack;

#[derive(Debug, Serialize)]
pub struct Alert {
    pub name: String,
    /// The labels that tell one firing of the alert from another (instance, node, ...).
    pub labels: String,
    pub first_firing: DateTime<Utc>,
    pub last_firing: DateTime<Utc>,
    /// Not firing any more when the drill reported.
    pub resolved: bool,
}

/// Every alert firing at some moment from `start` to `end`, or why Prometheus could not say.
pub fn during(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Vec<Alert>, String> {
    fired(start, end).map_err(|err| format!("{err:#}"))
}

#[derive(Deserialize)]
struct Answer {
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    metric: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

const FIRING: &str = "ALERTS{alertstate=\"firing\"}";

fn fired(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Vec<Alert>> {
    let client = stack::http_client();
    let url = format!("{}/api/v1/query_range", stack::PROMETHEUS);
    let range: Answer = client
        .get(&url)
        .query(&[
            ("query", FIRING.to_owned()),
            ("start", start.timestamp().to_string()),
            ("end", end.timestamp().to_string()),
            ("step", "1".to_owned()),
        ])
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .with_context(|| format!("asking Prometheus ({url}) for the alerts that fired"))?;
    let now: Answer = client
        .get(format!("{}/api/v1/query", stack::PROMETHEUS))
        .query(&[("query", FIRING)])
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .context("asking Prometheus for the alerts firing now")?;
    let key = |metric: &std::collections::BTreeMap<String, String>| {
        metric
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "__name__" | "alertstate" | "alertname"))
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let still: Vec<String> = now
        .data
        .result
        .iter()
        .map(|s| format!("{}{}", s.metric["alertname"], key(&s.metric)))
        .collect();
    let at = |seconds: f64| Utc.timestamp_opt(seconds as i64, 0).single().unwrap_or(end);
    Ok(range
        .data
        .result
        .iter()
        .filter_map(|series| {
            let name = series.metric.get("alertname")?.clone();
            let labels = key(&series.metric);
            let (first, last) = (series.values.first()?.0, series.values.last()?.0);
            Some(Alert {
                resolved: !still.contains(&format!("{name}{labels}")),
                name,
                labels,
                first_firing: at(first),
                last_firing: at(last),
            })
        })
        .collect())
}
