//! The one place where a service's HTTP surface is assembled and middleware is layered.
//! Serving it, and stopping, is [`crate::shutdown`]'s.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa_axum::router::OpenApiRouter;

use crate::faults::{self, Faults};
use crate::openapi;
use crate::problem::ApiError;
use crate::service::ServiceInfo;
use crate::telemetry::metrics::{self, Metrics};
use crate::telemetry::server_span::ServerSpanLayer;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The header the public gateway sets on every request it forwards, replacing any value a
/// client sent (observability/nginx/nginx.conf): a request that carries it came from
/// outside the shop. The services' own calls go to each other directly, without it.
pub const GATEWAY_HEADER: HeaderName = HeaderName::from_static("x-shop-gateway");

/// Whether the request came through the public gateway.
pub fn from_gateway(headers: &HeaderMap) -> bool {
    headers.contains_key(GATEWAY_HEADER)
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    /// The request span and the `http_server_*` metrics; off only to measure their cost.
    pub request_telemetry: bool,
    /// The request span, when `request_telemetry` is on: off leaves the metrics alone, to
    /// measure what each costs.
    pub request_tracing: bool,
}

/// A service's complete HTTP surface: its documented routes under its prefix, the OpenAPI
/// document, `/metrics`, and the standard middleware around all of it.
///
/// The documented routes (but not the fault API's own) become the targets of route faults.
pub fn assemble(
    routes: OpenApiRouter,
    info: &ServiceInfo,
    settings: &HttpSettings,
    metrics: Arc<Metrics>,
    faults: &Faults,
) -> Router {
    let prefixed = OpenApiRouter::new().nest(info.prefix, routes);
    let (router, document) = openapi::serve_document(prefixed, info);
    let fault_api = format!("{}{}", info.prefix, faults::api::PATH);
    faults.set_routes(
        document
            .paths
            .paths
            .into_keys()
            .filter(|path| !path.starts_with(&fault_api)),
    );
    let router = router
        .route(
            &format!("{}/metrics", info.prefix),
            get(metrics::serve_metrics).with_state(metrics.clone()),
        )
        .route_layer(middleware::from_fn_with_state(
            InternalRoutes(format!("{}/internal/", info.prefix)),
            hide_internal_routes,
        ));
    with_middleware(router, info.name, settings, &metrics, faults)
}

fn with_middleware(
    router: Router,
    service_name: &'static str,
    settings: &HttpSettings,
    metrics: &Metrics,
    faults: &Faults,
) -> Router {
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes));
    let inner = ServiceBuilder::new()
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(
            settings.request_timeout,
            request_deadline,
        ))
        .layer(middleware::from_fn_with_state(
            faults.clone(),
            inject_faults,
        ));
    // A stack per setting rather than switches inside the layers: without telemetry a
    // request pays nothing for it, not even a check.
    let set_id = SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid);
    let propagate_id = PropagateRequestIdLayer::new(REQUEST_ID.clone());
    let track = metrics::TrackRequestsLayer::new(&metrics.http);
    match (settings.request_telemetry, settings.request_tracing) {
        (true, true) => router.layer(
            ServiceBuilder::new()
                .layer(set_id)
                .layer(ServerSpanLayer::new(service_name))
                .layer(propagate_id)
                .layer(track)
                .layer(inner),
        ),
        (true, false) => router.layer(
            ServiceBuilder::new()
                .layer(set_id)
                .layer(propagate_id)
                .layer(track)
                .layer(inner),
        ),
        (false, _) => router.layer(
            ServiceBuilder::new()
                .layer(set_id)
                .layer(propagate_id)
                .layer(inner),
        ),
    }
}

/// Applies route faults, after routing and inside the metrics, tracing and deadline layers,
/// so an injected delay or error is measured, traced and timed out like a real one.
async fn inject_faults(State(faults): State<Faults>, request: Request, next: Next) -> Response {
    if !faults.targets_routes() {
        return next.run(request).await;
    }
    let injection = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|route| faults.for_route(route.as_str()));
    let Some(injection) = injection else {
        return next.run(request).await;
    };
    if !injection.delay.is_zero() {
        tokio::time::sleep(injection.delay).await;
    }
    match injection.failure {
        Some(failure) => ApiError::InjectedFault {
            status: failure.status,
            fault: failure.fault,
        }
        .into_response(),
        None => next.run(request).await,
    }
}

/// The path prefix of a service's internal routes, which only the shop's services call.
#[derive(Clone)]
struct InternalRoutes(String);

/// Internal routes do not exist for requests from outside: the gateway does not route them,
/// and should a path get past it (an encoding nginx reads differently, a new location), the
/// route still answers exactly as a missing one does. Matched by route, not by raw path, so
/// no spelling of the path gets around it.
async fn hide_internal_routes(
    State(internal): State<InternalRoutes>,
    route: MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    if from_gateway(request.headers()) && route.as_str().starts_with(&internal.0) {
        return not_found().await.into_response();
    }
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such resource".to_owned())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("this resource does not support that method".to_owned())
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal("a handler panicked".to_owned()).into_response()
}

/// A request that outlives its deadline is answered with 503 instead of holding a connection.
async fn request_deadline(
    State(deadline): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::ServiceUnavailable(
            "the request took longer than the service allows".to_owned(),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    /// The services' middleware, faults off.
    fn with_test_middleware(router: Router, metrics: &Metrics, request_telemetry: bool) -> Router {
        let faults = Faults::new(
            &faults::FaultArgs {
                faults_enabled: false,
            },
            metrics,
        );
        let settings = HttpSettings {
            body_limit_bytes: 1024,
            request_timeout: Duration::from_secs(5),
            request_telemetry,
            request_tracing: true,
        };
        with_middleware(router, "test", &settings, metrics, &faults)
    }

    /// Serves one request; returns whether it carried a request id and was counted.
    async fn serve_one(request_telemetry: bool) -> (bool, bool) {
        let metrics = Metrics::new("test");
        let router = Router::new().route("/ping", get(|| async { "pong" }));
        let response = with_test_middleware(router, &metrics, request_telemetry)
            .oneshot(Request::get("/ping").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&metrics.registry().gather())
            .unwrap();
        (
            response.headers().contains_key(&REQUEST_ID),
            text.contains(r#"http_server_requests_total{method="GET",route="/ping",status="200""#),
        )
    }

    #[tokio::test]
    async fn a_failed_request_is_logged_with_its_callers_trace_id_and_its_status() {
        let captured = crate::telemetry::Captured::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let subscriber = crate::telemetry::subscriber(&provider, "test", true, captured.clone());
        let _installed = tracing::subscriber::set_default(subscriber);
        let router = Router::new().route(
            "/boom",
            get(|| async { ApiError::Internal("the test broke it".to_owned()) }),
        );
        let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let request = Request::get("/boom")
            .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
            .body(Body::empty())
            .unwrap();
        let response = with_test_middleware(router, &Metrics::new("test"), true)
            .oneshot(request)
            .await
            .unwrap();

        assert_eq!(response.status(), 500);
        let lines = captured.lines();
        let failed = lines
            .iter()
            .find(|line| line["message"] == "response failed")
            .unwrap_or_else(|| panic!("no `response failed` line in {lines:#?}"));
        assert_eq!(failed["trace_id"], trace_id);
        assert_eq!(failed["http.route"], "/boom");
        assert_eq!(failed["http.request.method"], "GET");
        assert_eq!(failed["http.response.status_code"], 500);
    }

    #[tokio::test]
    async fn without_request_telemetry_requests_are_served_but_not_counted() {
        assert_eq!(serve_one(true).await, (true, true));
        assert_eq!(serve_one(false).await, (true, false));
    }
}
