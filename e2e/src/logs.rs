//! The log store: a failed request's lines, the service's and the gateway's, found by its
//! trace id; every service's lines counted; and a store that is down costs the services
//! nothing but the lines, which they count.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use shop_topology::{self as topology, BACKEND};

use crate::dashboards::replace_variables;
use crate::harness::E2e;
use crate::promql::parse_samples;

/// How long a line may take from the service or the gateway to a query's answer.
const LINE_WAIT: Duration = Duration::from_secs(10);
/// The route the fault breaks, and the path of a request to it.
const FAULTED_ROUTE: &str = "/api/products/{product_id}";
const FAULTED_PATH: &str = "/api/products/00000000-0000-4000-8000-00000000e2e0";
/// The Grafana data source type of the log store; its targets hold LogsQL.
const LOGS_DATASOURCE: &str = "victoriametrics-logs-datasource";
/// The dashboard of the log store's lines.
const LOGS_DASHBOARD: &str = "grafana/dashboards/logs.json";

/// Whether a dashboard target is a LogsQL query of the log store.
pub fn is_logsql(target: &Value) -> bool {
    target["datasource"]["type"] == LOGS_DATASOURCE
}

impl E2e {
    pub fn logs(&mut self) {
        self.check_unit(
            "a failed request's lines are in the log store by its trace id: the service's error line and the gateway's access line",
            |e2e| e2e.failed_request_lines(),
        );
        self.check_unit(
            "the log store has lines from every service and from the gateway",
            |e2e| e2e.lines_per_service(),
        );
        self.check_unit(
            &format!("dashboard {LOGS_DASHBOARD}: every LogsQL query runs and returns lines"),
            |e2e| e2e.dashboard_queries(),
        );
        self.check_unit(
            "with the log store stopped, the services answer and count the lines they drop",
            |e2e| e2e.store_down(),
        );
    }

    /// The Logs dashboard's LogsQL, its variables set to every service, against the store:
    /// after the failed request above, each query has lines to show.
    fn dashboard_queries(&mut self) -> Result<String> {
        let text = std::fs::read_to_string(self.root.join(LOGS_DASHBOARD))?;
        let dashboard: Value = serde_json::from_str(&text)?;
        let mut queries = Vec::new();
        for panel in dashboard["panels"].as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if is_logsql(target) {
                    let logsql = target["expr"].as_str().unwrap_or_default();
                    queries.push((panel["title"].clone(), replace_variables(logsql, ".*")));
                }
            }
        }
        ensure!(!queries.is_empty(), "{LOGS_DASHBOARD} has no LogsQL query");
        for (title, logsql) in &queries {
            let rows = self.logsql(&format!("_time:1h {logsql}"))?;
            ensure!(!rows.is_empty(), "panel {title}: `{logsql}` has no lines");
        }
        Ok(format!("{} queries", queries.len()))
    }

    fn failed_request_lines(&mut self) -> Result<String> {
        // Never all zeros, which is no trace id.
        let trace_id = format!("{:032x}", fastrand::u128(..) | 1 << 100);
        let started = Instant::now();
        let status = self.with_error_fault(|e2e| {
            e2e.gateway(Method::GET, FAULTED_PATH)
                .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
                .send()
                .context("the faulted request got no answer")
                .map(|response| response.status())
        })?;
        ensure!(
            status == StatusCode::INTERNAL_SERVER_ERROR,
            "the faulted request answered {status}, not 500"
        );
        let service = self
            .wait_for_line(&format!(
                r#"trace_id:="{trace_id}" service.name:=backend severity_text:=ERROR"#
            ))
            .context("the backend's error line")?;
        let gateway = self.wait_for_line(
            &format!(
                r#"{{app_name="gateway"}} "{trace_id}" | unpack_json fields (trace_id, status, upstream_addr, request_time)"#
            ),
        )
        .context("the gateway's access line")?;
        ensure!(
            gateway["status"] == "500" && gateway["trace_id"] == trace_id.as_str(),
            "the gateway's line does not show the 500 for this trace: {gateway}"
        );
        let backends = self.stack.replicas(&BACKEND);
        ensure!(
            gateway["upstream_addr"].as_str().is_some_and(|address| {
                backends
                    .iter()
                    .any(|replica| address.ends_with(&format!(":{}", replica.port)))
            }),
            "the gateway's line does not name a backend replica as its upstream: {gateway}"
        );
        Ok(format!(
            "both within {:.1} s; the service said {:?}",
            started.elapsed().as_secs_f64(),
            service["_msg"].as_str().unwrap_or_default()
        ))
    }

    fn lines_per_service(&mut self) -> Result<String> {
        let rows = self.logsql("_time:1h | stats by (service.name, app_name) count() lines")?;
        let lines = |field: &str, name: &str| {
            rows.iter()
                .find(|row| row[field] == name)
                .and_then(|row| row["lines"].as_str()?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let mut counted = Vec::new();
        for service in topology::ALL.map(|service| service.name) {
            let count = lines("service.name", service);
            ensure!(
                count > 0,
                "no line from {service} in the last hour: {rows:?}"
            );
            counted.push(format!("{service} {count}"));
        }
        let gateway = lines("app_name", "gateway");
        ensure!(gateway > 0, "no gateway access line in the last hour");
        counted.push(format!("gateway {gateway}"));
        Ok(counted.join(", "))
    }

    fn store_down(&mut self) -> Result<String> {
        let before = self.dropped_lines()?;
        ensure!(
            self.stop_component("victoria-logs")?,
            "the log store was not running"
        );
        let outcome = self.requests_while_the_store_is_down(before);
        let restarted = self
            .start_component("victoria-logs")
            .context("starting the log store again");
        let detail = outcome?;
        restarted?;
        Ok(detail)
    }

    /// Failed requests make error lines, which cannot be shipped: each one is answered all
    /// the same, and the count of dropped lines rises in each backend replica, each sent
    /// its requests directly (the gateway would spread them as it likes).
    fn requests_while_the_store_is_down(&mut self, before: Vec<f64>) -> Result<String> {
        const REQUESTS: usize = 20;
        let replicas = self.stack.replicas(&BACKEND);
        self.with_error_fault(|e2e| {
            for replica in &replicas {
                let mut answered = 0;
                for _ in 0..REQUESTS {
                    let response = e2e
                        .client
                        .get(format!("{}{FAULTED_PATH}", replica.url))
                        .send()?;
                    if response.status() == StatusCode::INTERNAL_SERVER_ERROR {
                        answered += 1;
                    }
                }
                ensure!(
                    answered == REQUESTS,
                    "{answered} of {REQUESTS} requests to {} got the fault's 500",
                    replica.name
                );
            }
            Ok(())
        })?;
        let ready = self
            .gateway(Method::GET, "/api/health/ready")
            .send()
            .context("readiness with the store down")?;
        ensure!(
            ready.status().is_success(),
            "the backend is not ready with the store down: {}",
            ready.status()
        );
        let started = Instant::now();
        loop {
            let after = self.dropped_lines()?;
            let short: Vec<String> = replicas
                .iter()
                .zip(before.iter().zip(&after))
                .filter(|(_, (before, after))| **after < **before + REQUESTS as f64)
                .map(|(replica, (before, after))| format!("{}: {before} -> {after}", replica.name))
                .collect();
            if short.is_empty() {
                let counts: Vec<String> = replicas
                    .iter()
                    .zip(before.iter().zip(&after))
                    .map(|(replica, (before, after))| {
                        format!("{} {before} -> {after}", replica.name)
                    })
                    .collect();
                return Ok(format!(
                    "{REQUESTS} requests answered by each replica; log_lines_dropped_total {}",
                    counts.join(", ")
                ));
            }
            if started.elapsed() > LINE_WAIT {
                bail!(
                    "log_lines_dropped_total rose by less than {REQUESTS} error lines in {}",
                    short.join("; ")
                );
            }
            thread::sleep(Duration::from_millis(500));
        }
    }

    /// Runs `body` with every backend product lookup answering 500 in every replica (each
    /// keeps its faults to itself, so each is given the fault directly), then removes it.
    fn with_error_fault<T>(&mut self, body: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let admin = format!(
            "Bearer {}",
            self.token("admin", &self.stack.admin_password)?
        );
        let mut injected = Vec::new();
        for replica in self.stack.replicas(&BACKEND) {
            let faults = format!("{}{}/admin/faults", replica.url, BACKEND.prefix);
            let fault = self.expect(
                self.client
                    .post(&faults)
                    .header("Authorization", &admin)
                    .json(&json!({
                        "kind": "error",
                        "route": FAULTED_ROUTE,
                        "status": 500,
                        "fraction": 1.0,
                        "ttl_seconds": 60
                    })),
                StatusCode::CREATED,
                &format!("inject a 500 fault into {}", replica.name),
            );
            let id = fault.and_then(|fault| {
                fault["id"]
                    .as_str()
                    .map(str::to_owned)
                    .context("the fault has no id")
            });
            match id {
                Ok(id) => injected.push(format!("{faults}/{id}")),
                Err(error) => {
                    self.remove_faults(&admin, &injected)?;
                    return Err(error);
                }
            }
        }
        let result = body(self);
        self.remove_faults(&admin, &injected)?;
        result
    }

    fn remove_faults(&self, admin: &str, faults: &[String]) -> Result<()> {
        for fault in faults {
            self.expect(
                self.client.delete(fault).header("Authorization", admin),
                StatusCode::NO_CONTENT,
                &format!("remove the fault {fault}"),
            )?;
        }
        Ok(())
    }
}

impl E2e {
    /// The rows a LogsQL query returns (one JSON object per line).
    fn logsql(&self, logsql: &str) -> Result<Vec<Value>> {
        let response = self
            .client
            .post(format!("{}/select/logsql/query", self.stack.log_store))
            .form(&[("query", logsql)])
            .send()
            .context("the log store does not answer")?;
        let status = response.status();
        let body = response.text()?;
        ensure!(status.is_success(), "LogsQL `{logsql}`: {status}: {body}");
        body.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).context("a row that is not JSON"))
            .collect()
    }

    /// The first line `logsql` finds, waiting up to [`LINE_WAIT`] for it to arrive.
    fn wait_for_line(&self, logsql: &str) -> Result<Value> {
        let started = Instant::now();
        loop {
            if let Some(line) = self.logsql(logsql)?.into_iter().next() {
                return Ok(line);
            }
            if started.elapsed() > LINE_WAIT {
                bail!("no line within {} s for `{logsql}`", LINE_WAIT.as_secs());
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// Each backend replica's `log_lines_dropped_total`, all reasons, in replica order.
    fn dropped_lines(&self) -> Result<Vec<f64>> {
        self.service_metrics(&BACKEND)?
            .iter()
            .map(|(replica, text)| {
                let samples = parse_samples(text, "log_lines_dropped_total");
                ensure!(
                    !samples.is_empty(),
                    "{} exports no log_lines_dropped_total",
                    replica.name
                );
                Ok(samples.iter().map(|sample| sample.value).sum())
            })
            .collect()
    }
}
