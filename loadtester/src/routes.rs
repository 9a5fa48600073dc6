//! Where each public path goes: to the gateway as is, or straight to the service that owns
//! its prefix (`--direct`), on the host of `--host`.

use std::fmt;
use std::str::FromStr;

use reqwest::Url;
use shop_topology as topology;

/// The native stack's gateway: where `reproduce` and `audit` go unless --host says otherwise.
pub const NATIVE_GATEWAY: &str = "http://127.0.0.1:8080";

/// The port of each service, in prefix order: `/api`, `/cart-api`, `/order-api`, `/user-api`;
/// by default the ports of [`topology`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServicePorts {
    pub backend: u16,
    pub cart: u16,
    pub order: u16,
    pub user: u16,
}

impl Default for ServicePorts {
    fn default() -> Self {
        Self {
            backend: topology::BACKEND.port,
            cart: topology::CART.port,
            order: topology::ORDER.port,
            user: topology::USER.port,
        }
    }
}

impl FromStr for ServicePorts {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let ports: Vec<u16> = text
            .split(',')
            .map(|port| port.trim().parse::<u16>())
            .collect::<Result<_, _>>()
            .map_err(|err| format!("ports must be numbers: {err}"))?;
        match ports[..] {
            [backend, cart, order, user] => Ok(Self {
                backend,
                cart,
                order,
                user,
            }),
            _ => Err("give four ports: backend,cart,order,user".to_owned()),
        }
    }
}

impl fmt::Display for ServicePorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{},{}",
            self.backend, self.cart, self.order, self.user
        )
    }
}

#[derive(Debug, Clone)]
pub enum Routes {
    /// Every path to one base URL (the nginx gateway).
    Gateway(String),
    /// Each prefix to its own service.
    Direct {
        backend: String,
        cart: String,
        order: String,
        user: String,
    },
}

impl Routes {
    pub fn new(host: &str, direct: Option<ServicePorts>) -> anyhow::Result<Self> {
        let base = Url::parse(host).map_err(|err| anyhow::anyhow!("--host {host}: {err}"))?;
        if base.host().is_none() {
            anyhow::bail!("--host {host} names no host");
        }
        let Some(ports) = direct else {
            return Ok(Self::Gateway(origin(&base)));
        };
        let with_port = |port: u16| {
            let mut url = base.clone();
            url.set_port(Some(port))
                .map_err(|()| anyhow::anyhow!("--host {host} cannot take a port"))?;
            Ok::<_, anyhow::Error>(origin(&url))
        };
        Ok(Self::Direct {
            backend: with_port(ports.backend)?,
            cart: with_port(ports.cart)?,
            order: with_port(ports.order)?,
            user: with_port(ports.user)?,
        })
    }

    /// The absolute URL of a public path such as `/api/products/`.
    pub fn url(&self, path: &str) -> String {
        match self {
            Self::Gateway(base) => format!("{base}{path}"),
            Self::Direct {
                backend,
                cart,
                order,
                user,
            } => {
                let below = |service: topology::Placement| {
                    path.strip_prefix(service.prefix)
                        .is_some_and(|rest| rest.starts_with('/'))
                };
                let base = if below(topology::CART) {
                    cart
                } else if below(topology::ORDER) {
                    order
                } else if below(topology::USER) {
                    user
                } else {
                    backend
                };
                format!("{base}{path}")
            }
        }
    }
}

/// `scheme://host[:port]`, without a trailing slash.
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_routes_follow_the_prefix() {
        let ports: ServicePorts = "9000,9001,9002,9003".parse().unwrap();
        let routes = Routes::new("http://127.0.0.1:8080", Some(ports)).unwrap();
        assert_eq!(
            routes.url("/api/products/"),
            "http://127.0.0.1:9000/api/products/"
        );
        assert_eq!(
            routes.url("/cart-api/cart/"),
            "http://127.0.0.1:9001/cart-api/cart/"
        );
        assert_eq!(
            routes.url("/order-api/orders/"),
            "http://127.0.0.1:9002/order-api/orders/"
        );
        assert_eq!(
            routes.url("/user-api/token"),
            "http://127.0.0.1:9003/user-api/token"
        );
    }

    #[test]
    fn the_gateway_takes_every_path() {
        let routes = Routes::new("http://localhost:8080/", None).unwrap();
        assert_eq!(
            routes.url("/user-api/token"),
            "http://localhost:8080/user-api/token"
        );
    }

    #[test]
    fn ports_need_four_numbers() {
        assert!("1,2,3".parse::<ServicePorts>().is_err());
        assert_eq!(ServicePorts::default().to_string(), "8000,8001,8002,8003");
    }
}
