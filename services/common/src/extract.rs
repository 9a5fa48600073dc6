//! Request extractors whose rejections are problem documents instead of axum's plain text.

use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::problem::ApiError;

/// A JSON body in, or a JSON document out.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

#[derive(Debug, FromRequest)]
#[from_request(via(axum::Form), rejection(ApiError))]
pub struct Form<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(err) => ApiError::Unprocessable(err.body_text()),
            JsonRejection::JsonSyntaxError(err) => ApiError::BadRequest(err.body_text()),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
                "expected a request body with content type application/json".to_owned(),
            ),
            other => body_read_error(other.status(), other.body_text()),
        }
    }
}

impl From<FormRejection> for ApiError {
    fn from(rejection: FormRejection) -> Self {
        match rejection {
            FormRejection::InvalidFormContentType(_) => ApiError::UnsupportedMediaType(
                "expected a form body with content type application/x-www-form-urlencoded"
                    .to_owned(),
            ),
            FormRejection::FailedToDeserializeForm(err) => ApiError::BadRequest(err.body_text()),
            FormRejection::FailedToDeserializeFormBody(err) => {
                ApiError::Unprocessable(err.body_text())
            }
            other => body_read_error(other.status(), other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(format!("invalid path parameter: {}", rejection.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(format!(
            "invalid query parameter: {}",
            rejection.body_text()
        ))
    }
}

fn body_read_error(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::BadRequest(text)
    }
}
