//! An upstream's replicas, each behind a circuit breaker of its own, taken in turn, those
//! that seem to be leaving last.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::BaseUrls;
use super::breaker::{BreakerState, CircuitBreaker};

/// How long a replica that seems to be leaving is taken last: one that answered
/// `Connection: close` (a service answers so only while it drains before stopping,
/// `crate::shutdown`, 3 s by default), refused a connection or dropped one, or answered 503
/// (as a service starting does until its store is connected). By the end of this it has
/// stopped (a call to it is refused, and moves on) or come back.
const LEAVING_FOR: Duration = Duration::from_secs(5);

/// One instance of an upstream.
pub(super) struct Replica {
    pub base_url: String,
    pub breaker: CircuitBreaker,
    /// Until when it is taken last: it seems to be leaving.
    leaving_until: Mutex<Option<Instant>>,
}

impl Replica {
    /// The replica closed its connection after answering (it is draining before it stops),
    /// refused or dropped one (it stopped, or died), or answered 503 (it is not ready): a
    /// new call sent to it could meet it as it stops accepting, or fail, while another
    /// replica would answer.
    pub fn seems_leaving(&self) {
        *self.leaving() = Some(Instant::now() + LEAVING_FOR);
    }

    fn is_leaving(&self) -> bool {
        self.leaving().is_some_and(|until| Instant::now() < until)
    }

    fn leaving(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // The value is a plain instant: one a panicking holder left is still usable.
        self.leaving_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
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
                leaving_until: Mutex::new(None),
            })
            .collect();
        Self {
            members,
            next: AtomicUsize::new(0),
        }
    }

    /// Every replica once, starting one further round than the previous call started: calls
    /// spread evenly, and a call that cannot use one replica moves on to the next. Replicas
    /// that seem to be leaving come last, so they get a call only when no other can take
    /// it.
    pub fn in_turn(&self) -> Vec<&Replica> {
        let count = self.members.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed) % count;
        let mut order: Vec<&Replica> = (0..count)
            .map(|offset| &self.members[(first + offset) % count])
            .collect();
        // Stable: each group keeps the rotation's order.
        order.sort_by_key(|replica| replica.is_leaving());
        order
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
