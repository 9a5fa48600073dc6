//! An upstream's replicas, each behind a circuit breaker of its own, taken in turn, those
//! that seem to be leaving last.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    /// Until when it is taken last, as [`clock`] reads: it seems to be leaving. 0 at first.
    leaving_until: AtomicU64,
}

impl Replica {
    /// The replica closed its connection after answering (it is draining before it stops),
    /// refused or dropped one (it stopped, or died), or answered 503 (it is not ready): a
    /// new call sent to it could meet it as it stops accepting, or fail, while another
    /// replica would answer.
    pub fn seems_leaving(&self) {
        let until = clock().saturating_add(LEAVING_FOR.as_nanos() as u64);
        self.leaving_until.store(until, Ordering::Relaxed);
    }

    fn is_leaving_at(&self, now: u64) -> bool {
        now < self.leaving_until.load(Ordering::Relaxed)
    }
}

/// Nanoseconds since the first call: a monotonic time an atomic can hold, so that every
/// call reads the replicas' deadlines without a lock.
fn clock() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
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
                leaving_until: AtomicU64::new(0),
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
    pub fn in_turn(&self) -> impl Iterator<Item = &Replica> + Send + '_ {
        let count = self.members.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed) % count;
        let rotation = move || (0..count).map(move |offset| (first + offset) % count);
        // Read once: a replica marked leaving during the call is neither taken twice nor
        // skipped. BaseUrls holds at most 64 replicas.
        let now = clock();
        let leaving = rotation()
            .filter(|&index| self.members[index].is_leaving_at(now))
            .fold(0u64, |mask, index| mask | 1 << index);
        let is_leaving = move |index: &usize| leaving & (1 << *index) != 0;
        rotation()
            .filter(move |index| !is_leaving(index))
            .chain(rotation().filter(is_leaving))
            .map(|index| &self.members[index])
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

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Replicas {
        let urls = "http://a,http://b,http://c".parse().unwrap();
        Replicas::new(&urls, 1, Duration::from_secs(1))
    }

    fn names<'a>(order: impl Iterator<Item = &'a Replica>) -> Vec<&'a str> {
        order.map(|replica| replica.base_url.as_str()).collect()
    }

    #[test]
    fn each_call_starts_one_further_and_takes_the_leaving_last() {
        let replicas = three();
        assert_eq!(
            names(replicas.in_turn()),
            ["http://a", "http://b", "http://c"]
        );
        assert_eq!(
            names(replicas.in_turn()),
            ["http://b", "http://c", "http://a"]
        );
        replicas.members[2].seems_leaving();
        assert_eq!(
            names(replicas.in_turn()),
            ["http://a", "http://b", "http://c"]
        );
        assert_eq!(
            names(replicas.in_turn()),
            ["http://a", "http://b", "http://c"]
        );
        assert_eq!(
            names(replicas.in_turn()),
            ["http://b", "http://a", "http://c"]
        );
    }

    #[test]
    fn a_replica_marked_leaving_during_a_call_is_taken_once() {
        let replicas = three();
        let mut order = replicas.in_turn();
        let first = order.next().unwrap();
        first.seems_leaving();
        replicas.members[1].seems_leaving();
        let rest = names(order);
        assert_eq!(rest, ["http://b", "http://c"]);
        assert_eq!(first.base_url, "http://a");
    }
}
