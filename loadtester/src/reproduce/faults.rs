//! Applying a playbook's faults through each service's admin fault API, and removing them.

use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::playbook::{FaultSpec, Service};
use crate::routes::Routes;

pub struct FaultApi {
    http: reqwest::Client,
    routes: Routes,
    token: String,
}

/// A fault a service accepted.
#[derive(Debug, Clone)]
pub struct Applied {
    pub service: Service,
    pub id: String,
    pub description: String,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

impl FaultApi {
    pub fn new(routes: Routes, token: String) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            routes,
            token,
        })
    }

    /// Applies every fault, living `ttl` unless removed first; on a refusal, removes the
    /// ones already applied, so that a half-applied playbook leaves nothing behind.
    pub async fn apply_all(
        &self,
        faults: &[FaultSpec],
        ttl: Duration,
    ) -> anyhow::Result<Vec<Applied>> {
        let mut applied = Vec::new();
        for fault in faults {
            match self.apply(fault, ttl).await {
                Ok(fault) => applied.push(fault),
                Err(err) => {
                    self.remove_all(&applied).await;
                    return Err(err);
                }
            }
        }
        Ok(applied)
    }

    async fn apply(&self, fault: &FaultSpec, ttl: Duration) -> anyhow::Result<Applied> {
        let mut body = fault.body.clone();
        body.insert("ttl_seconds".into(), ttl.as_secs().max(1).into());
        let url = self.routes.url(fault.service.faults_path());
        let response = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!(
                "{} refused the fault {} with {status}: {text}{}",
                fault.service.name(),
                serde_json::Value::Object(fault.body.clone()),
                if status == reqwest::StatusCode::NOT_FOUND {
                    " (is the service running with FAULTS_ENABLED=true?)"
                } else {
                    ""
                }
            );
        }
        let created: Created = serde_json::from_str(&text)
            .with_context(|| format!("{url} answered {text} instead of a fault"))?;
        Ok(Applied {
            service: fault.service,
            id: created.id,
            description: serde_json::Value::Object(fault.body.clone()).to_string(),
        })
    }

    /// Removes each fault; one that expired already is fine. Failures are printed, not
    /// returned: the faults' time-to-live ends them anyway.
    pub async fn remove_all(&self, applied: &[Applied]) {
        for fault in applied {
            let url = format!(
                "{}/{}",
                self.routes.url(fault.service.faults_path()),
                fault.id
            );
            let removed = self.http.delete(&url).bearer_auth(&self.token).send().await;
            match removed {
                Ok(response)
                    if response.status().is_success()
                        || response.status() == reqwest::StatusCode::NOT_FOUND => {}
                Ok(response) => eprintln!(
                    "could not remove fault {} of {}: {}; it ends with its time-to-live",
                    fault.id,
                    fault.service.name(),
                    response.status()
                ),
                Err(err) => eprintln!(
                    "could not remove fault {} of {}: {err}; it ends with its time-to-live",
                    fault.id,
                    fault.service.name()
                ),
            }
        }
    }
}
