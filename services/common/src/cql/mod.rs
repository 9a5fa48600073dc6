//! The CQL store plumbing every service shares: a session that connects in the background
//! and keeps trying (a service starts and answers 503 while the database is away), versioned
//! migrations, prepared statements, and execution with metrics, spans and error mapping.

mod config;
mod migrate;
mod repeat;
pub mod results;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use scylla::client::execution_profile::ExecutionProfileHandle;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::response::query_result::QueryResult;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use tracing::Instrument;
use tracing::field::Empty;

pub use config::{CqlSettings, StorageArgs, StorageKind};
pub use migrate::Migration;

use crate::faults::Faults;
use crate::store::{StoreError, StoreResult};
use crate::telemetry::metrics::DbMetrics;

/// A service's schema: its migrations, and every statement it runs, by name. The names are the
/// `statement` label of the database metrics.
pub struct Schema {
    pub migrations: &'static [Migration],
    pub statements: &'static [(&'static str, &'static str)],
    /// The lightweight transactions (`IF ...`) the driver may retry on another node when
    /// their coordinator fails: those whose callers read back what a retry that found its
    /// own earlier write did not apply. Other statements are judged by their text: reads
    /// and plain writes are retried, counters, appends and other conditionals never.
    pub retry_safe_conditionals: &'static [&'static str],
    /// Range reads that only browse, where an answer a moment stale is harmless (a page of
    /// the catalogue). They run at the browse consistency, which one live replica can
    /// satisfy: Cassandra has no speculative retry for range reads, so at quorum a replica
    /// that has just died, and that the failure detector has not yet convicted, holds them
    /// until the statement deadline. Reads that decide anything stay at the consistency of
    /// every statement.
    pub browse_reads: &'static [&'static str],
}

#[derive(Clone)]
pub struct Cql {
    inner: Arc<Inner>,
}

struct Inner {
    settings: CqlSettings,
    schema: &'static Schema,
    metrics: DbMetrics,
    faults: Faults,
    connected: RwLock<Option<Arc<Connected>>>,
    last_error: RwLock<String>,
}

struct Connected {
    session: Session,
    statements: HashMap<&'static str, PreparedStatement>,
    /// Readiness probes run often: prepared like every other statement.
    ping: PreparedStatement,
}

const RETRY_CONNECT_EVERY: Duration = Duration::from_secs(2);
/// The statement name of readiness pings in the database metrics.
const PING: &str = "ping";

impl Cql {
    fn new(
        settings: CqlSettings,
        schema: &'static Schema,
        metrics: DbMetrics,
        faults: Faults,
    ) -> Self {
        for (name, _) in schema.statements {
            metrics.declare(name);
        }
        faults.register_statements(schema.statements.iter().map(|(name, _)| *name));
        metrics.declare(PING);
        Self {
            inner: Arc::new(Inner {
                settings,
                schema,
                metrics,
                faults,
                connected: RwLock::new(None),
                last_error: RwLock::new("not connected yet".to_owned()),
            }),
        }
    }

    /// Starts connecting in the background; statements fail with `Unavailable` until then.
    /// Database faults of `faults` apply to its statements.
    pub fn start(
        settings: CqlSettings,
        schema: &'static Schema,
        metrics: DbMetrics,
        faults: Faults,
    ) -> Self {
        let cql = Self::new(settings, schema, metrics, faults);
        tokio::spawn(cql.clone().keep_connecting());
        cql
    }

    /// Connects, migrates and prepares, and waits for it: for tests and tools. Database
    /// faults of `faults` apply to its statements.
    pub async fn connect_now(
        settings: CqlSettings,
        schema: &'static Schema,
        metrics: DbMetrics,
        faults: Faults,
    ) -> anyhow::Result<Self> {
        let cql = Self::new(settings, schema, metrics, faults);
        let connected = cql.connect().await?;
        cql.set_connected(connected);
        Ok(cql)
    }

    fn set_connected(&self, connected: Connected) {
        *self
            .inner
            .connected
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(connected));
    }

    pub fn keyspace(&self) -> &str {
        &self.inner.settings.keyspace
    }

    async fn keep_connecting(self) {
        loop {
            match self.connect().await {
                Ok(connected) => {
                    tracing::info!(keyspace = %self.keyspace(), "connected to the CQL database");
                    *self
                        .inner
                        .connected
                        .write()
                        .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(connected));
                    return;
                }
                Err(err) => {
                    let message = format!("{err:#}");
                    tracing::warn!(error = %message, "cannot reach the CQL database yet; retrying");
                    *self
                        .inner
                        .last_error
                        .write()
                        .unwrap_or_else(|p| p.into_inner()) = message;
                    tokio::time::sleep(RETRY_CONNECT_EVERY).await;
                }
            }
        }
    }

    /// Once connected, the driver itself reconnects to nodes that go away and come back.
    async fn connect(&self) -> anyhow::Result<Connected> {
        let settings = &self.inner.settings;
        let mut builder = SessionBuilder::new()
            .known_nodes(&settings.contact_points)
            .connection_timeout(settings.connect_timeout)
            .default_execution_profile_handle(settings.execution_profile().into_handle());
        if let Some((user, password)) = &settings.credentials {
            builder = builder.user(user, password);
        }
        let session = builder.build().await?;
        migrate::run(&session, settings, self.inner.schema.migrations).await?;
        session.use_keyspace(&settings.keyspace, false).await?;
        let schema = self.inner.schema;
        repeat::check_retry_safe(schema)?;
        repeat::check_browse_reads(schema)?;
        let reads = settings.read_profile().into_handle();
        let mut statements = HashMap::new();
        for (name, text) in schema.statements {
            let mut prepared = session
                .prepare(*text)
                .await
                .map_err(|err| anyhow::anyhow!("preparing {name}: {err}"))?;
            allow_repeats(&mut prepared, name, text, schema, &reads);
            if schema.browse_reads.contains(name) {
                prepared.set_consistency(settings.browse_consistency);
            }
            statements.insert(*name, prepared);
        }
        let ping = session
            .prepare("SELECT release_version FROM system.local")
            .await
            .map_err(|err| anyhow::anyhow!("preparing the readiness ping: {err}"))?;
        Ok(Connected {
            session,
            statements,
            ping,
        })
    }

    fn connected(&self) -> StoreResult<Arc<Connected>> {
        self.inner
            .connected
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| {
                let cause = self
                    .inner
                    .last_error
                    .read()
                    .map(|e| e.clone())
                    .unwrap_or_default();
                StoreError::Unavailable(format!("not connected: {cause}"))
            })
    }

    /// Runs a named statement to completion (no paging).
    pub async fn execute(
        &self,
        name: &'static str,
        values: impl SerializeRow,
    ) -> StoreResult<QueryResult> {
        let connected = self.connected()?;
        let statement = statement(&connected, name)?;
        self.observe(name, statement.get_statement(), async {
            connected.session.execute_unpaged(statement, values).await
        })
        .await
    }

    /// Runs a named statement for one page of at most `page_size` rows.
    pub async fn execute_page(
        &self,
        name: &'static str,
        values: impl SerializeRow,
        page_size: i32,
        paging_state: PagingState,
    ) -> StoreResult<(QueryResult, PagingStateResponse)> {
        let connected = self.connected()?;
        let mut statement = statement(&connected, name)?.clone();
        statement.set_page_size(page_size);
        self.observe(name, statement.get_statement(), async {
            connected
                .session
                .execute_single_page(&statement, values, paging_state)
                .await
        })
        .await
    }

    /// Whether the database answers now.
    pub async fn ping(&self) -> StoreResult<()> {
        let connected = self.connected()?;
        let started = Instant::now();
        let result = connected.session.execute_unpaged(&connected.ping, ()).await;
        self.inner
            .metrics
            .record(PING, outcome(&result), started.elapsed().as_secs_f64());
        result.map(drop).map_err(store_error)
    }

    /// Times, counts and traces one statement, and maps its failure to a store error.
    async fn observe<T>(
        &self,
        name: &'static str,
        text: &str,
        call: impl Future<Output = Result<T, ExecutionError>>,
    ) -> StoreResult<T> {
        let span = tracing::info_span!(
            "db",
            otel.name = name,
            otel.kind = "client",
            otel.status_code = Empty,
            db.system.name = "cassandra",
            db.namespace = %self.keyspace(),
            db.operation.name = text.split_whitespace().next().unwrap_or_default(),
            db.query.text = text,
        );
        let started = Instant::now();
        let result = match self.inner.faults.for_statement(name) {
            None => call.instrument(span.clone()).await,
            Some(injection) => {
                async {
                    // Bounded by the statement timeout, as a slow database would be.
                    let budget = self.inner.settings.request_timeout;
                    tokio::time::sleep(injection.delay.min(budget)).await;
                    match injection.failure {
                        // A write that applied, and whose answer was lost.
                        Some(_) if injection.applied_first => call
                            .await
                            .and(Err(ExecutionError::RequestTimeout(injection.delay))),
                        // An injected failure is a statement that timed out.
                        Some(_) => Err(ExecutionError::RequestTimeout(injection.delay)),
                        None if injection.delay >= budget => {
                            Err(ExecutionError::RequestTimeout(budget))
                        }
                        None => call.await,
                    }
                }
                .instrument(span.clone())
                .await
            }
        };
        self.inner
            .metrics
            .record(name, outcome(&result), started.elapsed().as_secs_f64());
        result.map_err(|err| {
            span.record("otel.status_code", "ERROR");
            tracing::warn!(statement = name, error = %err, "CQL statement failed");
            store_error(err)
        })
    }
}

/// Marks a statement idempotent when running it twice does no harm, so the driver retries
/// it on another node; a read also runs with the profile that races a slow node.
fn allow_repeats(
    prepared: &mut PreparedStatement,
    name: &str,
    text: &str,
    schema: &Schema,
    reads: &ExecutionProfileHandle,
) {
    match repeat::repeat(name, text, schema.retry_safe_conditionals) {
        repeat::Repeat::Read => {
            prepared.set_is_idempotent(true);
            prepared.set_execution_profile_handle(Some(reads.clone()));
        }
        repeat::Repeat::Write => prepared.set_is_idempotent(true),
        repeat::Repeat::Never => {}
    }
}

fn statement<'a>(connected: &'a Connected, name: &str) -> StoreResult<&'a PreparedStatement> {
    connected
        .statements
        .get(name)
        .ok_or_else(|| StoreError::Unavailable(format!("no prepared statement named {name}")))
}

fn is_timeout(err: &ExecutionError) -> bool {
    matches!(
        err,
        ExecutionError::RequestTimeout(_)
            | ExecutionError::LastAttemptError(RequestAttemptError::DbError(
                DbError::ReadTimeout { .. } | DbError::WriteTimeout { .. },
                _
            ))
    )
}

fn outcome<T>(result: &Result<T, ExecutionError>) -> &'static str {
    match result {
        Ok(_) => "success",
        Err(err) if is_timeout(err) => "timeout",
        Err(_) => "error",
    }
}

fn store_error(err: ExecutionError) -> StoreError {
    if is_timeout(&err) {
        StoreError::Timeout
    } else {
        StoreError::Unavailable(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::Metrics;
    use crate::testing::TestKeyspace;

    static BROWSED: Schema = Schema {
        migrations: &[Migration {
            version: "0001",
            cql: "CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY);",
        }],
        statements: &[
            ("page", "SELECT id FROM items"),
            ("item", "SELECT id FROM items WHERE id = ?"),
        ],
        retry_safe_conditionals: &[],
        browse_reads: &["page"],
    };

    #[tokio::test]
    async fn browse_reads_run_at_the_browse_consistency_and_the_rest_at_the_profiles() {
        let keyspace = TestKeyspace::new("test_browse");
        let Some(settings) = keyspace.reachable_settings().await else {
            return;
        };
        let browse = settings.browse_consistency;
        let metrics = Metrics::new("browse").db.clone();
        let cql = Cql::connect_now(settings, &BROWSED, metrics, Faults::default())
            .await
            .unwrap();
        let connected = cql.connected().unwrap();
        let consistency = |name| statement(&connected, name).unwrap().get_consistency();
        assert_eq!(consistency("page"), Some(browse));
        assert_eq!(consistency("item"), None, "set by the execution profile");
    }
}
