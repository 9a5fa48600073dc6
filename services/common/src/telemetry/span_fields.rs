//! How the JSON log layer keeps a span's fields, which every line logged inside the span
//! carries under `span`.
//!
//! tracing-subscriber's own `JsonFields` builds a map of JSON values for each new span and,
//! on every later `record`, parses the span's JSON back into a map, inserts the field and
//! writes it all again: for the request span, about a tenth of a request's CPU. Here the
//! fields are written straight out as a JSON object, and a recorded field is appended to
//! it. A field recorded twice then appears twice; the JSON formatter reads the object into
//! a map before writing a line, so the last value wins, as before.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::{FormatFields, Writer};

/// A span's fields as a JSON object, appended to rather than rewritten.
#[derive(Debug, Default, Clone, Copy)]
pub struct AppendedJsonFields;

impl<'writer> FormatFields<'writer> for AppendedJsonFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut entries = Entries::default();
        fields.record(&mut entries);
        writer.write_char('{')?;
        writer.write_str(entries.text()?)?;
        writer.write_char('}')
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut entries = Entries::default();
        fields.record(&mut entries);
        let text = entries.text()?;
        if text.is_empty() {
            return Ok(());
        }
        // `current` is `{}` or `{"a":1,...}`: reopen the object, add the entries, close it.
        let object = &mut current.fields;
        if object.pop() != Some('}') {
            object.clear();
            object.push('{');
        } else if object.len() > 1 {
            object.push(',');
        }
        object.push_str(text);
        object.push('}');
        Ok(())
    }
}

/// Comma-separated `"name":value` pairs, as tracing-subscriber's `JsonVisitor` names and
/// renders them: debug-formatted values become strings, a raw identifier loses its `r#`.
/// Bytes rather than a `String`, so that serde_json escapes strings straight into them.
#[derive(Default)]
struct Entries {
    text: Vec<u8>,
    /// A reused buffer for values formatted before they are escaped.
    formatted: String,
}

impl Entries {
    fn text(&self) -> Result<&str, fmt::Error> {
        std::str::from_utf8(&self.text).map_err(|_| fmt::Error)
    }

    fn key(&mut self, field: &Field) {
        if !self.text.is_empty() {
            self.text.push(b',');
        }
        let name = field.name();
        self.string(name.strip_prefix("r#").unwrap_or(name));
        self.text.push(b':');
    }

    /// Appends `value` as a JSON string, quoted and escaped.
    fn string(&mut self, value: &str) {
        serde_json::to_writer(&mut self.text, value).expect("a string always serialises");
    }

    fn literal(&mut self, field: &Field, value: impl fmt::Display) {
        use std::io::Write as _;
        self.key(field);
        let _ = write!(self.text, "{value}");
    }
}

impl Visit for Entries {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.literal(field, value);
        } else {
            // JSON has no infinities or NaN; serde_json writes them as null.
            self.literal(field, "null");
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.literal(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.literal(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.literal(field, value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        self.string(value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        let mut formatted = std::mem::take(&mut self.formatted);
        formatted.clear();
        let _ = write!(formatted, "{value:?}");
        self.string(&formatted);
        self.formatted = formatted;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use tracing::field::Empty;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::telemetry::Captured;

    /// The `span` object of the one line logged inside a span built and recorded by `run`.
    fn span_of_line(run: impl FnOnce()) -> Value {
        let captured = Captured::default();
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .fmt_fields(AppendedJsonFields)
            .with_writer(captured.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, run);
        let lines = captured.lines();
        assert_eq!(lines.len(), 1, "{lines:#?}");
        lines[0]["span"].clone()
    }

    #[test]
    fn span_fields_and_later_records_reach_the_lines_logged_inside_it() {
        let span = span_of_line(|| {
            let span = tracing::info_span!(
                "request",
                route = %"/items/{id}",
                quoted = "say \"hi\"\n",
                count = 3_u64,
                delta = -2_i64,
                ratio = 0.5,
                ok = true,
                r#type = ?"debug",
                status = Empty,
                late = Empty,
            );
            span.record("status", 200);
            span.record("late", "first");
            span.record("late", "second");
            let _entered = span.enter();
            tracing::info!("inside");
        });
        assert_eq!(
            span,
            json!({
                "name": "request",
                "route": "/items/{id}",
                "quoted": "say \"hi\"\n",
                "count": 3,
                "delta": -2,
                "ratio": 0.5,
                "ok": true,
                "type": "\"debug\"",
                "status": 200,
                "late": "second",
            })
        );
    }

    #[test]
    fn a_span_without_fields_gains_its_first_recorded_one() {
        let span = span_of_line(|| {
            let span = tracing::info_span!("bare", later = Empty);
            span.record("later", f64::NAN);
            let _entered = span.enter();
            tracing::info!("inside");
        });
        assert_eq!(span, json!({"name": "bare", "later": null}));
    }
}
