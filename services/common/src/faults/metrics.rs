//! `shop_faults_active{kind}` (read when Prometheus scrapes, so expiry shows without a
//! request) and `shop_faults_injected_total{kind}`.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use super::{FaultKind, Faults};

#[derive(Clone)]
pub(super) struct FaultMetrics {
    active: IntGaugeVec,
    injected: IntCounterVec,
}

impl FaultMetrics {
    pub(super) fn new() -> Self {
        let metrics = Self {
            active: IntGaugeVec::new(
                Opts::new("shop_faults_active", "Injected faults active now, by kind."),
                &["kind"],
            )
            .expect("the metric definition is valid"),
            injected: IntCounterVec::new(
                Opts::new(
                    "shop_faults_injected_total",
                    "Times an injected fault fired (once per CPU burn), by kind.",
                ),
                &["kind"],
            )
            .expect("the metric definition is valid"),
        };
        for kind in FaultKind::ALL {
            metrics.active.with_label_values(&[kind.as_str()]);
            metrics.injected.with_label_values(&[kind.as_str()]);
        }
        metrics
    }

    pub(super) fn register(&self, registry: &Registry, faults: &Faults) {
        registry
            .register(Box::new(Scraped {
                metrics: self.clone(),
                faults: faults.clone(),
            }))
            .expect("the fault metrics are registered once per service");
    }

    pub(super) fn injected(&self, kind: FaultKind) {
        self.injected.with_label_values(&[kind.as_str()]).inc();
    }
}

struct Scraped {
    metrics: FaultMetrics,
    faults: Faults,
}

impl Collector for Scraped {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.metrics.active.desc();
        descs.extend(self.metrics.injected.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        for (kind, count) in self.faults.active_by_kind() {
            self.metrics
                .active
                .with_label_values(&[kind.as_str()])
                .set(count);
        }
        let mut families = self.metrics.active.collect();
        families.extend(self.metrics.injected.collect());
        families
    }
}
