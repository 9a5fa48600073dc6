//! Versioned schema migrations from `.cql` files: idempotent across restarts and safe when
//! several instances start at once, on one node or a cluster.
//!
//! Two instances migrating one keyspace at the same moment could otherwise both run a
//! statement that fails the second time (`ALTER TABLE ... ADD`), or create one table on two
//! nodes at once, which Cassandra before 5.1 turns into two tables of one name with
//! different ids. So:
//! - every schema change goes to one coordinator, the node with the lowest host id, which
//!   every instance picks alike and which applies schema changes one at a time, so
//!   `IF NOT EXISTS` holds;
//! - the versioned migrations run under a lock row taken with a lightweight transaction
//!   (which expires, should its holder die), and each applied version is recorded, so an
//!   instance that waited for the lock finds the work done.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use scylla::client::session::Session;
use scylla::policies::load_balancing::{
    LoadBalancingPolicy, NodeIdentifier, SingleTargetLoadBalancingPolicy,
};
use scylla::statement::Consistency;
use scylla::statement::unprepared::Statement;
use uuid::Uuid;

use super::CqlSettings;

/// Schema changes wait for every node to write the new schema; on a busy node that takes
/// far longer than a request may, so they get their own deadline.
const SCHEMA_CHANGE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the lock row lives unless released: longer than any migration takes, short
/// enough that the instances left waiting by a crashed holder go on soon after.
const LOCK_TTL_SECONDS: u32 = 120;
/// How long an instance waits for another's migrations before giving up (and retrying
/// from the start, as a service does after any failure to connect).
const LOCK_WAIT: Duration = Duration::from_secs(180);
const LOCK_POLL: Duration = Duration::from_secs(1);
const LOCK_NAME: &str = "migrations";

/// One migration: a version and its statements, separated by `;`.
pub struct Migration {
    pub version: &'static str,
    pub cql: &'static str,
}

pub(super) async fn run(
    session: &Session,
    settings: &CqlSettings,
    migrations: &[Migration],
) -> anyhow::Result<()> {
    let keyspace = &settings.keyspace;
    let coordinator = schema_coordinator(session)?;
    let schema_change = |cql: String| {
        let mut statement = Statement::new(cql);
        statement.set_request_timeout(Some(SCHEMA_CHANGE_TIMEOUT));
        statement.set_load_balancing_policy(Some(coordinator.clone()));
        statement
    };
    for cql in [
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {}",
            settings.replication
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.schema_migrations \
             (version text PRIMARY KEY, applied_at timestamp)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.schema_migration_lock \
             (name text PRIMARY KEY, owner uuid)"
        ),
    ] {
        session.query_unpaged(schema_change(cql), ()).await?;
    }
    session.await_schema_agreement().await?;
    session.use_keyspace(keyspace, false).await?;
    let Some(owner) = lock_unless_done(session, migrations).await? else {
        return Ok(());
    };
    let applied = async {
        // Another instance may have applied some or all while this one waited.
        for migration in pending(session, migrations).await? {
            for statement in statements(migration.cql) {
                session
                    .query_unpaged(schema_change(statement), ())
                    .await
                    .with_context(|| format!("migration {} failed", migration.version))?;
            }
            session.await_schema_agreement().await?;
            session
                .query_unpaged(
                    "INSERT INTO schema_migrations (version, applied_at) \
                     VALUES (?, toTimestamp(now())) IF NOT EXISTS",
                    (migration.version,),
                )
                .await?;
            tracing::info!(version = migration.version, %keyspace, "schema migration applied");
        }
        anyhow::Ok(())
    }
    .await;
    unlock(session, owner).await;
    applied
}

/// The node every instance sends its schema changes to: the lowest host id among the
/// nodes this session is connected to.
fn schema_coordinator(session: &Session) -> anyhow::Result<Arc<dyn LoadBalancingPolicy>> {
    let cluster = session.get_cluster_state();
    let host_id = cluster
        .get_nodes_info()
        .iter()
        .filter(|node| node.is_connected())
        .map(|node| node.host_id)
        .min()
        .context("no node of the cluster is connected")?;
    Ok(SingleTargetLoadBalancingPolicy::new(
        NodeIdentifier::HostId(host_id),
        None,
    ))
}

/// The migrations not recorded as applied, in order.
async fn pending<'a>(
    session: &Session,
    migrations: &'a [Migration],
) -> anyhow::Result<Vec<&'a Migration>> {
    let rows = session
        .query_unpaged("SELECT version FROM schema_migrations", ())
        .await?
        .into_rows_result()?;
    let applied = rows
        .rows::<(String,)>()?
        .map(|row| row.map(|(version,)| version))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(migrations
        .iter()
        .filter(|migration| !applied.iter().any(|version| version == migration.version))
        .collect())
}

/// Takes the migration lock and returns the owner id that releases it, or None once no
/// migration is pending, which is how instances that waited for another's find it done.
async fn lock_unless_done(
    session: &Session,
    migrations: &[Migration],
) -> anyhow::Result<Option<Uuid>> {
    let owner = Uuid::new_v4();
    let asked = Instant::now();
    while !pending(session, migrations).await?.is_empty() {
        let insert = session
            .query_unpaged(
                format!(
                    "INSERT INTO schema_migration_lock (name, owner) VALUES (?, ?) \
                     IF NOT EXISTS USING TTL {LOCK_TTL_SECONDS}"
                ),
                (LOCK_NAME, owner),
            )
            .await;
        if let Err(err) = insert {
            tracing::debug!(error = %err, "taking the migration lock failed; reading it");
        }
        // Contention between instances can time a lightweight transaction out without
        // saying whether it applied: a serial read of the row tells in every case (and when
        // that times out too, the next round's does).
        match lock_owner(session).await {
            Ok(holder) if holder == Some(owner) => return Ok(Some(owner)),
            Ok(_) => {}
            Err(err) => tracing::debug!(error = %err, "reading the migration lock failed"),
        }
        if asked.elapsed() > LOCK_WAIT {
            bail!(
                "another instance has held the schema migration lock for over {} s \
                 (it expires {LOCK_TTL_SECONDS} s after it was taken)",
                LOCK_WAIT.as_secs()
            );
        }
        // Spread out, so that waiting instances do not contend for the row in step.
        tokio::time::sleep(LOCK_POLL.mul_f64(0.5 + fastrand::f64())).await;
    }
    Ok(None)
}

/// Who holds the lock, read through Paxos so that a write still in progress is settled.
async fn lock_owner(session: &Session) -> anyhow::Result<Option<Uuid>> {
    let mut read = Statement::new("SELECT owner FROM schema_migration_lock WHERE name = ?");
    read.set_consistency(Consistency::LocalSerial);
    let rows = session
        .query_unpaged(read, (LOCK_NAME,))
        .await?
        .into_rows_result()?;
    Ok(rows
        .maybe_first_row::<(Option<Uuid>,)>()?
        .and_then(|(owner,)| owner))
}

/// Releases the lock; should that fail, it expires on its own.
async fn unlock(session: &Session, owner: Uuid) {
    let released = session
        .query_unpaged(
            "DELETE FROM schema_migration_lock WHERE name = ? IF owner = ?",
            (LOCK_NAME, owner),
        )
        .await;
    if let Err(err) = released {
        tracing::warn!(error = %err, "could not release the schema migration lock; it expires");
    }
}

/// The statements of a migration file. Comments go first: they may contain `;`.
fn statements(cql: &str) -> Vec<String> {
    let code: Vec<&str> = cql
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("--"))
        .collect();
    code.join(" ")
        .split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cql::{Cql, Schema};
    use crate::faults::Faults;
    use crate::telemetry::metrics::Metrics;
    use crate::testing::TestKeyspace;

    /// A table made, then changed by a statement that fails when it runs twice: the shape of
    /// the backend's migration 0002.
    static RACED: Schema = Schema {
        migrations: &[
            Migration {
                version: "0001",
                cql: "CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY);",
            },
            Migration {
                version: "0002",
                cql: "ALTER TABLE items ADD (note text, extra bigint);\n\
                      CREATE TABLE IF NOT EXISTS more_items (id int PRIMARY KEY);",
            },
        ],
        statements: &[("read", "SELECT id, note, extra FROM items WHERE id = ?")],
        retry_safe_conditionals: &[],
        browse_reads: &[],
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn instances_starting_at_once_migrate_a_fresh_keyspace_without_failing() {
        let keyspace = TestKeyspace::new("test_migrate");
        let Some(settings) = keyspace.reachable_settings().await else {
            return;
        };
        let instances = (0..6).map(|_| {
            let settings = settings.clone();
            tokio::spawn(async move {
                let metrics = Metrics::new("migrate-race").db.clone();
                Cql::connect_now(settings, &RACED, metrics, Faults::default()).await
            })
        });
        let results = futures_util::future::join_all(instances).await;
        for result in results {
            let cql = result
                .unwrap()
                .unwrap_or_else(|err| panic!("an instance failed: {err:#}"));
            // Prepared against the migrated table: the added columns exist.
            cql.execute("read", (1,)).await.unwrap();
        }
    }

    #[test]
    fn splits_statements_and_drops_comments() {
        let cql = "-- products; one per line\nCREATE TABLE IF NOT EXISTS a (\n  id uuid PRIMARY KEY\n);\n\n-- more\nCREATE TABLE b (id int PRIMARY KEY);\n";
        let found = statements(cql);
        assert_eq!(
            found,
            [
                "CREATE TABLE IF NOT EXISTS a ( id uuid PRIMARY KEY )",
                "CREATE TABLE b (id int PRIMARY KEY)"
            ]
        );
    }
}
