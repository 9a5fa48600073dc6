//! Reading Prometheus' formats: the samples of a metric in the text exposition format,
//! the metric names a PromQL expression reads, and the timestamps of its API.

use std::collections::{BTreeMap, BTreeSet};

pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of one metric in the Prometheus text format.
pub fn parse_samples(text: &str, metric: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(rest) => match rest.rsplit_once('}') {
                Some((labels, value)) => (labels, value),
                None => continue,
            },
            None if rest.starts_with(' ') => ("", rest),
            None => continue,
        };
        let mut map = BTreeMap::new();
        // Label values here never contain `",` (routes, methods, statuses).
        for pair in labels.split("\",").filter(|pair| !pair.is_empty()) {
            if let Some((name, value)) = pair.split_once("=\"") {
                map.insert(
                    name.trim_matches(',').to_owned(),
                    value.trim_end_matches('"').to_owned(),
                );
            }
        }
        let value = value
            .split_whitespace()
            .next()
            .and_then(|value| value.parse().ok());
        if let Some(value) = value {
            samples.push(Sample { labels: map, value });
        }
    }
    samples
}

/// The metric names a PromQL expression reads: identifiers that are not functions,
/// keywords, label names or durations.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "atan2",
    ];
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_label_list = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            if chars[i] == '\\' {
                                i += 1;
                            }
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_label_list => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
                skip_label_list = false;
            }
            c if c.is_ascii_digit() => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let rest: String = chars[next..].iter().take(8).collect();
                // `sum(...)`, `sum by (x) (...)`, `sum without (x) (...)`.
                let is_call = rest.starts_with('(')
                    || (AGGREGATIONS.contains(&word.as_str())
                        && (rest.starts_with("by") || rest.starts_with("without")));
                if LABEL_LISTS.contains(&word.as_str()) {
                    // `group_left` may come without a label list.
                    skip_label_list = rest.starts_with('(');
                } else if !is_call && !KEYWORDS.contains(&word.as_str()) {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// Unix seconds.
pub fn unix_seconds(text: &str) -> Option<f64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.split('-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let mut time = time.split(':');
    let hours: f64 = time.next()?.parse().ok()?;
    let minutes: f64 = time.next()?.parse().ok()?;
    let seconds: f64 = time.next()?.parse().ok()?;
    // Days from the civil calendar (Howard Hinnant's algorithm).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days as f64 * 86_400.0 + hours * 3_600.0 + minutes * 60.0 + seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_skip_functions_labels_and_durations() {
        let names = metric_names(
            r#"sum by (service, le) (rate(http_server_requests_total{status=~"5.."}[5m]))
               / on (service) group_left service:http_server_requests:rate5m > 0.05
               and max(process_open_fds) / process_max_fds > bool 0.8
               or sum without (instance) (up)"#,
        );
        let expected: BTreeSet<String> = [
            "http_server_requests_total",
            "service:http_server_requests:rate5m",
            "process_open_fds",
            "process_max_fds",
            "up",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn samples_are_parsed_with_their_labels() {
        let text = "# HELP x\nhttp_server_requests_total{method=\"GET\",route=\"/api/products/{product_id}\",status=\"200\",service=\"backend\"} 3\nhttp_server_requests_total_other 1\n";
        let samples = parse_samples(text, "http_server_requests_total");
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].labels["route"], "/api/products/{product_id}");
        assert_eq!(samples[0].labels["status"], "200");
        assert!((samples[0].value - 3.0).abs() < f64::EPSILON);
    }

    #[test]
    fn rfc3339_timestamps_become_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            unix_seconds("2024-03-01T12:00:00.5Z"),
            Some(1_709_294_400.5)
        );
        assert_eq!(unix_seconds("2024-03-01T12:00:00+01:00"), None);
    }
}
