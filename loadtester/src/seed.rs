//! Before the load starts: log in as admin and make sure the catalogue the journeys need is
//! there, whatever earlier runs left behind. Products are found by their `loadtest:` name
//! prefix; missing ones are created and low stock is topped up.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::routes::Routes;

/// Every product the tester owns is named with this prefix.
pub const PREFIX: &str = "loadtest:";
/// The regular catalogue's stock is topped up to this before a run.
pub const CATALOGUE_STOCK: i64 = 1_000_000;
/// The password of the accounts the credential stuffer attacks.
pub const VICTIM_PASSWORD: &str = "victim-password-not-guessed";
pub const VICTIMS: usize = 3;
/// How often a seeding request is sent while its answer says to try again, backing off a
/// little longer each time (7 s in all, well past the gateway's 2 s burst of logins).
const ATTEMPTS: u32 = 8;
const BACKOFF: Duration = Duration::from_millis(250);

const CATEGORIES: &[(&str, &[&str])] = &[
    (
        "kitchen",
        &[
            "Ceramic Mug",
            "Chef Knife",
            "Cast Iron Pan",
            "Tea Kettle",
            "Bamboo Board",
        ],
    ),
    (
        "outdoor",
        &[
            "Trail Backpack",
            "Water Bottle",
            "Camping Lantern",
            "Rain Jacket",
            "Hiking Poles",
        ],
    ),
    (
        "office",
        &[
            "Notebook",
            "Fountain Pen",
            "Desk Lamp",
            "Monitor Stand",
            "Sticky Notes",
        ],
    ),
    (
        "audio",
        &[
            "Headphones",
            "Bluetooth Speaker",
            "Turntable",
            "Earbuds",
            "Microphone",
        ],
    ),
    (
        "garden",
        &[
            "Watering Can",
            "Pruning Shears",
            "Seed Kit",
            "Plant Pot",
            "Garden Gloves",
        ],
    ),
    (
        "toys",
        &["Puzzle 1000", "Wooden Train", "Kite", "Board Game", "Yo-yo"],
    ),
];
const FLASH_NAME: &str = "loadtest:flash Limited Edition Sneakers";
const FLASH_PRICE_CENTS: i64 = 4_999;

#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: Uuid,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub category: String,
    pub price_cents: i64,
    pub stock: i64,
}

/// What the journeys buy: the regular catalogue and the scarce flash-sale product.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub products: Vec<Product>,
    pub flash: Product,
    pub victims: Vec<String>,
}

impl Catalogue {
    pub fn price_of(&self, id: Uuid) -> Option<i64> {
        self.products
            .iter()
            .chain(std::iter::once(&self.flash))
            .find(|p| p.id == id)
            .map(|p| p.price_cents)
    }

    pub fn pick(&self) -> &Product {
        &self.products[fastrand::usize(..self.products.len())]
    }
}

/// The products the catalogue should hold: (name, category, price).
fn wanted() -> Vec<(String, &'static str, i64)> {
    let mut products = Vec::new();
    for (c, (category, names)) in CATEGORIES.iter().enumerate() {
        for (n, name) in names.iter().enumerate() {
            // Deterministic, realistic-looking prices: 4.99 to 149.99.
            let price = 499 + ((c * 7 + n * 13) as i64 % 30) * 500;
            products.push((format!("{PREFIX}{category} {name}"), *category, price));
        }
    }
    products
}

/// Sends the request `build` makes until its status is none of `again` or [`ATTEMPTS`]
/// run out, and returns the last response.
async fn send_until_settled(
    build: impl Fn() -> reqwest::RequestBuilder,
    again: &[StatusCode],
) -> reqwest::Result<reqwest::Response> {
    let mut attempt = 1;
    loop {
        let response = build().send().await?;
        if !again.contains(&response.status()) || attempt == ATTEMPTS {
            return Ok(response);
        }
        tokio::time::sleep(BACKOFF * attempt).await;
        attempt += 1;
    }
}

pub struct Seeder<'a> {
    pub http: reqwest::Client,
    pub routes: &'a Routes,
}

impl Seeder<'_> {
    /// Logs in as admin. The gateway limits logins per address, and the run before this one
    /// (a credential stuffer, say) may have used the allowance up: a 429 is waited out, as
    /// a real client would, before the login counts as failed.
    pub async fn admin_token(&self, username: &str, password: &str) -> anyhow::Result<String> {
        let url = self.routes.url("/user-api/token");
        let response = send_until_settled(
            || {
                self.http
                    .post(&url)
                    .form(&[("username", username), ("password", password)])
            },
            &[StatusCode::TOO_MANY_REQUESTS],
        )
        .await
        .with_context(|| format!("cannot reach the user service at {url}"))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if status == StatusCode::TOO_MANY_REQUESTS {
            bail!(
                "the admin login as {username:?} was still refused with {status} after \
                 {ATTEMPTS} tries: {body}; the gateway limits logins per address"
            );
        }
        if !status.is_success() {
            bail!(
                "the admin login as {username:?} failed with {status}: {body}; \
                 set --admin-username/--admin-password (LOADTEST_ADMIN_PASSWORD or ADMIN_PASSWORD)"
            );
        }
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("the token response has no access_token")
    }

    async fn all_products(&self) -> anyhow::Result<Vec<Product>> {
        let mut products = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}?limit=100", self.routes.url("/api/products/"));
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let response = self.http.get(&url).send().await?.error_for_status()?;
            cursor = response
                .headers()
                .get("x-next-cursor")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let page: Vec<Product> = response.json().await?;
            products.extend(page);
            if cursor.is_none() {
                return Ok(products);
            }
        }
    }

    async fn create(
        &self,
        token: &str,
        name: &str,
        category: &str,
        price: i64,
        stock: i64,
    ) -> anyhow::Result<Product> {
        let response = self
            .http
            .post(self.routes.url("/api/products/"))
            .bearer_auth(token)
            .json(&json!({
                "name": name,
                "category": category,
                "description": format!("Seeded by the load tester ({category})."),
                "price_cents": price,
                "stock": stock,
            }))
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            bail!(
                "creating {name:?} failed with {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        Ok(response.json().await?)
    }

    async fn set_stock(
        &self,
        token: &str,
        product: &mut Product,
        stock: i64,
    ) -> anyhow::Result<()> {
        let response = self
            .http
            .put(self.routes.url(&format!("/api/products/{}", product.id)))
            .bearer_auth(token)
            .json(&json!({ "stock": stock }))
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            bail!("restocking {:?} failed with {status}", product.name);
        }
        *product = response.json().await?;
        Ok(())
    }

    /// Makes the catalogue complete and stocked; the flash-sale product gets exactly
    /// `flash_stock` units, so every run races for the same scarcity.
    pub async fn seed(&self, token: &str, flash_stock: i64) -> anyhow::Result<Catalogue> {
        let existing: HashMap<String, Product> = self
            .all_products()
            .await?
            .into_iter()
            .filter(|p| p.name.starts_with(PREFIX))
            .map(|p| (p.name.clone(), p))
            .collect();
        let mut products = Vec::new();
        for (name, category, price) in wanted() {
            let mut product = match existing.get(&name) {
                Some(product) => product.clone(),
                None => {
                    self.create(token, &name, category, price, CATALOGUE_STOCK)
                        .await?
                }
            };
            if product.stock < CATALOGUE_STOCK / 2 {
                self.set_stock(token, &mut product, CATALOGUE_STOCK).await?;
            }
            products.push(product);
        }
        let mut flash = match existing.get(FLASH_NAME) {
            Some(product) => product.clone(),
            None => {
                self.create(
                    token,
                    FLASH_NAME,
                    "flash-sale",
                    FLASH_PRICE_CENTS,
                    flash_stock,
                )
                .await?
            }
        };
        if flash.stock != flash_stock {
            self.set_stock(token, &mut flash, flash_stock).await?;
        }
        let mut victims = Vec::new();
        for i in 0..VICTIMS {
            let username = format!("loadtest-victim-{i}");
            let body = json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "password": VICTIM_PASSWORD,
            });
            // Workers seeding at once race for the same names; the loser's lightweight
            // transaction may time out (503) before it can see the winner's row, and a
            // second try finds it (409). A registration is safe to send again.
            let response = send_until_settled(
                || {
                    self.http
                        .post(self.routes.url("/user-api/users/register"))
                        .json(&body)
                },
                &[StatusCode::SERVICE_UNAVAILABLE, StatusCode::GATEWAY_TIMEOUT],
            )
            .await?;
            // 409: registered by an earlier run.
            if !(response.status().is_success() || response.status().as_u16() == 409) {
                bail!("registering {username} failed with {}", response.status());
            }
            victims.push(username);
        }
        Ok(Catalogue {
            products,
            flash,
            victims,
        })
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A server answering each request on a new connection with the next of `statuses`.
    async fn answering(statuses: &'static [u16]) -> (String, tokio::task::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let mut served = 0;
            for status in statuses {
                let Ok((mut stream, _)) = listener.accept().await else {
                    break;
                };
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                served += 1;
            }
            served
        });
        (url, server)
    }

    #[tokio::test]
    async fn a_request_answered_again_later_is_sent_until_it_settles() {
        let (url, server) = answering(&[503, 504, 409]).await;
        let http = reqwest::Client::new();
        let again = [StatusCode::SERVICE_UNAVAILABLE, StatusCode::GATEWAY_TIMEOUT];
        let response = send_until_settled(|| http.post(&url), &again)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(server.await.unwrap(), 3);
    }

    #[tokio::test]
    async fn any_other_answer_is_returned_at_once() {
        let (url, server) = answering(&[500, 201]).await;
        let http = reqwest::Client::new();
        let response = send_until_settled(|| http.post(&url), &[StatusCode::SERVICE_UNAVAILABLE])
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        server.abort();
    }
}
