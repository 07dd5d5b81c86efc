//! Gauges that need the database (outbox depth, deliveries pending): a background task
//! samples them every few seconds while metrics are exported. Instruments come from the global
//! meter provider, so they are no-ops unless telemetry installed one.

use std::future::Future;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Gauge, Meter};

use crate::Periodic;

/// How often [`Sampler`]s measure.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);

/// Tryggdel's meter (from the global provider).
pub fn meter() -> Meter {
    opentelemetry::global::meter(tryggdel_telemetry::SCOPE)
}

/// `tryggdel.outbox.depth`: events committed but not yet relayed, by relay.
#[derive(Clone)]
pub struct OutboxDepth {
    gauge: Gauge<i64>,
}

impl OutboxDepth {
    pub fn new() -> OutboxDepth {
        OutboxDepth {
            gauge: meter()
                .i64_gauge("tryggdel.outbox.depth")
                .with_unit("{event}")
                .with_description("Outbox events not yet relayed, by relay (service.destination)")
                .build(),
        }
    }

    /// Records the depth of `relay`, e.g. `disclosure.audit`.
    pub fn record(&self, relay: &'static str, depth: i64) {
        self.gauge.record(depth, &[KeyValue::new("relay", relay)]);
    }
}

impl Default for OutboxDepth {
    fn default() -> OutboxDepth {
        OutboxDepth::new()
    }
}

/// A background task that runs `sample` now and then every `interval` until stopped; a
/// failed sample is logged and retried at the next interval.
pub struct Sampler(Periodic);

impl Sampler {
    /// Starts sampling if metrics are exported; otherwise returns None (nothing would read
    /// the values).
    pub fn start<F, Fut>(name: &'static str, interval: Duration, sample: F) -> Option<Sampler>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send,
    {
        if !tryggdel_telemetry::metrics_enabled() {
            return None;
        }
        Some(Sampler(Periodic::start(
            interval.max(Duration::from_millis(10)),
            sample,
            move |error: anyhow::Error| {
                tracing::debug!(
                    sampler = name,
                    error = format!("{error:#}"),
                    "metrics sample failed"
                );
            },
        )))
    }

    /// Stops after the sample in flight, if any.
    pub async fn stop(self) {
        self.0.stop().await;
    }
}
