//! An upstream's replicas, each behind a circuit breaker of its own, taken in turn.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::BaseUrls;
use super::breaker::{BreakerState, CircuitBreaker};

/// One instance of an upstream.
pub(super) struct Replica {
    pub base_url: String,
    pub breaker: CircuitBreaker,
}

pub(super) struct Replicas {
    members: Vec<Replica>,
    next: AtomicUsize,
}

impl Replicas {
    pub fn new(urls: &BaseUrls, failure_threshold: u32, open_for: Duration) -> Self {
        let members = urls
            .iter()
            .map(|base_url| Replica {
                base_url: base_url.to_owned(),
                breaker: CircuitBreaker::new(failure_threshold, open_for),
            })
            .collect();
        Self {
            members,
            next: AtomicUsize::new(0),
        }
    }

    /// Every replica once, starting one further round than the previous call started: calls
    /// spread evenly, and a call that cannot use one replica moves on to the next.
    pub fn in_turn(&self) -> impl Iterator<Item = &Replica> {
        let count = self.members.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed) % count;
        (0..count).map(move |offset| &self.members[(first + offset) % count])
    }

    /// The upstream's state as its callers see it: open only while every replica's circuit
    /// is open (calls fail fast), closed while any replica's is closed.
    pub fn state(&self) -> BreakerState {
        self.members
            .iter()
            .map(|replica| replica.breaker.state())
            .min_by_key(|state| state.as_gauge())
            .unwrap_or(BreakerState::Closed)
    }
}
