//! Each service's OpenAPI 3.1 document, generated from its handlers and served beside them.

use axum::Router;
use axum::http::header;
use axum::routing::get;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::service::ServiceInfo;

/// The security scheme name handlers use in `security(("bearer" = []))`.
pub const BEARER: &str = "bearer";

/// Splits a documented router into the axum router and its document, completes the
/// document, and serves it at `{prefix}/openapi.json`.
pub fn serve_document(router: OpenApiRouter, info: &ServiceInfo) -> (Router, OpenApi) {
    let (router, mut api) = router.split_for_parts();
    api.info = InfoBuilder::new()
        .title(info.title)
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(info.description))
        .build();
    let mut bearer = Http::new(HttpAuthScheme::Bearer);
    bearer.bearer_format = Some("JWT".to_owned());
    let components = api.components.take().unwrap_or_default();
    let mut builder = ComponentsBuilder::from(components);
    builder = builder.security_scheme(BEARER, SecurityScheme::Http(bearer));
    api.components = Some(builder.build());
    let document = serde_json::to_vec(&api).expect("an OpenAPI document always serializes");
    let router = router.route(
        &format!("{}/openapi.json", info.prefix),
        get(move || {
            let document = document.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], document) }
        }),
    );
    (router, api)
}
