//! Settings every service shares, from flags or environment variables.

use std::time::Duration;

use clap::Args;

use crate::client::UpstreamSettings;
use crate::server::HttpSettings;

#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 64 * 1024)]
    pub body_limit_bytes: usize,
    /// Deadline for handling one request, in milliseconds.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 15_000)]
    pub request_timeout_ms: u64,
    /// Count, time and trace every request (`false` leaves that out, to measure its cost).
    #[arg(long, env = "REQUEST_TELEMETRY", default_value_t = true, action = clap::ArgAction::Set)]
    pub request_telemetry: bool,
}

impl HttpArgs {
    pub fn settings(&self) -> HttpSettings {
        HttpSettings {
            body_limit_bytes: self.body_limit_bytes,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            request_telemetry: self.request_telemetry,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct UpstreamArgs {
    /// Connect timeout for calls to other services, in milliseconds.
    #[arg(long, env = "UPSTREAM_CONNECT_TIMEOUT_MS", default_value_t = 500)]
    pub upstream_connect_timeout_ms: u64,
    /// Whole-call timeout for calls to other services, in milliseconds.
    #[arg(long, env = "UPSTREAM_TIMEOUT_MS", default_value_t = 5_000)]
    pub upstream_timeout_ms: u64,
    /// Retries of an idempotent call after a transient failure.
    #[arg(long, env = "UPSTREAM_MAX_RETRIES", default_value_t = 2)]
    pub upstream_max_retries: u32,
    /// Base of the exponential retry backoff, in milliseconds.
    #[arg(long, env = "UPSTREAM_RETRY_BACKOFF_MS", default_value_t = 50)]
    pub upstream_retry_backoff_ms: u64,
    /// Consecutive failures that open an upstream's circuit breaker.
    #[arg(long, env = "BREAKER_FAILURE_THRESHOLD", default_value_t = 5)]
    pub breaker_failure_threshold: u32,
    /// How long an open circuit fails fast before a probe, in milliseconds.
    #[arg(long, env = "BREAKER_OPEN_MS", default_value_t = 5_000)]
    pub breaker_open_ms: u64,
}

impl UpstreamArgs {
    pub fn settings(&self) -> UpstreamSettings {
        UpstreamSettings {
            connect_timeout: Duration::from_millis(self.upstream_connect_timeout_ms),
            request_timeout: Duration::from_millis(self.upstream_timeout_ms),
            max_retries: self.upstream_max_retries,
            retry_backoff: Duration::from_millis(self.upstream_retry_backoff_ms),
            breaker_failure_threshold: self.breaker_failure_threshold,
            breaker_open_for: Duration::from_millis(self.breaker_open_ms),
        }
    }
}

/// How a service learns who signs tokens, and how it proves its own identity.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Base URL of the user service: its JWKS and its token endpoint.
    #[arg(
        long,
        env = "USER_SERVICE_URL",
        default_value = "http://127.0.0.1:8003"
    )]
    pub user_service_url: String,
    /// The secret services present to the user service for client-credentials tokens.
    #[arg(
        long,
        env = "SERVICE_CLIENT_SECRET",
        default_value = "dev-service-secret",
        hide_env_values = true
    )]
    pub service_client_secret: String,
}

pub const JWKS_PATH: &str = "/user-api/.well-known/jwks.json";
