//! Users and the requests that create and change them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shop_common::ApiError;
use shop_common::auth::Role;
use shop_common::models::cart::Cart;
use shop_common::models::order::{Order, OrderEvent};
use shop_common::validate::Validator;
use utoipa::ToSchema;
use uuid::Uuid;

/// bcrypt reads at most 72 bytes; longer passwords would be silently truncated.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// The fields a user chooses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserBase {
    /// Letters, digits, `_`, `.` and `-`; stored in lower case and unique.
    #[schema(pattern = "^[A-Za-z0-9_.-]{3,50}$")]
    pub username: String,
    #[schema(pattern = "^[^@\\s]+@[^@\\s]+$", max_length = 254)]
    pub email: String,
    #[schema(max_length = 100)]
    pub full_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    #[schema(pattern = "^[A-Za-z0-9_.-]{3,50}$")]
    pub username: String,
    #[schema(pattern = "^[^@\\s]+@[^@\\s]+$", max_length = 254)]
    pub email: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub full_name: Option<String>,
    #[schema(min_length = 8, max_length = 72)]
    pub password: String,
}

/// A partial update of the caller's own account.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[schema(pattern = "^[^@\\s]+@[^@\\s]+$", max_length = 254)]
    pub email: Option<String>,
    #[schema(max_length = 100)]
    pub full_name: Option<String>,
    #[schema(min_length = 8, max_length = 72)]
    pub password: Option<String>,
    /// The password now, required with `password`: a token alone (stolen, or left on a
    /// shared machine) must not be enough to take the account over.
    #[schema(max_length = 72)]
    pub current_password: Option<String>,
}

/// A user as the API shows it: never with a password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub full_name: Option<String>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// A user as stored: with the bcrypt hash of their password.
#[derive(Debug, Clone)]
pub struct StoredUser {
    pub user: User,
    pub password_hash: String,
}

/// What an update changes, with the new password already hashed.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub password_hash: Option<String>,
}

/// The user with their cart, orders and latest order news.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserProfile {
    pub user: User,
    pub cart: Cart,
    pub orders: Vec<Order>,
    pub total_spent_cents: i64,
    /// Status changes the order service reported, newest first.
    pub recent_order_events: Vec<OrderEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TotalSpent {
    pub user_id: Uuid,
    /// Orders that were not cancelled.
    pub order_count: i64,
    pub total_spent_cents: i64,
}

impl UserCreate {
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut v = Validator::new();
        check_username(&mut v, &self.username);
        check_email(&mut v, &self.email);
        if let Some(name) = &self.full_name {
            v.text("full_name", name, 0, 100);
        }
        check_password(&mut v, &self.password);
        v.finish()
    }
}

impl UserUpdate {
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut v = Validator::new();
        if let Some(email) = &self.email {
            check_email(&mut v, email);
        }
        if let Some(name) = &self.full_name {
            v.text("full_name", name, 0, 100);
        }
        if let Some(password) = &self.password {
            check_password(&mut v, password);
            v.check(self.current_password.is_some(), "current_password", || {
                "is required to change the password".to_owned()
            });
        }
        v.finish()
    }
}

pub fn normalize_username(username: &str) -> String {
    username.to_ascii_lowercase()
}

fn check_username(v: &mut Validator, username: &str) {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    v.check(
        (3..=50).contains(&username.len()) && username.chars().all(allowed),
        "username",
        || "must be 3 to 50 letters, digits, '_', '.' or '-'".to_owned(),
    );
}

fn check_email(v: &mut Validator, email: &str) {
    let well_formed = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && !email.chars().any(char::is_whitespace)
    });
    v.check(well_formed && email.len() <= 254, "email", || {
        "must be an email address of at most 254 characters".to_owned()
    });
}

fn check_password(v: &mut Validator, password: &str) {
    v.check(
        password.chars().count() >= 8 && password.len() <= MAX_PASSWORD_BYTES,
        "password",
        || format!("must be at least 8 characters and at most {MAX_PASSWORD_BYTES} bytes"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(username: &str, email: &str, password: &str) -> UserCreate {
        UserCreate {
            username: username.into(),
            email: email.into(),
            full_name: None,
            password: password.into(),
        }
    }

    #[test]
    fn accepts_a_reasonable_user() {
        assert!(
            create("alice_01", "alice@example.com", "correct horse")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn refuses_bad_usernames_emails_and_passwords() {
        for (username, email, password) in [
            ("al", "alice@example.com", "long enough"),
            ("alice smith", "alice@example.com", "long enough"),
            ("alice", "alice.example.com", "long enough"),
            ("alice", "a@b@c", "long enough"),
            ("alice", "alice@example.com", "short"),
            ("alice", "alice@example.com", &"x".repeat(73)),
        ] {
            assert!(
                create(username, email, password).validate().is_err(),
                "{username} / {email} / {password} should be refused"
            );
        }
    }
}
