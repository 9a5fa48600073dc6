//! How the thread of a whole-process fault (CPU burn, memory growth, file descriptors) knows
//! its fault is over: it expired, or it was removed and its stop flag set.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a sleeping fault thread looks at its stop flag: what it holds is released at
/// most this long after the fault is deleted. Polling keeps the stop signal the one plain
/// atomic that the CPU burn's spin loop also reads; 50 ms is far below a scrape interval.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub(super) struct Lifetime {
    until: Instant,
    stop: Arc<AtomicBool>,
}

impl Lifetime {
    pub(super) fn new(until: Instant, stop: Arc<AtomicBool>) -> Self {
        Self { until, stop }
    }

    pub(super) fn is_over(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || Instant::now() >= self.until
    }

    /// How long the fault has left to live.
    pub(super) fn remaining(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }

    /// Sleeps until `wake`, or until the fault is over if that comes first. True when the
    /// fault is still live on waking.
    pub(super) fn sleep_until(&self, wake: Instant) -> bool {
        loop {
            if self.is_over() {
                return false;
            }
            let now = Instant::now();
            if now >= wake {
                return true;
            }
            std::thread::sleep((wake - now).min(POLL_INTERVAL));
        }
    }

    /// Sleeps until the fault is over.
    pub(super) fn wait_for_end(&self) {
        // Waking at `until` finds the fault over, so this returns only then (or when stopped).
        self.sleep_until(self.until);
    }
}
