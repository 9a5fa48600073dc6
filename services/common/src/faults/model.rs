//! A fault as an admin asks for it, as it is stored and listed, and the checks between.

use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::descriptors::DescriptorUsage;
use crate::problem::{ApiError, FieldError};

/// The longest a fault may live; every fault has a time-to-live, so none outlives a load test.
/// Four hours covers the slowest alert reproduction at real rule durations
/// (ProcessMemoryGrowth: an hour of regression, then 30 minutes of `for`).
pub const MAX_TTL_SECONDS: u64 = 4 * 3600;
/// The longest delay one fault adds (its `delay_ms`, and again its `jitter_ms`).
pub const MAX_DELAY_MS: u64 = 60_000;
pub const MAX_THREADS: u8 = 4;
/// The slowest and fastest memory growth, in bytes per second (1 KiB/s to 64 MiB/s).
pub const MIN_BYTES_PER_SECOND: u64 = 1024;
pub const MAX_BYTES_PER_SECOND: u64 = 64 * 1024 * 1024;
/// The most memory one `memory_growth` fault may come to hold (`bytes_per_second` times
/// `ttl_seconds`): 4 GiB.
pub const MAX_GROWN_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// The highest share of the descriptor limit a `file_descriptors` fault may reach: the
/// service keeps a few descriptors to answer, among them the request that deletes the fault.
pub const MAX_LIMIT_FRACTION: f64 = 0.95;
/// An inbound `route` target meaning every documented route of the service.
pub const ALL_ROUTES: &str = "*";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Delays matching requests (`delay_ms`, plus up to `jitter_ms`).
    Latency,
    /// Answers matching requests with a server error (`status`).
    Error,
    /// Slows (`delay_ms`) or fails (`fail`, as a timeout) database statements.
    Database,
    /// Keeps `threads` CPU cores busy for the fault's lifetime.
    CpuBurn,
    /// Holds memory growing by `bytes_per_second` for the fault's lifetime.
    MemoryGrowth,
    /// Holds open descriptors up to `limit_fraction` of the process' limit.
    FileDescriptors,
}

impl FaultKind {
    pub const ALL: [FaultKind; 6] = [
        Self::Latency,
        Self::Error,
        Self::Database,
        Self::CpuBurn,
        Self::MemoryGrowth,
        Self::FileDescriptors,
    ];

    /// The `kind` label of the fault metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Latency => "latency",
            Self::Error => "error",
            Self::Database => "database",
            Self::CpuBurn => "cpu_burn",
            Self::MemoryGrowth => "memory_growth",
            Self::FileDescriptors => "file_descriptors",
        }
    }

    /// Whether the fault applies to a share (`fraction`) of requests, calls or statements,
    /// rather than to the whole process.
    fn has_fraction(self) -> bool {
        matches!(self, Self::Latency | Self::Error | Self::Database)
    }
}

/// A fault to inject. Which fields apply depends on `kind`; a field that does not apply is
/// refused rather than ignored.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultCreate {
    pub kind: FaultKind,
    /// Seconds until the fault removes itself, 1 to 14400. Required for every kind.
    #[schema(minimum = 1, maximum = 14400)]
    pub ttl_seconds: u64,
    /// `latency`, `error`: an inbound route template of this service, with its prefix (e.g.
    /// `/api/products/{product_id}`), or `*` for all its documented routes. Exactly one of
    /// `route` and `upstream`.
    pub route: Option<String>,
    /// `latency`, `error`: a service this one calls (`backend`, `cart-service`,
    /// `order-service`, `user-service`); the fault applies to each call attempt.
    pub upstream: Option<String>,
    /// `database`: one statement name (the `statement` label of `db_client_*` metrics);
    /// without it, every statement.
    pub statement: Option<String>,
    /// `latency` (required), `database`: fixed delay in milliseconds, up to 60000.
    #[schema(maximum = 60000)]
    pub delay_ms: Option<u64>,
    /// `latency`: a random extra delay of up to this many milliseconds, up to 60000.
    #[schema(maximum = 60000)]
    pub jitter_ms: Option<u64>,
    /// `latency`, `error`, `database`: the share of matching requests affected, 0 to 1.
    /// Default 1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub fraction: Option<f64>,
    /// `error` (required): the status, 500 to 599.
    #[schema(minimum = 500, maximum = 599)]
    pub status: Option<u16>,
    /// `database`: fail the statement as a timeout (`db_client_operations_total` outcome
    /// `timeout`; the request gets 503). Needs `delay_ms` or `fail: true`.
    pub fail: Option<bool>,
    /// `database`, with `fail: true`: the statement runs before the timeout is reported,
    /// as when a write applies but its answer is lost on the way back. Default false.
    pub applied: Option<bool>,
    /// `cpu_burn` (required): busy threads, 1 to 4.
    #[schema(minimum = 1, maximum = 4)]
    pub threads: Option<u8>,
    /// `memory_growth` (required): how fast the held memory grows, in bytes per second,
    /// 1024 to 67108864 (64 MiB). It grows in steps of 1 MiB, and `bytes_per_second` times
    /// `ttl_seconds` may be at most 4 GiB.
    #[schema(minimum = 1024, maximum = 67108864)]
    pub bytes_per_second: Option<u64>,
    /// `file_descriptors` (required): the share of the process' soft descriptor limit
    /// (`process_max_fds`) its open descriptors reach, above 0 and at most 0.95. Refused when
    /// that takes more than 65536 more descriptors.
    #[schema(exclusive_minimum = 0.0, maximum = 0.95)]
    pub limit_fraction: Option<f64>,
}

/// An active fault.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Fault {
    pub id: Uuid,
    pub kind: FaultKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_fraction: Option<f64>,
    pub ttl_seconds: u64,
    pub created_at: DateTime<Utc>,
    /// When the fault stops applying and disappears (RFC 3339).
    pub expires_at: DateTime<Utc>,
}

/// What a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    AllRoutes,
    Route(String),
    Upstream(String),
    /// A database statement; `None` is every statement.
    Statement(Option<String>),
    /// The whole process (CPU burn, memory growth, file descriptors).
    Process,
}

/// What a fault does when it fires. A `file_descriptors` fault's `extra` is how many more
/// descriptors it opens, counted when it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Latency {
        delay: Duration,
        jitter: Duration,
    },
    Error {
        status: StatusCode,
    },
    Database {
        delay: Duration,
        fail: bool,
        applied: bool,
    },
    CpuBurn {
        threads: u8,
    },
    MemoryGrowth {
        bytes_per_second: u64,
    },
    FileDescriptors {
        extra: u64,
    },
}

/// What a service offers to target: its routes, upstreams and statements, and the
/// descriptors its process has left.
pub(crate) trait Catalog {
    fn has_route(&self, route: &str) -> bool;
    fn has_upstream(&self, upstream: &str) -> bool;
    fn has_database(&self) -> bool;
    fn has_statement(&self, statement: &str) -> bool;
    /// The process' open descriptors and their limit now, or why they cannot be read.
    fn descriptor_usage(&self) -> Result<DescriptorUsage, String>;
}

/// A valid fault, ready to store.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub target: Target,
    pub effect: Effect,
    pub fraction: f64,
    pub ttl: Duration,
}

impl FaultCreate {
    /// Every problem with the request at once, as field errors.
    pub(crate) fn check(&self, catalog: &impl Catalog) -> Result<Checked, ApiError> {
        let mut errors = Vec::new();
        let mut refuse =
            |field: &str, message: String| errors.push(FieldError::new(field, message));
        let kind = self.kind.as_str();
        if !(1..=MAX_TTL_SECONDS).contains(&self.ttl_seconds) {
            refuse(
                "ttl_seconds",
                format!("must be between 1 and {MAX_TTL_SECONDS}"),
            );
        }
        let applies = |field: &str| -> bool {
            matches!(
                (self.kind, field),
                (
                    FaultKind::Latency,
                    "route" | "upstream" | "delay_ms" | "jitter_ms" | "fraction"
                ) | (
                    FaultKind::Error,
                    "route" | "upstream" | "status" | "fraction"
                ) | (
                    FaultKind::Database,
                    "statement" | "delay_ms" | "fail" | "applied" | "fraction"
                ) | (FaultKind::CpuBurn, "threads")
                    | (FaultKind::MemoryGrowth, "bytes_per_second")
                    | (FaultKind::FileDescriptors, "limit_fraction")
            )
        };
        let given = [
            ("route", self.route.is_some()),
            ("upstream", self.upstream.is_some()),
            ("statement", self.statement.is_some()),
            ("delay_ms", self.delay_ms.is_some()),
            ("jitter_ms", self.jitter_ms.is_some()),
            ("fraction", self.fraction.is_some()),
            ("status", self.status.is_some()),
            ("fail", self.fail.is_some()),
            ("applied", self.applied.is_some()),
            ("threads", self.threads.is_some()),
            ("bytes_per_second", self.bytes_per_second.is_some()),
            ("limit_fraction", self.limit_fraction.is_some()),
        ];
        for (field, present) in given {
            if present && !applies(field) {
                refuse(field, format!("does not apply to a {kind} fault"));
            }
        }
        let fraction = self.fraction.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&fraction) {
            refuse("fraction", "must be between 0 and 1".to_owned());
        }
        for (field, value) in [("delay_ms", self.delay_ms), ("jitter_ms", self.jitter_ms)] {
            if value.is_some_and(|ms| ms > MAX_DELAY_MS) {
                refuse(field, format!("must be at most {MAX_DELAY_MS}"));
            }
        }
        let millis = |ms: Option<u64>| Duration::from_millis(ms.unwrap_or(0).min(MAX_DELAY_MS));

        let mut target = Target::Process;
        if matches!(self.kind, FaultKind::Latency | FaultKind::Error) {
            match (&self.route, &self.upstream) {
                (Some(route), None) if route == ALL_ROUTES => target = Target::AllRoutes,
                (Some(route), None) if catalog.has_route(route) => {
                    target = Target::Route(route.clone());
                }
                (Some(route), None) => refuse(
                    "route",
                    format!("{route} is not a route template of this service (nor `*`)"),
                ),
                (None, Some(upstream)) if catalog.has_upstream(upstream) => {
                    target = Target::Upstream(upstream.clone());
                }
                (None, Some(upstream)) => refuse(
                    "upstream",
                    format!("this service makes no calls to {upstream}"),
                ),
                _ => refuse(
                    "route",
                    "give exactly one of `route` and `upstream`".to_owned(),
                ),
            }
        }
        let effect = match self.kind {
            FaultKind::Latency => {
                if self.delay_ms.is_none() {
                    refuse("delay_ms", "is required for a latency fault".to_owned());
                }
                Effect::Latency {
                    delay: millis(self.delay_ms),
                    jitter: millis(self.jitter_ms),
                }
            }
            FaultKind::Error => match self.status.map(StatusCode::from_u16) {
                Some(Ok(status)) if status.is_server_error() => Effect::Error { status },
                Some(_) => {
                    refuse("status", "must be a server error, 500 to 599".to_owned());
                    Effect::Error {
                        status: StatusCode::INTERNAL_SERVER_ERROR,
                    }
                }
                None => {
                    refuse("status", "is required for an error fault".to_owned());
                    Effect::Error {
                        status: StatusCode::INTERNAL_SERVER_ERROR,
                    }
                }
            },
            FaultKind::Database => {
                let fail = self.fail.unwrap_or(false);
                if !catalog.has_database() {
                    refuse(
                        "kind",
                        "this service runs on the in-memory store (STORAGE=memory): it has no \
                         database, so a database fault would have no effect"
                            .to_owned(),
                    );
                } else if let Some(statement) = &self.statement
                    && !catalog.has_statement(statement)
                {
                    refuse(
                        "statement",
                        format!("{statement} is not a statement of this service"),
                    );
                }
                let applied = self.applied.unwrap_or(false);
                if applied && !fail {
                    refuse(
                        "applied",
                        "only a failing statement (fail: true) can be applied first".to_owned(),
                    );
                }
                if !fail && self.delay_ms.unwrap_or(0) == 0 {
                    refuse(
                        "delay_ms",
                        "a database fault needs a delay_ms above 0 or fail: true".to_owned(),
                    );
                }
                target = Target::Statement(self.statement.clone());
                Effect::Database {
                    delay: millis(self.delay_ms),
                    fail,
                    applied,
                }
            }
            FaultKind::CpuBurn => {
                let threads = self.threads.unwrap_or(0);
                if !(1..=MAX_THREADS).contains(&threads) {
                    refuse("threads", format!("must be between 1 and {MAX_THREADS}"));
                }
                Effect::CpuBurn { threads }
            }
            FaultKind::MemoryGrowth => self.check_memory_growth(&mut refuse),
            FaultKind::FileDescriptors => self.check_file_descriptors(catalog, &mut refuse),
        };
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(Checked {
            target,
            effect,
            fraction,
            ttl: Duration::from_secs(self.ttl_seconds),
        })
    }

    /// A `memory_growth` fault's rate, within its bounds and not growing past 4 GiB.
    fn check_memory_growth(&self, refuse: &mut impl FnMut(&str, String)) -> Effect {
        let Some(bytes_per_second) = self.bytes_per_second else {
            refuse(
                "bytes_per_second",
                "is required for a memory_growth fault".to_owned(),
            );
            return Effect::MemoryGrowth {
                bytes_per_second: 0,
            };
        };
        if !(MIN_BYTES_PER_SECOND..=MAX_BYTES_PER_SECOND).contains(&bytes_per_second) {
            refuse(
                "bytes_per_second",
                format!("must be between {MIN_BYTES_PER_SECOND} and {MAX_BYTES_PER_SECOND}"),
            );
        } else {
            let grown = bytes_per_second.saturating_mul(self.ttl_seconds);
            if grown > MAX_GROWN_BYTES {
                refuse(
                    "bytes_per_second",
                    format!(
                        "bytes_per_second × ttl_seconds would grow to {grown} bytes, over 4 GiB \
                         ({MAX_GROWN_BYTES}): lower either"
                    ),
                );
            }
        }
        Effect::MemoryGrowth { bytes_per_second }
    }

    /// A `file_descriptors` fault's share of the limit, and how many descriptors reaching
    /// it takes now.
    fn check_file_descriptors(
        &self,
        catalog: &impl Catalog,
        refuse: &mut impl FnMut(&str, String),
    ) -> Effect {
        let refused = Effect::FileDescriptors { extra: 0 };
        let Some(fraction) = self.limit_fraction else {
            refuse(
                "limit_fraction",
                "is required for a file_descriptors fault".to_owned(),
            );
            return refused;
        };
        // Written so that NaN fails too.
        if !(fraction > 0.0 && fraction <= MAX_LIMIT_FRACTION) {
            refuse(
                "limit_fraction",
                format!("must be above 0 and at most {MAX_LIMIT_FRACTION}"),
            );
            return refused;
        }
        let extra = catalog
            .descriptor_usage()
            .map_err(|why| ("kind", why))
            .and_then(|usage| {
                usage
                    .extra_to_reach(fraction)
                    .map_err(|why| ("limit_fraction", why))
            });
        match extra {
            Ok(extra) => Effect::FileDescriptors { extra },
            Err((field, why)) => {
                refuse(field, why);
                refused
            }
        }
    }

    /// The stored fault as it is listed.
    pub(crate) fn describe(&self, id: Uuid, created_at: DateTime<Utc>) -> Fault {
        let applies = self.kind.has_fraction();
        Fault {
            id,
            kind: self.kind,
            route: self.route.clone(),
            upstream: self.upstream.clone(),
            statement: self.statement.clone(),
            delay_ms: self.delay_ms,
            jitter_ms: self.jitter_ms,
            fraction: applies.then_some(self.fraction.unwrap_or(1.0)),
            status: self.status,
            fail: self.fail,
            applied: self.applied,
            threads: self.threads,
            bytes_per_second: self.bytes_per_second,
            limit_fraction: self.limit_fraction,
            ttl_seconds: self.ttl_seconds,
            created_at,
            expires_at: created_at
                + chrono::Duration::seconds(i64::try_from(self.ttl_seconds).unwrap_or(i64::MAX)),
        }
    }
}
