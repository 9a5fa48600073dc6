//! For the services' store contract tests: a session on the test Cassandra, in a keyspace of
//! the test's own. Where no Cassandra answers the CQL half of a suite prints how to start
//! one and passes over it, except when `REQUIRE_CASSANDRA` is set (CI), where it fails.
//!
//! `CQL_TEST_CONTACT_POINT` (default 127.0.0.1:9042) and `CQL_TEST_REPLICATION` (default
//! one replica) point the suites at another node or cluster, e.g. a three-node cluster with
//! `{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}`.

use std::time::Duration;

use scylla::client::session_builder::SessionBuilder;
use scylla::statement::{Consistency, SerialConsistency};
use uuid::Uuid;

use super::{Cql, CqlSettings, Schema};
use crate::faults::Faults;
use crate::telemetry::metrics::Metrics;

const DEFAULT_REPLICATION: &str = "{'class': 'SimpleStrategy', 'replication_factor': 1}";

pub async fn session(service: &str, schema: &'static Schema, keyspace: &str) -> Option<Cql> {
    session_with_faults(service, schema, keyspace, Faults::default()).await
}

/// A session whose statements suffer the database faults added to `faults`.
pub async fn session_with_faults(
    service: &str,
    schema: &'static Schema,
    keyspace: &str,
    faults: Faults,
) -> Option<Cql> {
    let settings = settings(keyspace);
    match Cql::connect_now(settings, schema, Metrics::new(service).db.clone(), faults).await {
        Ok(cql) => Some(cql),
        Err(err) => unusable(&contact_point(), &err),
    }
}

/// The settings of a test keyspace, once a test node has been seen to answer; None (after
/// saying why) when none does and `REQUIRE_CASSANDRA` is not set.
pub async fn reachable_settings(keyspace: &str) -> Option<CqlSettings> {
    let settings = settings(keyspace);
    let probe = SessionBuilder::new()
        .known_nodes(&settings.contact_points)
        .connection_timeout(settings.connect_timeout)
        .build()
        .await;
    match probe {
        Ok(_) => Some(settings),
        Err(err) => unusable(&contact_point(), &err.into()),
    }
}

fn contact_point() -> String {
    std::env::var("CQL_TEST_CONTACT_POINT").unwrap_or_else(|_| "127.0.0.1:9042".to_owned())
}

fn settings(keyspace: &str) -> CqlSettings {
    CqlSettings {
        contact_points: vec![contact_point()],
        local_dc: None,
        keyspace: keyspace.to_owned(),
        consistency: Consistency::LocalQuorum,
        serial_consistency: SerialConsistency::LocalSerial,
        replication: std::env::var("CQL_TEST_REPLICATION")
            .unwrap_or_else(|_| DEFAULT_REPLICATION.to_owned()),
        credentials: None,
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
    }
}

fn unusable<T>(contact_point: &str, err: &anyhow::Error) -> Option<T> {
    if std::env::var_os("REQUIRE_CASSANDRA").is_some() {
        panic!("REQUIRE_CASSANDRA is set but Cassandra at {contact_point} is unusable: {err:#}")
    }
    eprintln!(
        "CQL store tests not run: no Cassandra at {contact_point} ({err:#}).\n\
         Start one with `cargo xtask cassandra start`."
    );
    None
}

/// A keyspace name no other test uses.
pub fn fresh_keyspace(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::new_v4().simple())
}
