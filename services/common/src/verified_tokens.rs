//! Tokens this process has verified, kept until they expire.
//!
//! An EdDSA signature check is the largest part of an authenticated request's CPU (a third
//! of a cart add's in the cart service), and a client sends the same token with every
//! request for as long as it lives. Keeping what a check found is sound because a token's
//! validity depends only on its bytes, the signing key and the clock:
//! - an entry is keyed by the whole token, not by a digest whose collisions could be forged;
//! - it is kept no longer than the token's own `exp` (plus the verifier's leeway), and
//!   never longer than [`KEEP_AT_MOST`];
//! - only tokens that passed are kept, so a forged token costs a signature check each time;
//! - a key stays trusted for `KEY_RETENTION` after it was last published, longer than any
//!   token lives, so no kept token outlives the key that signed it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::Expiry;
use moka::sync::Cache;

use crate::auth::Claims;

/// Tokens kept at most; one per signed-in client is plenty.
const CAPACITY: u64 = 100_000;
const KEEP_AT_MOST: Duration = Duration::from_secs(300);

pub struct VerifiedTokens {
    kept: Cache<String, Claims>,
    leeway_seconds: u64,
}

impl VerifiedTokens {
    pub fn new(leeway_seconds: u64) -> Self {
        Self {
            kept: Cache::builder()
                .max_capacity(CAPACITY)
                .expire_after(UntilExpired { leeway_seconds })
                .build(),
            leeway_seconds,
        }
    }

    /// The claims of `token` if it was verified and has not expired since.
    pub fn get(&self, token: &str) -> Option<Claims> {
        let claims = self.kept.get(token)?;
        // The cache evicts on its own schedule; the token's `exp` is what decides.
        (!lifetime_left(&claims, self.leeway_seconds).is_zero()).then_some(claims)
    }

    /// Keeps the claims a signature check found for `token`.
    pub fn keep(&self, token: &str, claims: &Claims) {
        self.kept.insert(token.to_owned(), claims.clone());
    }
}

struct UntilExpired {
    leeway_seconds: u64,
}

impl Expiry<String, Claims> for UntilExpired {
    fn expire_after_create(
        &self,
        _token: &String,
        claims: &Claims,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(lifetime_left(claims, self.leeway_seconds).min(KEEP_AT_MOST))
    }
}

fn lifetime_left(claims: &Claims, leeway_seconds: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Duration::from_secs((claims.exp + leeway_seconds).saturating_sub(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn claims_expiring_at(exp: u64) -> Claims {
        Claims {
            sub: "a-subject".into(),
            name: "alice".into(),
            role: Role::User,
            iss: "shop".into(),
            aud: "shop".into(),
            iat: 0,
            exp,
            jti: "an-id".into(),
        }
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn a_kept_token_is_found_by_its_exact_bytes_only() {
        let tokens = VerifiedTokens::new(5);
        tokens.keep("header.payload.signature", &claims_expiring_at(now() + 60));
        assert_eq!(
            tokens.get("header.payload.signature").unwrap().name,
            "alice"
        );
        assert!(tokens.get("header.payload.signaturf").is_none());
        assert!(tokens.get("header.payload.signatur").is_none());
    }

    #[test]
    fn a_kept_token_past_its_expiry_and_leeway_is_not_found() {
        let tokens = VerifiedTokens::new(5);
        tokens.keep("within-leeway", &claims_expiring_at(now() - 2));
        tokens.keep("expired", &claims_expiring_at(now() - 6));
        assert!(tokens.get("within-leeway").is_some());
        assert!(tokens.get("expired").is_none());
    }
}
