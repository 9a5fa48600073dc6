//! The user service: accounts, tokens and each user's view of the shop, on port 8003
//! under `/user-api`.

pub mod api;
pub mod bootstrap;
pub mod domain;
pub mod metrics;
pub mod passwords;
pub mod service_clients;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use clap::Parser;
use shop_common::auth::{TokenSigner, TokenVerifier};
use shop_common::client::BaseUrls;
use shop_common::config::{AuthArgs, HttpArgs, UpstreamArgs};
use shop_common::connections::UpstreamCheck;
use shop_common::cql::StorageArgs;
use shop_common::faults::FaultArgs;
use shop_common::service::{self, Skeleton};
use shop_common::topology;

use crate::domain::normalize_username;
use crate::metrics::UserMetrics;
use crate::passwords::PasswordHasher;
use crate::service_clients::ServiceClients;

pub const SERVICE_NAME: &str = topology::USER.name;

#[derive(Debug, Clone, Parser)]
#[command(
    name = SERVICE_NAME,
    version,
    about = "The shop's users, tokens and profiles"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = topology::USER.listen_var, default_value_t = topology::USER.listen())]
    pub listen: SocketAddr,
    /// Base URL of the cart service, or of each of its replicas, separated by commas.
    #[arg(
        long,
        env = topology::CART.url_var,
        default_value_t = BaseUrls::from(topology::CART)
    )]
    pub cart_service_url: BaseUrls,
    /// Base URL of the order service, or of each of its replicas, separated by commas.
    #[arg(
        long,
        env = topology::ORDER.url_var,
        default_value_t = BaseUrls::from(topology::ORDER)
    )]
    pub order_service_url: BaseUrls,
    /// bcrypt work factor: each step doubles the CPU cost of a login.
    #[arg(long, env = "BCRYPT_COST", default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,
    /// Lifetime of issued tokens, in seconds.
    #[arg(long, env = "TOKEN_TTL_SECONDS", default_value_t = 3600)]
    pub token_ttl_seconds: u64,
    /// Ed25519 private key (PKCS#8 PEM) that signs tokens. Without it a key is generated at
    /// start-up, and tokens do not survive a restart.
    #[arg(long, env = "JWT_PRIVATE_KEY_FILE")]
    pub jwt_private_key_file: Option<PathBuf>,
    /// The admin account created at start-up when missing.
    #[arg(long, env = "ADMIN_USERNAME", default_value = "admin")]
    pub admin_username: String,
    /// Its password, kept in step at every start. Required: there is no default outside
    /// development (see [`Config::admin_password`]).
    #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Set by the all-in-one `shop`, a development tool on loopback: without
    /// `ADMIN_PASSWORD` its admin uses the development password, as in the README.
    #[arg(skip)]
    pub development_admin: bool,
    #[arg(long, env = "ADMIN_EMAIL", default_value = "admin@shop.local")]
    pub admin_email: String,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// The development admin password: published in this repository, so it protects nothing.
/// Used in dev mode (`--dev`) and by the all-in-one `shop` only.
pub const DEV_ADMIN_PASSWORD: &str = "admin-change-me";
/// Shorter admin passwords are guessed by a credential stuffer in no time.
const MIN_ADMIN_PASSWORD_LEN: usize = 8;

impl Config {
    /// The admin password to keep, or why the service must not start with it. Errors are
    /// one line naming the variable; they never contain the password.
    pub fn admin_password(&self) -> anyhow::Result<String> {
        let development = self.auth.dev_mode || self.development_admin;
        match &self.admin_password {
            None if development => Ok(DEV_ADMIN_PASSWORD.to_owned()),
            None => anyhow::bail!(
                "ADMIN_PASSWORD is not set: set the admin account's password, or start with \
                 --dev (SHOP_DEV_MODE=true) for local development"
            ),
            Some(password) if password == DEV_ADMIN_PASSWORD && !development => anyhow::bail!(
                "ADMIN_PASSWORD is the published development password: set one of your own, \
                 or start with --dev (SHOP_DEV_MODE=true) for local development"
            ),
            Some(password) if password.len() < MIN_ADMIN_PASSWORD_LEN && !development => {
                anyhow::bail!(
                    "ADMIN_PASSWORD is shorter than {MIN_ADMIN_PASSWORD_LEN} characters: set a \
                     longer one"
                )
            }
            Some(password) => Ok(password.clone()),
        }
    }
}

pub async fn app(config: &Config) -> anyhow::Result<Router> {
    let service_clients = ServiceClients::new(config.auth.client_secret()?);
    let signer = Arc::new(token_signer(config)?);
    let skeleton = Skeleton::new(&api::SERVICE, &config.faults);
    let store = skeleton.store(&config.storage, &store::STORES);
    let hasher = PasswordHasher::new(config.bcrypt_cost);
    let admin = bootstrap::AdminAccount {
        username: normalize_username(&config.admin_username),
        email: config.admin_email.clone(),
        password: config.admin_password()?,
    };
    let admin_username = admin.username.clone();
    let admin_account = bootstrap::run(admin, store.clone(), hasher).await?;

    let upstreams = skeleton.upstreams(&config.upstream);
    let cart_service = upstreams.upstream(topology::CART.name, &config.cart_service_url);
    let order_service = upstreams.upstream(topology::ORDER.name, &config.order_service_url);
    let readiness = Skeleton::readiness(
        store.clone(),
        vec![
            admin_account,
            Arc::new(UpstreamCheck(cart_service.clone())),
            Arc::new(UpstreamCheck(order_service.clone())),
        ],
    );
    let verifier = Arc::new(TokenVerifier::from_jwks(&signer.jwks()));
    let state = api::AppState {
        verifier: verifier.clone(),
        signer,
        store,
        hasher,
        service_clients: Arc::new(service_clients),
        cart_service,
        order_service,
        readiness: readiness.clone(),
        business: UserMetrics::new(skeleton.metrics.registry()),
        admin_username: admin_username.into(),
    };
    let http = config.http.settings();
    Ok(skeleton.router(api::routes(state), readiness, verifier, &http))
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    service::run(&api::SERVICE, config.listen, &config.http, async |_| {
        app(&config).await
    })
    .await
}

fn token_signer(config: &Config) -> anyhow::Result<TokenSigner> {
    let ttl = Duration::from_secs(config.token_ttl_seconds);
    match &config.jwt_private_key_file {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the signing key {}", path.display()))?;
            TokenSigner::from_pem(&pem, ttl)
                .with_context(|| format!("{} is not an Ed25519 PKCS#8 PEM key", path.display()))
        }
        None => {
            tracing::warn!("JWT_PRIVATE_KEY_FILE is not set: signing with a key generated now");
            TokenSigner::generate(ttl)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut all = vec!["user-service"];
        all.extend_from_slice(args);
        Config::try_parse_from(all).unwrap()
    }

    #[test]
    fn the_admin_password_is_required_outside_development() {
        let unset = config(&[]).admin_password().unwrap_err().to_string();
        assert!(unset.starts_with("ADMIN_PASSWORD is not set"), "{unset}");
        let published = config(&["--admin-password", DEV_ADMIN_PASSWORD]);
        let refused = published.admin_password().unwrap_err().to_string();
        assert!(
            refused.contains("published development password"),
            "{refused}"
        );
        assert!(
            !refused.contains(DEV_ADMIN_PASSWORD),
            "never shows the password"
        );
        let short = config(&["--admin-password", "short"]).admin_password();
        assert!(short.is_err());
        let own = config(&["--admin-password", "a long one of my own"]);
        assert_eq!(own.admin_password().unwrap(), "a long one of my own");
    }

    #[test]
    fn development_keeps_the_published_admin_password() {
        assert_eq!(
            config(&["--dev"]).admin_password().unwrap(),
            DEV_ADMIN_PASSWORD
        );
        let mut shop = config(&[]);
        shop.development_admin = true;
        assert_eq!(shop.admin_password().unwrap(), DEV_ADMIN_PASSWORD);
    }
}
