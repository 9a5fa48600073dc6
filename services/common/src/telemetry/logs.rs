//! Log shipping: every log line also goes, as an OpenTelemetry log record with its trace and
//! span ids, to a log store's OTLP/HTTP endpoint (VictoriaLogs in the stack, compose and the
//! chart), when `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` names one.
//!
//! Shipping never holds a request up: a line is queued (bounded) and exported in batches on
//! the SDK's own thread. A line that finds the queue full, or whose batch the store refuses
//! or never answers, is dropped and counted in `log_lines_dropped_total`.

use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use opentelemetry::InstrumentationScope;
use opentelemetry::logs::LogRecord as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{
    BatchConfigBuilder, BatchLogProcessor, LogBatch, LogExporter, LogProcessor, SdkLogRecord,
    SdkLoggerProvider,
};
use prometheus::{IntCounter, IntCounterVec, Opts};

/// The store's OTLP/HTTP logs endpoint; unset, lines go to stderr only.
pub const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT";
/// Lines waiting for export at most; more are dropped (and counted).
pub const QUEUE_VAR: &str = "LOG_SHIPPING_QUEUE_SIZE";
const DEFAULT_QUEUE: usize = 8192;
/// An export the store has not answered by then is given up, its lines dropped: a hung
/// store fills the queue, and lines are dropped, rather than requests slowed.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the shipper did with the lines it was given, for every service's `/metrics`. One
/// shipper per process, so the all-in-one `shop` binary reports the same figures under
/// each of its four services.
pub struct ShippingMetrics {
    pub shipped: IntCounter,
    pub dropped: IntCounterVec,
}

/// Why a line was dropped: the label values of `log_lines_dropped_total`.
const QUEUE_FULL: &str = "queue_full";
const EXPORT_FAILED: &str = "export_failed";

pub static SHIPPING: LazyLock<ShippingMetrics> = LazyLock::new(|| {
    let shipped = IntCounter::new(
        "log_lines_shipped_total",
        "Log lines the log store accepted.",
    )
    .expect("a valid metric");
    let dropped = IntCounterVec::new(
        Opts::new(
            "log_lines_dropped_total",
            "Log lines never shipped to the log store: the queue was full, or the store \
             refused or did not answer their batch.",
        ),
        &["reason"],
    )
    .expect("a valid metric");
    // Both series exist from the start, so that a rate is 0 rather than absent.
    for reason in [QUEUE_FULL, EXPORT_FAILED] {
        dropped.with_label_values(&[reason]);
    }
    ShippingMetrics { shipped, dropped }
});

/// Where to ship and how many lines may wait, from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct ShippingSettings {
    pub endpoint: reqwest::Url,
    pub queue_size: usize,
}

impl ShippingSettings {
    /// None when no endpoint is set; an error naming the variable when one is malformed.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        let set = |value: Result<String, _>| value.ok().filter(|value| !value.trim().is_empty());
        // The names spelled out (they are ENDPOINT_VAR and QUEUE_VAR): the configuration
        // reference's test finds the variables the code reads by their literal names.
        let endpoint = set(std::env::var("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"));
        let queue_size = set(std::env::var("LOG_SHIPPING_QUEUE_SIZE"));
        Self::parse(endpoint.as_deref(), queue_size.as_deref())
    }

    fn parse(endpoint: Option<&str>, queue_size: Option<&str>) -> anyhow::Result<Option<Self>> {
        let Some(endpoint) = endpoint else {
            return Ok(None);
        };
        let endpoint = reqwest::Url::parse(endpoint.trim())
            .with_context(|| format!("{ENDPOINT_VAR} is not a URL: {endpoint:?}"))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            bail!("{ENDPOINT_VAR} must be an http:// or https:// URL with a host, not {endpoint}");
        }
        let queue_size = match queue_size {
            None => DEFAULT_QUEUE,
            Some(text) => text
                .trim()
                .parse()
                .ok()
                .filter(|size| *size > 0)
                .with_context(|| {
                    format!("{QUEUE_VAR} must be a positive number of lines, not {text:?}")
                })?,
        };
        Ok(Some(Self {
            endpoint,
            queue_size,
        }))
    }
}

/// A logger provider for a program that writes its log records itself rather than
/// through `tracing` (the load tester): None when no endpoint is set.
pub fn provider_from_env(service_name: &'static str) -> anyhow::Result<Option<SdkLoggerProvider>> {
    ShippingSettings::from_env()?
        .map(|settings| logger_provider(&settings, super::resource(service_name)))
        .transpose()
}

/// The logger provider shipping to the store; its lines come from the tracing bridge.
pub fn logger_provider(
    settings: &ShippingSettings,
    resource: Resource,
) -> anyhow::Result<SdkLoggerProvider> {
    let exporter = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_endpoint(settings.endpoint.as_str())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .with_context(|| format!("cannot build the log exporter for {ENDPOINT_VAR}"))?;
    Ok(SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_log_processor(bounded(exporter, settings.queue_size))
        .build())
}

/// The SDK's batch processor behind a gate that admits at most `capacity` lines not yet
/// exported: the SDK drops lines from a full queue without telling anyone, the gate drops
/// them first and counts them.
fn bounded<E: LogExporter + 'static>(exporter: E, capacity: usize) -> Gate {
    let pending = Arc::new(AtomicUsize::new(0));
    let exporter = Counting {
        inner: exporter,
        pending: Arc::clone(&pending),
    };
    let batches = BatchLogProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(capacity)
                .build(),
        )
        .build();
    Gate {
        inner: batches,
        pending,
        capacity,
    }
}

#[derive(Debug)]
struct Gate {
    inner: BatchLogProcessor,
    /// Lines admitted and not yet exported (or given up).
    pending: Arc<AtomicUsize>,
    capacity: usize,
}

impl LogProcessor for Gate {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        let admitted = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |pending| {
                (pending < self.capacity).then_some(pending + 1)
            })
            .is_ok();
        if admitted {
            // The bridge names each line after its source file and line (`event
            // src/lib.rs:118`, a build machine's path for a dependency's line); the store
            // would make that a stream of its own per call site. The target (scope) and
            // the message say more.
            record.set_event_name("");
            self.inner.emit(record, scope);
        } else {
            SHIPPING.dropped.with_label_values(&[QUEUE_FULL]).inc();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The exporter, counting what each batch became and releasing its lines from the gate.
#[derive(Debug)]
struct Counting<E> {
    inner: E,
    pending: Arc<AtomicUsize>,
}

impl<E: LogExporter> LogExporter for Counting<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let lines = batch.iter().count();
        let result = self.inner.export(batch).await;
        self.pending.fetch_sub(lines, Ordering::AcqRel);
        let lines = lines as u64;
        match result {
            Ok(()) => SHIPPING.shipped.inc_by(lines),
            Err(_) => SHIPPING
                .dropped
                .with_label_values(&[EXPORT_FAILED])
                .inc_by(lines),
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
    use tracing_subscriber::layer::SubscriberExt;

    fn dropped(reason: &str) -> u64 {
        SHIPPING.dropped.with_label_values(&[reason]).get()
    }

    #[test]
    fn lines_for_a_store_that_is_down_are_dropped_and_counted() {
        // A port nobody listens on: the listener is closed again at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let settings = ShippingSettings {
            endpoint: format!("http://127.0.0.1:{port}/insert/opentelemetry/v1/logs")
                .parse()
                .unwrap(),
            queue_size: 4,
        };
        let provider = logger_provider(&settings, Resource::builder().build()).unwrap();
        let subscriber =
            tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&provider));
        let (full_before, failed_before) = (dropped(QUEUE_FULL), dropped(EXPORT_FAILED));

        // Ten lines at once, long before the first export (a second away): four wait in
        // the queue, six find it full.
        tracing::subscriber::with_default(subscriber, || {
            for line in 0..10 {
                tracing::error!(line, "the store is down");
            }
        });
        assert_eq!(dropped(QUEUE_FULL) - full_before, 6);
        let _ = provider.force_flush();

        assert_eq!(dropped(EXPORT_FAILED) - failed_before, 4);
        // The queue is free again: the next line is admitted.
        let full_after = dropped(QUEUE_FULL);
        let subscriber =
            tracing_subscriber::registry().with(OpenTelemetryTracingBridge::new(&provider));
        tracing::subscriber::with_default(subscriber, || tracing::error!("again"));
        assert_eq!(dropped(QUEUE_FULL), full_after);
        let _ = provider.shutdown();
    }

    #[test]
    fn no_endpoint_means_no_shipping() {
        assert_eq!(ShippingSettings::parse(None, Some("10")).unwrap(), None);
    }

    #[test]
    fn a_malformed_endpoint_is_an_error_naming_the_variable() {
        for bad in ["not a url", "ftp://store/logs", "http://"] {
            let error = ShippingSettings::parse(Some(bad), None).unwrap_err();
            assert!(
                format!("{error:#}").contains(ENDPOINT_VAR),
                "{bad}: {error:#}"
            );
        }
    }

    #[test]
    fn a_bad_queue_size_is_an_error_naming_the_variable() {
        for bad in ["0", "-1", "many"] {
            let error =
                ShippingSettings::parse(Some("http://store:9428/insert"), Some(bad)).unwrap_err();
            assert!(format!("{error:#}").contains(QUEUE_VAR), "{bad}: {error:#}");
        }
    }

    #[test]
    fn a_good_endpoint_is_kept_with_the_default_queue() {
        let settings = ShippingSettings::parse(
            Some(" http://127.0.0.1:9428/insert/opentelemetry/v1/logs "),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            settings.endpoint.as_str(),
            "http://127.0.0.1:9428/insert/opentelemetry/v1/logs"
        );
        assert_eq!(settings.queue_size, DEFAULT_QUEUE);
    }
}
