//! The admin account: created at start-up when missing, and its password kept equal to
//! `ADMIN_PASSWORD`, so changing the variable and restarting changes the password.
//!
//! The store may not answer at start-up: a CQL store connects in the background, and the
//! database may be down for a while. Start-up then neither waits nor fails: the service
//! starts (its health endpoints say why it is not ready; requests that need the store get
//! 503) and a background task tries again, backing off, until the store answers. Waiting
//! would leave nothing listening to tell why; failing would turn a database outage into a
//! crash loop. The service is not ready until the account exists ([`AdminAccountCheck`]):
//! a client that waits for readiness and then logs in as admin must not find the store
//! answering and the account still missing. A store that answers at once (the memory
//! store, or a database already connected) settles it before the service serves anything.
//! Every attempt inserts the same account (same id), so an attempt whose answer was lost
//! is completed by the next rather than refused as a taken username; instances that start
//! together create one admin, as the username is claimed with a lightweight transaction.
//!
//! Registration refuses the admin's username, so nobody can claim it while the store is
//! away; should an ordinary account hold it anyway (ADMIN_USERNAME changed to a name
//! already registered), the bootstrap refuses to make it an admin and says so.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use shop_common::auth::Role;
use shop_common::health::HealthCheck;
use shop_common::store::StoreError;
use uuid::Uuid;

use crate::domain::{StoredUser, User, UserChange};
use crate::passwords::PasswordHasher;
use crate::store::{InsertOutcome, UserStore};

/// The first wait before trying again, doubled after every failure up to [`RETRY_MAX`]:
/// short, since the service is unready until the account exists.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(4);

/// Readiness check: the admin account exists with the configured password.
#[derive(Default)]
pub struct AdminAccountCheck(AtomicBool);

impl AdminAccountCheck {
    fn settle(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl HealthCheck for AdminAccountCheck {
    fn name(&self) -> &'static str {
        "admin_account"
    }

    async fn check(&self) -> Result<(), String> {
        if self.0.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err("the admin account is not created yet".to_owned())
        }
    }
}

/// The admin account the service keeps.
pub struct AdminAccount {
    pub username: String,
    pub email: String,
    pub password: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("the store does not answer: {0}")]
    Store(#[from] StoreError),
    #[error(
        "ADMIN_USERNAME {0:?} belongs to an ordinary account, which is not made an admin: \
         choose another ADMIN_USERNAME"
    )]
    TakenByUser(String),
    #[error("cannot hash or check the admin password: {0}")]
    Password(String),
}

/// Makes sure the admin account exists with the configured password; see the module
/// comment for what happens when the store does not answer yet. The check it returns
/// passes once the account exists.
pub async fn run(
    account: AdminAccount,
    store: Arc<dyn UserStore>,
    hasher: PasswordHasher,
) -> Result<Arc<AdminAccountCheck>, BootstrapError> {
    let settled = Arc::new(AdminAccountCheck::default());
    let admin = StoredUser {
        user: User {
            id: Uuid::new_v4(),
            username: account.username,
            email: account.email,
            full_name: Some("Shop administrator".to_owned()),
            role: Role::Admin,
            created_at: Utc::now(),
        },
        password_hash: hasher
            .hash(account.password.clone())
            .await
            .map_err(password_error)?,
    };
    let password = account.password;
    match ensure_admin(store.as_ref(), &admin, &password, hasher).await {
        Err(BootstrapError::Store(err)) => {
            tracing::info!(error = %err, "the store does not answer yet: the admin account will be created when it does");
        }
        Ok(()) => {
            settled.settle();
            return Ok(settled);
        }
        Err(err) => return Err(err),
    }
    let check = settled.clone();
    tokio::spawn(async move {
        let mut wait = RETRY_FIRST;
        loop {
            tokio::time::sleep(wait).await;
            match ensure_admin(store.as_ref(), &admin, &password, hasher).await {
                Ok(()) => {
                    check.settle();
                    return;
                }
                Err(BootstrapError::Store(err)) => {
                    wait = (wait * 2).min(RETRY_MAX);
                    tracing::warn!(error = %err, retry_in_seconds = wait.as_secs(),
                        "cannot create the admin account yet");
                }
                Err(err) => {
                    tracing::error!(error = %err, "no admin account");
                    return;
                }
            }
        }
    });
    Ok(settled)
}

/// Creates the admin, or brings its password in line with the configured one.
pub async fn ensure_admin(
    store: &dyn UserStore,
    admin: &StoredUser,
    password: &str,
    hasher: PasswordHasher,
) -> Result<(), BootstrapError> {
    let username = &admin.user.username;
    let Some(existing) = store.by_username(username).await? else {
        if store.insert(admin).await? == InsertOutcome::Inserted {
            tracing::info!(%username, "admin account created");
        }
        return Ok(());
    };
    if existing.user.role != Role::Admin {
        return Err(BootstrapError::TakenByUser(username.clone()));
    }
    let current = hasher
        .verify(password.to_owned(), Some(existing.password_hash))
        .await
        .map_err(password_error)?;
    if !current {
        let change = UserChange {
            password_hash: Some(admin.password_hash.clone()),
            ..UserChange::default()
        };
        store.update(existing.user.id, &change).await?;
        tracing::info!(%username, "admin password changed to ADMIN_PASSWORD");
    }
    Ok(())
}

fn password_error(err: impl std::fmt::Display) -> BootstrapError {
    BootstrapError::Password(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryUserStore;

    async fn account(username: &str, role: Role, password: &str) -> StoredUser {
        StoredUser {
            user: User {
                id: Uuid::new_v4(),
                username: username.to_owned(),
                email: format!("{username}@example.com"),
                full_name: None,
                role,
                created_at: Utc::now(),
            },
            password_hash: PasswordHasher::new(4)
                .hash(password.to_owned())
                .await
                .unwrap(),
        }
    }

    #[tokio::test]
    async fn the_service_is_unready_until_the_admin_account_exists() {
        assert!(AdminAccountCheck::default().check().await.is_err());
        let store: Arc<dyn UserStore> = Arc::new(MemoryUserStore::new());
        let admin = AdminAccount {
            username: "admin".into(),
            email: "admin@example.com".into(),
            password: "a-password".into(),
        };
        let check = run(admin, store.clone(), PasswordHasher::new(4))
            .await
            .unwrap();
        assert!(store.by_username("admin").await.unwrap().is_some());
        assert_eq!(check.check().await, Ok(()));
    }

    #[tokio::test]
    async fn a_changed_admin_password_replaces_the_stored_one() {
        let hasher = PasswordHasher::new(4);
        let store = MemoryUserStore::new();
        let first = account("admin", Role::Admin, "first").await;
        ensure_admin(&store, &first, "first", hasher).await.unwrap();
        let second = account("admin", Role::Admin, "second").await;
        ensure_admin(&store, &second, "second", hasher)
            .await
            .unwrap();
        let kept = store.by_username("admin").await.unwrap().unwrap();
        assert_eq!(kept.user.id, first.user.id, "the same account");
        assert!(
            hasher
                .verify("second".into(), Some(kept.password_hash))
                .await
                .unwrap(),
            "the password is the one configured now"
        );
    }

    #[tokio::test]
    async fn an_ordinary_account_under_the_admin_name_is_not_made_an_admin() {
        let hasher = PasswordHasher::new(4);
        let store = MemoryUserStore::new();
        let squatter = account("admin", Role::User, "mine").await;
        store.insert(&squatter).await.unwrap();
        let admin = account("admin", Role::Admin, "admin").await;
        let refused = ensure_admin(&store, &admin, "admin", hasher).await;
        assert!(
            matches!(refused, Err(BootstrapError::TakenByUser(_))),
            "{refused:?}"
        );
        let kept = store.by_username("admin").await.unwrap().unwrap();
        assert_eq!(kept.user.role, Role::User);
    }
}
