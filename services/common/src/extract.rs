//! Request extractors whose rejections are problem documents instead of axum's plain text.

use axum::body::Bytes;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::problem::ApiError;

/// A JSON body in, or a JSON document out.
///
/// Unlike `axum::Json`, a body that is valid JSON of the wrong shape is always 422, even
/// where serde reports it as a syntax error (a number where an enum's string belongs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(request.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "expected a request body with content type application/json".to_owned(),
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| body_read_error(rejection.status(), rejection.body_text()))?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(&mut deserializer) {
            Ok(value) => Ok(Json(value)),
            Err(err) if err.inner().is_data() || is_json(&bytes) => {
                Err(ApiError::Unprocessable(format!(
                    "the body does not have the expected fields and types: {}: {}",
                    err.path(),
                    err.inner()
                )))
            }
            Err(err) => Err(ApiError::BadRequest(format!(
                "the body is not valid JSON: {}",
                err.inner()
            ))),
        }
    }
}

fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

/// `application/json`, or any `+json` type, with or without parameters.
fn has_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // Only deserialized.
    struct Order {
        status: Status,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Status {
        Shipped,
    }

    async fn extract(content_type: &str, body: &'static str) -> Result<Json<Order>, ApiError> {
        let request = Request::builder()
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap();
        Json::<Order>::from_request(request, &()).await
    }

    #[tokio::test]
    async fn tells_malformed_json_from_json_of_the_wrong_shape() {
        assert!(
            extract("application/json", r#"{"status":"shipped"}"#)
                .await
                .is_ok()
        );
        for wrong_shape in [
            r#"{"status":2}"#,
            r#"{"status":null}"#,
            r#"{"state":"shipped"}"#,
        ] {
            let err = extract("application/json", wrong_shape).await.unwrap_err();
            assert_eq!(
                err.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{wrong_shape}"
            );
        }
        let err = extract("application/json", r#"{"status":"#)
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn wants_a_json_content_type() {
        assert!(
            extract(
                "application/merge-patch+json; charset=utf-8",
                r#"{"status":"shipped"}"#
            )
            .await
            .is_ok()
        );
        let err = extract("text/plain", r#"{"status":"shipped"}"#)
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
