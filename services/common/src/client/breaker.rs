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

    /// Whether a call may go out now. In half-open state only one probe at a time may.
    pub fn try_acquire(&self) -> bool {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen {
                    probe_in_flight: true,
                };
                true
            }
            State::Open { .. } => false,
            State::HalfOpen {
                ref mut probe_in_flight,
            } => !std::mem::replace(probe_in_flight, true),
        }
    }

    pub fn record_success(&self) {
        *self.lock() = State::Closed {
            consecutive_failures: 0,
        };
    }

    pub fn record_failure(&self) {
        let mut state = self.lock();
        let failures = match *state {
            State::Closed {
                consecutive_failures,
            } => consecutive_failures + 1,
            State::HalfOpen { .. } | State::Open { .. } => self.failure_threshold,
        };
        *state = if failures >= self.failure_threshold {
            State::Open {
                until: Instant::now() + self.open_for,
            }
        } else {
            State::Closed {
                consecutive_failures: failures,
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_only() {
        let breaker = CircuitBreaker::new(3, Duration::from_secs(60));
        breaker.record_failure();
        breaker.record_failure();
        breaker.record_success();
        breaker.record_failure();
        breaker.record_failure();
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.record_failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(!breaker.try_acquire());
    }

    #[test]
    fn lets_one_probe_through_after_the_cool_down() {
        let breaker = CircuitBreaker::new(1, Duration::ZERO);
        breaker.record_failure();
        assert_eq!(
            breaker.state(),
            BreakerState::HalfOpen,
            "idle after the cool-down"
        );
        assert!(breaker.try_acquire(), "the probe goes out");
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(
            !breaker.try_acquire(),
            "a second caller waits for the probe"
        );
        breaker.record_success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.try_acquire());
    }

    #[test]
    fn a_failed_probe_opens_again() {
        let cool_down = Duration::from_millis(30);
        let breaker = CircuitBreaker::new(5, cool_down);
        for _ in 0..5 {
            breaker.record_failure();
        }
        std::thread::sleep(cool_down);
        assert!(breaker.try_acquire());
        breaker.record_failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(!breaker.try_acquire());
    }
}
