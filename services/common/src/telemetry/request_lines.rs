//! The request's fields on every log line written while serving it: its trace id, method
//! and route, read when a line is written from the OpenTelemetry context that
//! [`super::server_span`] makes current. A request that writes no line pays nothing for
//! them: no `tracing` span is made per request for the logs' sake.

use std::fmt;

use axum::extract::MatchedPath;
use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

/// The target of the lines the services write about their requests themselves
/// (`response failed`, and at DEBUG one line per request).
pub(crate) const REQUEST_LOG_TARGET: &str = "shop::request";

/// What the server span leaves in its context for the log lines.
#[derive(Debug, Clone)]
pub(crate) struct RequestFields {
    pub(crate) method: &'static str,
    pub(crate) route: Option<MatchedPath>,
}

impl RequestFields {
    fn route(&self) -> &str {
        self.route.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

/// How the wrapped format ends a line, so that the request's fields go just before it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LineLayout {
    /// A JSON object: the fields become members of it.
    Json,
    /// Text: the fields are appended as `key=value`.
    Text,
}

/// A log line format that adds the request's fields to the lines written while serving
/// one, and leaves every other line as `inner` writes it.
pub(crate) struct WithRequestFields<F> {
    inner: F,
    layout: LineLayout,
}

impl<F> WithRequestFields<F> {
    pub(crate) fn new(inner: F, layout: LineLayout) -> Self {
        Self { inner, layout }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithRequestFields<F>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    N: for<'writer> FormatFields<'writer> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let context = opentelemetry::Context::current();
        let Some(request) = context.get::<RequestFields>() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let span = context.span();
        let trace_id = span.span_context().trace_id();
        let (body, end) = match self.layout {
            LineLayout::Json => line.rsplit_once('}').map(|(body, _)| (body, "}\n")),
            LineLayout::Text => line.strip_suffix('\n').map(|body| (body, "\n")),
        }
        .ok_or(fmt::Error)?;
        writer.write_str(body)?;
        match self.layout {
            LineLayout::Json => {
                let route = serde_json::to_string(request.route()).map_err(|_| fmt::Error)?;
                write!(
                    writer,
                    r#","trace_id":"{trace_id}","http.request.method":"{}","http.route":{route}"#,
                    request.method
                )?;
            }
            LineLayout::Text => write!(
                writer,
                " trace_id={trace_id} http.request.method={} http.route={}",
                request.method,
                request.route()
            )?,
        }
        writer.write_str(end)
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, TraceFlags, TraceState};
    use opentelemetry::trace::{SpanId, TraceId};
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::telemetry::Captured;

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn request_context() -> opentelemetry::Context {
        let span = SpanContext::new(
            TraceId::from_hex(TRACE_ID).unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        opentelemetry::Context::new()
            .with_remote_span_context(span)
            .with_value(RequestFields {
                method: "GET",
                route: None,
            })
    }

    /// The text of a line logged outside a request and one logged inside one.
    fn two_lines(layout: LineLayout) -> String {
        let captured = Captured::default();
        let logs = match layout {
            LineLayout::Json => tracing_subscriber::fmt::layer()
                .event_format(WithRequestFields::new(
                    tracing_subscriber::fmt::format().json().flatten_event(true),
                    layout,
                ))
                .with_writer(captured.clone())
                .boxed(),
            LineLayout::Text => tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .event_format(WithRequestFields::new(
                    tracing_subscriber::fmt::format(),
                    layout,
                ))
                .with_writer(captured.clone())
                .boxed(),
        };
        let subscriber = tracing_subscriber::registry().with(logs);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(answer = 42, "outside");
            let _request = request_context().attach();
            tracing::info!(answer = 42, "inside");
        });
        captured.text()
    }

    #[test]
    fn json_lines_written_in_a_request_carry_its_trace_id_method_and_route() {
        let text = two_lines(LineLayout::Json);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let (outside, inside) = (&lines[0], &lines[1]);
        assert_eq!(outside["message"], "outside");
        assert_eq!(outside.get("trace_id"), None);
        assert_eq!(inside["message"], "inside");
        assert_eq!(inside["answer"], 42);
        assert_eq!(inside["trace_id"], TRACE_ID);
        assert_eq!(inside["http.request.method"], "GET");
        assert_eq!(inside["http.route"], "unmatched");
    }

    #[test]
    fn text_lines_written_in_a_request_end_with_its_fields() {
        let text = two_lines(LineLayout::Text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with("outside answer=42"), "{}", lines[0]);
        assert!(
            lines[1].ends_with(&format!(
                "inside answer=42 trace_id={TRACE_ID} http.request.method=GET http.route=unmatched"
            )),
            "{}",
            lines[1]
        );
    }
}
