//! A whole shop in this process on ephemeral loopback ports, and the tester's options to
//! reach it directly: what every test against a real shop starts from.

use loadtester::TesterOptions;
use loadtester::routes::ServicePorts;
use shop::{RunningShop, ShopConfig};

pub const ADMIN_PASSWORD: &str = "admin-test-password";

/// The shop, with logins at bcrypt cost 4 and `tune` applied last.
pub async fn start_shop(tune: impl FnOnce(&mut ShopConfig)) -> RunningShop {
    let mut config = ShopConfig::from_env().expect("default configuration parses");
    config.on_ephemeral_ports();
    config.user.bcrypt_cost = 4;
    config.user.admin_username = "admin".to_owned();
    config.user.admin_password = Some(ADMIN_PASSWORD.to_owned());
    tune(&mut config);
    shop::start(config).await.expect("the shop starts")
}

/// The tester's defaults, sent straight to `shop`'s services, its metrics on any free port.
pub fn direct_options(shop: &RunningShop) -> TesterOptions {
    let a = shop.addresses;
    let mut options = TesterOptions::defaults();
    options.direct = true;
    options.direct_ports = ServicePorts {
        backend: a.backend.port(),
        cart: a.cart.port(),
        order: a.order.port(),
        user: a.user.port(),
    };
    options.admin_password = Some(ADMIN_PASSWORD.to_owned());
    options.metrics_listen = "127.0.0.1:0".parse().unwrap();
    options
}

/// An admin's bearer token from `shop`'s user service.
pub async fn admin_token(shop: &RunningShop, http: &reqwest::Client) -> String {
    admin_token_at(shop.addresses.user, http).await
}

/// An admin's bearer token from the user service at `user`.
pub async fn admin_token_at(user: std::net::SocketAddr, http: &reqwest::Client) -> String {
    let token: serde_json::Value = http
        .post(format!("http://{user}/user-api/token"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().unwrap().to_owned()
}
