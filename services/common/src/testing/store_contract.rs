//! One contract, every store, in the manner of Jaeger's storage integration suite: a
//! service hands over its [`Stores`], and each check it writes runs against the in-memory
//! store and against a CQL store in a fresh keyspace of the test Cassandra.

use std::future::Future;
use std::sync::Arc;

use super::TestKeyspace;
use crate::faults::Faults;
use crate::service::Stores;

/// A service's stores, for its contract checks.
pub struct StoreContract<S: ?Sized + 'static> {
    /// The service's name, for its database metrics.
    pub service: &'static str,
    /// The start of the name of each check's keyspace.
    pub keyspace_prefix: &'static str,
    pub stores: &'static Stores<S>,
}

impl<S: ?Sized> StoreContract<S> {
    pub async fn check_memory<F: Future<Output = ()>>(&self, check: impl FnOnce(Arc<S>) -> F) {
        check((self.stores.memory)()).await;
    }

    /// Runs `check` on a CQL store in a keyspace of its own, dropped afterwards; passes over
    /// it when no Cassandra answers, unless `REQUIRE_CASSANDRA` is set.
    pub async fn check_cql<F: Future<Output = ()>>(&self, check: impl FnOnce(Arc<S>) -> F) {
        let keyspace = self.keyspace();
        if let Some(store) = self.open(&keyspace).await {
            check(store).await;
        }
    }

    /// A fresh keyspace for this service's tests.
    pub fn keyspace(&self) -> TestKeyspace {
        TestKeyspace::new(self.keyspace_prefix)
    }

    /// A CQL store in `keyspace`: call it again for another instance sharing the database.
    pub async fn open(&self, keyspace: &TestKeyspace) -> Option<Arc<S>> {
        self.open_with_faults(keyspace, Faults::default()).await
    }

    /// A CQL store whose statements suffer the database faults added to `faults`.
    pub async fn open_with_faults(
        &self,
        keyspace: &TestKeyspace,
        faults: Faults,
    ) -> Option<Arc<S>> {
        let cql = keyspace
            .connect(self.service, self.stores.schema, faults)
            .await?;
        Some((self.stores.cql)(cql))
    }
}

/// Declares a module of two tests for the check `$check` (an `async fn(Arc<Store>)`): one on
/// the memory store and one on a CQL store, both built by the `StoreContract` `$contract`.
#[macro_export]
macro_rules! store_contract {
    ($contract:ident, $check:ident) => {
        mod $check {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$contract.check_memory(super::$check).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cql() {
                super::$contract.check_cql(super::$check).await;
            }
        }
    };
}
