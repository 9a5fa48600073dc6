//! Every alert rule has a playbook, as data the tester reads and as a documentation page,
//! and every playbook belongs to an alert that exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use loadtester::reproduce::playbook::{kebab_case, read_all};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the loadtester lives in the workspace")
        .to_path_buf()
}

/// The `alert:` names of the rule file (the rule linter keeps them one per line).
fn alert_rules() -> BTreeSet<String> {
    let rules =
        std::fs::read_to_string(repository().join("observability/prometheus/rules/alerts.yml"))
            .expect("the alert rules");
    let alerts: BTreeSet<String> = rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert:"))
        .map(|name| name.trim().to_owned())
        .collect();
    assert!(alerts.len() >= 10, "too few alerts found: {alerts:?}");
    alerts
}

fn pages() -> BTreeSet<String> {
    std::fs::read_dir(repository().join("docs/playbooks"))
        .expect("docs/playbooks")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .filter(|name| name != "index")
        .collect()
}

#[test]
fn every_alert_has_a_playbook_file_and_page() {
    let playbooks = read_all(&repository().join("loadtester/playbooks")).expect("valid playbooks");
    let with_data: BTreeSet<&str> = playbooks.iter().map(|p| p.alert.as_str()).collect();
    let pages = pages();
    let mut missing = Vec::new();
    for alert in alert_rules() {
        if !with_data.contains(alert.as_str()) {
            missing.push(format!("loadtester/playbooks/{}.toml", kebab_case(&alert)));
        }
        if !pages.contains(&kebab_case(&alert)) {
            missing.push(format!("docs/playbooks/{}.md", kebab_case(&alert)));
        }
    }
    assert!(missing.is_empty(), "alerts without a playbook: {missing:?}");
}

#[test]
fn every_playbook_names_an_existing_alert() {
    let alerts = alert_rules();
    let playbooks = read_all(&repository().join("loadtester/playbooks")).expect("valid playbooks");
    let strays: Vec<&str> = playbooks
        .iter()
        .filter(|playbook| !alerts.contains(&playbook.alert))
        .map(|playbook| playbook.alert.as_str())
        .collect();
    assert!(
        strays.is_empty(),
        "playbooks for alerts that do not exist: {strays:?}"
    );

    let known_pages: BTreeSet<String> = alerts.iter().map(|alert| kebab_case(alert)).collect();
    let stray_pages: Vec<String> = pages().difference(&known_pages).cloned().collect();
    assert!(
        stray_pages.is_empty(),
        "pages for alerts that do not exist: {stray_pages:?}"
    );
}

#[test]
fn each_page_is_titled_with_its_alert() {
    for alert in alert_rules() {
        let page = repository().join(format!("docs/playbooks/{}.md", kebab_case(&alert)));
        let Ok(text) = std::fs::read_to_string(&page) else {
            continue; // every_alert_has_a_playbook_file_and_page reports the missing page
        };
        assert_eq!(
            text.lines().next(),
            Some(format!("# {alert}").as_str()),
            "{} must start with the alert's name as its title",
            page.display()
        );
    }
}
