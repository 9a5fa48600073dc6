//! A playbook: the data that says how to make one alert fire (`loadtester/playbooks/*.toml`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use shop_common::faults;
use shop_common::topology::{self, Placement};

use crate::open_model::OpenPlan;
use crate::open_model::schedule::{Arrivals, Rate, Schedule, Stage, Stages};
use crate::options::{Mix, ThinkRange};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// The alert rule's name, as in `alerts.yml`.
    pub alert: String,
    pub summary: String,
    /// Labels the firing alert must carry, so that the same alert of another service does
    /// not count.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub fires_within: Bound,
    /// Components stopped for the run and started again afterwards.
    #[serde(default)]
    pub stop: Vec<String>,
    /// Replicas of the labelled service the stack must run for the playbook to mean
    /// anything (`cargo xtask stack up --replicas N`), counted in Prometheus' targets.
    pub replicas: Option<u32>,
    pub load: Option<Load>,
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// The file's name without `.toml`: the alert in kebab case.
    #[serde(skip)]
    pub name: String,
}

/// How long until the alert must be firing: the part the rules' durations set, which
/// compressed time divides, plus the part real time sets (a value threshold in seconds,
/// restarting a process), which it does not.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    #[serde(with = "humantime_serde")]
    pub rule_time: Duration,
    #[serde(with = "humantime_serde")]
    pub wall_time: Duration,
}

impl Bound {
    pub fn under_time_scale(&self, factor: u32) -> Duration {
        self.rule_time / factor.max(1) + self.wall_time
    }
}

/// The load tester's own options for the run; goose's come from the command line.
///
/// The load's shape is one of three: `users` in goose's closed loop (each waits for its
/// answers), or journeys arriving at `arrival_rate` or along `stages` (the open model),
/// whatever the shop's answers take.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    pub mix: String,
    pub users: Option<usize>,
    /// Arrivals per second or minute, as `--arrival-rate`: `40/s`.
    pub arrival_rate: Option<String>,
    /// Rates that hold or ramp, as `--stages`; the last one's final rate then holds until
    /// the alert fires or the bound passes.
    pub stages: Option<String>,
    /// With a rate: at most this many iterations at once, as `--max-in-flight`.
    pub max_in_flight: Option<u32>,
    pub think_time_ms: Option<String>,
    #[serde(default)]
    pub direct: bool,
    /// Units of the flash-sale product at the start.
    pub flash_stock: Option<i64>,
    /// Share of their orders shoppers and flash-sale buyers cancel, in percent.
    pub cancel_percent: Option<u32>,
}

/// How the load comes.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// The closed model: this many users.
    Users(usize),
    /// The open model: arrivals along `stages`, then at `then` per second until the end.
    Arrivals {
        stages: Vec<Stage>,
        then: f64,
        max_in_flight: u32,
    },
}

impl Load {
    pub fn mix(&self) -> anyhow::Result<Mix> {
        self.mix
            .parse()
            .map_err(|err| anyhow::anyhow!("load.mix: {err}"))
    }

    pub fn think_time(&self) -> anyhow::Result<Option<ThinkRange>> {
        self.think_time_ms
            .as_deref()
            .map(|range| {
                range
                    .parse()
                    .map_err(|err| anyhow::anyhow!("load.think_time_ms: {err}"))
            })
            .transpose()
    }

    pub fn shape(&self) -> anyhow::Result<Shape> {
        let max_in_flight = self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        let shape = match (self.users, &self.arrival_rate, &self.stages) {
            (Some(0), None, None) => bail!("load.users must be at least 1"),
            (Some(users), None, None) => Shape::Users(users),
            (None, Some(rate), None) => {
                let rate: Rate = rate
                    .parse()
                    .map_err(|err| anyhow::anyhow!("load.arrival_rate: {err}"))?;
                Shape::Arrivals {
                    stages: Vec::new(),
                    then: rate.0,
                    max_in_flight,
                }
            }
            (None, None, Some(stages)) => {
                let Stages(stages) = stages
                    .parse()
                    .map_err(|err| anyhow::anyhow!("load.stages: {err}"))?;
                let then = stages.last().map_or(0.0, |stage| stage.to);
                Shape::Arrivals {
                    stages,
                    then,
                    max_in_flight,
                }
            }
            _ => bail!("load: give exactly one of users, arrival_rate and stages"),
        };
        if matches!(shape, Shape::Users(_)) && self.max_in_flight.is_some() {
            bail!("load.max_in_flight goes with arrival_rate or stages, not users");
        }
        if max_in_flight == 0 {
            bail!("load.max_in_flight must be at least 1");
        }
        Ok(shape)
    }

    /// How the timeline and the report name the load: `40 users of stuffer=1`.
    pub fn describe(&self) -> String {
        match (self.users, &self.arrival_rate, &self.stages) {
            (Some(users), _, _) => format!("{users} users of {}", self.mix),
            (_, Some(rate), _) => format!("{} arriving at {rate}", self.mix),
            (_, _, Some(stages)) => format!("{} arriving along {stages}", self.mix),
            _ => self.mix.clone(),
        }
    }
}

/// The iterations at once a playbook's arrivals may run, unless it says otherwise.
const DEFAULT_MAX_IN_FLIGHT: u32 = 1000;

impl Shape {
    /// The open model's plan for a run of `length`: the stages, then their last rate until
    /// the end. `None` for the closed model.
    pub fn open_plan(&self, length: Duration) -> Option<OpenPlan> {
        let Self::Arrivals {
            stages,
            then,
            max_in_flight,
        } = self
        else {
            return None;
        };
        let mut stages = stages.clone();
        let staged: Duration = stages.iter().map(|stage| stage.duration).sum();
        if length > staged {
            stages.push(Stage {
                duration: length - staged,
                from: *then,
                to: *then,
            });
        }
        Some(OpenPlan {
            schedule: Schedule::new(Stages(stages)),
            arrivals: Arrivals::Uniform,
            phase: 0.0,
            max_in_flight: *max_in_flight,
        })
    }
}

/// A fault for one service: the body of `POST <prefix>/admin/faults` without its
/// time-to-live, which the run sets.
#[derive(Debug, Clone, Deserialize)]
pub struct FaultSpec {
    pub service: Service,
    #[serde(flatten)]
    pub body: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    Backend,
    CartService,
    OrderService,
    UserService,
}

impl Service {
    fn placement(self) -> Placement {
        match self {
            Self::Backend => topology::BACKEND,
            Self::CartService => topology::CART,
            Self::OrderService => topology::ORDER,
            Self::UserService => topology::USER,
        }
    }

    /// The fault API of the service, under its public prefix: `/api/admin/faults`.
    pub fn faults_path(self) -> String {
        format!("{}{}", self.placement().prefix, faults::api::PATH)
    }

    /// Its name: the `service` label of its metrics and its job in Prometheus.
    pub fn name(self) -> &'static str {
        self.placement().name
    }
}

impl Playbook {
    /// Reads and checks one file; its name must be the alert's in kebab case.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read playbook {}", path.display()))?;
        let mut playbook: Playbook =
            toml::from_str(&text).with_context(|| format!("playbook {}", path.display()))?;
        playbook.name = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or_default()
            .to_owned();
        playbook
            .check()
            .with_context(|| format!("playbook {}", path.display()))?;
        Ok(playbook)
    }

    fn check(&self) -> anyhow::Result<()> {
        if kebab_case(&self.alert) != self.name {
            bail!(
                "the playbook for {} must be named {}.toml",
                self.alert,
                kebab_case(&self.alert)
            );
        }
        if self.load.is_none() && self.faults.is_empty() && self.stop.is_empty() {
            bail!("it does nothing: give it a load, faults or components to stop");
        }
        if let Some(load) = &self.load {
            load.mix()?;
            load.think_time()?;
            load.shape()?;
            if load.cancel_percent.is_some_and(|percent| percent > 100) {
                bail!("load.cancel_percent is a percentage, 0 to 100");
            }
            if load.flash_stock.is_some_and(|stock| stock < 1) {
                bail!("load.flash_stock must be at least 1");
            }
        }
        for fault in &self.faults {
            if fault.body.contains_key("ttl_seconds") {
                bail!("faults: leave ttl_seconds out; the run sets it to cover the bound");
            }
            if !fault.body.contains_key("kind") {
                bail!("faults: every fault needs a kind");
            }
        }
        Ok(())
    }
}

/// The file in the playbook directory that lists the order `--all` runs them in.
pub const RUN_ORDER: &str = "run-all-order.txt";

/// Every playbook in `dir`, in the order its [`RUN_ORDER`] file lists them; that list must
/// name each playbook once and nothing else.
pub fn read_all(dir: &Path) -> anyhow::Result<Vec<Playbook>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list playbooks in {}", dir.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|path| path.extension().is_some_and(|ext| ext == "toml"));
    let mut playbooks: Vec<Playbook> = paths
        .iter()
        .map(|path| Playbook::read(path))
        .collect::<anyhow::Result<_>>()?;
    let order_file = dir.join(RUN_ORDER);
    let listed = std::fs::read_to_string(&order_file)
        .with_context(|| format!("cannot read {}", order_file.display()))?;
    let order =
        run_order(&listed, &playbooks).with_context(|| format!("{}", order_file.display()))?;
    playbooks.sort_by_key(|playbook| order.iter().position(|name| *name == playbook.name));
    Ok(playbooks)
}

/// The names of the order file, checked against the playbooks.
fn run_order<'a>(listed: &'a str, playbooks: &[Playbook]) -> anyhow::Result<Vec<&'a str>> {
    let order: Vec<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    for name in &order {
        if order.iter().filter(|other| *other == name).count() > 1 {
            bail!("lists {name} twice");
        }
        if !playbooks.iter().any(|playbook| playbook.name == *name) {
            bail!("lists {name}, which has no {name}.toml");
        }
    }
    let unlisted: Vec<&str> = playbooks
        .iter()
        .map(|playbook| playbook.name.as_str())
        .filter(|name| !order.contains(name))
        .collect();
    if !unlisted.is_empty() {
        bail!("does not list {}", unlisted.join(", "));
    }
    Ok(order)
}

/// `High5xxRatio` → `high-5xx-ratio`, `CheckoutSLOFastBurn` → `checkout-slo-fast-burn`,
/// `HighLatencyP95` → `high-latency-p95`: a word starts at a capital or a digit after a
/// lower-case letter, at a capital after a digit, and at the last capital of an acronym
/// followed by lower case.
pub fn kebab_case(alert: &str) -> String {
    let chars: Vec<char> = alert.chars().collect();
    let mut kebab = String::with_capacity(alert.len() + 4);
    for (index, &current) in chars.iter().enumerate() {
        if index > 0 && starts_word(chars[index - 1], current, chars.get(index + 1)) {
            kebab.push('-');
        }
        kebab.push(current.to_ascii_lowercase());
    }
    kebab
}

fn starts_word(previous: char, current: char, next: Option<&char>) -> bool {
    let next_is_lower = next.is_some_and(char::is_ascii_lowercase);
    match (previous, current) {
        (p, c) if p.is_ascii_lowercase() => c.is_ascii_uppercase() || c.is_ascii_digit(),
        (p, c) if p.is_ascii_digit() => c.is_ascii_uppercase(),
        (p, c) => p.is_ascii_uppercase() && c.is_ascii_uppercase() && next_is_lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_become_the_runbook_page_names() {
        assert_eq!(kebab_case("ServiceDown"), "service-down");
        assert_eq!(kebab_case("High5xxRatio"), "high-5xx-ratio");
        assert_eq!(kebab_case("HighLatencyP95"), "high-latency-p95");
        assert_eq!(kebab_case("CheckoutSLOFastBurn"), "checkout-slo-fast-burn");
        assert_eq!(kebab_case("LoginFailureSpike"), "login-failure-spike");
    }

    #[test]
    fn the_bound_divides_only_rule_time() {
        let bound = Bound {
            rule_time: Duration::from_secs(600),
            wall_time: Duration::from_secs(30),
        };
        assert_eq!(bound.under_time_scale(1), Duration::from_secs(630));
        assert_eq!(bound.under_time_scale(30), Duration::from_secs(50));
        assert_eq!(bound.under_time_scale(0), Duration::from_secs(630));
    }

    fn parse(text: &str) -> anyhow::Result<Playbook> {
        let mut playbook: Playbook = toml::from_str(text)?;
        playbook.name = kebab_case(&playbook.alert);
        playbook.check()?;
        Ok(playbook)
    }

    const BASE: &str = r#"
        alert = "High5xxRatio"
        summary = "s"
        fires_within = { rule_time = "7m", wall_time = "30s" }
    "#;

    #[test]
    fn faults_are_fault_api_bodies_without_a_ttl() {
        let playbook = parse(&format!(
            "{BASE}\n[[faults]]\nservice = \"backend\"\nkind = \"error\"\nstatus = 500\n"
        ))
        .unwrap();
        let fault = &playbook.faults[0];
        assert_eq!(fault.service, Service::Backend);
        assert_eq!(fault.service.faults_path(), "/api/admin/faults");
        assert_eq!(fault.body["status"], 500);
        assert!(!fault.body.contains_key("service"));
        assert_eq!(playbook.fires_within.rule_time, Duration::from_secs(7 * 60));

        let with_ttl = format!(
            "{BASE}\n[[faults]]\nservice = \"backend\"\nkind = \"error\"\nttl_seconds = 5\n"
        );
        assert!(parse(&with_ttl).is_err());
    }

    #[test]
    fn the_run_order_lists_every_playbook_once() {
        let playbooks = vec![
            parse(&format!("{BASE}\nstop = [\"backend\"]\n")).unwrap(),
            parse(&format!(
                "{}\nstop = [\"backend\"]\n",
                BASE.replace("High5xxRatio", "ServiceDown")
            ))
            .unwrap(),
        ];
        let order = run_order("# why\nservice-down\n\nhigh-5xx-ratio\n", &playbooks).unwrap();
        assert_eq!(order, vec!["service-down", "high-5xx-ratio"]);
        assert!(
            run_order("service-down\n", &playbooks).is_err(),
            "one unlisted"
        );
        assert!(run_order("service-down\nhigh-5xx-ratio\nservice-down\n", &playbooks).is_err());
        assert!(run_order("service-down\nhigh-5xx-ratio\ntraffic-spike\n", &playbooks).is_err());
    }

    #[test]
    fn a_load_is_users_a_rate_or_stages() {
        let load = |shape: &str| {
            parse(&format!("{BASE}\n[load]\nmix = \"browser=1\"\n{shape}\n"))
                .map(|playbook| playbook.load.expect("a load"))
        };
        assert_eq!(load("users = 6").unwrap().shape().unwrap(), Shape::Users(6));
        let step = load("stages = \"10s:1/s,50s:12/s\"\nmax_in_flight = 40").unwrap();
        let plan = step.shape().unwrap().open_plan(secs(90)).unwrap();
        assert_eq!(plan.max_in_flight, 40);
        // The stages, then their last rate until the run's end.
        assert_eq!(plan.schedule.duration(), secs(90));
        assert_eq!(plan.schedule.rate_at(secs(5)), 1.0);
        assert_eq!(plan.schedule.rate_at(secs(85)), 12.0);
        assert_eq!(step.describe(), "browser=1 arriving along 10s:1/s,50s:12/s");

        let rate = load("arrival_rate = \"120/m\"").unwrap();
        let plan = rate.shape().unwrap().open_plan(secs(30)).unwrap();
        assert!((plan.schedule.expected(secs(30)) - 60.0).abs() < 1e-9);
        assert_eq!(
            Shape::Users(6).open_plan(secs(30)).map(|p| p.max_in_flight),
            None
        );

        for bad in [
            "",
            "users = 0",
            "users = 4\narrival_rate = \"2/s\"",
            "arrival_rate = \"2/s\"\nstages = \"10s:2/s\"",
            "arrival_rate = \"fast\"",
            "stages = \"10s\"",
            "users = 4\nmax_in_flight = 10",
            "arrival_rate = \"2/s\"\nmax_in_flight = 0",
        ] {
            assert!(load(bad).is_err(), "{bad:?} was accepted");
        }
    }

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn bad_playbooks_are_refused() {
        assert!(parse(BASE).is_err(), "a playbook that does nothing");
        let bad_mix = format!("{BASE}\n[load]\nmix = \"window=1\"\nusers = 2\n");
        assert!(parse(&bad_mix).is_err());
        let no_users = format!("{BASE}\n[load]\nmix = \"browser=1\"\nusers = 0\n");
        assert!(parse(&no_users).is_err());
        let unknown_service =
            format!("{BASE}\n[[faults]]\nservice = \"nginx\"\nkind = \"error\"\n");
        assert!(parse(&unknown_service).is_err());
        let too_many_cancels =
            format!("{BASE}\n[load]\nmix = \"flashsale=1\"\nusers = 2\ncancel_percent = 101\n");
        assert!(parse(&too_many_cancels).is_err());
        let typo = BASE.replace("fires_within", "fires_in");
        assert!(parse(&typo).is_err());
    }
}
