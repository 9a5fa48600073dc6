//! How a service finds and uses its CQL database, from flags or environment variables.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use scylla::client::execution_profile::{ExecutionProfile, ExecutionProfileBuilder};
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::speculative_execution::SimpleSpeculativeExecutionPolicy;
use scylla::statement::{Consistency, SerialConsistency};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StorageKind {
    /// In this process's memory: nothing to run, nothing kept after a restart.
    Memory,
    /// Apache Cassandra or ScyllaDB, through the CQL protocol.
    Cql,
}

#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Where the service keeps its data.
    #[arg(long, env = "STORAGE", value_enum, default_value_t = StorageKind::Memory)]
    pub storage: StorageKind,
    /// CQL nodes to contact first (host:port, comma-separated).
    #[arg(
        long,
        env = "CQL_CONTACT_POINTS",
        default_value = "127.0.0.1:9042",
        value_delimiter = ','
    )]
    pub cql_contact_points: Vec<String>,
    /// The local datacenter, for datacenter-aware routing; unset routes to any node.
    #[arg(long, env = "CQL_LOCAL_DC")]
    pub cql_local_dc: Option<String>,
    /// Keyspace; each service has its own default (shop_backend, shop_users, shop_carts, shop_orders).
    #[arg(long, env = "CQL_KEYSPACE")]
    pub cql_keyspace: Option<String>,
    /// Consistency of every statement's reads and writes (one, local_one, quorum,
    /// local_quorum, all, ...).
    #[arg(long, env = "CQL_CONSISTENCY", default_value = "local_quorum", value_parser = parse_consistency)]
    pub cql_consistency: Consistency,
    /// Consistency of the range reads that only browse (a page of the catalogue), where an
    /// answer a moment stale is harmless.
    #[arg(long, env = "CQL_BROWSE_CONSISTENCY", default_value = "local_one", value_parser = parse_consistency)]
    pub cql_browse_consistency: Consistency,
    /// Consistency of the Paxos round of lightweight transactions (`IF ...`): serial (across
    /// datacenters) or local_serial (within the local one).
    #[arg(long, env = "CQL_SERIAL_CONSISTENCY", default_value = "local_serial",
        value_parser = parse_serial_consistency)]
    pub cql_serial_consistency: SerialConsistency,
    /// Replication of the keyspace when the service creates it (an existing keyspace is left
    /// as it is). The default suits one node of Cassandra or ScyllaDB; a Cassandra cluster of
    /// three or more takes {'class': 'NetworkTopologyStrategy', '<datacenter>': 3}.
    #[arg(
        long,
        env = "CQL_REPLICATION",
        default_value = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    )]
    pub cql_replication: String,
    #[arg(long, env = "CQL_USERNAME")]
    pub cql_username: Option<String>,
    #[arg(long, env = "CQL_PASSWORD", hide_env_values = true)]
    pub cql_password: Option<String>,
    /// Deadline of one statement, in milliseconds.
    #[arg(long, env = "CQL_REQUEST_TIMEOUT_MS", default_value_t = 2_000)]
    pub cql_request_timeout_ms: u64,
}

const CONSISTENCIES: [(&str, Consistency); 9] = [
    ("any", Consistency::Any),
    ("one", Consistency::One),
    ("two", Consistency::Two),
    ("three", Consistency::Three),
    ("quorum", Consistency::Quorum),
    ("all", Consistency::All),
    ("local_quorum", Consistency::LocalQuorum),
    ("each_quorum", Consistency::EachQuorum),
    ("local_one", Consistency::LocalOne),
];

const SERIAL_CONSISTENCIES: [(&str, SerialConsistency); 2] = [
    ("serial", SerialConsistency::Serial),
    ("local_serial", SerialConsistency::LocalSerial),
];

/// clap names the variable (or flag) in its error; this says what it accepts.
fn parse_named<T: Copy>(kind: &str, choices: &[(&str, T)], value: &str) -> Result<T, String> {
    let wanted = value.to_ascii_lowercase();
    choices
        .iter()
        .find(|(name, _)| *name == wanted)
        .map(|(_, level)| *level)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            format!(
                "unknown {kind} {value:?}; expected one of {}",
                names.join(", ")
            )
        })
}

fn parse_consistency(value: &str) -> Result<Consistency, String> {
    parse_named("consistency", &CONSISTENCIES, value)
}

fn parse_serial_consistency(value: &str) -> Result<SerialConsistency, String> {
    parse_named("serial consistency", &SERIAL_CONSISTENCIES, value)
}

/// The settings one service's store runs with.
#[derive(Debug, Clone)]
pub struct CqlSettings {
    pub contact_points: Vec<String>,
    pub local_dc: Option<String>,
    pub keyspace: String,
    pub consistency: Consistency,
    pub browse_consistency: Consistency,
    pub serial_consistency: SerialConsistency,
    pub replication: String,
    pub credentials: Option<(String, String)>,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl StorageArgs {
    pub fn cql_settings(&self, default_keyspace: &str) -> CqlSettings {
        CqlSettings {
            contact_points: self.cql_contact_points.clone(),
            local_dc: self.cql_local_dc.clone(),
            keyspace: self
                .cql_keyspace
                .clone()
                .unwrap_or_else(|| default_keyspace.to_owned()),
            consistency: self.cql_consistency,
            browse_consistency: self.cql_browse_consistency,
            serial_consistency: self.cql_serial_consistency,
            replication: self.cql_replication.clone(),
            credentials: self.cql_username.clone().zip(self.cql_password.clone()),
            request_timeout: Duration::from_millis(self.cql_request_timeout_ms),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A read still unanswered after this share of the statement deadline is sent to a second
/// node as well, and the first answer wins: a node restarting (replaying its commit log and
/// hints) or cut off from its replicas answers slowly or not at all, and a quarter of the
/// deadline leaves the second node time to answer before the request fails.
const SPECULATE_AFTER_SHARE: u32 = 4;

impl CqlSettings {
    pub fn execution_profile(&self) -> ExecutionProfile {
        self.profile_builder().build()
    }

    /// The profile of reads: as every statement, and raced on a second node when slow.
    pub fn read_profile(&self) -> ExecutionProfile {
        self.profile_builder()
            .speculative_execution_policy(Some(Arc::new(SimpleSpeculativeExecutionPolicy {
                max_retry_count: 1,
                retry_interval: self.request_timeout / SPECULATE_AFTER_SHARE,
            })))
            .build()
    }

    fn profile_builder(&self) -> ExecutionProfileBuilder {
        let mut policy = DefaultPolicy::builder().token_aware(true);
        if let Some(dc) = &self.local_dc {
            policy = policy.prefer_datacenter(dc.clone());
        }
        ExecutionProfile::builder()
            .consistency(self.consistency)
            .serial_consistency(Some(self.serial_consistency))
            .request_timeout(Some(self.request_timeout))
            .load_balancing_policy(policy.build())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use scylla::statement::SerialConsistency;

    use super::*;

    #[derive(Debug, Parser)]
    struct Service {
        #[command(flatten)]
        storage: StorageArgs,
    }

    fn profile(args: &[&str]) -> Result<ExecutionProfile, String> {
        let parsed =
            Service::try_parse_from(std::iter::once("service").chain(args.iter().copied()))
                .map_err(|err| err.to_string())?;
        Ok(parsed.storage.cql_settings("ks").execution_profile())
    }

    #[test]
    fn every_statement_runs_at_local_quorum_and_local_serial_by_default() {
        let default = profile(&[]).unwrap();
        assert_eq!(default.get_consistency(), Consistency::LocalQuorum);
        assert_eq!(
            default.get_serial_consistency(),
            Some(SerialConsistency::LocalSerial)
        );
    }

    #[test]
    fn only_reads_race_a_slow_node() {
        let parsed = Service::try_parse_from(["service", "--cql-request-timeout-ms", "2000"])
            .unwrap()
            .storage
            .cql_settings("ks");
        assert!(
            parsed
                .execution_profile()
                .get_speculative_execution_policy()
                .is_none()
        );
        let reads = parsed.read_profile();
        let policy = reads.get_speculative_execution_policy().unwrap();
        let text = format!("{policy:?}");
        assert!(text.contains("500ms"), "{text}");
        assert_eq!(reads.get_consistency(), Consistency::LocalQuorum);
    }

    #[test]
    fn consistency_and_serial_consistency_are_set_in_any_case() {
        let set = profile(&[
            "--cql-consistency",
            "QUORUM",
            "--cql-serial-consistency",
            "Serial",
        ])
        .unwrap();
        assert_eq!(set.get_consistency(), Consistency::Quorum);
        assert_eq!(
            set.get_serial_consistency(),
            Some(SerialConsistency::Serial)
        );
        let set = profile(&["--cql-serial-consistency", "local_serial"]).unwrap();
        assert_eq!(
            set.get_serial_consistency(),
            Some(SerialConsistency::LocalSerial)
        );
    }

    #[test]
    fn browse_reads_run_at_local_one_unless_told_otherwise() {
        let settings = |args: &[&str]| {
            Service::try_parse_from(std::iter::once("service").chain(args.iter().copied()))
                .unwrap()
                .storage
                .cql_settings("ks")
                .browse_consistency
        };
        assert_eq!(settings(&[]), Consistency::LocalOne);
        assert_eq!(
            settings(&["--cql-browse-consistency", "local_quorum"]),
            Consistency::LocalQuorum
        );
    }

    #[test]
    fn a_bad_value_is_refused_naming_the_variable_and_the_choices() {
        let err = profile(&["--cql-serial-consistency", "quorum"]).unwrap_err();
        for expected in [
            "CQL_SERIAL_CONSISTENCY",
            "\"quorum\"",
            "serial, local_serial",
        ] {
            assert!(err.contains(expected), "{expected:?} not in {err}");
        }
        let err = profile(&["--cql-consistency", "most"]).unwrap_err();
        for expected in ["CQL_CONSISTENCY", "\"most\"", "local_quorum"] {
            assert!(err.contains(expected), "{expected:?} not in {err}");
        }
    }
}
