//! What the user service counts beyond HTTP: registrations and logins by outcome.

use prometheus::{IntCounter, IntCounterVec, Registry};
use shop_common::telemetry::metrics::{counter, counter_vec};

#[derive(Clone)]
pub struct UserMetrics {
    registrations: IntCounter,
    logins: IntCounterVec,
}

#[derive(Debug, Clone, Copy)]
pub enum LoginOutcome {
    Success,
    InvalidCredentials,
    InvalidRequest,
}

impl LoginOutcome {
    const ALL: [Self; 3] = [
        Self::Success,
        Self::InvalidCredentials,
        Self::InvalidRequest,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidRequest => "invalid_request",
        }
    }
}

impl UserMetrics {
    pub fn new(registry: &Registry) -> Self {
        let metrics = Self {
            registrations: counter(
                registry,
                "shop_user_registrations_total",
                "Accounts registered.",
            ),
            logins: counter_vec(
                registry,
                "shop_logins_total",
                "Password logins, by outcome.",
                &["outcome"],
            ),
        };
        // Every series exists from the start, so the first event shows up in rate().
        for outcome in LoginOutcome::ALL {
            metrics.logins.with_label_values(&[outcome.label()]);
        }
        metrics
    }

    pub fn registered(&self) {
        self.registrations.inc();
    }

    pub fn login(&self, outcome: LoginOutcome) {
        self.logins.with_label_values(&[outcome.label()]).inc();
    }
}
