//! Where a service's faults go. A fault lives in the process that accepts it, and the
//! gateway hands each request to one replica, so with several replicas a fault sent
//! through the gateway would reach one of them only. The replicas are the targets
//! Prometheus scrapes in the service's job: each one's fault API is on the listener its
//! metrics are scraped from, under the same prefix.

use anyhow::{Context, bail};
use clap::ValueEnum;
use reqwest::Url;

use super::prometheus::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FaultsVia {
    /// Every replica Prometheus scrapes, when it scrapes several of the service; the
    /// gateway when it scrapes one or none.
    Auto,
    /// The gateway only: with several replicas, the one nginx picks gets the fault.
    Gateway,
}

/// Where one service's fault goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destinations {
    Gateway,
    Replicas {
        /// Each replica that is up (or not scraped yet): its `scheme://host:port` and the
        /// instance Prometheus knows it by.
        up: Vec<Replica>,
        /// Instances Prometheus cannot scrape: a fault cannot reach them either.
        down: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub origin: String,
    pub instance: String,
}

/// Chooses from the targets of `service`'s job: every replica when there are several,
/// otherwise the gateway (the one replica, or a Prometheus that does not scrape the
/// service under its name).
pub fn destinations(service: &str, targets: &[Target]) -> anyhow::Result<Destinations> {
    if targets.len() < 2 {
        return Ok(Destinations::Gateway);
    }
    let mut up = Vec::new();
    let mut down = Vec::new();
    for target in targets {
        let instance = target
            .labels
            .get("instance")
            .cloned()
            .unwrap_or_else(|| target.scrape_url.clone());
        if target.health == "down" {
            down.push(instance);
        } else {
            up.push(Replica {
                origin: origin(&target.scrape_url)?,
                instance,
            });
        }
    }
    if up.is_empty() {
        bail!(
            "Prometheus scrapes {} replicas of {service} and every one is down ({}): no \
             replica can take the fault",
            targets.len(),
            down.join(", ")
        );
    }
    Ok(Destinations::Replicas { up, down })
}

/// Why a playbook that needs `needed` replicas of `service` cannot run where Prometheus
/// scrapes `scraped` of them (up or not), or `None` when it can.
pub fn shortfall(service: &str, needed: u32, scraped: usize) -> Option<String> {
    (scraped < needed as usize).then(|| {
        format!(
            "needs {needed} replicas of {service}, Prometheus scrapes {scraped} \
             (cargo xtask stack up --replicas {needed})"
        )
    })
}

/// `scheme://host:port` of a scrape URL.
fn origin(scrape_url: &str) -> anyhow::Result<String> {
    let url = Url::parse(scrape_url)
        .with_context(|| format!("Prometheus scrapes {scrape_url:?}, which is not a URL"))?;
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(instance: &str, health: &str) -> Target {
        serde_json::from_value(serde_json::json!({
            "discoveredLabels": {"__address__": instance},
            "labels": {"instance": instance, "job": "backend"},
            "scrapePool": "backend",
            "scrapeUrl": format!("http://{instance}/api/metrics"),
            "lastError": "",
            "health": health,
        }))
        .unwrap()
    }

    fn replica(instance: &str) -> Replica {
        Replica {
            origin: format!("http://{instance}"),
            instance: instance.to_owned(),
        }
    }

    #[test]
    fn one_replica_or_none_takes_its_faults_through_the_gateway() {
        assert_eq!(destinations("backend", &[]).unwrap(), Destinations::Gateway);
        let one = [target("backend:8000", "up")];
        assert_eq!(
            destinations("backend", &one).unwrap(),
            Destinations::Gateway
        );
    }

    #[test]
    fn several_replicas_each_take_the_fault_at_their_scrape_address() {
        let two = [
            target("127.0.0.1:8000", "up"),
            target("127.0.0.1:8010", "unknown"),
        ];
        assert_eq!(
            destinations("backend", &two).unwrap(),
            Destinations::Replicas {
                up: vec![replica("127.0.0.1:8000"), replica("127.0.0.1:8010")],
                down: Vec::new(),
            }
        );
    }

    #[test]
    fn down_replicas_are_named_and_passed_over_but_not_all_of_them() {
        let one_down = [
            target("127.0.0.1:8000", "up"),
            target("127.0.0.1:8010", "down"),
        ];
        assert_eq!(
            destinations("backend", &one_down).unwrap(),
            Destinations::Replicas {
                up: vec![replica("127.0.0.1:8000")],
                down: vec!["127.0.0.1:8010".to_owned()],
            }
        );
        let all_down = [
            target("127.0.0.1:8000", "down"),
            target("127.0.0.1:8010", "down"),
        ];
        let err = destinations("backend", &all_down).unwrap_err().to_string();
        assert!(err.contains("127.0.0.1:8000, 127.0.0.1:8010"), "{err}");
    }

    #[test]
    fn a_playbook_needing_two_replicas_runs_on_two_or_more_only() {
        let missing = shortfall("backend", 2, 1).expect("one replica is short of two");
        assert!(missing.contains("--replicas 2"), "{missing}");
        assert_eq!(shortfall("backend", 2, 2), None);
        assert_eq!(shortfall("backend", 2, 3), None);
    }

    #[test]
    fn a_scrape_url_that_is_no_url_is_an_error() {
        let mut odd = target("127.0.0.1:8010", "up");
        odd.scrape_url = "127.0.0.1:8010/api/metrics".to_owned();
        let err = destinations("backend", &[target("127.0.0.1:8000", "up"), odd]).unwrap_err();
        assert!(err.to_string().contains("not a URL"), "{err}");
    }
}
