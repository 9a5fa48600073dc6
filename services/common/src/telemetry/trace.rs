//! W3C trace context and baggage across services: accepted on every inbound request (see
//! [`super::server_span`]), injected into every outbound call; synthetic traffic told by
//! its baggage.

use axum::http::HeaderMap;
use opentelemetry::global;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::HeaderInjector;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The baggage member a load test puts on every request (W3C baggage).
pub const SYNTHETIC_BAGGAGE: &str = "synthetic_request";

/// Whether the request's W3C `baggage` says `synthetic_request=true`: a load test's.
pub fn is_synthetic(headers: &HeaderMap) -> bool {
    headers
        .get_all("baggage")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|member| {
            // A member is `key=value`, optionally followed by `;properties`.
            let pair = member.split(';').next().unwrap_or_default();
            pair.split_once('=').is_some_and(|(key, value)| {
                key.trim() == SYNTHETIC_BAGGAGE && value.trim() == "true"
            })
        })
}

/// Adds the current span's `traceparent` to an outbound request.
pub fn inject_context(headers: &mut HeaderMap) {
    let context = Span::current().context();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}

/// The current trace id, for messages that point an operator at a trace: the request's,
/// from its server span.
pub fn current_trace_id() -> Option<String> {
    let context = opentelemetry::Context::current();
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn baggage(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("baggage", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn synthetic_traffic_is_told_by_its_baggage() {
        assert!(is_synthetic(&baggage(&["synthetic_request=true"])));
        assert!(is_synthetic(&baggage(&[
            "a=1, synthetic_request = true;p=1"
        ])));
        assert!(is_synthetic(&baggage(&["a=1", "synthetic_request=true"])));
        assert!(!is_synthetic(&baggage(&["synthetic_request=false"])));
        assert!(!is_synthetic(&baggage(&["not_synthetic_request=true"])));
        assert!(!is_synthetic(&HeaderMap::new()));
    }
}
