//! The exported server span of every request, made with the OpenTelemetry API directly.
//!
//! Going through `tracing` cost several times as much: tracing-opentelemetry turns every
//! field into an attribute through a visitor, keeps a span builder in the span's
//! extensions and builds the span only when it closes, and the JSON log layer formats the
//! same fields again for log lines that most requests never write. Here the span is built
//! once, with its attributes as they are, and its context is made current while the
//! request is served: `tracing` spans opened inside it (database statements, calls to
//! other services) take it as their parent, and the log lines written meanwhile read the
//! request's trace id, method and route from it (see [`super::request_lines`]).

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use axum::extract::{MatchedPath, Request};
use axum::http;
use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::HeaderExtractor;
use tower::{Layer, Service};
use tracing::Level;

use super::metrics::bounded_method;
use super::request_lines::{REQUEST_LOG_TARGET, RequestFields};
use super::trace::is_synthetic;

/// Wraps a service so that each request gets its server span.
#[derive(Clone)]
pub struct ServerSpanLayer {
    tracer: Arc<BoxedTracer>,
}

impl ServerSpanLayer {
    /// Spans from the process-wide tracer provider that [`super::init`] installs (none,
    /// and so no spans, in tests that install none).
    pub fn new(service_name: &'static str) -> Self {
        Self {
            tracer: Arc::new(global::tracer(service_name)),
        }
    }
}

impl<S> Layer<S> for ServerSpanLayer {
    type Service = ServerSpan<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerSpan {
            inner,
            tracer: self.tracer.clone(),
        }
    }
}

#[derive(Clone)]
pub struct ServerSpan<S> {
    inner: S,
    tracer: Arc<BoxedTracer>,
}

impl<S, B> Service<Request> for ServerSpan<S>
where
    S: Service<Request, Response = http::Response<B>>,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = InServerSpan<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let context = start(&self.tracer, &request);
        let inner = {
            let _current = context.clone().attach();
            self.inner.call(request)
        };
        InServerSpan { inner, context }
    }
}

/// The span of `request`, child of the caller's span when a `traceparent` came in, named
/// and attributed per the OpenTelemetry HTTP semantic conventions.
fn start(tracer: &BoxedTracer, request: &Request) -> Context {
    let parent = global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    let method = bounded_method(request.method());
    let matched = request.extensions().get::<MatchedPath>();
    let route = matched.map_or("unmatched", MatchedPath::as_str);
    let mut attributes = Vec::with_capacity(4);
    attributes.push(KeyValue::new("http.request.method", method));
    attributes.push(KeyValue::new("http.route", route.to_owned()));
    attributes.push(KeyValue::new("url.path", request.uri().path().to_owned()));
    if is_synthetic(request.headers()) {
        attributes.push(KeyValue::new("synthetic_request", true));
    }
    let span = tracer
        .span_builder(Cow::Owned(format!("{method} {route}")))
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .start_with_context(tracer, &parent);
    parent.with_span(span).with_value(RequestFields {
        method,
        route: matched.cloned(),
    })
}

pin_project_lite::pin_project! {
    /// The inner service's response, with the request's span current at every poll and
    /// ended once the response is ready (its body is not timed: the services answer with
    /// whole bodies). A request cancelled before then ends its span when this future drops.
    pub struct InServerSpan<F> {
        #[pin]
        inner: F,
        context: Context,
    }
}

impl<F, B, E> Future for InServerSpan<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _current = this.context.clone().attach();
        let result = std::task::ready!(this.inner.poll(cx));
        let span = this.context.span();
        if let Ok(response) = &result {
            let status = response.status();
            let code = status.as_u16();
            span.set_attribute(KeyValue::new("http.response.status_code", i64::from(code)));
            if status.is_server_error() {
                span.set_status(Status::error(""));
                tracing::event!(
                    target: REQUEST_LOG_TARGET,
                    Level::ERROR,
                    http.response.status_code = code,
                    "response failed"
                );
            } else {
                tracing::event!(
                    target: REQUEST_LOG_TARGET,
                    Level::DEBUG,
                    http.response.status_code = code,
                    "response sent"
                );
            }
        }
        span.end();
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tower::ServiceExt;

    fn attribute(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> Option<String> {
        span.attributes
            .iter()
            .find(|attribute| attribute.key.as_str() == key)
            .map(|attribute| attribute.value.to_string())
    }

    #[tokio::test]
    async fn a_request_is_a_server_span_child_of_its_callers_and_parent_of_its_work() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let layer = ServerSpanLayer {
            tracer: Arc::new(BoxedTracer::new(Box::new(provider.tracer("test")))),
        };
        let router = Router::new()
            .route(
                "/items/{id}",
                get(|| async {
                    let current = Context::current();
                    let work = current.span().span_context().clone();
                    (
                        http::StatusCode::INTERNAL_SERVER_ERROR,
                        format!("{}/{}", work.trace_id(), work.span_id()),
                    )
                }),
            )
            .layer(layer);
        let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let caller_span = "00f067aa0ba902b7";
        let request = Request::get("/items/7")
            .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
            .header("baggage", "synthetic_request=true")
            .body(Body::empty())
            .unwrap();

        let response = router.oneshot(request).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();

        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1, "{spans:#?}");
        let span = &spans[0];
        assert_eq!(span.name, "GET /items/{id}");
        assert_eq!(span.span_kind, SpanKind::Server);
        assert_eq!(span.span_context.trace_id().to_string(), caller_trace);
        assert_eq!(span.parent_span_id.to_string(), caller_span);
        assert_eq!(
            String::from_utf8_lossy(&body),
            format!("{caller_trace}/{}", span.span_context.span_id()),
            "the handler runs with the request's span current"
        );
        assert_eq!(
            attribute(span, "http.route").as_deref(),
            Some("/items/{id}")
        );
        assert_eq!(attribute(span, "url.path").as_deref(), Some("/items/7"));
        assert_eq!(
            attribute(span, "http.request.method").as_deref(),
            Some("GET")
        );
        assert_eq!(
            attribute(span, "http.response.status_code").as_deref(),
            Some("500")
        );
        assert_eq!(
            attribute(span, "synthetic_request").as_deref(),
            Some("true")
        );
        assert!(
            matches!(span.status, Status::Error { .. }),
            "{:?}",
            span.status
        );
    }
}
