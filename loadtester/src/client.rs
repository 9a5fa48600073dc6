//! One request of a journey: routed by its path's prefix, traced, measured, and judged on
//! its status here and on its body by the journey.

use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::goose::GooseResponse;
use goose::metrics::GooseRequestMetric;
use goose::prelude::*;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::orders_log::OrdersLog;
use crate::routes::Routes;
use crate::seed::Catalogue;
use crate::telemetry::{LoadMetrics, NotableTrace, TraceLog, traceparent};

/// What every journey shares: where the services are, the seeded catalogue, the metrics.
pub struct Ctx {
    pub routes: Routes,
    pub catalogue: Catalogue,
    pub metrics: Arc<LoadMetrics>,
    pub traces: Arc<TraceLog>,
    pub slow: Duration,
    pub admin_username: String,
    pub admin_password: String,
    pub cancel_percent: u32,
    /// Starts every username and product name this process makes (`w1-` for worker 1), so
    /// that workers sharing a test never collide; empty alone.
    pub name_prefix: String,
    /// Where acknowledged orders are recorded (`--orders-log`), if anywhere.
    pub orders: Option<Arc<OrdersLog>>,
}

/// The body a request carries.
pub enum Body {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
}

/// A request of a journey step.
pub struct Call<'a> {
    pub scenario: &'static str,
    pub step: &'static str,
    pub method: Method,
    pub path: String,
    pub token: Option<&'a str>,
    pub body: Body,
    /// Statuses that are a correct answer; the first is the usual one.
    pub accept: &'static [u16],
}

impl<'a> Call<'a> {
    pub fn new(scenario: &'static str, step: &'static str, method: Method, path: String) -> Self {
        Self {
            scenario,
            step,
            method,
            path,
            token: None,
            body: Body::None,
            accept: &[200],
        }
    }
    pub fn token(mut self, token: &'a str) -> Self {
        self.token = Some(token);
        self
    }
    pub fn json(mut self, body: Value) -> Self {
        self.body = Body::Json(body);
        self
    }
    pub fn form(mut self, fields: &[(&str, &str)]) -> Self {
        self.body = Body::Form(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        self
    }
    pub fn accept(mut self, statuses: &'static [u16]) -> Self {
        self.accept = statuses;
        self
    }
}

/// A response with an accepted status, its body read, ready for the journey's checks.
pub struct Answer {
    pub scenario: &'static str,
    pub step: &'static str,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
    pub trace_id: String,
    pub millis: u64,
    request: GooseRequestMetric,
}

impl Answer {
    /// The body as JSON, or a failure naming the step.
    pub fn json<T: DeserializeOwned>(
        &mut self,
        ctx: &Ctx,
        user: &mut GooseUser,
    ) -> Result<T, Box<TransactionError>> {
        match serde_json::from_str(&self.body) {
            Ok(value) => Ok(value),
            Err(err) => Err(self.fail(ctx, user, &format!("undecodable body ({err})"))),
        }
    }

    /// Marks the request failed because its content is wrong; the message names the trace.
    pub fn fail(&mut self, ctx: &Ctx, user: &mut GooseUser, why: &str) -> Box<TransactionError> {
        let tag = format!(
            "{}: {}: {why} trace_id={}",
            self.scenario, self.step, self.trace_id
        );
        ctx.metrics.failed(self.scenario, self.step);
        ctx.traces.record(NotableTrace {
            trace_id: self.trace_id.clone(),
            kind: "failed",
            scenario: self.scenario.to_owned(),
            step: self.step.to_owned(),
            status: self.status,
            millis: self.millis,
            detail: why.to_owned(),
            at: chrono::Utc::now(),
        });
        let body = self.body.chars().take(2000).collect::<String>();
        match user.set_failure(&tag, &mut self.request, Some(&self.headers), Some(&body)) {
            Err(err) => err,
            Ok(()) => Box::new(TransactionError::Custom(tag)),
        }
    }

    /// Checks a condition on the content, failing the request with `why` when it does not hold.
    pub fn check(
        &mut self,
        ctx: &Ctx,
        user: &mut GooseUser,
        holds: bool,
        why: impl FnOnce() -> String,
    ) -> Result<(), Box<TransactionError>> {
        if holds {
            Ok(())
        } else {
            Err(self.fail(ctx, user, &why()))
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn goose_method(method: &Method) -> GooseMethod {
    match *method {
        Method::POST => GooseMethod::Post,
        Method::PUT => GooseMethod::Put,
        Method::DELETE => GooseMethod::Delete,
        Method::PATCH => GooseMethod::Patch,
        Method::HEAD => GooseMethod::Head,
        _ => GooseMethod::Get,
    }
}

/// W3C baggage on every request: load-test traffic says it is synthetic, so that the
/// services (and their dashboards) can tell it from customers'.
pub const BAGGAGE: &str = "synthetic_request=true";

/// Sends one request through goose (so its metrics, logs and throttle apply) and judges its
/// status: an accepted one gives an [`Answer`], anything else fails the transaction with an
/// error that names the trace.
pub async fn send(
    ctx: &Ctx,
    user: &mut GooseUser,
    call: Call<'_>,
) -> Result<Answer, Box<TransactionError>> {
    let url = ctx.routes.url(&call.path);
    let name = format!("{}: {}", call.scenario, call.step);
    let (traceparent, trace_id) = traceparent();
    let method = goose_method(&call.method);
    let mut builder = user
        .get_request_builder(&method, &url)?
        .header("traceparent", traceparent)
        .header("baggage", BAGGAGE);
    if let Some(token) = call.token {
        builder = builder.bearer_auth(token);
    }
    builder = match call.body {
        Body::None => builder,
        Body::Json(value) => builder.json(&value),
        Body::Form(fields) => builder.form(&fields),
    };
    let request = GooseRequest::builder()
        .method(method)
        .path(url.as_str())
        .name(name.as_str())
        .expect_status_code(call.accept[0])
        .set_request_builder(builder)
        .build();
    let started = Instant::now();
    let GooseResponse {
        request: mut metric,
        response,
    } = user.request(request).await?;
    let notable = |status: u16, kind: &'static str, millis: u64, detail: String| NotableTrace {
        trace_id: trace_id.clone(),
        kind,
        scenario: call.scenario.to_owned(),
        step: call.step.to_owned(),
        status,
        millis,
        detail,
        at: chrono::Utc::now(),
    };
    let response = match response {
        Ok(response) => response,
        Err(err) => {
            let elapsed = started.elapsed();
            ctx.metrics
                .observe(call.scenario, call.step, "error", elapsed);
            ctx.metrics.failed(call.scenario, call.step);
            // With its causes: reqwest's own message leaves out why (refused, reset, or
            // closed before the response).
            let why = format!("no response ({:#})", anyhow::Error::from(err));
            ctx.traces.record(notable(
                0,
                "failed",
                elapsed.as_millis() as u64,
                why.clone(),
            ));
            return Err(Box::new(TransactionError::Custom(format!(
                "{name}: {why} trace_id={trace_id}"
            ))));
        }
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await;
    let elapsed = started.elapsed();
    let millis = elapsed.as_millis() as u64;
    ctx.metrics
        .observe(call.scenario, call.step, &status.to_string(), elapsed);
    let body = match body {
        Ok(body) => body,
        Err(err) => {
            ctx.metrics.failed(call.scenario, call.step);
            let why = format!("body not read ({err})");
            ctx.traces
                .record(notable(status, "failed", millis, why.clone()));
            let _ = user.set_failure(
                &format!("{name}: {why} trace_id={trace_id}"),
                &mut metric,
                None,
                None,
            );
            return Err(Box::new(TransactionError::Custom(format!(
                "{name}: {why} trace_id={trace_id}"
            ))));
        }
    };
    if !call.accept.contains(&status) {
        ctx.metrics.failed(call.scenario, call.step);
        let snippet: String = body.chars().take(300).collect();
        let why = format!("unexpected status {status}: {snippet}");
        ctx.traces
            .record(notable(status, "failed", millis, why.clone()));
        // Goose already counted the request failed ("<status>: <name>"); the transaction
        // error carries the trace id into the report's transaction errors table.
        return Err(Box::new(TransactionError::Custom(format!(
            "{name}: unexpected status {status} trace_id={trace_id}"
        ))));
    }
    if status != call.accept[0] {
        // Another correct outcome (a 409 out of stock in a flash sale): not a failure.
        metric.error.clear();
        user.set_success(&mut metric)?;
    }
    if elapsed >= ctx.slow {
        ctx.traces
            .record(notable(status, "slow", millis, format!("took {millis} ms")));
    }
    Ok(Answer {
        scenario: call.scenario,
        step: call.step,
        status,
        headers,
        body,
        trace_id,
        millis,
        request: metric,
    })
}
