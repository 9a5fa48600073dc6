//! The shop's service topology, from the `shop-topology` crate (the one table, which
//! xtask, the end-to-end suite and the load tester read without building this crate),
//! and each service's default base URL as an upstream.

pub use shop_topology::*;

use crate::client::BaseUrls;

/// A service's default base URL as an upstream: one replica.
impl From<Placement> for BaseUrls {
    fn from(service: Placement) -> Self {
        BaseUrls::single(service.url())
    }
}
