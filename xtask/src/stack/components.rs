//! The stack's components, in start order, and the names that select them: a component's
//! own name, a service's name for every replica of it, `<service>-<r>` for replica r.

use anyhow::{Result, bail};
use shop_topology::{self as topology, Placement};

use super::cluster;
use super::layout::Layout;
use super::replicas;

/// One of the shop's services as the stack runs it.
pub struct Service {
    /// Its name (also its package's and binary's), public path prefix, first port and
    /// the variables that place it.
    pub placement: Placement,
    /// Whether it signs the shop's tokens (the user service), with the stack's one key.
    pub signs_tokens: bool,
}

/// In start order: the user service first, as it signs the others' tokens.
pub const SERVICES: [Service; 4] = [
    Service {
        placement: topology::USER,
        signs_tokens: true,
    },
    Service {
        placement: topology::BACKEND,
        signs_tokens: false,
    },
    Service {
        placement: topology::CART,
        signs_tokens: false,
    },
    Service {
        placement: topology::ORDER,
        signs_tokens: false,
    },
];

#[derive(Clone, Copy)]
pub enum Kind {
    LogStore,
    Jaeger,
    /// Replica `replica` (1-based) of a service.
    Service {
        service: &'static Service,
        replica: u8,
    },
    Docs,
    Nginx,
    Exporter,
    Alertmanager,
    Prometheus,
}

pub struct Component {
    /// Its pid file's and log's name: the service's for replica 1 (as before replicas),
    /// `<service>-<r>` for the others.
    pub name: String,
    pub kind: Kind,
    /// Answers 2xx when the component is ready.
    pub ready_url: String,
    /// What to open, printed by `up` and `status`.
    pub url: String,
}

/// A component that runs once, whatever the replica count.
struct Single {
    name: &'static str,
    kind: Kind,
    ready_url: &'static str,
    url: &'static str,
}

/// Started before the services, which export to them.
const BEFORE_SERVICES: [Single; 2] = [
    Single {
        name: "victoria-logs",
        kind: Kind::LogStore,
        ready_url: "http://127.0.0.1:9428/health",
        url: "http://127.0.0.1:9428/select/vmui/ (OTLP logs at /insert/opentelemetry; syslog on udp 127.0.0.1:5514)",
    },
    Single {
        name: "jaeger",
        kind: Kind::Jaeger,
        ready_url: "http://127.0.0.1:16686/api/services",
        url: "http://127.0.0.1:16686 (OTLP on 127.0.0.1:4317 gRPC, :4318 HTTP; metrics :8888)",
    },
];

/// The gateway after the services, its exporter after the gateway, Prometheus last.
const AFTER_SERVICES: [Single; 5] = [
    Single {
        name: "docs",
        kind: Kind::Docs,
        ready_url: "http://127.0.0.1:8004/docs/",
        url: "http://127.0.0.1:8080/docs/ (target/site)",
    },
    Single {
        name: "nginx",
        kind: Kind::Nginx,
        ready_url: "http://127.0.0.1:8081/stub_status",
        url: "http://127.0.0.1:8080 (gateway; stub_status on 127.0.0.1:8081)",
    },
    Single {
        name: "nginx-exporter",
        kind: Kind::Exporter,
        ready_url: "http://127.0.0.1:9113/metrics",
        url: "http://127.0.0.1:9113/metrics",
    },
    Single {
        name: "alertmanager",
        kind: Kind::Alertmanager,
        ready_url: "http://127.0.0.1:9093/-/ready",
        url: "http://127.0.0.1:9093",
    },
    Single {
        name: "prometheus",
        kind: Kind::Prometheus,
        ready_url: "http://127.0.0.1:9090/-/ready",
        url: "http://127.0.0.1:9090",
    },
];

impl Single {
    fn component(&self) -> Component {
        Component {
            name: self.name.to_owned(),
            kind: self.kind,
            ready_url: self.ready_url.to_owned(),
            url: self.url.to_owned(),
        }
    }
}

impl Service {
    pub fn name(&self) -> &'static str {
        self.placement.name
    }

    /// Replica r's base URL, where the gateway, Prometheus and the other services find it.
    pub fn replica_url(&self, replica: u8) -> String {
        format!("http://127.0.0.1:{}", self.placement.replica_port(replica))
    }

    fn replica(&'static self, replica: u8) -> Component {
        let base = self.replica_url(replica);
        let prefix = self.placement.prefix;
        Component {
            name: self.placement.replica_name(replica),
            kind: Kind::Service {
                service: self,
                replica,
            },
            ready_url: format!("{base}{prefix}/health/ready"),
            url: format!("{base}{prefix}/"),
        }
    }
}

/// Every component of a stack running `replicas` replicas of each service, in start order.
pub fn catalogue(replicas: u8) -> Vec<Component> {
    let services = (1..=replicas)
        .flat_map(|replica| SERVICES.iter().map(move |service| service.replica(replica)));
    BEFORE_SERVICES
        .iter()
        .map(Single::component)
        .chain(services)
        .chain(AFTER_SERVICES.iter().map(Single::component))
        .collect()
}

impl Component {
    /// Whether `name` selects this component: its own name, its service's (every
    /// replica), or `<service>-<r>` (replica 1 included).
    pub fn is_named(&self, name: &str) -> bool {
        match self.kind {
            Kind::Service { service, replica } => {
                name == service.name() || name == format!("{}-{replica}", service.name())
            }
            _ => name == self.name,
        }
    }

    pub fn replica(&self) -> u8 {
        match self.kind {
            Kind::Service { replica, .. } => replica,
            _ => 1,
        }
    }
}

/// A name `up`, `down` and `kill` accept: a component's, a service replica's
/// (`backend-2`), or a Cassandra node's.
pub fn parse_name(name: &str) -> Result<String, String> {
    let known = cluster::node_number(name).is_some()
        || catalogue(replicas::MAX)
            .iter()
            .any(|component| component.is_named(name));
    if known {
        return Ok(name.to_owned());
    }
    let names: Vec<&str> = BEFORE_SERVICES
        .iter()
        .map(|single| single.name)
        .chain(SERVICES.iter().map(Service::name))
        .chain(AFTER_SERVICES.iter().map(|single| single.name))
        .collect();
    Err(format!(
        "no component {name:?}; expected one of {}, <service>-<r> (replica r of a service, \
         1 to {}), or cassandra-<n> (node n of the stack's Cassandra cluster)",
        names.join(", "),
        replicas::MAX
    ))
}

/// The components some names select (all when none is named), for a stack running
/// `count` replicas of each service.
pub struct Selector {
    names: Vec<String>,
    pub count: u8,
}

impl Selector {
    pub fn new(layout: &Layout, names: Vec<String>) -> Result<Self> {
        Ok(Self {
            names,
            count: replicas::count(layout)?,
        })
    }

    pub fn one(layout: &Layout, name: &str) -> Result<Self> {
        Self::new(layout, vec![name.to_owned()])
    }

    pub fn names_all(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether `component` was asked for by its own name (`backend-2`), rather than as one
    /// of the replicas its service's name selects.
    pub fn names_exactly(&self, component: &Component) -> bool {
        self.names.contains(&component.name)
    }

    /// The selected components the stack runs, in start order; a name beyond the replica
    /// count (`backend-3` with 2 replicas) is refused.
    pub fn running_set(&self) -> Result<Vec<Component>> {
        let components = self.select(self.count);
        for name in &self.names {
            if !components.iter().any(|component| component.is_named(name)) {
                bail!(
                    "{name}: the stack runs {} replica(s) of each service; `cargo xtask stack \
                     up --replicas N` runs more",
                    self.count
                );
            }
        }
        Ok(components)
    }

    /// The selected components among every replica there could be, for stopping: a
    /// replica left over from a larger count is stopped too.
    pub fn any_count(&self) -> Vec<Component> {
        self.select(replicas::MAX)
    }

    fn select(&self, replicas: u8) -> Vec<Component> {
        catalogue(replicas)
            .into_iter()
            .filter(|component| {
                self.names_all() || self.names.iter().any(|name| component.is_named(name))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_replicas_run_every_service_twice_on_ports_ten_apart() {
        let all = catalogue(2);
        assert_eq!(all.len(), BEFORE_SERVICES.len() + 8 + AFTER_SERVICES.len());
        let backend: Vec<&Component> = all.iter().filter(|c| c.is_named("backend")).collect();
        let names: Vec<&str> = backend.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["backend", "backend-2"]);
        assert_eq!(
            backend[0].ready_url,
            "http://127.0.0.1:8000/api/health/ready"
        );
        assert_eq!(
            backend[1].ready_url,
            "http://127.0.0.1:8010/api/health/ready"
        );
        let user_2 = all.iter().find(|c| c.name == "user-service-2").unwrap();
        assert_eq!(user_2.url, "http://127.0.0.1:8013/user-api/");
    }

    #[test]
    fn only_a_replica_named_on_its_own_is_named_exactly() {
        let selector = Selector {
            names: vec!["backend-2".into(), "cart-service".into()],
            count: 1,
        };
        let named = |name: &str| {
            let component = catalogue(2).into_iter().find(|c| c.name == name).unwrap();
            selector.names_exactly(&component)
        };
        assert!(named("backend-2"));
        assert!(!named("backend"));
        assert!(!named("cart-service-2"));
        assert!(named("cart-service"));
    }

    #[test]
    fn a_replica_name_selects_that_replica_only() {
        let all = catalogue(3);
        let selected: Vec<&str> = all
            .iter()
            .filter(|c| c.is_named("cart-service-2"))
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(selected, ["cart-service-2"]);
        let first: Vec<&str> = all
            .iter()
            .filter(|c| c.is_named("cart-service-1"))
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(first, ["cart-service"]);
        assert!(!all.iter().any(|c| c.is_named("nginx-2")));
    }

    #[test]
    fn names_beyond_the_largest_count_or_unknown_are_refused() {
        assert!(parse_name("backend-5").is_ok());
        assert!(parse_name("cassandra-2").is_ok());
        assert!(parse_name("prometheus").is_ok());
        for bad in ["backend-6", "backend-0", "backend-x", "nginx-2", "frontend"] {
            let error = parse_name(bad).unwrap_err();
            assert!(error.contains("no component"), "{bad}: {error}");
        }
    }
}
