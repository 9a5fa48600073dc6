//! Versioned schema migrations from `.cql` files: idempotent across restarts and safe when
//! several instances start at once (every statement is `IF NOT EXISTS`, and each applied
//! version is recorded with a lightweight transaction).

use std::time::Duration;

use scylla::client::session::Session;
use scylla::statement::unprepared::Statement;

use super::CqlSettings;

/// Schema changes wait for every node to write the new schema; on a busy node that takes
/// far longer than a request may, so they get their own deadline.
const SCHEMA_CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

fn schema_change(cql: impl Into<String>) -> Statement {
    let mut statement = Statement::new(cql);
    statement.set_request_timeout(Some(SCHEMA_CHANGE_TIMEOUT));
    statement
}

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
    session
        .query_unpaged(
            schema_change(format!(
                "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {}",
                settings.replication
            )),
            (),
        )
        .await?;
    session
        .query_unpaged(
            schema_change(format!(
                "CREATE TABLE IF NOT EXISTS {keyspace}.schema_migrations \
                 (version text PRIMARY KEY, applied_at timestamp)"
            )),
            (),
        )
        .await?;
    session.await_schema_agreement().await?;
    session.use_keyspace(keyspace, false).await?;
    for migration in migrations {
        if is_applied(session, migration.version).await? {
            continue;
        }
        for statement in statements(migration.cql) {
            session
                .query_unpaged(schema_change(statement), ())
                .await
                .map_err(|err| anyhow::anyhow!("migration {} failed: {err}", migration.version))?;
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
    Ok(())
}

async fn is_applied(session: &Session, version: &str) -> anyhow::Result<bool> {
    let rows = session
        .query_unpaged(
            "SELECT version FROM schema_migrations WHERE version = ?",
            (version,),
        )
        .await?
        .into_rows_result()?;
    Ok(rows.rows_num() > 0)
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
