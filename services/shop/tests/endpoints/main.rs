//! Every endpoint of every service, one at a time: its success path with the content it
//! returns, and each way a request to it can be refused.

#[path = "../support/mod.rs"]
mod support;

mod backend;
mod cart;
mod limits;
mod order;
mod user;

use std::collections::BTreeSet;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use support::{SERVICE_SECRET, TestShop, expect_json, expect_problem};

/// One byte more than the 64 KiB request bodies every service accepts.
const OVER_BODY_LIMIT: usize = 64 * 1024 + 1;

/// A route as the OpenAPI documents name it: method in lower case, path with `{param}`s.
type Route = (&'static str, &'static str);

/// Sends `body` as it is, with the content type given (none when `None`).
async fn send_raw(
    shop: &TestShop,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Response {
    let mut request = shop.http.request(method, shop.url(path)).body(body);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("the shop answers")
}

/// A problem with this status whose type slug and detail are as expected.
async fn expect_refusal(response: Response, status: StatusCode, slug: &str, detail: &str) -> Value {
    let problem = expect_problem(response, status).await;
    let problem_type = problem["type"].as_str().unwrap();
    assert!(
        problem_type.ends_with(&format!("#{slug}")),
        "expected a {slug} problem: {problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains(detail),
        "expected {detail:?} in the detail: {problem}"
    );
    problem
}

/// A 422 validation problem naming exactly these fields.
async fn expect_invalid_fields(response: Response, fields: &[&str]) -> Value {
    let problem = expect_refusal(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
        "invalid",
    )
    .await;
    let named: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| {
            assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
            error["field"].as_str().unwrap()
        })
        .collect();
    assert_eq!(named, fields, "problem: {problem}");
    problem
}

/// A 422 for a body that is JSON but not of the expected shape (types, missing or unknown fields).
async fn expect_undecodable(response: Response, detail: &str) -> Value {
    expect_refusal(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        detail,
    )
    .await
}

/// Refusals of a JSON body the handler never gets to see: malformed JSON (400), a content type
/// that is not JSON or none at all (415), and a body over the size limit (413).
async fn assert_refuses_bad_json_bodies(
    shop: &TestShop,
    method: Method,
    path: &str,
    token: Option<&str>,
) {
    for malformed in ["{,}", "not json", "{\"unterminated"] {
        let response = send_raw(
            shop,
            method.clone(),
            path,
            token,
            Some("application/json"),
            malformed,
        )
        .await;
        expect_refusal(
            response,
            StatusCode::BAD_REQUEST,
            "bad-request",
            "the body is not valid JSON",
        )
        .await;
    }

    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let response = send_raw(
            shop,
            method.clone(),
            path,
            token,
            content_type,
            r#"{"quantity": 1}"#,
        )
        .await;
        expect_refusal(
            response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "application/json",
        )
        .await;
    }

    let oversized = json!({ "padding": "x".repeat(OVER_BODY_LIMIT) }).to_string();
    let response = send_raw(
        shop,
        method,
        path,
        token,
        Some("application/json"),
        oversized,
    )
    .await;
    expect_refusal(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "larger",
    )
    .await;
}

/// Without a token, with a token that is not a JWT, or with another scheme: 401.
async fn assert_needs_a_token(shop: &TestShop, method: Method, path: &str, body: Option<Value>) {
    let missing = shop.call(method.clone(), path, None, body.clone()).await;
    expect_refusal(
        missing,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "needs a bearer token",
    )
    .await;
    for authorization in [
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer ",
        "Basic YWRtaW46YWRtaW4=",
    ] {
        let mut request = shop
            .http
            .request(method.clone(), shop.url(path))
            .header(AUTHORIZATION, authorization);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the shop answers");
        expect_refusal(
            response,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "access token",
        )
        .await;
    }
}

/// A plain user is refused with 403.
async fn assert_admin_only(shop: &TestShop, method: Method, path: &str, body: Option<Value>) {
    let (_, user) = shop.new_user().await;
    let response = shop.call(method, path, Some(&user), body).await;
    expect_refusal(
        response,
        StatusCode::FORBIDDEN,
        "forbidden",
        "for admins only",
    )
    .await;
}

/// Unknown paths under the prefix are 404 problems, and known paths with a method they do not
/// serve are 405 problems that say in `Allow` which methods they do serve.
async fn assert_unknown_paths_and_methods_are_problems(
    shop: &TestShop,
    prefix: &str,
    method: Method,
    served_path: &str,
    allowed: &str,
) {
    for unknown in [format!("{prefix}/no-such-thing"), format!("{prefix}/")] {
        let response = shop.get(&unknown, None).await;
        expect_refusal(
            response,
            StatusCode::NOT_FOUND,
            "not-found",
            "no such resource",
        )
        .await;
    }
    let response = shop.call(method, served_path, None, None).await;
    let allow = response
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        allow.as_deref(),
        Some(allowed),
        "the Allow header of {served_path}"
    );
    expect_refusal(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "does not support that method",
    )
    .await;
}

/// The service's OpenAPI document is version 3.1, documents exactly the routes this suite
/// tests, and the router serves every documented route (no 404 "no such resource", no 405).
async fn assert_openapi_documents(shop: &TestShop, prefix: &str, tested: &[Route]) {
    let document: Value = expect_json(
        shop.get(&format!("{prefix}/openapi.json"), None).await,
        StatusCode::OK,
    )
    .await;
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        document["openapi"]
    );
    assert!(
        document["info"]["title"]
            .as_str()
            .unwrap()
            .starts_with("Shop ")
    );
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .keys()
                .filter(|key| *key != "parameters")
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = tested
        .iter()
        .chain(&[("get", "/health/live"), ("get", "/health/ready")])
        .map(|(method, path)| ((*method).to_owned(), format!("{prefix}{path}")))
        .collect();
    assert_eq!(documented, expected);

    for (method, path) in &documented {
        let concrete = path.replace(['{', '}'], "");
        let concrete = concrete
            .split('/')
            .map(|segment| {
                if segment.ends_with("_id") {
                    Uuid::new_v4().to_string()
                } else {
                    segment.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let method: Method = method.to_uppercase().parse().unwrap();
        let response = shop.call(method.clone(), &concrete, None, None).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            status != StatusCode::METHOD_NOT_ALLOWED && !body.contains("no such resource"),
            "{method} {concrete} is documented but not served: {status} {body}"
        );
    }
}

/// `{prefix}/metrics` is Prometheus text naming the service, and counts a request just made to
/// `probe` (a public GET) under its route template.
async fn assert_serves_metrics(shop: &TestShop, prefix: &str, service: &str, probe: &str) {
    assert_eq!(shop.get(probe, None).await.status(), StatusCode::OK);
    let response = shop.get(&format!("{prefix}/metrics"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    assert!(
        text.lines().any(|line| line.starts_with("shop_build_info{")
            && line.contains(&format!("service=\"{service}\""))
            && line.ends_with(" 1")),
        "no build info for {service}:\n{text}"
    );
    assert!(
        text.lines()
            .any(|line| line.starts_with("http_server_requests_total{")
                && line.contains(&format!("route=\"{probe}\""))
                && line.contains("method=\"GET\"")
                && line.contains("status=\"200\"")),
        "the request to {probe} is not counted:\n{text}"
    );
}

/// Liveness is a bare "ok"; readiness is "ok" with exactly these checks, each "ok".
async fn assert_healthy(shop: &TestShop, prefix: &str, checks: &[&str]) {
    let live: Value = expect_json(
        shop.get(&format!("{prefix}/health/live"), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(live, json!({"status": "ok", "checks": {}}));
    let ready: Value = expect_json(
        shop.get(&format!("{prefix}/health/ready"), None).await,
        StatusCode::OK,
    )
    .await;
    assert_ready_report(&ready, checks);
}

fn assert_ready_report(report: &Value, checks: &[&str]) {
    assert_eq!(report["status"], "ok", "{report}");
    let named: BTreeSet<&str> = report["checks"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(named, checks.iter().copied().collect(), "{report}");
    for (name, check) in report["checks"].as_object().unwrap() {
        assert_eq!(check, &json!({"status": "ok"}), "check {name}");
    }
}

/// A client-credentials token for one of the shop's services.
async fn service_token(shop: &TestShop, client_id: &str) -> String {
    let response = shop
        .http
        .post(shop.url("/user-api/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", SERVICE_SECRET),
        ])
        .send()
        .await
        .unwrap();
    let token: Value = expect_json(response, StatusCode::OK).await;
    token["access_token"].as_str().unwrap().to_owned()
}

/// Places an order through the order service; the response as it came.
async fn place_order(
    shop: &TestShop,
    token: &str,
    lines: &[(Uuid, i64)],
    idempotency_key: Option<&str>,
) -> Response {
    let items: Vec<Value> = lines
        .iter()
        .map(|(product, quantity)| json!({"product_id": product, "quantity": quantity}))
        .collect();
    let mut request = shop
        .http
        .post(shop.url("/order-api/orders/"))
        .bearer_auth(token)
        .json(&json!({ "items": items }));
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.expect("the order service answers")
}

/// Places an order that must succeed, and returns it.
async fn new_order(shop: &TestShop, token: &str, lines: &[(Uuid, i64)]) -> Value {
    expect_json(
        place_order(shop, token, lines, None).await,
        StatusCode::CREATED,
    )
    .await
}

fn id_of(value: &Value) -> Uuid {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {value}"))
        .parse()
        .unwrap()
}

/// The fields of a JSON object, sorted.
fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}
