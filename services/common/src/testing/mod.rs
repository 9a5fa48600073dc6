//! Support for the services' tests against a real Cassandra: the `REQUIRE_CASSANDRA` gate,
//! keyspaces that are dropped after the test, and the store contract runner behind
//! [`store_contract!`](crate::store_contract).

mod keyspace;
mod store_contract;

pub use keyspace::{TestKeyspace, cassandra_available, contact_point};
pub use store_contract::StoreContract;
