//! The parts of Prometheus' HTTP API a reproduction reads: the loaded rule, the active
//! alerts, the rule's expression over time, and the targets a job scrapes.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub struct Prometheus {
    http: reqwest::Client,
    base: String,
}

/// An alerting rule as Prometheus loaded it (scaled, under compressed time).
#[derive(Debug, Clone, Deserialize)]
pub struct AlertRule {
    pub query: String,
    /// Its `for`, in seconds.
    pub duration: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ActiveAlert {
    pub labels: BTreeMap<String, String>,
    /// `pending` or `firing`.
    pub state: String,
    /// When it became pending.
    #[serde(rename = "activeAt")]
    pub active_at: Option<DateTime<Utc>>,
    pub value: Option<String>,
}

impl ActiveAlert {
    pub fn carries(&self, alert: &str, labels: &BTreeMap<String, String>) -> bool {
        self.labels.get("alertname").map(String::as_str) == Some(alert)
            && labels
                .iter()
                .all(|(name, value)| self.labels.get(name) == Some(value))
    }
}

/// One series of a range query: its labels and `(unix seconds, value)` points.
#[derive(Debug, Clone, Deserialize)]
pub struct Series {
    pub metric: BTreeMap<String, String>,
    pub values: Vec<(f64, String)>,
}

/// A target Prometheus scrapes: one replica of a service, in a service's job.
#[derive(Debug, Clone, Deserialize)]
pub struct Target {
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "scrapeUrl")]
    pub scrape_url: String,
    /// `up`, `down`, or `unknown` before the first scrape.
    pub health: String,
}

#[derive(Deserialize)]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct RuleGroups {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    rules: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Alerts {
    alerts: Vec<ActiveAlert>,
}

#[derive(Deserialize)]
struct Targets {
    #[serde(rename = "activeTargets")]
    active: Vec<Target>,
}

#[derive(Deserialize)]
struct InstantVector {
    result: Vec<InstantSample>,
}

#[derive(Deserialize)]
struct InstantSample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct Matrix {
    result: Vec<Series>,
}

impl Prometheus {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    pub async fn alert_rule(&self, alert: &str) -> anyhow::Result<AlertRule> {
        let groups: RuleGroups = self.get("/api/v1/rules?type=alert", &[]).await?;
        let rule = groups
            .groups
            .into_iter()
            .flat_map(|group| group.rules)
            .find(|rule| rule["name"] == alert)
            .with_context(|| {
                format!(
                    "Prometheus at {} has no alerting rule {alert}: is it running with \
                     observability/prometheus/rules/alerts.yml?",
                    self.base
                )
            })?;
        Ok(serde_json::from_value(rule)?)
    }

    pub async fn active_alerts(&self) -> anyhow::Result<Vec<ActiveAlert>> {
        let alerts: Alerts = self.get("/api/v1/alerts", &[]).await?;
        Ok(alerts.alerts)
    }

    pub async fn query_range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> anyhow::Result<Vec<Series>> {
        let matrix: Matrix = self
            .get(
                "/api/v1/query_range",
                &[
                    ("query", query.to_owned()),
                    ("start", start.timestamp().to_string()),
                    ("end", end.timestamp().to_string()),
                    ("step", format!("{}ms", step.as_millis().max(1))),
                ],
            )
            .await?;
        Ok(matrix.result)
    }

    /// The targets of `job` that service discovery currently finds, whatever their health.
    pub async fn targets(&self, job: &str) -> anyhow::Result<Vec<Target>> {
        let targets: Targets = self
            .get(
                "/api/v1/targets",
                &[
                    ("state", "active".to_owned()),
                    ("scrapePool", job.to_owned()),
                ],
            )
            .await?;
        Ok(targets
            .active
            .into_iter()
            .filter(|target| target.labels.get("job").map(String::as_str) == Some(job))
            .collect())
    }

    /// An instant query at now: each series' labels and value.
    pub async fn query(&self, query: &str) -> anyhow::Result<Vec<(BTreeMap<String, String>, f64)>> {
        let vector: InstantVector = self
            .get("/api/v1/query", &[("query", query.to_owned())])
            .await?;
        vector
            .result
            .into_iter()
            .map(|sample| {
                let value = sample.value.1.parse::<f64>().with_context(|| {
                    format!("Prometheus answered {query} with {:?}", sample.value.1)
                })?;
                Ok((sample.metric, if value.is_nan() { 0.0 } else { value }))
            })
            .collect()
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.base), query)
            .with_context(|| format!("{} is not a URL", self.base))?;
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .with_context(|| format!("cannot reach Prometheus at {url}"))?;
        let envelope: Envelope<T> = response
            .json()
            .await
            .with_context(|| format!("{url} did not answer with Prometheus' JSON"))?;
        match (envelope.status.as_str(), envelope.data) {
            ("success", Some(data)) => Ok(data),
            _ => bail!(
                "{url}: {}",
                envelope.error.unwrap_or_else(|| envelope.status.clone())
            ),
        }
    }
}
