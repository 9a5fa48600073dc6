//! W3C trace context and baggage across services: accepted on every inbound request,
//! injected into every outbound call; request spans named and attributed per the
//! OpenTelemetry HTTP semantic conventions, and marked when the traffic is synthetic.

use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::{self, HeaderMap};
use opentelemetry::global;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The server span of a request, child of the caller's span when a `traceparent` came in.
///
/// The log layer keeps a JSON copy of a span's fields and re-parses it on every later
/// `record`, so a request records one field after its start (`trace_id`, which every log
/// line written while serving it carries) and, unless it fails, none at its end.
pub fn request_span(request: &Request) -> Span {
    let method = request.method().as_str();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    // Plain `&str` values rather than `%` (Display): each layer then takes the text as it
    // is instead of running it through the formatting machinery.
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = route,
        url.path = request.uri().path(),
        http.response.status_code = Empty,
        trace_id = Empty,
    );
    let parent = global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    let _ = span.set_parent(parent);
    if is_synthetic(request.headers()) {
        // On the exported span only: the log layer never sees it, so it costs no re-parse.
        span.set_attribute("synthetic_request", true);
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", tracing::field::display(span_context.trace_id()));
    }
    span
}

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

/// Sets the status on the exported span. Only a server error also records it as a field,
/// for the `response failed` line that is logged next.
pub fn record_response<B>(response: &http::Response<B>, _latency: Duration, span: &Span) {
    let status = response.status();
    if status.is_server_error() {
        span.record("http.response.status_code", status.as_u16());
        span.record("otel.status_code", "ERROR");
    } else {
        span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
    }
}

/// Adds the current span's `traceparent` to an outbound request.
pub fn inject_context(headers: &mut HeaderMap) {
    let context = Span::current().context();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}

/// The current trace id, for messages that point an operator at a trace.
pub fn current_trace_id() -> Option<String> {
    let context = Span::current().context();
    let span_context = context.span().span_context().clone();
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
