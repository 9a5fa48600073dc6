//! Applying a playbook's faults through each service's admin fault API, on every replica
//! of the service (see [`super::replicas`]), and removing them.

use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::playbook::{FaultSpec, Service};
use super::prometheus::Prometheus;
use super::replicas::{Destinations, destinations};
use crate::routes::Routes;

pub struct FaultApi {
    http: reqwest::Client,
    routes: Routes,
    token: String,
    /// Where the replicas of each service are found; `None`: through the gateway only.
    replicas: Option<Prometheus>,
}

/// A fault one process accepted.
#[derive(Debug, Clone)]
pub struct Applied {
    pub service: Service,
    /// The fault API it was created at, where it is deleted.
    faults_url: String,
    /// The replica's instance, or `None` through the gateway.
    pub replica: Option<String>,
    pub id: String,
    pub description: String,
}

impl Applied {
    /// `backend at 127.0.0.1:8010`, or `backend` through the gateway.
    pub fn target(&self) -> String {
        match &self.replica {
            Some(instance) => format!("{} at {instance}", self.service.name()),
            None => self.service.name().to_owned(),
        }
    }
}

/// What applying a playbook's faults did.
#[derive(Debug, Default)]
pub struct Placed {
    pub applied: Vec<Applied>,
    /// Replicas passed over because Prometheus cannot scrape them: `backend at <instance>`.
    pub down: Vec<String>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

impl FaultApi {
    pub fn new(
        routes: Routes,
        token: String,
        replicas: Option<Prometheus>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            routes,
            token,
            replicas,
        })
    }

    /// Applies every fault on every replica of its service, living `ttl` unless removed
    /// first; on a refusal, removes the ones already applied, so that a half-applied
    /// playbook leaves nothing behind.
    pub async fn apply_all(&self, faults: &[FaultSpec], ttl: Duration) -> anyhow::Result<Placed> {
        let mut placed = Placed::default();
        for fault in faults {
            if let Err(err) = self.apply_everywhere(fault, ttl, &mut placed).await {
                self.remove_all(&placed.applied).await;
                return Err(err);
            }
        }
        Ok(placed)
    }

    async fn apply_everywhere(
        &self,
        fault: &FaultSpec,
        ttl: Duration,
        placed: &mut Placed,
    ) -> anyhow::Result<()> {
        let path = fault.service.faults_path();
        match self.destinations(fault.service).await? {
            Destinations::Gateway => {
                let applied = self.apply(fault, ttl, self.routes.url(&path), None).await?;
                placed.applied.push(applied);
            }
            Destinations::Replicas { up, down } => {
                for replica in up {
                    let url = format!("{}{path}", replica.origin);
                    let applied = self.apply(fault, ttl, url, Some(replica.instance)).await?;
                    placed.applied.push(applied);
                }
                for instance in down {
                    let skipped = format!("{} at {instance}", fault.service.name());
                    if !placed.down.contains(&skipped) {
                        placed.down.push(skipped);
                    }
                }
            }
        }
        Ok(())
    }

    async fn destinations(&self, service: Service) -> anyhow::Result<Destinations> {
        let Some(prometheus) = &self.replicas else {
            return Ok(Destinations::Gateway);
        };
        destinations(service.name(), &prometheus.targets(service.name()).await?)
    }

    async fn apply(
        &self,
        fault: &FaultSpec,
        ttl: Duration,
        faults_url: String,
        replica: Option<String>,
    ) -> anyhow::Result<Applied> {
        let mut body = fault.body.clone();
        body.insert("ttl_seconds".into(), ttl.as_secs().max(1).into());
        let mut applied = Applied {
            service: fault.service,
            faults_url,
            replica,
            id: String::new(),
            description: serde_json::Value::Object(fault.body.clone()).to_string(),
        };
        let response = self
            .http
            .post(&applied.faults_url)
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .with_context(|| unreachable(&applied))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!(
                "{} refused the fault {} with {status}: {text}{}",
                applied.target(),
                applied.description,
                if status == reqwest::StatusCode::NOT_FOUND {
                    " (is the service running with FAULTS_ENABLED=true?)"
                } else {
                    ""
                }
            );
        }
        let created: Created = serde_json::from_str(&text).with_context(|| {
            format!("{} answered {text} instead of a fault", applied.faults_url)
        })?;
        applied.id = created.id;
        Ok(applied)
    }

    /// Removes each fault; one that expired already is fine. Failures are printed, not
    /// returned: the faults' time-to-live ends them anyway.
    pub async fn remove_all(&self, applied: &[Applied]) {
        for fault in applied {
            let url = format!("{}/{}", fault.faults_url, fault.id);
            let removed = self.http.delete(&url).bearer_auth(&self.token).send().await;
            let failure = match removed {
                Ok(response)
                    if response.status().is_success()
                        || response.status() == reqwest::StatusCode::NOT_FOUND =>
                {
                    continue;
                }
                Ok(response) => response.status().to_string(),
                Err(err) => err.to_string(),
            };
            eprintln!(
                "could not remove fault {} of {}: {failure}; it ends with its time-to-live",
                fault.id,
                fault.target()
            );
        }
    }
}

/// Why a fault API could not be reached, and for a replica, what the user can do.
fn unreachable(applied: &Applied) -> String {
    let url = &applied.faults_url;
    match &applied.replica {
        None => format!("cannot reach {url}"),
        Some(instance) => format!(
            "cannot reach {url}, the fault API of {}, which Prometheus scrapes as {instance}: \
             reproduce applies a fault on every replica of a service, at the address \
             Prometheus scrapes it; run it where those addresses answer, or give \
             --faults-via gateway to fault only the replica the gateway picks",
            applied.service.name()
        ),
    }
}
