//! How a service reaches the rest of the shop: one HTTP pool, one token verifier fed by the
//! user service's key set, and this service's own client-credentials tokens.

use std::sync::Arc;

use crate::auth::TokenVerifier;
use crate::client::{BaseUrls, ServiceTokens, Upstream, UpstreamSettings};
use crate::config::{AuthArgs, UpstreamArgs};
use crate::faults::Faults;
use crate::telemetry::metrics::{ClientMetrics, Metrics};
use crate::topology;

/// One HTTP pool for a service's upstreams, with the settings, metrics and faults they
/// share, and this service's own tokens where it has any.
#[derive(Clone)]
pub struct UpstreamPool {
    http: reqwest::Client,
    settings: UpstreamSettings,
    service_tokens: Option<Arc<ServiceTokens>>,
    metrics: ClientMetrics,
    faults: Faults,
}

impl UpstreamPool {
    /// A pool whose calls carry the caller's credentials only: the user service's, which
    /// issues tokens rather than fetching them.
    pub fn new(upstream: &UpstreamArgs, metrics: &Metrics, faults: &Faults) -> Self {
        let settings = upstream.settings();
        Self {
            http: settings.http_client(),
            settings,
            service_tokens: None,
            metrics: metrics.client.clone(),
            faults: faults.clone(),
        }
    }

    /// A client for the named upstream at `base_urls` (one per replica).
    pub fn upstream(&self, name: &'static str, base_urls: &BaseUrls) -> Upstream {
        Upstream::new(
            name,
            base_urls,
            self.http.clone(),
            self.settings.clone(),
            self.service_tokens.clone(),
            self.metrics.clone(),
            self.faults.clone(),
        )
    }
}

/// How a service other than the user service reaches the rest of the shop.
#[derive(Clone)]
pub struct Connections {
    pool: UpstreamPool,
    pub verifier: Arc<TokenVerifier>,
}

impl Connections {
    pub fn new(
        service_name: &str,
        auth: &AuthArgs,
        upstream: &UpstreamArgs,
        metrics: &Metrics,
        faults: &Faults,
    ) -> anyhow::Result<Self> {
        let client_secret = auth.client_secret()?;
        let mut pool = UpstreamPool::new(upstream, metrics, faults);
        let user_service = pool.upstream(topology::USER.name, &auth.user_service_url);
        pool.service_tokens = Some(Arc::new(ServiceTokens::new(
            user_service.clone(),
            service_name.to_owned(),
            client_secret,
        )));
        Ok(Self {
            verifier: Arc::new(TokenVerifier::remote(user_service)),
            pool,
        })
    }

    /// A client for the named upstream at `base_urls` (one per replica), sharing this
    /// service's pool and tokens.
    pub fn upstream(&self, name: &'static str, base_urls: &BaseUrls) -> Upstream {
        self.pool.upstream(name, base_urls)
    }
}

/// Readiness check: tokens can be verified, i.e. the signing keys are known.
pub struct SigningKeysCheck(pub Arc<TokenVerifier>);

#[async_trait::async_trait]
impl crate::health::HealthCheck for SigningKeysCheck {
    fn name(&self) -> &'static str {
        "signing_keys"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ready().await
    }
}

/// Readiness check, optional: an upstream's circuit is not open on every replica. That
/// makes the report `degraded` and never the service unready (see [`crate::health`]): the
/// calls that need that upstream already fail fast, and the rest keeps working.
pub struct UpstreamCheck(pub Upstream);

#[async_trait::async_trait]
impl crate::health::HealthCheck for UpstreamCheck {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn required(&self) -> bool {
        false
    }

    async fn check(&self) -> Result<(), String> {
        match self.0.breaker_state() {
            crate::client::BreakerState::Open => {
                Err("circuit open after repeated failures".to_owned())
            }
            _ => Ok(()),
        }
    }
}
