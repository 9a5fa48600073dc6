//! The user service: accounts, tokens and each user's view of the shop, on port 8003
//! under `/user-api`.

pub mod api;
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
use chrono::Utc;
use clap::Parser;
use shop_common::auth::{Role, TokenSigner, TokenVerifier};
use shop_common::client::Upstream;
use shop_common::config::{AuthArgs, HttpArgs, UpstreamArgs};
use shop_common::connections::UpstreamCheck;
use shop_common::cql::{Cql, StorageArgs, StorageKind};
use shop_common::faults::{FaultArgs, Faults};
use shop_common::health::{HealthCheck, Readiness, StoreCheck};
use shop_common::server;
use shop_common::store::StoreResult;
use shop_common::telemetry::metrics::Metrics;
use uuid::Uuid;

use crate::domain::{StoredUser, User, normalize_username};
use crate::metrics::UserMetrics;
use crate::passwords::PasswordHasher;
use crate::service_clients::ServiceClients;
use crate::store::{CqlUserStore, InsertOutcome, MemoryUserStore, UserStore};

pub const SERVICE_NAME: &str = "user-service";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "user-service",
    version,
    about = "The shop's users, tokens and profiles"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "USER_LISTEN", default_value = "127.0.0.1:8003")]
    pub listen: SocketAddr,
    /// Base URL of the cart service.
    #[arg(
        long,
        env = "CART_SERVICE_URL",
        default_value = "http://127.0.0.1:8001"
    )]
    pub cart_service_url: String,
    /// Base URL of the order service.
    #[arg(
        long,
        env = "ORDER_SERVICE_URL",
        default_value = "http://127.0.0.1:8002"
    )]
    pub order_service_url: String,
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
    #[arg(
        long,
        env = "ADMIN_PASSWORD",
        default_value = "admin-change-me",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub admin_password: String,
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

pub async fn app(config: &Config) -> anyhow::Result<Router> {
    let service_clients = ServiceClients::new(config.auth.client_secret()?);
    let signer = Arc::new(token_signer(config)?);
    let metrics = Metrics::new(SERVICE_NAME);
    let faults = Faults::new(&config.faults, &metrics);
    let store: Arc<dyn UserStore> = match config.storage.storage {
        StorageKind::Memory => Arc::new(MemoryUserStore::new()),
        StorageKind::Cql => {
            let settings = config.storage.cql_settings(store::DEFAULT_KEYSPACE);
            let cql = Cql::start(settings, &store::SCHEMA, metrics.db.clone(), faults.clone());
            Arc::new(CqlUserStore::new(cql))
        }
    };
    let hasher = PasswordHasher::new(config.bcrypt_cost);
    bootstrap_admin(config, store.clone(), hasher).await?;

    let settings = config.upstream.settings();
    let http = settings.http_client();
    let upstream = |name, url: &str| {
        Upstream::new(
            name,
            url,
            http.clone(),
            settings.clone(),
            None,
            metrics.client.clone(),
            faults.clone(),
        )
    };
    let cart_service = upstream("cart-service", &config.cart_service_url);
    let order_service = upstream("order-service", &config.order_service_url);
    let readiness = Readiness::new(vec![
        Arc::new(StoreCheck(store.clone())) as Arc<dyn HealthCheck>,
        Arc::new(UpstreamCheck(cart_service.clone())),
        Arc::new(UpstreamCheck(order_service.clone())),
    ]);
    let state = api::AppState {
        verifier: Arc::new(TokenVerifier::from_jwks(&signer.jwks())),
        signer,
        store,
        hasher,
        service_clients: Arc::new(service_clients),
        cart_service,
        order_service,
        readiness,
        business: UserMetrics::new(metrics.registry()),
    };
    Ok(api::router(
        state,
        &config.http.settings(),
        metrics,
        &faults,
    ))
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let router = app(&config).await?;
    tracing::info!(address = %config.listen, "user service listening");
    server::serve(listener, router, server::shutdown_signal()).await?;
    Ok(())
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

/// The first wait before creating the admin account again, doubled after every failure up
/// to [`BOOTSTRAP_RETRY_MAX`].
const BOOTSTRAP_RETRY_FIRST: Duration = Duration::from_secs(1);
const BOOTSTRAP_RETRY_MAX: Duration = Duration::from_secs(30);

/// Creates the admin account when it is missing.
///
/// The store may not answer at start-up: a CQL store connects in the background, and the
/// database may be down for a while. Start-up then neither waits nor fails: the service
/// starts (its health endpoints say why it is not ready; requests that need the store get
/// 503) and a background task tries again, backing off, until the store answers and the
/// admin exists. Waiting would leave nothing listening to tell why; failing would turn a
/// database outage into a crash loop. A store that answers at once (the memory store, or a
/// database already connected) settles it before the service serves anything. Every attempt
/// inserts the same account (same id), so an attempt whose answer was lost is completed by
/// the next rather than refused as a taken username; instances that start together create
/// one admin, as the username is claimed with a lightweight transaction. Only a password
/// that cannot be hashed stops start-up: no retry would help.
async fn bootstrap_admin(
    config: &Config,
    store: Arc<dyn UserStore>,
    hasher: PasswordHasher,
) -> anyhow::Result<()> {
    let admin = StoredUser {
        user: User {
            id: Uuid::new_v4(),
            username: normalize_username(&config.admin_username),
            email: config.admin_email.clone(),
            full_name: Some("Shop administrator".to_owned()),
            role: Role::Admin,
            created_at: Utc::now(),
        },
        password_hash: hasher
            .hash(config.admin_password.clone())
            .await
            .map_err(|err| anyhow::anyhow!("cannot hash the admin password: {err}"))?,
    };
    let Err(err) = ensure_admin(store.as_ref(), &admin).await else {
        return Ok(());
    };
    tracing::info!(error = %err, "the store does not answer yet: the admin account will be created when it does");
    tokio::spawn(async move {
        let mut wait = BOOTSTRAP_RETRY_FIRST;
        loop {
            tokio::time::sleep(wait).await;
            match ensure_admin(store.as_ref(), &admin).await {
                Ok(()) => return,
                Err(err) => {
                    wait = (wait * 2).min(BOOTSTRAP_RETRY_MAX);
                    tracing::warn!(error = %err, retry_in_seconds = wait.as_secs(),
                        "cannot create the admin account yet");
                }
            }
        }
    });
    Ok(())
}

async fn ensure_admin(store: &dyn UserStore, admin: &StoredUser) -> StoreResult<()> {
    if store.by_username(&admin.user.username).await?.is_some() {
        return Ok(());
    }
    if store.insert(admin).await? == InsertOutcome::Inserted {
        tracing::info!(username = %admin.user.username, "admin account created");
    }
    Ok(())
}
