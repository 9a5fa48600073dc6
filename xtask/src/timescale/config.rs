//! The Prometheus configuration of a run in compressed time: intervals of one second,
//! and the real target files, from the real `prometheus.yml`.

use std::path::Path;
use std::sync::LazyLock;

use anyhow::{Context, Result, anyhow, bail, ensure};
use regex::Regex;

use super::split_newline;

/// The Prometheus configuration for a scaled run, from the real `prometheus.yml`:
///
/// - at a factor above 1, every `scrape_interval`, `scrape_timeout` and
///   `evaluation_interval` is 1s: a 5m window scaled by 30 is 10 s, which needs samples
///   every second (and a scrape timeout may not exceed the interval);
/// - each relative `file_sd` file is made absolute, pointing at the real targets in
///   `source_dir`, since the generated file lives elsewhere;
/// - `rule_files` stay as they are: they must name files under `rules/`, relative to the
///   configuration's directory, where the scaled rules are written.
pub fn scale_config(text: &str, factor: u32, source_dir: &Path) -> Result<String> {
    ensure!(factor >= 1, "the time-scale factor must be at least 1");
    static INTERVAL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^(?P<head>\s*(?P<key>scrape_interval|scrape_timeout|evaluation_interval):\s*)\S+(?P<tail>.*)$",
        )
        .expect("valid regex")
    });
    static FILES: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?P<head>\s*(?:-\s+)?files:\s*)(?P<list>.*)$").expect("valid regex")
    });
    let mut out = String::with_capacity(text.len());
    let mut intervals_set = [false; 2];
    let mut in_rule_files = false;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let (body, newline) = split_newline(line);
        let context = || format!("line {}: {}", index + 1, body.trim());
        let mut scaled = body.to_owned();
        if let Some(captures) = INTERVAL.captures(body)
            && factor > 1
        {
            match &captures["key"] {
                "scrape_interval" => intervals_set[0] = true,
                "evaluation_interval" => intervals_set[1] = true,
                _ => {}
            }
            scaled = format!("{}1s{}", &captures["head"], &captures["tail"]);
        } else if let Some(captures) = FILES.captures(body) {
            let list = absolute_files(&captures["list"], source_dir).with_context(context)?;
            scaled = format!("{}{list}", &captures["head"]);
        }
        if let Some(inline) = body.strip_prefix("rule_files:") {
            if !inline.trim().is_empty() {
                bail!(
                    "line {}: write rule_files as a block list, one file a line",
                    index + 1
                );
            }
            in_rule_files = true;
        } else if in_rule_files && !body.starts_with([' ', '-', '#']) && !body.trim().is_empty() {
            in_rule_files = false;
        } else if in_rule_files {
            check_rule_file(body).with_context(context)?;
        }
        out.push_str(&scaled);
        out.push_str(newline);
    }
    if factor > 1 && intervals_set != [true, true] {
        bail!("prometheus.yml sets no global scrape_interval or evaluation_interval to shorten");
    }
    Ok(out)
}

/// A flow list of file_sd files (`[targets/backend.yml]`) with the relative ones made
/// absolute against `source_dir`, written as JSON strings (valid YAML for any path).
fn absolute_files(list: &str, source_dir: &Path) -> Result<String> {
    let inner = list
        .trim()
        .strip_prefix('[')
        .and_then(|list| list.strip_suffix(']'))
        .ok_or_else(|| {
            anyhow!("file_sd `files:` must be a one-line list such as [targets/x.yml]")
        })?;
    let files: Vec<String> = inner
        .split(',')
        .map(|file| {
            let file = file.trim().trim_matches(['"', '\'']);
            let path = source_dir.join(file);
            serde_json::to_string(&path.to_string_lossy()).expect("a string serializes")
        })
        .collect();
    Ok(format!("[{}]", files.join(", ")))
}

fn check_rule_file(line: &str) -> Result<()> {
    let Some(file) = line.trim().strip_prefix('-') else {
        return Ok(());
    };
    let file = file.trim().trim_matches(['"', '\'']);
    if !file.starts_with("rules/") {
        bail!("rule files must be under rules/ (relative), where the scaled rules are written");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_shortens_intervals_and_points_at_the_real_targets() {
        let text = "\
global:
  scrape_interval: 15s
  scrape_timeout: 10s
  evaluation_interval: 15s

rule_files:
  - rules/recording.yml

scrape_configs:
  - job_name: backend
    file_sd_configs:
      - files: [targets/backend.yml]
";
        let config = scale_config(text, 30, Path::new("/repo/prometheus")).unwrap();
        assert_eq!(
            config,
            text.replace("15s", "1s").replace("10s", "1s").replace(
                "[targets/backend.yml]",
                "[\"/repo/prometheus/targets/backend.yml\"]"
            )
        );
        let same = scale_config(text, 1, Path::new("/repo/prometheus")).unwrap();
        assert!(same.contains("scrape_interval: 15s"), "{same}");
        let elsewhere = text.replace("- rules/recording.yml", "- /etc/rules.yml");
        assert!(scale_config(&elsewhere, 30, Path::new("/repo")).is_err());
    }
}
