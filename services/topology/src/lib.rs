//! The shop's four services in one table: each one's name, public path prefix, default
//! port, and the environment variables that set where it listens and where the others
//! find it. The services' defaults, the stack, the bench, the end-to-end suite and the
//! load tester all read it here.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// One service's place in the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Its package's and binary's name, the `service` label of its metrics, and its
    /// client id for service tokens.
    pub name: &'static str,
    /// Where its routes live, below the shop's one address space.
    pub prefix: &'static str,
    /// Where it listens unless told otherwise.
    pub port: u16,
    /// The variable its listen address is set by.
    pub listen_var: &'static str,
    /// The variable by which the other services find it (one base URL per replica).
    pub url_var: &'static str,
}

pub const BACKEND: Placement = Placement {
    name: "backend",
    prefix: "/api",
    port: 8000,
    listen_var: "BACKEND_LISTEN",
    url_var: "BACKEND_URL",
};
pub const CART: Placement = Placement {
    name: "cart-service",
    prefix: "/cart-api",
    port: 8001,
    listen_var: "CART_LISTEN",
    url_var: "CART_SERVICE_URL",
};
pub const ORDER: Placement = Placement {
    name: "order-service",
    prefix: "/order-api",
    port: 8002,
    listen_var: "ORDER_LISTEN",
    url_var: "ORDER_SERVICE_URL",
};
pub const USER: Placement = Placement {
    name: "user-service",
    prefix: "/user-api",
    port: 8003,
    listen_var: "USER_LISTEN",
    url_var: "USER_SERVICE_URL",
};

/// Every service, in port order.
pub const ALL: [Placement; 4] = [BACKEND, CART, ORDER, USER];

/// Replica r of a service listens this much further up for every replica before it, so
/// that the replicas of the four services never share a port.
pub const REPLICA_PORT_STEP: u16 = 10;

/// The most replicas of each service the stack runs.
pub const MAX_REPLICAS: u8 = 5;

impl Placement {
    /// Its default listen address, on loopback.
    pub const fn listen(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    /// Its default base URL, where the other services find it.
    pub fn url(&self) -> String {
        format!("http://{}", self.listen())
    }

    /// Replica r's port (1-based): the service's own for replica 1.
    pub fn replica_port(&self, replica: u8) -> u16 {
        self.port + REPLICA_PORT_STEP * u16::from(replica - 1)
    }

    /// Replica r's name, for its process, pid file and log: the service's own for
    /// replica 1, `<service>-<r>` after.
    pub fn replica_name(&self, replica: u8) -> String {
        if replica == 1 {
            self.name.to_owned()
        } else {
            format!("{}-{replica}", self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn distinct<T: std::hash::Hash + Eq>(values: impl IntoIterator<Item = T>) -> bool {
        let mut seen = HashSet::new();
        values.into_iter().all(|value| seen.insert(value))
    }

    #[test]
    fn no_two_services_share_a_name_prefix_port_or_variable() {
        assert!(distinct(ALL.map(|service| service.name)));
        assert!(distinct(ALL.map(|service| service.prefix)));
        assert!(distinct(
            ALL.iter()
                .flat_map(|service| [service.listen_var, service.url_var])
        ));
        let replica_ports = ALL
            .iter()
            .flat_map(|service| (1..=MAX_REPLICAS).map(|replica| service.replica_port(replica)));
        assert!(distinct(replica_ports));
    }

    #[test]
    fn replica_r_is_named_after_it_and_listens_ten_ports_up_per_replica_before_it() {
        let replicas: Vec<(String, u16)> = (1..=3)
            .map(|replica| (USER.replica_name(replica), USER.replica_port(replica)))
            .collect();
        assert_eq!(
            replicas,
            [
                ("user-service".to_owned(), 8003),
                ("user-service-2".to_owned(), 8013),
                ("user-service-3".to_owned(), 8023)
            ]
        );
    }
}
