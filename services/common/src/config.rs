//! Settings every service shares, from flags or environment variables.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args};

use crate::client::{BaseUrls, UpstreamSettings};
use crate::server::HttpSettings;
use crate::topology;

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
    /// Trace every request (`false`, with request telemetry on, keeps the metrics alone, to
    /// measure what each costs).
    #[arg(long, env = "REQUEST_TRACING", default_value_t = true, action = clap::ArgAction::Set)]
    pub request_tracing: bool,
    /// On SIGTERM, how long the service keeps serving, unready and closing each connection
    /// after its response, before it stops accepting, in milliseconds.
    #[arg(long, env = "SHUTDOWN_DRAIN_MS", default_value_t = 3_000)]
    pub shutdown_drain_ms: u64,
    /// Bind the port only once the service answers ready (its store connected), for a
    /// balancer with no health checks of its own: until then a connection is refused, which
    /// it may retry on another replica whatever the method, rather than answered 503.
    #[arg(long, env = "LISTEN_WHEN_READY", default_value_t = false, action = clap::ArgAction::Set)]
    pub listen_when_ready: bool,
}

impl HttpArgs {
    pub fn settings(&self) -> HttpSettings {
        HttpSettings {
            body_limit_bytes: self.body_limit_bytes,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            request_telemetry: self.request_telemetry,
            request_tracing: self.request_tracing,
        }
    }

    pub fn shutdown_drain(&self) -> Duration {
        Duration::from_millis(self.shutdown_drain_ms)
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
    /// Base URL of the user service (its JWKS and its token endpoint), or of each of its
    /// replicas, separated by commas.
    #[arg(
        long,
        env = topology::USER.url_var,
        default_value_t = BaseUrls::from(topology::USER)
    )]
    pub user_service_url: BaseUrls,
    /// The secret services present to the user service for client-credentials tokens.
    /// Required: there is no default (see [`AuthArgs::client_secret`]).
    #[arg(long, env = "SERVICE_CLIENT_SECRET", hide_env_values = true)]
    pub service_client_secret: Option<String>,
    /// A file holding that secret (a trailing newline is ignored), for secrets mounted into
    /// a container rather than put in its environment.
    #[arg(
        long,
        env = "SERVICE_CLIENT_SECRET_FILE",
        conflicts_with = "service_client_secret"
    )]
    pub service_client_secret_file: Option<PathBuf>,
    /// Development mode: accept the published development secret (and use it when none is
    /// set). Never for a shop that anyone else can reach.
    #[arg(long = "dev", env = "SHOP_DEV_MODE", action = ArgAction::Set,
        value_parser = BoolishValueParser::new(), default_value_t = false,
        num_args = 0..=1, default_missing_value = "true")]
    pub dev_mode: bool,
}

/// The development secret: it was `SERVICE_CLIENT_SECRET`'s default, and it is published in
/// this repository, so it proves nothing about who presents it. Accepted in dev mode only.
pub const DEV_SERVICE_SECRET: &str = "dev-service-secret";

/// Shorter secrets can be guessed, and a guessed secret mints service tokens.
pub const MIN_SERVICE_SECRET_LEN: usize = 16;

impl AuthArgs {
    /// The secret this service presents to the user service (which also checks it against
    /// the same value), or why the service must not start with it.
    ///
    /// Errors are one line naming the variable; they never contain the secret.
    pub fn client_secret(&self) -> anyhow::Result<String> {
        let secret = match (
            &self.service_client_secret,
            &self.service_client_secret_file,
        ) {
            (Some(secret), _) => Some(secret.clone()),
            (None, Some(path)) => Some(read_secret_file(path)?),
            (None, None) => None,
        };
        if self.dev_mode {
            if secret.as_deref().is_none_or(|s| s == DEV_SERVICE_SECRET) {
                tracing::warn!(
                    "dev mode: services authenticate with the published development secret"
                );
            }
            return Ok(secret.unwrap_or_else(|| DEV_SERVICE_SECRET.to_owned()));
        }
        match secret {
            None => anyhow::bail!(
                "SERVICE_CLIENT_SECRET is not set: set it (or SERVICE_CLIENT_SECRET_FILE) to the \
                 secret the shop's services share, or start with --dev (SHOP_DEV_MODE=true) \
                 for local development"
            ),
            Some(secret) if secret == DEV_SERVICE_SECRET => anyhow::bail!(
                "SERVICE_CLIENT_SECRET is the published development secret: set a secret of \
                 your own, or start with --dev (SHOP_DEV_MODE=true) for local development"
            ),
            Some(secret) if secret.len() < MIN_SERVICE_SECRET_LEN => anyhow::bail!(
                "SERVICE_CLIENT_SECRET is shorter than {MIN_SERVICE_SECRET_LEN} bytes: set a \
                 longer secret, e.g. `openssl rand -hex 32`"
            ),
            Some(secret) => Ok(secret),
        }
    }

    /// Sets the secret directly, e.g. one generated for a single process.
    pub fn set_client_secret(&mut self, secret: &str) {
        self.service_client_secret = Some(secret.to_owned());
        self.service_client_secret_file = None;
    }
}

fn read_secret_file(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        anyhow::anyhow!(
            "SERVICE_CLIENT_SECRET_FILE {} cannot be read: {err}",
            path.display()
        )
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// A random secret (64 hex digits) for a shop whose services all live in one process.
pub fn generate_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| anyhow::anyhow!("no OS randomness: {err}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn auth(secret: Option<&str>, dev_mode: bool) -> AuthArgs {
        AuthArgs {
            user_service_url: BaseUrls::from(topology::USER),
            service_client_secret: secret.map(str::to_owned),
            service_client_secret_file: None,
            dev_mode,
        }
    }

    fn refusal(args: &AuthArgs) -> String {
        let err = args.client_secret().expect_err("refused");
        let message = format!("{err:#}");
        assert!(!message.contains('\n'), "one line: {message}");
        assert!(message.starts_with("SERVICE_CLIENT_SECRET"), "{message}");
        message
    }

    #[test]
    fn a_secret_is_required_outside_dev_mode() {
        assert!(refusal(&auth(None, false)).contains("is not set"));
        assert!(refusal(&auth(Some(DEV_SERVICE_SECRET), false)).contains("published"));
        let short = refusal(&auth(Some("s3cret-shorty"), false));
        assert!(
            short.contains("shorter") && !short.contains("s3cret"),
            "{short}"
        );
        let own = "an-own-secret-of-enough-length";
        assert_eq!(auth(Some(own), false).client_secret().unwrap(), own);
    }

    #[test]
    fn dev_mode_falls_back_to_the_published_secret() {
        assert_eq!(
            auth(None, true).client_secret().unwrap(),
            DEV_SERVICE_SECRET
        );
        assert_eq!(auth(Some("short"), true).client_secret().unwrap(), "short");
    }

    #[test]
    fn the_secret_can_come_from_a_file() {
        let path = std::env::temp_dir().join(format!("secret-{}", std::process::id()));
        std::fs::write(&path, "a-secret-read-from-a-file\n").unwrap();
        let mut args = auth(None, false);
        args.service_client_secret_file = Some(path.clone());
        assert_eq!(args.client_secret().unwrap(), "a-secret-read-from-a-file");
        std::fs::remove_file(&path).unwrap();
        assert!(refusal(&args).contains("cannot be read"));
    }

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        auth: AuthArgs,
    }

    #[test]
    fn dev_mode_is_a_flag_or_a_value() {
        let dev = |args: &[&str]| Flags::try_parse_from(args).unwrap().auth.dev_mode;
        assert!(dev(&["t", "--dev"]));
        assert!(dev(&["t", "--dev=true"]));
        assert!(!dev(&["t", "--dev=false"]));
        assert!(dev(&["t", "--dev=1"]));
    }

    #[test]
    fn generated_secrets_are_long_and_differ() {
        let (a, b) = (generate_secret().unwrap(), generate_secret().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
