//! The admin-only fault API under each service's prefix: `/admin/faults`. It exists only when
//! the service runs with `FAULTS_ENABLED=true`.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{Fault, FaultCreate, Faults};
use crate::auth::{AdminUser, TokenVerifier};
use crate::extract::{Json, Path};
use crate::problem::{ApiError, ApiResult, Problem};

/// The path of the fault API below a service's prefix.
pub const PATH: &str = "/admin/faults";

#[derive(Clone)]
struct FaultState {
    faults: Faults,
    verifier: Arc<TokenVerifier>,
}

impl FromRef<FaultState> for Arc<TokenVerifier> {
    fn from_ref(state: &FaultState) -> Self {
        state.verifier.clone()
    }
}

/// The fault API's routes, to merge into a service's routes: none when it is disabled.
pub fn routes(faults: &Faults, verifier: Arc<TokenVerifier>) -> OpenApiRouter {
    if !faults.api_enabled() {
        return OpenApiRouter::new();
    }
    OpenApiRouter::new()
        .routes(routes!(create, list, clear))
        .routes(routes!(remove))
        .with_state(FaultState {
            faults: faults.clone(),
            verifier,
        })
}

/// Starts injecting a fault (admins only; only with `FAULTS_ENABLED=true`).
///
/// Every fault ends by itself after `ttl_seconds`. Kinds: `latency` and `error` on an
/// inbound `route` of this service (`*` for all) or on calls to an `upstream`;
/// `database` on this service's CQL statements (refused on the in-memory store, which has no
/// database); `cpu_burn` on `threads` busy OS threads; `memory_growth` holding memory that
/// grows by `bytes_per_second`; `file_descriptors` holding open descriptors up to
/// `limit_fraction` of the process' limit. An injected route error is answered with the
/// problem type `injected-fault`.
#[utoipa::path(post, path = "/admin/faults", tag = "faults", request_body = FaultCreate,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The fault, active until `expires_at`", body = Fault),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, an unknown route, upstream or statement, a database fault on a service without a database, or a file_descriptors fault needing more than 65536 descriptors", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The fault's threads could not start", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create(
    State(state): State<FaultState>,
    _admin: AdminUser,
    Json(create): Json<FaultCreate>,
) -> ApiResult<(StatusCode, Json<Fault>)> {
    let fault = state.faults.add(&create)?;
    Ok((StatusCode::CREATED, Json(fault)))
}

/// The active faults, oldest first (admins only).
#[utoipa::path(get, path = "/admin/faults", tag = "faults",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The faults that have not expired", body = Vec<Fault>),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list(State(state): State<FaultState>, _admin: AdminUser) -> Json<Vec<Fault>> {
    Json(state.faults.list())
}

/// Stops every fault (admins only).
#[utoipa::path(delete, path = "/admin/faults", tag = "faults",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "No fault is active any more"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn clear(State(state): State<FaultState>, _admin: AdminUser) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}

/// Stops one fault (admins only).
#[utoipa::path(delete, path = "/admin/faults/{fault_id}", tag = "faults",
    params(("fault_id" = Uuid, Path, description = "The fault's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Stopped"),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such active fault (it may have expired)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn remove(
    State(state): State<FaultState>,
    _admin: AdminUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    if state.faults.remove(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no active fault {id}")))
    }
}
