//! How a service reaches the rest of the shop: one HTTP pool, one token verifier fed by the
//! user service's key set, and this service's own client-credentials tokens.

use std::sync::Arc;

use crate::auth::TokenVerifier;
use crate::client::{ServiceTokens, Upstream, UpstreamSettings};
use crate::config::{AuthArgs, JWKS_PATH, UpstreamArgs};
use crate::faults::Faults;
use crate::telemetry::metrics::{ClientMetrics, Metrics};

pub const USER_SERVICE: &str = "user-service";

#[derive(Clone)]
pub struct Connections {
    http: reqwest::Client,
    settings: UpstreamSettings,
    service_tokens: Arc<ServiceTokens>,
    metrics: ClientMetrics,
    faults: Faults,
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
        let settings = upstream.settings();
        let http = settings.http_client();
        let user_service = Upstream::new(
            USER_SERVICE,
            &auth.user_service_url,
            http.clone(),
            settings.clone(),
            None,
            metrics.client.clone(),
            faults.clone(),
        );
        let service_tokens = Arc::new(ServiceTokens::new(
            user_service.clone(),
            service_name.to_owned(),
            client_secret,
        ));
        Ok(Self {
            verifier: Arc::new(TokenVerifier::remote(user_service, JWKS_PATH)),
            http,
            settings,
            service_tokens,
            metrics: metrics.client.clone(),
            faults: faults.clone(),
        })
    }

    /// A client for the named upstream at `base_url`, sharing this service's pool and tokens.
    pub fn upstream(&self, name: &'static str, base_url: &str) -> Upstream {
        Upstream::new(
            name,
            base_url,
            self.http.clone(),
            self.settings.clone(),
            Some(self.service_tokens.clone()),
            self.metrics.clone(),
            self.faults.clone(),
        )
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

/// Readiness check, optional: an upstream's circuit is not open. An open circuit makes the
/// report `degraded` and never the service unready (see [`crate::health`]): the calls that
/// need that upstream already fail fast, and the rest keeps working.
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
