//! Identity: tokens are signed only by the user service (Ed25519) and verified everywhere
//! against its published key set. No header other than `Authorization` is ever trusted.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::client::{Credentials, Upstream};
use crate::models::identity::FetchSigningKeys;
use crate::problem::ApiError;
use crate::verified_tokens::VerifiedTokens;

pub const ISSUER: &str = "shop-user-service";
pub const AUDIENCE: &str = "shop";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
    /// Another service of the shop, acting on no user's behalf.
    Service,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub name: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
}

/// Mints tokens. Only the user service holds one.
pub struct TokenSigner {
    key: EncodingKey,
    kid: String,
    public_jwk: Jwk,
    ttl: Duration,
}

impl TokenSigner {
    /// A fresh key for this process: tokens die with it, which suits development and tests.
    pub fn generate(ttl: Duration) -> anyhow::Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|err| anyhow::anyhow!("no OS randomness: {err}"))?;
        Self::from_signing_key(&SigningKey::from_bytes(&seed), ttl)
    }

    /// A persistent Ed25519 key in PKCS#8 PEM, so tokens survive restarts and replicas agree.
    pub fn from_pem(pem: &str, ttl: Duration) -> anyhow::Result<Self> {
        Self::from_signing_key(&SigningKey::from_pkcs8_pem(pem)?, ttl)
    }

    fn from_signing_key(signing_key: &SigningKey, ttl: Duration) -> anyhow::Result<Self> {
        let der = signing_key.to_pkcs8_der()?;
        let mut public_jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(signing_key.verifying_key().to_bytes()),
            }),
        };
        let kid = public_jwk.thumbprint(ThumbprintHash::SHA256)?;
        public_jwk.common.key_id = Some(kid.clone());
        Ok(Self {
            key: EncodingKey::from_ed_der(der.as_bytes()),
            kid,
            public_jwk,
            ttl,
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.public_jwk.clone()],
        }
    }

    pub fn sign(&self, subject: &str, name: &str, role: Role) -> Result<String, ApiError> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: subject.to_owned(),
            name: name.to_owned(),
            role,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + self.ttl.as_secs(),
            jti: Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|err| ApiError::Internal(format!("signing a token failed: {err}")))
    }
}

/// Where a verifier gets the user service's public keys.
enum KeySource {
    Fixed,
    /// Fetched from the user service's JWKS endpoint, again when an unknown key id shows up.
    Remote(Upstream),
}

/// Checks signature (EdDSA only: `none` and HMAC are refused), expiry, issuer and audience.
///
/// The keys of every fetched key set are merged, not replaced: behind one URL, replicas of
/// the user service may publish different sets (each its own key, or one mid-rotation), and
/// a token signed by any of them stays valid. A key no fetch has shown for
/// `KEY_RETENTION` is dropped at the next fetch.
pub struct TokenVerifier {
    keys: RwLock<HashMap<String, KnownKey>>,
    source: KeySource,
    validation: Validation,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    verified: VerifiedTokens,
}

const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);
/// How long a key stays trusted after the last key set that showed it: longer than any
/// token lives (`TOKEN_TTL_SECONDS`, an hour by default), so a token signed just before a
/// rotation outlives its key's removal.
pub const KEY_RETENTION: Duration = Duration::from_secs(2 * 3600);

struct KnownKey {
    key: DecodingKey,
    last_seen: Instant,
}

impl TokenVerifier {
    pub fn from_jwks(jwks: &JwkSet) -> Self {
        let verifier = Self::with_source(KeySource::Fixed, HashMap::new());
        verifier.merge(jwks, Instant::now());
        verifier
    }

    pub fn remote(upstream: Upstream) -> Self {
        Self::with_source(KeySource::Remote(upstream), HashMap::new())
    }

    fn with_source(source: KeySource, keys: HashMap<String, KnownKey>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            keys: RwLock::new(keys),
            source,
            verified: VerifiedTokens::new(validation.leeway),
            validation,
            last_refresh: tokio::sync::Mutex::new(None),
        }
    }

    /// The token's claims if it is valid; a token verified before and not expired since is
    /// not checked again (see [`VerifiedTokens`]).
    pub async fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        if let Some(claims) = self.verified.get(token) {
            return Ok(claims);
        }
        let claims = self.verify_signature(token).await?;
        self.verified.keep(token, &claims);
        Ok(claims)
    }

    async fn verify_signature(&self, token: &str) -> Result<Claims, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid_token())?;
        let kid = header.kid.ok_or_else(invalid_token)?;
        if let Some(claims) = self.verify_with_known_key(token, &kid)? {
            return Ok(claims);
        }
        self.refresh_keys().await?;
        self.verify_with_known_key(token, &kid)?
            .ok_or_else(invalid_token)
    }

    fn verify_with_known_key(&self, token: &str, kid: &str) -> Result<Option<Claims>, ApiError> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(known) = keys.get(kid) else {
            return Ok(None);
        };
        jsonwebtoken::decode::<Claims>(token, &known.key, &self.validation)
            .map(|data| Some(data.claims))
            .map_err(|_| invalid_token())
    }

    /// Whether verification can work at all: keys are known or can be fetched now.
    pub async fn ready(&self) -> Result<(), String> {
        if !self.keys.read().map(|keys| keys.is_empty()).unwrap_or(true) {
            return Ok(());
        }
        self.refresh_keys()
            .await
            .map_err(|err| format!("signing keys unavailable: {err}"))
    }

    async fn refresh_keys(&self) -> Result<(), ApiError> {
        let KeySource::Remote(upstream) = &self.source else {
            return Err(invalid_token());
        };
        let mut last_refresh = self.last_refresh.lock().await;
        let refreshed_recently = last_refresh.is_some_and(|at| at.elapsed() < MIN_REFRESH_INTERVAL);
        let have_keys = !self.keys.read().map(|keys| keys.is_empty()).unwrap_or(true);
        // Unknown key ids in forged tokens must not turn into a request flood on the user service.
        if refreshed_recently && have_keys {
            return Ok(());
        }
        let jwks = upstream.call(&FetchSigningKeys, Credentials::None).await?;
        let now = Instant::now();
        self.merge(&jwks, now);
        *last_refresh = Some(now);
        Ok(())
    }

    /// Adds the set's keys to the known ones, and forgets keys no set showed for
    /// `KEY_RETENTION`.
    fn merge(&self, jwks: &JwkSet, now: Instant) {
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for jwk in &jwks.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk))
            else {
                continue;
            };
            keys.insert(
                kid,
                KnownKey {
                    key,
                    last_seen: now,
                },
            );
        }
        keys.retain(|_, known| now.duration_since(known.last_seen) < KEY_RETENTION);
    }
}

fn invalid_token() -> ApiError {
    ApiError::Unauthorized("the access token is missing, malformed, expired or not ours".to_owned())
}

/// The caller, as proven by a verified bearer token (a user, an admin or a service).
#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: String,
    pub name: String,
    pub role: Role,
    /// The raw token, forwarded on calls made on this caller's behalf.
    pub token: String,
}

impl<S> FromRequestParts<S> for Principal
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        let claims = Arc::<TokenVerifier>::from_ref(state).verify(token).await?;
        Ok(Principal {
            subject: claims.sub,
            name: claims.name,
            role: claims.role,
            token: token.to_owned(),
        })
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("this endpoint needs a bearer token".to_owned()))?;
    let value = value.to_str().map_err(|_| invalid_token())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(invalid_token)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(invalid_token());
    }
    Ok(token.trim())
}

/// A shop user (or admin) acting for themselves. Service tokens are refused here.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: Uuid,
    pub username: String,
    pub role: Role,
    pub token: String,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn credentials(&self) -> Credentials<'_> {
        Credentials::Bearer(&self.token)
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if principal.role == Role::Service {
            return Err(ApiError::Forbidden(
                "service tokens cannot act as a user".to_owned(),
            ));
        }
        let id = Uuid::parse_str(&principal.subject).map_err(|_| invalid_token())?;
        Ok(AuthUser {
            id,
            username: principal.name,
            role: principal.role,
            token: principal.token,
        })
    }
}

/// An admin user; everyone else gets 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

impl<S> FromRequestParts<S> for AdminUser
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin() {
            return Err(ApiError::Forbidden(
                "this endpoint is for admins only".to_owned(),
            ));
        }
        Ok(AdminUser(user))
    }
}

/// Another shop service calling an internal endpoint; users (even admins) get 403.
#[derive(Debug, Clone)]
pub struct ServiceCaller {
    pub name: String,
}

impl<S> FromRequestParts<S> for ServiceCaller
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if principal.role != Role::Service {
            return Err(ApiError::Forbidden(
                "this endpoint is internal to the shop's services".to_owned(),
            ));
        }
        Ok(ServiceCaller {
            name: principal.subject,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::operation::Operation;

    fn signer() -> TokenSigner {
        TokenSigner::generate(Duration::from_secs(60)).unwrap()
    }

    #[tokio::test]
    async fn accepts_its_own_tokens() {
        let signer = signer();
        let verifier = TokenVerifier::from_jwks(&signer.jwks());
        let token = signer.sign("a-subject", "alice", Role::Admin).unwrap();
        let claims = verifier.verify(&token).await.unwrap();
        assert_eq!((claims.name.as_str(), claims.role), ("alice", Role::Admin));
    }

    #[tokio::test]
    async fn a_token_verified_once_still_refuses_its_altered_copies() {
        let signer = signer();
        let verifier = TokenVerifier::from_jwks(&signer.jwks());
        let token = signer.sign("a-subject", "alice", Role::User).unwrap();
        verifier.verify(&token).await.unwrap();
        let (unsigned, signature) = token.rsplit_once('.').unwrap();
        let other_signature = signer.sign("a-subject", "alice", Role::Admin).unwrap();
        let grafted = format!("{unsigned}.{}", other_signature.rsplit_once('.').unwrap().1);
        let promoted = {
            let (header, rest) = token.split_once('.').unwrap();
            let payload = rest.split_once('.').unwrap().0;
            let mut claims: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
            claims["role"] = serde_json::json!("admin");
            let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
            format!("{header}.{payload}.{signature}")
        };
        for altered in [grafted, promoted] {
            assert!(
                matches!(
                    verifier.verify(&altered).await,
                    Err(ApiError::Unauthorized(_))
                ),
                "{altered}"
            );
        }
        assert_eq!(verifier.verify(&token).await.unwrap().role, Role::User);
    }

    #[tokio::test]
    async fn refuses_tokens_signed_by_another_key() {
        let verifier = TokenVerifier::from_jwks(&signer().jwks());
        let forged = signer().sign("a-subject", "mallory", Role::Admin).unwrap();
        assert!(matches!(
            verifier.verify(&forged).await,
            Err(ApiError::Unauthorized(_))
        ));
    }

    #[tokio::test]
    async fn refuses_unsigned_and_hmac_tokens() {
        let signer = signer();
        let verifier = TokenVerifier::from_jwks(&signer.jwks());
        let genuine = signer.sign("s", "alice", Role::User).unwrap();
        let payload = genuine.split('.').nth(1).unwrap();
        let kid = signer.kid.clone();
        let alg_none_header = base64_url(&format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#));
        let unsigned = format!("{alg_none_header}.{payload}.");
        assert!(verifier.verify(&unsigned).await.is_err());

        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid);
        let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(&genuine).unwrap();
        let hmac =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"guess")).unwrap();
        assert!(verifier.verify(&hmac).await.is_err());
    }

    #[tokio::test]
    async fn refuses_expired_tokens() {
        let signer = signer();
        let verifier = TokenVerifier::from_jwks(&signer.jwks());
        let genuine = signer.sign("s", "alice", Role::User).unwrap();
        let mut claims =
            jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(&genuine).unwrap();
        claims.exp = jsonwebtoken::get_current_timestamp() - 3600;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(signer.kid.clone());
        let expired = jsonwebtoken::encode(&header, &claims, &signer.key).unwrap();
        assert!(verifier.verify(&expired).await.is_err());
    }

    /// A key-set URL behind which two user-service replicas take turns, each publishing
    /// only its own key.
    async fn replicas_with_keys_of_their_own(a: JwkSet, b: JwkSet) -> Upstream {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let router = axum::Router::new().route(
            &FetchSigningKeys.path(),
            axum::routing::get(move || {
                let call = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let set = if call.is_multiple_of(2) {
                    a.clone()
                } else {
                    b.clone()
                };
                async move { axum::Json(set) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(axum::serve(listener, router).into_future());
        let settings = crate::client::UpstreamSettings::default();
        crate::client::Upstream::new(
            "user-service",
            &crate::client::BaseUrls::single(format!("http://{address}")),
            settings.http_client(),
            settings,
            None,
            crate::telemetry::metrics::Metrics::new("auth-test")
                .client
                .clone(),
            crate::faults::Faults::default(),
        )
    }

    #[tokio::test]
    async fn keys_from_replicas_that_publish_different_sets_all_stay_trusted() {
        let (a, b) = (signer(), signer());
        let verifier =
            TokenVerifier::remote(replicas_with_keys_of_their_own(a.jwks(), b.jwks()).await);
        let from_a = a.sign("s", "alice", Role::User).unwrap();
        let from_b = b.sign("s", "bob", Role::User).unwrap();
        assert!(verifier.verify(&from_a).await.is_ok());
        tokio::time::sleep(MIN_REFRESH_INTERVAL + Duration::from_millis(100)).await;
        assert!(
            verifier.verify(&from_b).await.is_ok(),
            "the second set is fetched"
        );
        assert!(
            verifier.verify(&from_a).await.is_ok(),
            "the first replica's key was not evicted by the second's set"
        );
    }

    fn base64_url(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }
}
