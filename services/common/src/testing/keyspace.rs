//! The test Cassandra: where it is, the gate that passes over a test without it (or fails
//! under `REQUIRE_CASSANDRA`, as in CI), and keyspaces of a test's own that are dropped
//! again when the test ends, so runs do not pile keyspaces onto the shared node's heap.
//!
//! `CQL_TEST_CONTACT_POINT` (default 127.0.0.1:9042) and `CQL_TEST_REPLICATION` (default
//! one replica) point the tests at another node or cluster, e.g. a three-node cluster with
//! `{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}`.

use std::time::Duration;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::{Consistency, SerialConsistency};
use uuid::Uuid;

use crate::cql::{Cql, CqlSettings, Schema};
use crate::faults::Faults;
use crate::telemetry::metrics::Metrics;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_REPLICATION: &str = "{'class': 'SimpleStrategy', 'replication_factor': 1}";

/// The test Cassandra's address: `CQL_TEST_CONTACT_POINT`, or the local node.
pub fn contact_point() -> String {
    std::env::var("CQL_TEST_CONTACT_POINT").unwrap_or_else(|_| "127.0.0.1:9042".to_owned())
}

fn required() -> bool {
    std::env::var_os("REQUIRE_CASSANDRA").is_some()
}

/// Whether the test Cassandra answers; without it the test says how to start one, and
/// fails where `REQUIRE_CASSANDRA` is set.
pub async fn cassandra_available() -> bool {
    let contact_point = contact_point();
    if tokio::net::TcpStream::connect(&contact_point).await.is_ok() {
        return true;
    }
    assert!(
        !required(),
        "REQUIRE_CASSANDRA is set but no Cassandra answers at {contact_point}"
    );
    eprintln!(
        "not run: no Cassandra at {contact_point}; start one with `cargo xtask cassandra start`"
    );
    false
}

/// A keyspace no other test uses, dropped when this value is.
pub struct TestKeyspace {
    name: String,
}

impl TestKeyspace {
    pub fn new(prefix: &str) -> Self {
        Self {
            name: format!("{prefix}_{}", Uuid::new_v4().simple()),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The settings of a session in this keyspace.
    pub fn settings(&self) -> CqlSettings {
        CqlSettings {
            contact_points: vec![contact_point()],
            local_dc: None,
            keyspace: self.name.clone(),
            consistency: Consistency::LocalQuorum,
            browse_consistency: Consistency::LocalOne,
            serial_consistency: SerialConsistency::LocalSerial,
            replication: std::env::var("CQL_TEST_REPLICATION")
                .unwrap_or_else(|_| DEFAULT_REPLICATION.to_owned()),
            credentials: None,
            request_timeout: Duration::from_secs(10),
            connect_timeout: CONNECT_TIMEOUT,
        }
    }

    /// A service's session in this keyspace, migrated to `schema`, whose statements suffer
    /// the database faults added to `faults`; `None` (with the reason printed) when no
    /// Cassandra answers and `REQUIRE_CASSANDRA` is not set.
    pub async fn connect(
        &self,
        service: &str,
        schema: &'static Schema,
        faults: Faults,
    ) -> Option<Cql> {
        let metrics = Metrics::new(service).db.clone();
        match Cql::connect_now(self.settings(), schema, metrics, faults).await {
            Ok(cql) => Some(cql),
            Err(err) => unusable(&err),
        }
    }

    /// This keyspace's settings once the test Cassandra has been seen to answer, for tests
    /// that connect by themselves; `None` as for [`TestKeyspace::connect`].
    pub async fn reachable_settings(&self) -> Option<CqlSettings> {
        match raw_session().await {
            Ok(_) => Some(self.settings()),
            Err(err) => unusable(&err),
        }
    }

    /// A plain driver session, for tests that read or write rows behind a store's back.
    pub async fn raw_session(&self) -> Session {
        raw_session().await.expect("the test Cassandra answers")
    }
}

/// Fails the test under `REQUIRE_CASSANDRA`; otherwise says how to start a Cassandra.
fn unusable<T>(err: &anyhow::Error) -> Option<T> {
    let contact_point = contact_point();
    assert!(
        !required(),
        "REQUIRE_CASSANDRA is set but Cassandra at {contact_point} is unusable: {err:#}"
    );
    eprintln!(
        "CQL tests not run: no Cassandra at {contact_point} ({err:#}).\n\
         Start one with `cargo xtask cassandra start`."
    );
    None
}

async fn raw_session() -> anyhow::Result<Session> {
    Ok(SessionBuilder::new()
        .known_node(contact_point())
        .connection_timeout(CONNECT_TIMEOUT)
        .build()
        .await?)
}

impl std::fmt::Display for TestKeyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl Drop for TestKeyspace {
    /// Drops the keyspace (if it was ever created) on a thread of its own: `Drop` cannot
    /// await, and the test's runtime may be the one running this.
    fn drop(&mut self) {
        let statement = format!("DROP KEYSPACE IF EXISTS {}", self.name);
        let dropped = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                raw_session().await?.query_unpaged(statement, ()).await?;
                Ok(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(err)) if required() => eprintln!("keyspace {} not dropped: {err:#}", self.name),
            // Without a Cassandra there is nothing to drop.
            Ok(Err(_)) => {}
            Err(_) => eprintln!(
                "keyspace {} not dropped: the dropping thread panicked",
                self.name
            ),
        }
    }
}
