//! Compressed time for alert reproduction: the Prometheus configuration and rules with
//! every duration that decides when an alert fires divided by one factor, so that a
//! `for: 10m` fires after 20 s at factor 30.
//!
//! The rules are generated from the real rule files, never edited by hand: only the
//! durations of `for:`, range selectors (`[5m]`), subqueries (`[1h:5m]`) and `offset`
//! modifiers inside `expr:` change, and the rest of the text (comments, rule names such
//! as `ratio_rate5m`, numbers such as `4 * 3600`) stays byte for byte, so a diff against
//! the real file shows only durations. The text is rewritten line by line rather than
//! parsed and re-serialized as YAML, which would lose the comments and the layout.

use std::sync::LazyLock;

use anyhow::{Context, Result, anyhow, bail, ensure};
use regex::{Captures, Regex};

mod config;

pub use config::scale_config;

/// A Prometheus duration literal: units from `y` to `ms`, possibly combined (`1h30m`).
const DURATION: &str = r"(?:[0-9]+(?:ms|[smhdwy]))+";

/// A YAML mapping key at the start of a line, possibly the first key of a list item.
static KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<lead>\s*(?:-\s+)?)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?P<value>\s.*)?$")
        .expect("valid regex")
});
/// The value of `for:`: a duration, possibly quoted, possibly followed by a comment.
static FOR_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"^(?P<before>\s*["']?)(?P<duration>{DURATION})(?P<after>["']?\s*(?:#.*)?)$"#
    ))
    .expect("valid regex")
});
/// A block scalar header (`|`, `>-`, `|2` ...): the lines below it are text.
static BLOCK_SCALAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*[|>][-+0-9]*\s*(?:#.*)?$").expect("valid regex"));
/// Inside `[...]`: a range (`5m`) or a subquery (`1h:5m`, `1h:`).
static RANGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^(?P<s1>\s*)(?P<range>{DURATION})(?:(?P<s2>\s*:\s*)(?P<step>{DURATION})?)?(?P<s3>\s*)$"
    ))
    .expect("valid regex")
});
static OFFSET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"\boffset(?P<space>\s+)(?P<sign>-?)(?P<duration>{DURATION})"
    ))
    .expect("valid regex")
});
static OFFSET_AT_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\boffset\s*$").expect("valid regex"));
static DURATION_PART: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([0-9]+)(ms|[smhdwy])").expect("valid regex"));

/// A rule file with its durations divided by `factor` (1 returns the text unchanged, but
/// still checks that every duration can be read).
pub fn scale_rules(text: &str, factor: u32) -> Result<String> {
    ensure!(factor >= 1, "the time-scale factor must be at least 1");
    let mut out = String::with_capacity(text.len());
    // Inside a multi-line value: the column of its key, and whether it is an expression.
    let mut block: Option<(usize, bool)> = None;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let (body, newline) = split_newline(line);
        let scaled = scale_line(body, factor, &mut block)
            .with_context(|| format!("line {}: {}", index + 1, body.trim()))?;
        out.push_str(&scaled);
        out.push_str(newline);
    }
    Ok(out)
}

pub(super) fn split_newline(line: &str) -> (&str, &str) {
    let body = line.trim_end_matches(['\n', '\r']);
    (body, &line[body.len()..])
}

fn scale_line(line: &str, factor: u32, block: &mut Option<(usize, bool)>) -> Result<String> {
    if let Some((key_column, is_expr)) = *block {
        // A multi-line value goes on while lines are blank or indented past its key.
        if line.trim().is_empty() || indent(line) > key_column {
            return if is_expr {
                scale_promql(line, factor)
            } else {
                Ok(line.to_owned())
            };
        }
        *block = None;
    }
    let Some(captures) = KEY.captures(line) else {
        return Ok(line.to_owned());
    };
    let lead = &captures["lead"];
    let value = captures.name("value").map_or("", |value| value.as_str());
    let head = &line[..line.len() - value.len()];
    match &captures["key"] {
        "for" => Ok(format!("{head}{}", scale_for(value, factor)?)),
        "expr" => {
            let trimmed = value.trim_start();
            if trimmed.starts_with(['"', '\'']) {
                bail!("a quoted expr cannot be scaled; write it plain or as a block (`expr: |`)");
            }
            *block = Some((lead.len(), true));
            Ok(format!("{head}{}", scale_promql(value, factor)?))
        }
        _ => {
            if BLOCK_SCALAR.is_match(value) {
                *block = Some((lead.len(), false));
            }
            Ok(line.to_owned())
        }
    }
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn scale_for(value: &str, factor: u32) -> Result<String> {
    let captures = FOR_VALUE
        .captures(value)
        .ok_or_else(|| anyhow!("`for:` is not a plain duration"))?;
    Ok(format!(
        "{}{}{}",
        &captures["before"],
        scale_duration(&captures["duration"], factor)?,
        &captures["after"]
    ))
}

/// One line of PromQL: the code between strings and comments is scaled, string literals
/// (a label regex may well contain `[...]`) and comments are kept as they are.
fn scale_promql(line: &str, factor: u32) -> Result<String> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find(['"', '\'', '`', '#']) {
        out.push_str(&scale_code(&rest[..start], factor)?);
        rest = &rest[start..];
        if rest.starts_with('#') {
            break;
        }
        let end = string_end(rest).ok_or_else(|| {
            anyhow!("a string that does not end on its line cannot be scaled: {rest}")
        })?;
        out.push_str(&rest[..end]);
        rest = &rest[end..];
    }
    // What is left is a comment, or code without strings.
    if rest.starts_with('#') {
        out.push_str(rest);
    } else {
        out.push_str(&scale_code(rest, factor)?);
    }
    Ok(out)
}

/// The length of the string literal `text` starts with, closing quote included.
fn string_end(text: &str) -> Option<usize> {
    let quote = text.chars().next()?;
    let mut escaped = false;
    for (index, c) in text.char_indices().skip(1) {
        if c == quote && !escaped {
            return Some(index + 1);
        }
        // Raw strings (backticks) have no escapes.
        escaped = quote != '`' && c == '\\' && !escaped;
    }
    None
}

/// PromQL code without strings or comments: every `[...]` must be a range or a
/// subquery of plain durations, so that nothing is left unscaled unnoticed.
fn scale_code(code: &str, factor: u32) -> Result<String> {
    if OFFSET_AT_END.is_match(code) {
        bail!("`offset` with its duration on the next line cannot be scaled");
    }
    let code = replace_all(&OFFSET, code, |captures| {
        Ok(format!(
            "offset{}{}{}",
            &captures["space"],
            &captures["sign"],
            scale_duration(&captures["duration"], factor)?
        ))
    })?;
    let mut out = String::with_capacity(code.len());
    let mut rest = code.as_str();
    while let Some(open) = rest.find('[') {
        let close = rest[open..]
            .find(']')
            .map(|close| open + close)
            .ok_or_else(|| anyhow!("a `[` without its `]` on the same line cannot be scaled"))?;
        out.push_str(&rest[..=open]);
        out.push_str(&scale_range(&rest[open + 1..close], factor)?);
        rest = &rest[close..];
    }
    out.push_str(rest);
    Ok(out)
}

fn scale_range(inside: &str, factor: u32) -> Result<String> {
    let captures = RANGE.captures(inside).ok_or_else(|| {
        anyhow!(
            "[{inside}] is not a range or subquery of plain durations (such as [5m] or [1h:5m])"
        )
    })?;
    let mut out = format!(
        "{}{}",
        &captures["s1"],
        scale_duration(&captures["range"], factor)?
    );
    if let Some(separator) = captures.name("s2") {
        out.push_str(separator.as_str());
    }
    if let Some(step) = captures.name("step") {
        out.push_str(&scale_duration(step.as_str(), factor)?);
    }
    out.push_str(&captures["s3"]);
    Ok(out)
}

/// `Regex::replace_all` with a replacement that can fail.
fn replace_all(
    regex: &Regex,
    text: &str,
    mut replace: impl FnMut(&Captures) -> Result<String>,
) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for captures in regex.captures_iter(text) {
        let whole = captures.get(0).expect("group 0 always matches");
        out.push_str(&text[last..whole.start()]);
        out.push_str(&replace(&captures)?);
        last = whole.end();
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// A Prometheus duration divided by `factor`, written exactly (`3d` / 30 = `2h24m`,
/// `1m` / 40 = `1500ms`); an error when the result is not a whole number of milliseconds.
/// At factor 1 the text is returned as written (`1w` stays `1w`).
pub fn scale_duration(duration: &str, factor: u32) -> Result<String> {
    let millis = parse_duration(duration)?;
    if factor == 1 {
        return Ok(duration.to_owned());
    }
    let factor = u64::from(factor);
    if !millis.is_multiple_of(factor) {
        bail!(
            "{duration} / {factor} is not a whole number of milliseconds; \
             choose a factor that divides it"
        );
    }
    Ok(format_duration(millis / factor))
}

fn parse_duration(duration: &str) -> Result<u64> {
    let mut millis: u64 = 0;
    let mut end = 0;
    for part in DURATION_PART.captures_iter(duration) {
        let whole = part.get(0).expect("group 0 always matches");
        ensure!(whole.start() == end, "{duration} is not a duration");
        end = whole.end();
        let count: u64 = part[1]
            .parse()
            .with_context(|| format!("{duration} is too long"))?;
        let unit = match &part[2] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            _ => 365 * 86_400_000,
        };
        millis = count
            .checked_mul(unit)
            .and_then(|part| millis.checked_add(part))
            .ok_or_else(|| anyhow!("{duration} is too long"))?;
    }
    ensure!(
        end == duration.len() && end > 0,
        "{duration} is not a duration"
    );
    Ok(millis)
}

/// Days down to seconds, each unit once, largest first, as Prometheus reads them; below
/// a minute, milliseconds when the seconds are not whole (`1500ms` rather than `1s500ms`).
fn format_duration(millis: u64) -> String {
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut rest = millis;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    match rest {
        0 => {}
        _ if rest.is_multiple_of(1_000) => out.push_str(&format!("{}s", rest / 1_000)),
        _ => out.push_str(&format!("{rest}ms")),
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn scaled(text: &str, factor: u32) -> String {
        scale_rules(text, factor).unwrap()
    }

    #[test]
    fn durations_divide_exactly() {
        for (duration, factor, expected) in [
            ("1m", 30, "2s"),
            ("3d", 30, "2h24m"),
            ("5m", 60, "5s"),
            ("1m", 40, "1500ms"),
            ("30d", 30, "1d"),
            ("1h30m", 30, "3m"),
            ("1w", 7, "1d"),
            ("1y", 365, "1d"),
            ("1s", 8, "125ms"),
            ("3m3s", 2, "1m31500ms"),
            ("1w", 1, "1w"),
        ] {
            assert_eq!(
                scale_duration(duration, factor).unwrap(),
                expected,
                "{duration} / {factor}"
            );
        }
    }

    #[test]
    fn durations_that_do_not_divide_are_errors() {
        let error = scale_duration("1m", 7).unwrap_err().to_string();
        assert!(error.contains("1m / 7"), "{error}");
        assert!(scale_duration("5", 2).is_err());
        assert!(scale_duration("5m5", 2).is_err());
    }

    #[test]
    fn for_values_scale() {
        assert_eq!(scaled("        for: 10m\n", 30), "        for: 20s\n");
        assert_eq!(scaled("        for: 1h\n", 30), "        for: 2m\n");
        assert_eq!(
            scaled("    - for: \"1m\"  # why\n", 30),
            "    - for: \"2s\"  # why\n"
        );
        assert!(scale_rules("        for: soon\n", 30).is_err());
    }

    #[test]
    fn one_line_expressions_scale() {
        assert_eq!(
            scaled(
                "        expr: sum by (service) (rate(http_server_requests_total{service!=\"\"}[5m]))\n",
                30
            ),
            "        expr: sum by (service) (rate(http_server_requests_total{service!=\"\"}[10s]))\n"
        );
        assert_eq!(
            scaled(
                "        expr: sum by (service) (rate(shop_checkouts_total{outcome=\"error\"}[3d]))\n",
                30
            ),
            "        expr: sum by (service) (rate(shop_checkouts_total{outcome=\"error\"}[2h24m]))\n"
        );
    }

    #[test]
    fn block_expressions_scale_ranges_subqueries_and_offsets() {
        let original = "\
      - alert: TrafficSpike
        expr: |
          service:http_server_requests:rate5m
            > 3 * avg_over_time(service:http_server_requests:rate5m[1h] offset 10m)
            and
          max_over_time(rate(x[5m])[1h:5m]) > 0 or y offset -1m or z[1h:]
        for: 5m
";
        let expected = "\
      - alert: TrafficSpike
        expr: |
          service:http_server_requests:rate5m
            > 3 * avg_over_time(service:http_server_requests:rate5m[2m] offset 20s)
            and
          max_over_time(rate(x[10s])[2m:10s]) > 0 or y offset -2s or z[2m:]
        for: 10s
";
        assert_eq!(scaled(original, 30), expected);
    }

    #[test]
    fn names_numbers_and_text_do_not_change() {
        let unchanged = [
            // Recording-rule names carry their window in the name.
            "      - record: service:shop_checkout_errors:ratio_rate30m\n",
            "          service:http_server_requests_5xx:ratio_rate5m > 0.05\n",
            // Comments, in YAML and inside the expression.
            "      # Taking the max over 1m alerts when it has been open in every minute for 2m.\n",
            // Numbers are not durations: predict_linear's horizon is in seconds.
            "        expr: max by (service) (shop_order_processing_lag_seconds) > 120\n",
            // Text in annotations, even when it reads like a duration.
            "          description: \"has been above 500ms for 10 minutes (offset 5m, [5m])\"\n",
            "        expr: up{job=~\"gateway|jaeger|alertmanager\"} == 0\n",
            // Metric names containing `offset`.
            "        expr: clock_offset_seconds > 1\n",
        ];
        for line in unchanged {
            assert_eq!(scaled(line, 30), line);
        }
        let text = "\
        expr: |
          predict_linear(process_resident_memory_bytes{job=~\"backend|cart-service\"}[1h], 4 * 3600)
            > 1024 * 1024 * 1024 # not [5m]
";
        assert_eq!(
            scaled(text, 30),
            text.replace("[1h], 4", "[2m], 4"),
            "only the range changes"
        );
    }

    #[test]
    fn strings_keep_brackets_and_offsets() {
        let line = "        expr: count(up{instance=~\"[a-z]+ offset 5m\", job='a\\'[5m]'}[5m])\n";
        assert_eq!(scaled(line, 30), line.replace("}[5m]", "}[10s]"));
    }

    #[test]
    fn a_block_scalar_annotation_is_text() {
        let text = "\
        annotations:
          description: |
            for: 5m
            expr: rate(x[5m])
        for: 5m
";
        assert_eq!(
            scaled(text, 30),
            text.replace("\n        for: 5m\n", "\n        for: 10s\n")
        );
    }

    #[test]
    fn what_cannot_be_scaled_is_an_error() {
        for text in [
            "        expr: \"rate(x[5m])\"\n",
            "        expr: rate(x[300])\n",
            "        expr: rate(x[5m * 2])\n",
            "        expr: |\n          x offset\n            5m\n",
            "        expr: |\n          rate(x[\n            5m])\n",
            "        expr: |\n          x{a=`multi\n          line`}\n",
        ] {
            assert!(scale_rules(text, 30).is_err(), "{text}");
        }
    }

    #[test]
    fn the_real_rule_files_scale_and_factor_1_is_the_identity() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../observability/prometheus");
        let durations = Regex::new(DURATION).unwrap();
        for file in ["rules/alerts.yml", "rules/recording.yml"] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            assert_eq!(scaled(&text, 1), text, "{file}");
            let scaled = scaled(&text, 30);
            assert_eq!(scaled.lines().count(), text.lines().count(), "{file}");
            // Every changed line differs only in durations.
            for (original, scaled) in text.lines().zip(scaled.lines()) {
                assert_eq!(
                    durations.replace_all(original, "D"),
                    durations.replace_all(scaled, "D"),
                    "{file}"
                );
            }
            assert!(
                !scaled.contains("for: 10m") && !scaled.contains("[5m]"),
                "{file}"
            );
            assert!(scaled.contains(":ratio_rate5m"), "names stay: {file}");
        }
    }
}
