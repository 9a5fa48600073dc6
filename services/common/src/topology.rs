//! The shop's four services in one table: each one's name, public path prefix and
//! default port. The services' defaults (where they listen, where they find each other),
//! the calls between them and the load tester's direct routes all read it here.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use crate::client::BaseUrls;

/// One service's place in the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The `service` label of its metrics, and its client id for service tokens.
    pub name: &'static str,
    /// Where its routes live, below the shop's one address space.
    pub prefix: &'static str,
    /// Where it listens unless told otherwise.
    pub port: u16,
}

pub const BACKEND: Placement = Placement {
    name: "backend",
    prefix: "/api",
    port: 8000,
};
pub const CART: Placement = Placement {
    name: "cart-service",
    prefix: "/cart-api",
    port: 8001,
};
pub const ORDER: Placement = Placement {
    name: "order-service",
    prefix: "/order-api",
    port: 8002,
};
pub const USER: Placement = Placement {
    name: "user-service",
    prefix: "/user-api",
    port: 8003,
};

/// Every service, in port order.
pub const ALL: [Placement; 4] = [BACKEND, CART, ORDER, USER];

impl Placement {
    /// Its default listen address, on loopback.
    pub const fn listen(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    /// Its default base URL, where the other services find it.
    pub fn url(&self) -> String {
        format!("http://{}", self.listen())
    }

    /// Its default base URL as an upstream: one replica.
    pub fn urls(&self) -> BaseUrls {
        BaseUrls::single(self.url())
    }
}
