//! The whole shop in one process: the four services on their own ports, talking to each
//! other over loopback exactly as separate processes would.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use shop_common::background::Background;
use shop_common::client::BaseUrls;
use shop_common::shutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The four services' configurations, each read from the same flags and environment
/// variables its own binary reads.
#[derive(Debug, Clone)]
pub struct ShopConfig {
    pub backend: backend::Config,
    pub user: user_service::Config,
    pub cart: cart_service::Config,
    pub order: order_service::Config,
}

impl ShopConfig {
    /// Reads the configuration; without `SERVICE_CLIENT_SECRET` (or its file) the services
    /// share a secret generated now, as nothing outside this process needs to know it, and
    /// without `ADMIN_PASSWORD` the admin keeps the development password.
    pub fn from_env() -> anyhow::Result<Self> {
        let mut config = Self {
            backend: backend::Config::try_parse_from(["backend"])?,
            user: user_service::Config::try_parse_from(["user-service"])?,
            cart: cart_service::Config::try_parse_from(["cart-service"])?,
            order: order_service::Config::try_parse_from(["order-service"])?,
        };
        let auth = &config.user.auth;
        if auth.service_client_secret.is_none() && auth.service_client_secret_file.is_none() {
            config.set_service_client_secret(&shop_common::config::generate_secret()?);
        }
        // A development tool on loopback: the README's admin login works with no set-up.
        config.user.development_admin = true;
        Ok(config)
    }

    /// Every service on loopback at a port the system picks: how tests run a whole shop
    /// beside others.
    pub fn on_ephemeral_ports(&mut self) {
        let any_port = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
        self.backend.listen = any_port;
        self.user.listen = any_port;
        self.cart.listen = any_port;
        self.order.listen = any_port;
    }

    /// The secret all four services present and accept.
    pub fn set_service_client_secret(&mut self, secret: &str) {
        for auth in [
            &mut self.backend.auth,
            &mut self.user.auth,
            &mut self.cart.auth,
            &mut self.order.auth,
        ] {
            auth.set_client_secret(secret);
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    pub backend: SocketAddr,
    pub user: SocketAddr,
    pub cart: SocketAddr,
    pub order: SocketAddr,
}

pub struct RunningShop {
    pub addresses: Addresses,
    shutdown: CancellationToken,
    servers: JoinSet<std::io::Result<()>>,
    background: Background,
}

/// Binds all four ports first, so that each service can be told where the others really are
/// (port 0 in tests becomes a real port here), then starts them.
pub async fn start(mut config: ShopConfig) -> anyhow::Result<RunningShop> {
    let backend_listener = bind(config.backend.listen, "backend").await?;
    let user_listener = bind(config.user.listen, "user service").await?;
    let cart_listener = bind(config.cart.listen, "cart service").await?;
    let order_listener = bind(config.order.listen, "order service").await?;
    let addresses = Addresses {
        backend: backend_listener.local_addr()?,
        user: user_listener.local_addr()?,
        cart: cart_listener.local_addr()?,
        order: order_listener.local_addr()?,
    };
    point_at_each_other(&mut config, &addresses);

    let shutdown = CancellationToken::new();
    let background = Background::default();
    let routers = [
        (
            backend_listener,
            backend::app(&config.backend, &background).await?,
        ),
        (user_listener, user_service::app(&config.user).await?),
        (cart_listener, cart_service::app(&config.cart).await?),
        (
            order_listener,
            order_service::app(&config.order, &background).await?,
        ),
    ];
    let mut servers = JoinSet::new();
    for (listener, router) in routers {
        let stop = shutdown.clone();
        // One process on loopback, with no balancer or replicas to drain traffic to.
        let stop = async move { stop.cancelled().await };
        servers.spawn(shutdown::serve(listener, router, stop, Duration::ZERO));
    }
    tracing::info!(
        backend = %addresses.backend,
        user = %addresses.user,
        cart = %addresses.cart,
        order = %addresses.order,
        "shop listening"
    );
    Ok(RunningShop {
        addresses,
        shutdown,
        servers,
        background,
    })
}

fn point_at_each_other(config: &mut ShopConfig, addresses: &Addresses) {
    let url = |addr: SocketAddr| BaseUrls::single(format!("http://{addr}"));
    let user_url = url(addresses.user);
    for auth in [
        &mut config.backend.auth,
        &mut config.user.auth,
        &mut config.cart.auth,
        &mut config.order.auth,
    ] {
        auth.user_service_url.clone_from(&user_url);
    }
    config.user.cart_service_url = url(addresses.cart);
    config.user.order_service_url = url(addresses.order);
    config.cart.backend_url = url(addresses.backend);
    config.cart.order_service_url = url(addresses.order);
    config.order.backend_url = url(addresses.backend);
}

async fn bind(address: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("the {what} cannot listen on {address}"))
}

impl RunningShop {
    /// Stops accepting, lets in-flight requests finish, and waits for every server and
    /// for the background work to finish what it was doing.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        while let Some(result) = self.servers.join_next().await {
            result??;
        }
        self.background.stop().await;
        Ok(())
    }

    /// Runs until `signal` resolves or a server fails, then shuts down.
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::select! {
            () = signal => {}
            Some(result) = self.servers.join_next() => {
                result??;
                anyhow::bail!("a service stopped unexpectedly");
            }
        }
        self.shutdown().await
    }
}
