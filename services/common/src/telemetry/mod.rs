//! Logs, traces and metrics: structured logs that carry the trace id, shipped to a log
//! store when one is configured, OpenTelemetry traces exported over OTLP when a collector is
//! configured, and Prometheus metrics per service.

pub mod logs;
pub mod metrics;
mod request_lines;
pub mod server_span;
mod span_fields;
pub mod trace;

use std::io::IsTerminal;

use opentelemetry::global;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use request_lines::{LineLayout, WithRequestFields};

/// Flushes buffered spans and log lines when dropped, at the end of `main`.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
    logs: Option<SdkLoggerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
        if let Some(logs) = &self.logs {
            let _ = logs.shutdown();
        }
    }
}

/// Installs the process-wide subscriber and tracer provider.
///
/// Spans always exist (so logs and `traceparent` carry trace ids); they are exported only
/// when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Export is batched on its own thread with a
/// bounded queue, so a slow or dead collector drops spans rather than slowing requests.
/// `OTEL_TRACES_SAMPLER_ARG` is the ratio of new traces sampled (parent-based; default 1).
/// `LOG_FORMAT` = json | text overrides the terminal detection; `RUST_LOG` sets levels.
/// Log lines are also shipped to the log store `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` names
/// (see [`logs`]); a malformed one is an error naming the variable.
pub fn init(service_name: &'static str) -> anyhow::Result<TelemetryGuard> {
    let shipping = logs::ShippingSettings::from_env()?;
    let resource = resource(service_name);
    let provider = tracer_provider(resource.clone());
    let logs = shipping
        .map(|settings| logs::logger_provider(&settings, resource))
        .transpose()?;
    // W3C baggage travels with the trace context, so that a load test's
    // `synthetic_request=true` reaches every service a request touches.
    global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
    let json = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let filter = level_filter();
    // Tests and the all-in-one binary may call this more than once; the first one wins,
    // for the request spans (see `server_span`) as for the others.
    let installed = layers(
        &provider,
        logs.as_ref(),
        service_name,
        json,
        std::io::stderr,
    )
    .with(filter)
    .try_init();
    if installed.is_ok() {
        global::set_tracer_provider(provider.clone());
    }
    Ok(TelemetryGuard { provider, logs })
}

/// The spans, their export and the log lines, written to `writer`.
#[cfg(test)]
pub(crate) fn subscriber<W>(
    provider: &SdkTracerProvider,
    service_name: &'static str,
    json: bool,
    writer: W,
) -> impl Subscriber + for<'span> LookupSpan<'span> + Send + Sync
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    layers(provider, None, service_name, json, writer)
}

/// Log lines written to memory, for tests.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
impl tracing_subscriber::fmt::MakeWriter<'_> for Captured {
    type Writer = Self;

    fn make_writer(&self) -> Self {
        self.clone()
    }
}

#[cfg(test)]
impl Captured {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub(crate) fn lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

/// [`subscriber`], and the log lines shipped through `shipping` when there is one.
fn layers<W>(
    provider: &SdkTracerProvider,
    shipping: Option<&SdkLoggerProvider>,
    service_name: &'static str,
    json: bool,
    writer: W,
) -> impl Subscriber + for<'span> LookupSpan<'span> + Send + Sync
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    // Every database and client call makes a span, so each attribute and clock read is
    // paid per call, and each attribute again in the export and in Jaeger. Left out: the
    // source location, target, thread and busy/idle time (the same for every span, or
    // meaningless for async work), and the OpenTelemetry context made active at every poll
    // unless log lines are shipped: the log bridge takes a line's trace and span ids from
    // it, nothing else here reads it (outbound calls take their context from the tracing
    // span). The request's own span is `server_span`'s, made without `tracing`.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service_name))
        .with_location(false)
        .with_target(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_context_activation(shipping.is_some());
    let logs = if json {
        fmt::layer()
            .fmt_fields(span_fields::AppendedJsonFields)
            .event_format(WithRequestFields::new(
                fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
                LineLayout::Json,
            ))
            .with_writer(writer)
            .boxed()
    } else {
        // Without colours: a line written in a request is formatted apart and then given
        // the request's fields (see `request_lines`), where colour codes cannot follow.
        fmt::layer()
            .with_ansi(false)
            .event_format(WithRequestFields::new(fmt::format(), LineLayout::Text))
            .with_writer(writer)
            .boxed()
    };
    let shipped = shipping.map(|provider| {
        // The exporter's own crates log about its exports: shipping those would feed back.
        let own_lines = Targets::new()
            .with_default(LevelFilter::TRACE)
            .with_targets(
                [
                    "opentelemetry",
                    "opentelemetry_sdk",
                    "opentelemetry_otlp",
                    "hyper",
                    "h2",
                    "reqwest",
                ]
                .map(|target| (target, LevelFilter::OFF)),
            );
        OpenTelemetryTracingBridge::new(provider).with_filter(own_lines)
    });
    tracing_subscriber::registry()
        .with(otel)
        .with(logs)
        .with(shipped)
}

/// The levels `RUST_LOG` sets (`info` when unset): per target, as `Targets` reads them.
///
/// Not `EnvFilter`: its span and field directives make it take a lock whenever a span is
/// entered or left, which every request pays for several times.
fn level_filter() -> Targets {
    const DEFAULT: &str = "info";
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| DEFAULT.to_owned());
    directives.parse().unwrap_or_else(|err| {
        eprintln!(
            "RUST_LOG={directives:?} is not a list of levels per target ({err}): using {DEFAULT}"
        );
        DEFAULT.parse().expect("a level")
    })
}

/// Who is speaking, on every span and log line exported.
pub(crate) fn resource(service_name: &'static str) -> Resource {
    Resource::builder()
        .with_service_name(service_name)
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_attribute(opentelemetry::KeyValue::new(
            "service.instance.id",
            uuid::Uuid::new_v4().to_string(),
        ))
        .build()
}

fn tracer_provider(resource: Resource) -> SdkTracerProvider {
    let ratio = std::env::var("OTEL_TRACES_SAMPLER_ARG")
        .ok()
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or(1.0)
        .clamp(0.0, 1.0);
    let builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))));
    let exporting = std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
    let exporter = exporting.then(|| {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
    });
    match exporter {
        Some(Ok(exporter)) => builder.with_batch_exporter(exporter).build(),
        Some(Err(err)) => {
            eprintln!("trace export disabled: cannot build the OTLP exporter: {err}");
            builder.build()
        }
        None => builder.build(),
    }
}
