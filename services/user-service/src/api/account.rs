//! Registration and tokens.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use serde::Deserialize;
use shop_common::auth::Role;
use shop_common::extract::{Form, Json};
use shop_common::models::identity::TokenResponse;
use shop_common::models::identity::{FetchSigningKeys, IssueServiceToken};
use shop_common::models::operation::Operation;
use shop_common::server;
use shop_common::{ApiError, ApiResult, Problem};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use crate::domain::{StoredUser, User, UserCreate, normalize_username};
use crate::metrics::LoginOutcome;
use crate::store::InsertOutcome;

/// Creates an account with the `user` role.
#[utoipa::path(post, path = "/users/register", tag = "users", request_body = UserCreate,
    responses(
        (status = 201, description = "Registered", body = User),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The username is taken", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register(
    State(state): State<AppState>,
    Json(create): Json<UserCreate>,
) -> ApiResult<(StatusCode, Json<User>)> {
    create.validate()?;
    let username = normalize_username(&create.username);
    if username == *state.admin_username {
        return Err(taken(&username));
    }
    let stored = StoredUser {
        user: User {
            id: Uuid::new_v4(),
            username,
            email: create.email,
            full_name: create.full_name,
            role: Role::User,
            created_at: Utc::now(),
        },
        password_hash: state.hasher.hash(create.password).await?,
    };
    match state.store.insert(&stored).await? {
        InsertOutcome::Inserted => {
            state.business.registered();
            Ok((StatusCode::CREATED, Json(stored.user)))
        }
        InsertOutcome::UsernameTaken => Err(taken(&stored.user.username)),
    }
}

/// The admin's username is answered like any taken one.
fn taken(username: &str) -> ApiError {
    ApiError::Conflict(format!("the username {username} is taken"))
}

/// OAuth2 token request (RFC 6749): the password grant for users (the default), the
/// client-credentials grant for the shop's services. Other fields (such as `scope`) are ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenForm {
    /// `password` (default) or `client_credentials`.
    #[schema(max_length = 50)]
    grant_type: Option<String>,
    #[schema(max_length = 50)]
    username: Option<String>,
    #[schema(max_length = 72)]
    password: Option<String>,
    #[schema(max_length = 50)]
    client_id: Option<String>,
    #[schema(max_length = 200)]
    client_secret: Option<String>,
}

/// Issues an access token (an EdDSA-signed JWT).
#[utoipa::path(post, path = IssueServiceToken::ROUTE, tag = "auth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A bearer token", body = TokenResponse),
        (status = 400, description = "Missing fields or an unsupported grant type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong username, password or client secret", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A client-credentials grant through the public gateway", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a form", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Undecodable form", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> ApiResult<Json<TokenResponse>> {
    let access_token = match form.grant_type.as_deref().unwrap_or("password") {
        "password" => password_grant(&state, form).await?,
        // Services ask for their tokens directly. From outside the grant does not exist,
        // whatever the secret: the gateway cannot tell grants apart (they share one path
        // and differ in the body), so the service does, by the header the gateway sets.
        "client_credentials" if server::from_gateway(&headers) => {
            return Err(ApiError::NotFound("no such resource".to_owned()));
        }
        "client_credentials" => client_credentials_grant(&state, form)?,
        other => {
            return Err(ApiError::BadRequest(format!(
                "unsupported grant_type {other:?}: use password or client_credentials"
            )));
        }
    };
    Ok(Json(TokenResponse {
        access_token,
        token_type: "bearer".to_owned(),
        expires_in: state.signer.ttl().as_secs(),
    }))
}

async fn password_grant(state: &AppState, form: TokenForm) -> ApiResult<String> {
    let (Some(username), Some(password)) = (form.username, form.password) else {
        state.business.login(LoginOutcome::InvalidRequest);
        return Err(ApiError::BadRequest(
            "the password grant needs username and password".to_owned(),
        ));
    };
    let stored = state
        .store
        .by_username(&normalize_username(&username))
        .await?;
    let hash = stored.as_ref().map(|s| s.password_hash.clone());
    if !state.hasher.verify(password, hash).await? {
        state.business.login(LoginOutcome::InvalidCredentials);
        return Err(ApiError::Unauthorized(
            "wrong username or password".to_owned(),
        ));
    }
    let user = stored
        .expect("a password only verifies against a stored user")
        .user;
    state.business.login(LoginOutcome::Success);
    state
        .signer
        .sign(&user.id.to_string(), &user.username, user.role)
}

fn client_credentials_grant(state: &AppState, form: TokenForm) -> ApiResult<String> {
    let (Some(client_id), Some(client_secret)) = (form.client_id, form.client_secret) else {
        return Err(ApiError::BadRequest(
            "the client_credentials grant needs client_id and client_secret".to_owned(),
        ));
    };
    if !state
        .service_clients
        .authenticate(&client_id, &client_secret)
    {
        return Err(ApiError::Unauthorized(
            "unknown client or wrong secret".to_owned(),
        ));
    }
    state.signer.sign(&client_id, &client_id, Role::Service)
}

/// The public keys that verify the shop's tokens (RFC 7517 JSON Web Key Set).
#[utoipa::path(get, path = FetchSigningKeys::ROUTE, tag = "auth",
    responses((status = 200, description = "The key set", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Json<jsonwebtoken::jwk::JwkSet> {
    Json(state.signer.jwks())
}
