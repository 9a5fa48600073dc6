//! The products the cart service prices new lines with and checks stock against: read from
//! the backend, and kept for a short while (`PRODUCT_CACHE_TTL_MS`) so that repeated adds of
//! a hot product skip the call.
//!
//! Why a kept product cannot oversell: the figure only decides whether a cart add or a
//! quantity change is *accepted*. Nothing is reserved when a cart changes; the checkout
//! reserves stock at the backend, atomically, at its current figure, and refuses what is not
//! there. A kept figure at most lets a cart hold more than the shelf for a while, as a cart
//! filled a minute before a sale always could.
//!
//! The bound holds for any number of cart replicas: each keeps its own copies, and a copy is
//! never older than the TTL, counted from the backend's answer. A refusal is never based on
//! a kept copy: when one says the stock is short, the product is read again first, so a
//! restock is seen at once and only a product that ran out or was deleted is seen late, by
//! at most the TTL. Prices follow the same bound; the order is priced by its reservation, not
//! by the cart.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use moka::future::Cache;
use shop_common::client::{Credentials, Upstream, UpstreamError};
use shop_common::models::catalog::{GetProduct, Product};
use shop_common::{ApiError, ApiResult};
use uuid::Uuid;

/// Products kept at most: a bound on memory whatever the catalogue's size.
const MAX_PRODUCTS_KEPT: u64 = 10_000;

#[derive(Clone)]
pub struct Catalog {
    backend: Upstream,
    /// `None` when the TTL is zero: every check reads the backend.
    kept: Option<Cache<Uuid, Arc<Product>>>,
}

impl Catalog {
    pub fn new(backend: Upstream, ttl: Duration) -> Self {
        let kept = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(MAX_PRODUCTS_KEPT)
                .time_to_live(ttl)
                .build()
        });
        Self { backend, kept }
    }

    /// The product, if `acceptable` accepts it: a kept copy when there is one and it does;
    /// otherwise, and always before a refusal, the backend's current answer.
    pub async fn checked(
        &self,
        product_id: Uuid,
        acceptable: impl Fn(&Product) -> ApiResult<()>,
    ) -> ApiResult<Arc<Product>> {
        if let Some(kept) = &self.kept {
            let product = kept
                .try_get_with(product_id, self.read(product_id))
                .await
                .map_err(|err| unknown_product(product_id, (*err).clone()))?;
            if acceptable(&product).is_ok() {
                return Ok(product);
            }
        }
        let product = self.fresh(product_id).await?;
        acceptable(&product)?;
        Ok(product)
    }

    /// A read of the backend, which replaces the kept copy (or forgets it, when the product
    /// is gone).
    async fn fresh(&self, product_id: Uuid) -> ApiResult<Arc<Product>> {
        let read = self.read(product_id).await;
        if let Some(kept) = &self.kept {
            match &read {
                Ok(product) => kept.insert(product_id, product.clone()).await,
                Err(_) => kept.invalidate(&product_id).await,
            }
        }
        read.map_err(|err| unknown_product(product_id, err))
    }

    async fn read(&self, product_id: Uuid) -> Result<Arc<Product>, UpstreamError> {
        self.backend
            .call(&GetProduct { product_id }, Credentials::None)
            .await
            .map(Arc::new)
    }
}

/// The backend's 404 is the client's mistake here: a line for a product that does not exist.
fn unknown_product(product_id: Uuid, err: UpstreamError) -> ApiError {
    if err.status() == Some(StatusCode::NOT_FOUND) {
        ApiError::Unprocessable(format!("product {product_id} does not exist"))
    } else {
        err.into()
    }
}
