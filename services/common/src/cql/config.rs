//! How a service finds and uses its CQL database, from flags or environment variables.

use std::time::Duration;

use clap::{Args, ValueEnum};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::statement::Consistency;

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
    /// Consistency of reads and writes (one, local_one, quorum, local_quorum, all, ...).
    #[arg(long, env = "CQL_CONSISTENCY", default_value = "local_quorum", value_parser = parse_consistency)]
    pub cql_consistency: Consistency,
    /// Replication of the keyspace when the service creates it.
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

fn parse_consistency(value: &str) -> Result<Consistency, String> {
    Ok(match value.to_ascii_lowercase().as_str() {
        "any" => Consistency::Any,
        "one" => Consistency::One,
        "two" => Consistency::Two,
        "three" => Consistency::Three,
        "quorum" => Consistency::Quorum,
        "all" => Consistency::All,
        "local_quorum" => Consistency::LocalQuorum,
        "each_quorum" => Consistency::EachQuorum,
        "local_one" => Consistency::LocalOne,
        other => return Err(format!("unknown consistency {other:?}")),
    })
}

/// The settings one service's store runs with.
#[derive(Debug, Clone)]
pub struct CqlSettings {
    pub contact_points: Vec<String>,
    pub local_dc: Option<String>,
    pub keyspace: String,
    pub consistency: Consistency,
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
            replication: self.cql_replication.clone(),
            credentials: self.cql_username.clone().zip(self.cql_password.clone()),
            request_timeout: Duration::from_millis(self.cql_request_timeout_ms),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl CqlSettings {
    pub fn execution_profile(&self) -> ExecutionProfile {
        let mut policy = DefaultPolicy::builder().token_aware(true);
        if let Some(dc) = &self.local_dc {
            policy = policy.prefer_datacenter(dc.clone());
        }
        ExecutionProfile::builder()
            .consistency(self.consistency)
            .request_timeout(Some(self.request_timeout))
            .load_balancing_policy(policy.build())
            .build()
    }
}
