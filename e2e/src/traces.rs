//! The checkout's trace in Jaeger, started with a `traceparent` the journey chose: spans
//! from every service, parent links that hold together across services, status codes on
//! every HTTP span, and database spans under the services' spans.

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use serde_json::Value;
use shop_topology::{self as topology, BACKEND, CART, ORDER, USER};

use crate::harness::{E2e, string};
use crate::journey::Journey;

/// Services export their spans in batches; Jaeger may take this long to have them all.
const TRACE_WAIT: Duration = Duration::from_secs(60);

impl E2e {
    /// The checkout's trace in Jaeger: every service, and parent links that hold together.
    pub fn trace(&mut self, journey: &Journey) {
        let id = &journey.checkout_trace_id;
        let trace = self.check("Jaeger has the checkout trace from every service", |e2e| {
            let trace = e2e.wait_for_trace(id)?;
            let services: BTreeSet<&str> = trace
                .spans
                .iter()
                .map(|span| span.service.as_str())
                .collect();
            Ok((
                trace.clone(),
                format!("trace {id}: {} spans from {services:?}", trace.spans.len()),
            ))
        });
        let Some(trace) = trace else { return };
        self.check_unit(
            "the checkout trace's parent-child links are consistent",
            |_| {
                let by_id: BTreeMap<&str, &Span> = trace
                    .spans
                    .iter()
                    .map(|span| (span.id.as_str(), span))
                    .collect();
                let mut roots = Vec::new();
                for span in &trace.spans {
                    match span.parent.as_deref() {
                        Some(parent) if by_id.contains_key(parent) => {}
                        Some(parent) if parent == journey.checkout_parent_span => roots.push(span),
                        Some(parent) => bail!(
                            "{} has a parent {parent} that is not in the trace",
                            span.describe()
                        ),
                        None => bail!(
                            "{} has no parent, although the request carried one",
                            span.describe()
                        ),
                    }
                }
                ensure!(
                    roots.len() == 1,
                    "expected one child of our traceparent, found {}",
                    roots.len()
                );
                let root = roots[0];
                ensure!(
                    root.service == USER.name
                        && root.kind == "server"
                        && root.name == "POST /user-api/users/me/orders",
                    "the root is {}, not the user service's server span of the checkout",
                    root.describe()
                );
                // Across services, a server span's parent is a client span of the caller.
                let mut edges = BTreeSet::new();
                for span in trace
                    .spans
                    .iter()
                    .filter(|span| span.kind == "server" && span.id != root.id)
                {
                    let parent = by_id[span.parent.as_deref().unwrap_or_default()];
                    ensure!(
                        parent.kind == "client" && parent.service != span.service,
                        "{} is a child of {}, not of a client span in another service",
                        span.describe(),
                        parent.describe()
                    );
                    edges.insert(format!("{} -> {}", parent.service, span.service));
                }
                for (caller, callee) in [(USER, CART), (CART, ORDER), (ORDER, BACKEND)] {
                    let edge = format!("{} -> {}", caller.name, callee.name);
                    ensure!(
                        edges.contains(&edge),
                        "no call {edge} in the trace; calls: {edges:?}"
                    );
                }
                Ok(format!("one root, calls {edges:?}"))
            },
        );
        self.check_unit(
            "every HTTP span of the checkout trace carries its status code",
            |_| {
                let http_spans: Vec<&Span> = trace
                    .spans
                    .iter()
                    .filter(|span| span.tags.contains_key("http.request.method"))
                    // A call that failed in transport (and was retried) has no answer.
                    .filter(|span| span.tags.get("error").is_none_or(|error| error != "true"))
                    .collect();
                for span in &http_spans {
                    let status = span.tags.get("http.response.status_code");
                    ensure!(
                        status.is_some_and(|status| status.parse::<u16>().is_ok()),
                        "{} has no status code: {:?}",
                        span.describe(),
                        span.tags
                    );
                }
                Ok(format!("{} server and client spans", http_spans.len()))
            },
        );
        self.check_unit(
            "the checkout trace has database spans, children of the services' spans",
            |_| {
                let ids: BTreeSet<&str> = trace.spans.iter().map(|span| span.id.as_str()).collect();
                let services: BTreeSet<&str> = trace
                    .spans
                    .iter()
                    .filter(|span| {
                        span.tags
                            .get("db.system.name")
                            .is_some_and(|v| v == "cassandra")
                    })
                    .map(|span| {
                        ensure!(
                            span.parent
                                .as_ref()
                                .is_some_and(|parent| ids.contains(parent.as_str())),
                            "database span {} has no parent in the trace",
                            span.describe()
                        );
                        Ok(span.service.as_str())
                    })
                    .collect::<Result<_>>()?;
                for service in [BACKEND, CART, ORDER].map(|service| service.name) {
                    ensure!(
                        services.contains(service),
                        "no database span from {service}; database spans came from {services:?}"
                    );
                }
                Ok(format!("from {services:?}"))
            },
        );
    }

    fn wait_for_trace(&self, id: &str) -> Result<Trace> {
        let wanted = topology::ALL.map(|service| service.name);
        let started = Instant::now();
        let mut last_count = 0;
        let mut last = None;
        loop {
            if let Ok(response) = self
                .client
                .get(format!("{}/api/traces/{id}", self.stack.jaeger))
                .send()
                && response.status().is_success()
            {
                let body: Value = response.json()?;
                let trace = Trace::parse(&body["data"][0])?;
                let complete = wanted
                    .iter()
                    .all(|service| trace.spans.iter().any(|span| span.service == *service));
                // Services export in batches: wait until the span count stops growing.
                if complete && trace.spans.len() == last_count {
                    return Ok(trace);
                }
                last_count = trace.spans.len();
                last = Some(trace);
            }
            if started.elapsed() > TRACE_WAIT {
                let seen: BTreeSet<String> = last
                    .map(|trace| trace.spans.into_iter().map(|span| span.service).collect())
                    .unwrap_or_default();
                bail!(
                    "after {} s the trace has spans from {seen:?}, not from all of {wanted:?} \
                     (see target/stack/logs/jaeger.log and the services' logs)",
                    TRACE_WAIT.as_secs()
                );
            }
            thread::sleep(Duration::from_secs(2));
        }
    }
}

#[derive(Clone)]
struct Trace {
    spans: Vec<Span>,
}

#[derive(Clone)]
struct Span {
    id: String,
    parent: Option<String>,
    name: String,
    service: String,
    kind: String,
    tags: BTreeMap<String, String>,
}

impl Span {
    fn describe(&self) -> String {
        format!("{} span \"{}\" of {}", self.kind, self.name, self.service)
    }
}

impl Trace {
    /// Jaeger's query API format: spans with CHILD_OF references, processes by id.
    fn parse(trace: &Value) -> Result<Self> {
        let processes = &trace["processes"];
        let mut spans = Vec::new();
        for span in trace["spans"].as_array().into_iter().flatten() {
            let tags: BTreeMap<String, String> = span["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|tag| {
                    let value = match &tag["value"] {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    Some((tag["key"].as_str()?.to_owned(), value))
                })
                .collect();
            let parent = span["references"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|reference| reference["refType"] == "CHILD_OF")
                .and_then(|reference| reference["spanID"].as_str())
                .map(str::to_owned);
            let process = span["processID"].as_str().unwrap_or_default();
            spans.push(Span {
                id: string(span, "spanID")?,
                parent,
                name: string(span, "operationName")?,
                service: processes[process]["serviceName"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned(),
                kind: tags.get("span.kind").cloned().unwrap_or_default(),
                tags,
            });
        }
        Ok(Self { spans })
    }
}
