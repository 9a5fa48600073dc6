//! The shop's goose load tester: weighted customer journeys with think times and content
//! checks, its own Prometheus metrics, and a fresh W3C `traceparent` on every request.
//!
//! `loadtester` (the binary) parses the project's options and goose's own from one command
//! line; [`LoadTester`] runs attacks in-process, which the tests and `loadtester demo` use.

pub mod audit;
pub mod cli;
pub mod client;
pub mod journeys;
pub mod model;
pub mod open_model;
pub mod options;
pub mod orders_log;
pub mod reproduce;
pub mod routes;
pub mod seed;
pub mod telemetry;
pub mod thresholds;
pub mod verdict;
pub mod workers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use goose::config::GooseConfiguration;
use goose::metrics::GooseMetrics;
use goose::prelude::*;
use tokio::task::JoinHandle;

pub use crate::cli::{Cli, Mode};
use crate::client::Ctx;
use crate::journeys::ThinkTime;
pub use crate::open_model::OpenPlan;
use crate::open_model::{Journeys, OpenReport};
pub use crate::options::{DEFAULT_ADMIN_PASSWORD, DEFAULT_MIX, Mix, TesterOptions, ThinkRange};
use crate::routes::Routes;
use crate::seed::{Catalogue, Seeder};
pub use crate::telemetry::print_notable;
use crate::telemetry::{LoadMetrics, NotableTrace, TraceLog};

/// What one attack produced.
pub struct Run {
    pub goose: GooseMetrics,
    /// Failed and slow requests, by trace id (at most [`TraceLog::CAPACITY`]).
    pub notable: Vec<NotableTrace>,
    /// How many there were in all.
    pub notable_total: usize,
}

/// What one open-model run produced.
pub struct OpenRun {
    pub report: OpenReport,
    pub notable: Vec<NotableTrace>,
    pub notable_total: usize,
}

/// The journeys of a mix, ready for either model.
struct Prepared {
    config: GooseConfiguration,
    traces: Arc<TraceLog>,
    scenarios: Vec<Scenario>,
}

/// The tester: its metrics endpoint runs from [`LoadTester::start`] until it is dropped.
pub struct LoadTester {
    options: TesterOptions,
    metrics: Arc<LoadMetrics>,
    metrics_address: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for LoadTester {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl LoadTester {
    pub async fn start(options: TesterOptions) -> anyhow::Result<Self> {
        let metrics = LoadMetrics::new();
        let (metrics_address, server) = metrics.serve(options.metrics_listen).await?;
        Ok(Self {
            options,
            metrics,
            metrics_address,
            server,
        })
    }

    pub fn metrics_address(&self) -> SocketAddr {
        self.metrics_address
    }

    /// The options the next [`LoadTester::attack`] runs with.
    pub fn options_mut(&mut self) -> &mut TesterOptions {
        &mut self.options
    }

    pub fn metrics(&self) -> &Arc<LoadMetrics> {
        &self.metrics
    }

    /// Seeds the catalogue (unless the mix reads none), then runs goose with `config` and the
    /// journey mix (the closed model).
    pub async fn attack(&self, config: GooseConfiguration) -> anyhow::Result<Run> {
        let prepared = self.prepare(config).await?;
        let mut attack = GooseAttack::initialize_with_config(prepared.config)?;
        for scenario in prepared.scenarios {
            attack = attack.register_scenario(scenario);
        }
        let goose = attack.execute().await?;
        self.metrics.users.set(0);
        let (notable, notable_total) = self.notable(&prepared.traces)?;
        Ok(Run {
            goose,
            notable,
            notable_total,
        })
    }

    /// Seeds the catalogue like [`LoadTester::attack`], then starts the mix's journeys at
    /// the plan's arrival rate (the open model) until it ends or `stop` turns true.
    pub async fn attack_open(
        &self,
        config: GooseConfiguration,
        plan: OpenPlan,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<OpenRun> {
        let prepared = self.prepare(config).await?;
        let host = prepared.config.host.clone().unwrap_or_default();
        let base_url = reqwest::Url::parse(&host).with_context(|| format!("--host {host}"))?;
        let client = open_model::client::arrivals_client(&prepared.config, &base_url)?;
        let mut prototype = GooseUser::new(
            0,
            Arc::from("open model"),
            base_url,
            &prepared.config,
            0,
            Some(client),
        )?;
        // Only goose's log messages read the index; a user outside a GooseAttack has none.
        prototype.weighted_users_index = 0;
        let report = open_model::run(
            plan,
            Journeys::new(&prepared.scenarios),
            prototype,
            self.metrics.clone(),
            stop,
        )
        .await;
        self.metrics.users.set(0);
        let (notable, notable_total) = self.notable(&prepared.traces)?;
        Ok(OpenRun {
            report,
            notable,
            notable_total,
        })
    }

    /// The failed and slow requests, also written to --trace-file when given.
    fn notable(&self, traces: &TraceLog) -> anyhow::Result<(Vec<NotableTrace>, usize)> {
        let (notable, notable_total) = traces.snapshot();
        if let Some(path) = &self.options.trace_file {
            let lines: String = notable
                .iter()
                .map(|t| serde_json::to_string(t).expect("serializable") + "\n")
                .collect();
            std::fs::write(path, lines)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok((notable, notable_total))
    }

    /// The catalogue seeded (unless the mix reads none) and the mix's scenarios.
    async fn prepare(&self, mut config: GooseConfiguration) -> anyhow::Result<Prepared> {
        let options = &self.options;
        if options.direct && config.host.is_none() {
            config.host = Some("http://127.0.0.1".to_owned());
        }
        // Listing scenarios or printing the version needs no shop.
        let inspect_only = config.list || config.scenarios_list || config.version;
        // The static journey reads no catalogue: no admin login, no products to create.
        let needs_catalogue = options
            .mix
            .0
            .iter()
            .any(|(name, weight)| *weight > 0 && name != journeys::STATIC);
        let empty = || Catalogue {
            products: Vec::new(),
            flash: seed::Product {
                id: uuid::Uuid::nil(),
                name: String::new(),
                description: String::new(),
                category: String::new(),
                price_cents: 0,
                stock: 0,
            },
            victims: Vec::new(),
        };
        let catalogue = if inspect_only {
            empty()
        } else {
            let host = config.host.clone().context(
                "--host is required: the gateway (http://127.0.0.1:8080), or with --direct the services' host",
            )?;
            let routes = Routes::new(&host, options.direct.then_some(options.direct_ports))?;
            if needs_catalogue {
                self.seed(&routes).await?
            } else {
                empty()
            }
        };
        let host = config
            .host
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1".into());
        let routes = Routes::new(&host, options.direct.then_some(options.direct_ports))?;
        let traces = Arc::new(TraceLog::default());
        let orders = match &options.orders_log {
            Some(path) => Some(Arc::new(orders_log::OrdersLog::open(path)?)),
            None => None,
        };
        let ctx = Arc::new(Ctx {
            routes,
            catalogue,
            metrics: self.metrics.clone(),
            traces: traces.clone(),
            slow: Duration::from_millis(options.slow_ms),
            admin_username: options.admin_username.clone(),
            admin_password: options.admin_password(),
            cancel_percent: options.cancel_percent,
            name_prefix: options.worker.prefix(),
            orders,
        });
        let think = ThinkTime {
            min: Duration::from_millis(options.think_time_ms.min_ms),
            max: Duration::from_millis(options.think_time_ms.max_ms),
        };
        let mut scenarios = Vec::new();
        for (name, weight) in &options.mix.0 {
            if *weight > 0 {
                scenarios.push(journeys::scenario(name, *weight, think, &ctx)?);
            }
        }
        Ok(Prepared {
            config,
            traces,
            scenarios,
        })
    }

    async fn seed(&self, routes: &Routes) -> anyhow::Result<Catalogue> {
        let seeder = Seeder {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            routes,
        };
        let token = seeder
            .admin_token(&self.options.admin_username, &self.options.admin_password())
            .await?;
        seeder.seed(&token, self.options.flash_stock).await
    }
}
