//! A per-upstream circuit breaker: after enough consecutive failures, calls fail fast for a
//! while instead of piling up on a dependency that is down; then one probe decides.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    HalfOpen,
    Open,
}

impl BreakerState {
    /// The value of the `circuit_breaker_state` gauge.
    pub fn as_gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

#[derive(Debug)]
enum State {
    Closed { consecutive_failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_in_flight: bool },
}

#[derive(Debug)]
pub struct CircuitBreaker {
    state: Mutex<State>,
    failure_threshold: u32,
    open_for: Duration,
}

impl CircuitBreaker {
    pub fn new(failure_threshold: u32, open_for: Duration) -> Self {
        Self {
            state: Mutex::new(State::Closed {
                consecutive_failures: 0,
            }),
            failure_threshold: failure_threshold.max(1),
            open_for,
        }
    }

    /// A permit to call now, or `None` while the circuit is open. In half-open state only one
    /// probe at a time gets one. The permit records the call's outcome; a probe whose permit is
    /// dropped unresolved (its caller gave up: a deadline, a disconnect) counts as failed, or
    /// no later call would ever be let through.
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen {
                    probe_in_flight: true,
                };
                true
            }
            State::Open { .. } => return None,
            State::HalfOpen {
                ref mut probe_in_flight,
            } => {
                if std::mem::replace(probe_in_flight, true) {
                    return None;
                }
                true
            }
        };
        Some(Permit {
            breaker: self,
            probe,
            resolved: false,
        })
    }

    fn record_success(&self) {
        *self.lock() = State::Closed {
            consecutive_failures: 0,
        };
    }

    fn record_failure(&self) {
        let mut state = self.lock();
        let failures = match *state {
            State::Closed {
                consecutive_failures,
            } => consecutive_failures + 1,
            State::HalfOpen { .. } | State::Open { .. } => self.failure_threshold,
        };
        *state = if failures >= self.failure_threshold {
            self.open_now()
        } else {
            State::Closed {
                consecutive_failures: failures,
            }
        };
    }

    /// The probe's caller gave up. The upstream may be as slow as it was down, so this counts
    /// as a failed probe: open again, and after the cool-down another probe goes. Only while
    /// the circuit still waits for that probe: a call that ended meanwhile has decided.
    fn abandon_probe(&self) {
        let mut state = self.lock();
        if let State::HalfOpen { .. } = *state {
            *state = self.open_now();
        }
    }

    fn open_now(&self) -> State {
        State::Open {
            until: Instant::now() + self.open_for,
        }
    }

    /// An open breaker whose cool-down has passed reports half-open: the next call is the
    /// probe, so readiness and the gauge do not stay "open" on an idle service.
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
            State::Open { until } if Instant::now() >= until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Leave for one call. Resolve it with [`Permit::succeeded`] or [`Permit::failed`].
#[must_use = "a permit records the call's outcome"]
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    resolved: bool,
}

impl Permit<'_> {
    pub fn succeeded(mut self) {
        self.resolved = true;
        self.breaker.record_success();
    }

    pub fn failed(mut self) {
        self.resolved = true;
        self.breaker.record_failure();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // A call cut off in closed state proves nothing about the upstream, but the half-open
        // probe is the only call that can close the circuit: it must not vanish unresolved.
        if self.probe && !self.resolved {
            self.breaker.abandon_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(breaker: &CircuitBreaker) {
        breaker.try_acquire().expect("a call may go out").failed();
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let breaker = CircuitBreaker::new(3, Duration::from_secs(60));
        fail(&breaker);
        fail(&breaker);
        breaker.try_acquire().unwrap().succeeded();
        fail(&breaker);
        fail(&breaker);
        assert_eq!(breaker.state(), BreakerState::Closed);
        fail(&breaker);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(breaker.try_acquire().is_none());
    }

    #[test]
    fn lets_one_probe_through_after_the_cool_down() {
        let breaker = CircuitBreaker::new(1, Duration::ZERO);
        fail(&breaker);
        assert_eq!(
            breaker.state(),
            BreakerState::HalfOpen,
            "idle after the cool-down"
        );
        let probe = breaker.try_acquire().expect("the probe goes out");
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(
            breaker.try_acquire().is_none(),
            "a second caller waits for the probe"
        );
        probe.succeeded();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.try_acquire().is_some());
    }

    #[test]
    fn a_failed_probe_opens_again() {
        let cool_down = Duration::from_millis(30);
        let breaker = CircuitBreaker::new(5, cool_down);
        for _ in 0..5 {
            fail(&breaker);
        }
        std::thread::sleep(cool_down);
        fail(&breaker);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(breaker.try_acquire().is_none());
    }

    #[test]
    fn a_dropped_probe_opens_again_and_a_new_probe_follows() {
        let cool_down = Duration::from_millis(30);
        let breaker = CircuitBreaker::new(1, cool_down);
        fail(&breaker);
        std::thread::sleep(cool_down);
        drop(breaker.try_acquire().expect("the probe goes out"));
        assert_eq!(breaker.state(), BreakerState::Open, "for another cool-down");
        assert!(breaker.try_acquire().is_none());
        std::thread::sleep(cool_down);
        breaker.try_acquire().expect("a new probe").succeeded();
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn a_call_dropped_while_closed_changes_nothing() {
        let breaker = CircuitBreaker::new(1, Duration::from_secs(60));
        drop(breaker.try_acquire());
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.try_acquire().is_some());
    }
}
