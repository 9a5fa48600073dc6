//! A call one service makes to another, as a type: its method, its path, what it sends and
//! what it gets back. The calls themselves live beside the shapes they carry; the caller
//! makes them with `Upstream::call`, and the owning service declares its route with the
//! same `ROUTE`.

use std::fmt::Display;

use axum::http::Method;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One kind of call between the shop's services.
pub trait Operation {
    /// The owning service's path prefix, e.g. `/api`.
    const PREFIX: &'static str;
    /// The route below the prefix, as the owning service declares it; `{name}` marks a
    /// parameter.
    const ROUTE: &'static str;
    const METHOD: Method;
    /// What a 2xx answer holds; `()` for an empty one.
    type Response: DeserializeOwned;

    /// The path this call goes to, its parameters filled in.
    fn path(&self) -> String {
        format!("{}{}", Self::PREFIX, Self::ROUTE)
    }

    fn body(&self) -> Result<Option<Body>, BodyError> {
        Ok(None)
    }

    /// Makes a call that is not idempotent safe to retry: the owner deduplicates it by key.
    fn idempotency_key(&self) -> Option<String> {
        None
    }
}

/// The path of operation `O`, its one parameter filled in with `value`.
pub fn path_with<O: Operation>(value: impl Display) -> String {
    with_parameter(&format!("{}{}", O::PREFIX, O::ROUTE), value)
}

/// `route` with its one `{parameter}` replaced by `value`.
fn with_parameter(route: &str, value: impl Display) -> String {
    match (route.find('{'), route.find('}')) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{value}{}", &route[..start], &route[end + 1..])
        }
        _ => route.to_owned(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Form(#[from] serde_urlencoded::ser::Error),
}

/// A serialized request body, kept as bytes so a retry resends exactly the same thing.
#[derive(Debug, Clone)]
pub struct Body {
    content_type: &'static str,
    bytes: Bytes,
}

impl Body {
    pub fn json(value: &impl Serialize) -> Result<Self, BodyError> {
        Ok(Self {
            content_type: "application/json",
            bytes: serde_json::to_vec(value)?.into(),
        })
    }

    pub fn form(value: &impl Serialize) -> Result<Self, BodyError> {
        Ok(Self {
            content_type: "application/x-www-form-urlencoded",
            bytes: serde_urlencoded::to_string(value)?.into(),
        })
    }

    pub(crate) fn content_type(&self) -> &'static str {
        self.content_type
    }

    /// Cheap: the bytes are shared, not copied.
    pub(crate) fn bytes(&self) -> Bytes {
        self.bytes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::with_parameter;

    #[test]
    fn fills_in_the_parameter_wherever_it_stands() {
        assert_eq!(with_parameter("/a/{id}", 7), "/a/7");
        assert_eq!(with_parameter("/a/{id}/commit", "x"), "/a/x/commit");
        assert_eq!(with_parameter("/a/", 7), "/a/");
    }
}
