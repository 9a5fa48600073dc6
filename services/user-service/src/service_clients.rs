//! The shop's own services, which may get client-credentials tokens.

use shop_common::topology;
use subtle::ConstantTimeEq;

pub const KNOWN_SERVICES: [&str; 3] = [
    topology::BACKEND.name,
    topology::CART.name,
    topology::ORDER.name,
];

pub struct ServiceClients {
    secret: String,
}

impl ServiceClients {
    pub fn new(secret: String) -> Self {
        Self { secret }
    }

    /// Constant-time on the secret, so timing does not leak how much of a guess was right.
    pub fn authenticate(&self, client_id: &str, client_secret: &str) -> bool {
        let secret_matches: bool = self
            .secret
            .as_bytes()
            .ct_eq(client_secret.as_bytes())
            .into();
        secret_matches && KNOWN_SERVICES.contains(&client_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_a_known_service_and_the_secret() {
        let clients = ServiceClients::new("s3cret".into());
        assert!(clients.authenticate("order-service", "s3cret"));
        assert!(!clients.authenticate("order-service", "s3cre"));
        assert!(!clients.authenticate("alice", "s3cret"));
    }
}
