//! Takes back the stock of reservations that expired without an order: a checkout cut off
//! between reserving and committing (a dropped request, a crashed order service) would
//! otherwise hold its units for ever. Every instance sweeps; the stores make a reservation's
//! release happen once however many try.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::metrics::BackendMetrics;
use crate::store::ProductStore;

/// How long reservations live and how often expired ones are looked for.
#[derive(Debug, Clone, Copy)]
pub struct ReservationSettings {
    pub ttl: Duration,
    pub sweep_interval: Duration,
}

impl ReservationSettings {
    /// How late past its expiry a reservation may still legitimately hold stock: the CQL
    /// sweeper reads expiries a whole minute at a time, after the minute is over, and sweeps
    /// every `sweep_interval`.
    pub fn sweep_grace(&self) -> Duration {
        Duration::from_secs(60) + 2 * self.sweep_interval
    }
}

/// Sweeps every `sweep_interval` until `shutdown` is cancelled.
pub async fn run(
    store: Arc<dyn ProductStore>,
    settings: ReservationSettings,
    metrics: BackendMetrics,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(settings.sweep_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => sweep(store.as_ref(), &metrics).await,
        }
    }
}

async fn sweep(store: &dyn ProductStore, metrics: &BackendMetrics) {
    match store.reclaim_expired(Utc::now()).await {
        Ok(reclaimed) => {
            for state in reclaimed {
                tracing::warn!(
                    state = state.as_str(),
                    "an expired reservation's stock was taken back"
                );
                metrics.reclaimed(state);
            }
        }
        Err(err) => tracing::warn!(error = %err, "expired reservations not swept; will retry"),
    }
}
