//! Fault injection for load tests and alert playbooks: an admin-only API (off unless
//! `FAULTS_ENABLED=true`) stores faults with a time-to-live, and the HTTP middleware, the
//! upstream client and the CQL store apply them.
//!
//! While no fault is active, each place that could inject one pays one relaxed atomic load.

pub mod api;
mod burn;
mod descriptors;
mod lifetime;
mod memory;
mod metrics;
mod model;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::Utc;
use clap::Args;
use uuid::Uuid;

pub use model::{ALL_ROUTES, Fault, FaultCreate, FaultKind, MAX_TTL_SECONDS};

use crate::problem::ApiError;
use crate::telemetry::metrics::Metrics;
use descriptors::DescriptorUsage;
use lifetime::Lifetime;
use model::{Catalog, Effect, Target};

#[derive(Debug, Clone, Args)]
pub struct FaultArgs {
    /// Serve the admin-only fault-injection API under the service's prefix
    /// (`<prefix>/admin/faults`). Off by default: the routes do not exist.
    #[arg(long, env = "FAULTS_ENABLED", default_value_t = false)]
    pub faults_enabled: bool,
}

/// Where a fault is applied; each has its own count of active faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Site {
    Route = 0,
    Upstream = 1,
    Database = 2,
    Process = 3,
}

impl Target {
    fn site(&self) -> Site {
        match self {
            Target::AllRoutes | Target::Route(_) => Site::Route,
            Target::Upstream(_) => Site::Upstream,
            Target::Statement(_) => Site::Database,
            Target::Process => Site::Process,
        }
    }
}

/// What the faults matching one request, call or statement do to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Injection {
    /// Wait this long first (the sum of every latency or database delay that fired).
    pub delay: Duration,
    /// Then fail, instead of doing the work.
    pub failure: Option<Failure>,
    /// A database failure that comes after the statement ran: its outcome is unknown to
    /// the caller.
    pub applied_first: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub fault: Uuid,
    /// The status the failure looks like; a database failure is a timeout (504).
    pub status: StatusCode,
}

struct Entry {
    fault: Fault,
    kind: FaultKind,
    target: Target,
    effect: Effect,
    fraction: f64,
    expires: Instant,
    /// Set when the fault is removed: the threads of a whole-process fault stop, releasing
    /// what they hold.
    stop: Arc<AtomicBool>,
}

impl Entry {
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Known {
    upstreams: BTreeSet<&'static str>,
    statements: BTreeSet<&'static str>,
}

struct Inner {
    enabled: bool,
    /// Active (possibly expired, not yet pruned) faults per [`Site`].
    active: [AtomicUsize; 4],
    entries: RwLock<Vec<Entry>>,
    /// The service's documented route templates, set once when its router is assembled.
    routes: OnceLock<BTreeSet<String>>,
    known: Mutex<Known>,
    metrics: metrics::FaultMetrics,
}

/// The faults of one service. Cheap to clone.
#[derive(Clone)]
pub struct Faults {
    inner: Arc<Inner>,
}

impl Default for Faults {
    /// A registry with the API off and no metrics: for tools and tests.
    fn default() -> Self {
        Self::build(false)
    }
}

impl Faults {
    /// The service's registry, its metrics registered with the service's others.
    pub fn new(args: &FaultArgs, metrics: &Metrics) -> Self {
        let faults = Self::build(args.faults_enabled);
        faults.inner.metrics.register(metrics.registry(), &faults);
        faults
    }

    fn build(enabled: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                enabled,
                active: Default::default(),
                entries: RwLock::default(),
                routes: OnceLock::new(),
                known: Mutex::default(),
                metrics: metrics::FaultMetrics::new(),
            }),
        }
    }

    /// Whether the fault API is served.
    pub fn api_enabled(&self) -> bool {
        self.inner.enabled
    }

    /// Records the service's route templates (the targets of `route` faults).
    pub fn set_routes(&self, routes: impl IntoIterator<Item = String>) {
        let _ = self.inner.routes.set(routes.into_iter().collect());
    }

    /// Records a service this one calls (the target of `upstream` faults).
    pub fn register_upstream(&self, name: &'static str) {
        self.known().upstreams.insert(name);
    }

    /// Records the service's database statements (the targets of `database` faults).
    pub fn register_statements(&self, names: impl IntoIterator<Item = &'static str>) {
        self.known().statements.extend(names);
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.inner.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[inline]
    fn idle(&self, site: Site) -> bool {
        self.inner.active[site as usize].load(Ordering::Relaxed) == 0
    }

    /// Whether any route fault is active: one relaxed atomic load.
    #[inline]
    pub fn targets_routes(&self) -> bool {
        !self.idle(Site::Route)
    }

    /// The faults for a request to this route template, if any fires.
    #[inline]
    pub fn for_route(&self, route: &str) -> Option<Injection> {
        if self.idle(Site::Route) {
            return None;
        }
        let documented = self
            .inner
            .routes
            .get()
            .is_some_and(|routes| routes.contains(route));
        self.inject(Site::Route, |target| match target {
            Target::AllRoutes => documented,
            Target::Route(template) => template == route,
            _ => false,
        })
    }

    /// The faults for one attempt of a call to this upstream, if any fires.
    #[inline]
    pub fn for_upstream(&self, upstream: &str) -> Option<Injection> {
        if self.idle(Site::Upstream) {
            return None;
        }
        self.inject(
            Site::Upstream,
            |target| matches!(target, Target::Upstream(name) if name == upstream),
        )
    }

    /// The faults for one run of this database statement, if any fires.
    #[inline]
    pub fn for_statement(&self, statement: &str) -> Option<Injection> {
        if self.idle(Site::Database) {
            return None;
        }
        self.inject(Site::Database, |target| match target {
            Target::Statement(None) => true,
            Target::Statement(Some(name)) => name == statement,
            _ => false,
        })
    }

    #[cold]
    fn inject(&self, site: Site, matches: impl Fn(&Target) -> bool) -> Option<Injection> {
        let now = Instant::now();
        let mut expired = false;
        let mut injection: Option<Injection> = None;
        {
            let entries = self.inner.entries.read().unwrap_or_else(|p| p.into_inner());
            for entry in entries.iter().filter(|entry| entry.target.site() == site) {
                if entry.expires <= now {
                    expired = true;
                    continue;
                }
                if !matches(&entry.target) || !fires(entry.fraction) {
                    continue;
                }
                let injection = injection.get_or_insert_with(Injection::default);
                match entry.effect {
                    Effect::Latency { delay, jitter } => {
                        injection.delay += delay + jitter.mul_f64(fastrand::f64());
                    }
                    Effect::Error { status } => {
                        injection.failure.get_or_insert(Failure {
                            fault: entry.fault.id,
                            status,
                        });
                    }
                    Effect::Database {
                        delay,
                        fail,
                        applied,
                    } => {
                        injection.delay += delay;
                        injection.applied_first |= applied;
                        if fail {
                            injection.failure.get_or_insert(Failure {
                                fault: entry.fault.id,
                                status: StatusCode::GATEWAY_TIMEOUT,
                            });
                        }
                    }
                    Effect::CpuBurn { .. }
                    | Effect::MemoryGrowth { .. }
                    | Effect::FileDescriptors { .. } => {}
                }
                self.inner.metrics.injected(entry.kind);
            }
        }
        if expired {
            self.prune();
        }
        injection
    }

    /// Validates and stores a fault, and starts it (a whole-process fault starts its threads
    /// now).
    pub fn add(&self, create: &FaultCreate) -> Result<Fault, ApiError> {
        let checked = create.check(self)?;
        let fault = create.describe(Uuid::new_v4(), Utc::now());
        let stop = Arc::new(AtomicBool::new(false));
        let expires = Instant::now() + checked.ttl;
        let lifetime = Lifetime::new(expires, stop.clone());
        if let Some(started) = start_process_fault(checked.effect, lifetime) {
            started.map_err(|err| {
                // Stops the threads that did start.
                stop.store(true, Ordering::Relaxed);
                ApiError::Internal(format!("cannot start the fault's threads: {err}"))
            })?;
            // A whole-process fault fires once, when it starts.
            self.inner.metrics.injected(create.kind);
        }
        let entry = Entry {
            fault: fault.clone(),
            kind: create.kind,
            target: checked.target,
            effect: checked.effect,
            fraction: checked.fraction,
            expires,
            stop,
        };
        tracing::warn!(fault = %fault.id, kind = create.kind.as_str(),
            ttl_seconds = create.ttl_seconds, "fault injection started");
        self.update(|entries| entries.push(entry));
        Ok(fault)
    }

    /// The active faults, oldest first.
    pub fn list(&self) -> Vec<Fault> {
        self.prune();
        let entries = self.inner.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.iter().map(|entry| entry.fault.clone()).collect()
    }

    /// Removes one fault; false when there is no such active fault.
    pub fn remove(&self, id: Uuid) -> bool {
        self.prune();
        let mut removed = false;
        self.update(|entries| {
            entries.retain(|entry| {
                let keep = entry.fault.id != id;
                if !keep {
                    entry.stop();
                    removed = true;
                }
                keep
            });
        });
        if removed {
            tracing::warn!(fault = %id, "fault injection stopped");
        }
        removed
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.update(|entries| {
            for entry in entries.drain(..) {
                entry.stop();
            }
        });
    }

    /// Drops expired faults, so that the fast path is back to one atomic load.
    pub fn prune(&self) {
        let now = Instant::now();
        let any_expired = self
            .inner
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|entry| entry.expires <= now);
        if any_expired {
            self.update(|entries| {
                entries.retain(|entry| {
                    let keep = entry.expires > now;
                    if !keep {
                        entry.stop();
                    }
                    keep
                });
            });
        }
    }

    /// Active faults of each kind, for the gauge.
    fn active_by_kind(&self) -> [(FaultKind, i64); FaultKind::ALL.len()] {
        self.prune();
        let entries = self.inner.entries.read().unwrap_or_else(|p| p.into_inner());
        FaultKind::ALL.map(|kind| {
            let count = entries.iter().filter(|entry| entry.kind == kind).count();
            (kind, i64::try_from(count).unwrap_or(i64::MAX))
        })
    }

    /// Changes the entries and recounts the active faults per site, under the write lock.
    fn update(&self, change: impl FnOnce(&mut Vec<Entry>)) {
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(|p| p.into_inner());
        change(&mut entries);
        for site in [Site::Route, Site::Upstream, Site::Database, Site::Process] {
            let count = entries
                .iter()
                .filter(|entry| entry.target.site() == site)
                .count();
            self.inner.active[site as usize].store(count, Ordering::Relaxed);
        }
    }
}

impl Catalog for Faults {
    fn has_route(&self, route: &str) -> bool {
        self.inner
            .routes
            .get()
            .is_some_and(|routes| routes.contains(route))
    }

    fn has_upstream(&self, upstream: &str) -> bool {
        self.known().upstreams.contains(upstream)
    }

    fn has_database(&self) -> bool {
        !self.known().statements.is_empty()
    }

    fn has_statement(&self, statement: &str) -> bool {
        self.known().statements.contains(statement)
    }

    fn descriptor_usage(&self) -> Result<DescriptorUsage, String> {
        DescriptorUsage::of_this_process()
    }
}

/// Starts the threads of a whole-process fault; `None` for a fault that applies to requests,
/// calls or statements instead.
fn start_process_fault(effect: Effect, lifetime: Lifetime) -> Option<std::io::Result<()>> {
    match effect {
        Effect::CpuBurn { threads } => Some(burn::start(threads, &lifetime)),
        Effect::MemoryGrowth { bytes_per_second } => {
            Some(memory::start(bytes_per_second, lifetime))
        }
        Effect::FileDescriptors { extra } => Some(descriptors::start(extra, lifetime)),
        Effect::Latency { .. } | Effect::Error { .. } | Effect::Database { .. } => None,
    }
}

/// Whether a fault with this fraction applies to one more request.
fn fires(fraction: f64) -> bool {
    fraction >= 1.0 || (fraction > 0.0 && fastrand::f64() < fraction)
}
