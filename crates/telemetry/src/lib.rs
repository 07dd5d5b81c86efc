//! Telemetry set up in one place: `tracing` with an env filter, human-readable or JSON lines;
//! OpenTelemetry traces (always built, so the W3C trace context crosses every gRPC hop and the
//! audit log's trace ids line up) exported over OTLP/gRPC when an endpoint is configured; and
//! OpenTelemetry metrics, exported over OTLP when configured and no-ops otherwise.
//!
//! Invariants:
//! - Nothing here decides what is logged; callers log structured fields and never tokens,
//!   keys or identity numbers.
//! - The log filter (`RUST_LOG` or the default) governs only the log lines. Spans of the
//!   `tryggdel*` crates at INFO and above always reach the trace layer, so a quieter log never
//!   breaks trace propagation.
//! - The W3C TraceContext propagator is the global one.
#![forbid(unsafe_code)]

mod propagation;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use propagation::{
    context_from_traceparent, current_context, current_trace_id, current_traceparent,
    extract_from_headers, inject_current, inject_into_metadata, link_to, set_parent,
};

/// The instrumentation scope of every span and instrument Tryggdel makes.
pub const SCOPE: &str = "tryggdel";

/// How often metrics are pushed to the collector.
const METRIC_EXPORT_INTERVAL: Duration = Duration::from_secs(15);

/// How long flushing or shutting down the exporters may take when the guard is dropped.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Set once a meter provider with an exporter is installed.
static METRICS_ENABLED: AtomicBool = AtomicBool::new(false);

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(text: &str) -> Option<LogFormat> {
        match text {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// What [`init_with`] installs.
#[derive(Clone, Debug)]
pub struct TelemetryOptions {
    pub format: LogFormat,
    /// The log filter when `RUST_LOG` is unset, e.g. `info`.
    pub filter: String,
    /// The OpenTelemetry resource's `service.name`, e.g. `tryggdel-disclosure`.
    pub service_name: String,
    /// An OTLP/gRPC collector, e.g. `http://otel-collector:4317`. None: nothing is exported
    /// (trace context still propagates; metrics are no-ops).
    pub otlp_endpoint: Option<String>,
}

/// Keeps the exporters running; flushes and shuts them down when dropped or on
/// [`TelemetryGuard::shutdown`] (prefer the latter inside an async runtime).
#[must_use = "dropping the guard shuts the exporters down"]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TelemetryGuard")
            .field("traces", &self.tracer_provider.is_some())
            .field("metrics", &self.meter_provider.is_some())
            .finish()
    }
}

impl TelemetryGuard {
    /// Exports every finished span and the current metrics now. Blocks: from async code call
    /// it through `tokio::task::spawn_blocking`.
    pub fn flush(&self) -> anyhow::Result<()> {
        if let Some(provider) = &self.tracer_provider {
            provider.force_flush().context("flushing spans")?;
        }
        if let Some(provider) = &self.meter_provider {
            provider.force_flush().context("flushing metrics")?;
        }
        Ok(())
    }

    /// Exports what is left and stops the exporters, without blocking the runtime.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let tracer_provider = self.tracer_provider.take();
        let meter_provider = self.meter_provider.take();
        tokio::task::spawn_blocking(move || shutdown_providers(tracer_provider, meter_provider))
            .await
            .context("telemetry shutdown task")?
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let tracer_provider = self.tracer_provider.take();
        let meter_provider = self.meter_provider.take();
        if tracer_provider.is_none() && meter_provider.is_none() {
            return;
        }
        let work = move || {
            if let Err(error) = shutdown_providers(tracer_provider, meter_provider) {
                eprintln!("telemetry shutdown: {error:#}");
            }
        };
        match tokio::runtime::Handle::try_current() {
            // The exporters' connections live on this runtime: keep its other workers free.
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(work);
            }
            // Blocking a current-thread runtime would stall the exports it drives.
            Ok(_) => {
                std::thread::spawn(work);
            }
            Err(_) => work(),
        }
    }
}

fn shutdown_providers(
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
) -> anyhow::Result<()> {
    let traces = tracer_provider
        .map(|provider| provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT))
        .transpose()
        .context("shutting down the span exporter");
    let metrics = meter_provider
        .map(|provider| provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT))
        .transpose()
        .context("shutting down the metric exporter");
    traces?;
    metrics?;
    Ok(())
}

/// Whether metrics are exported (a meter provider with an exporter is installed). Gauges that
/// cost a database query are only sampled then.
pub fn metrics_enabled() -> bool {
    METRICS_ENABLED.load(Ordering::Relaxed)
}

/// Installs the global subscriber with trace propagation but no export. `RUST_LOG` overrides
/// `default_filter`. Returns false when a subscriber was already installed (tests that start
/// several servers in one process).
pub fn init(format: LogFormat, default_filter: &str) -> bool {
    let provider = tracer_provider_builder("tryggdel").build();
    install(format, default_filter, provider, None).is_ok()
}

/// Installs logging (text or JSON), the trace layer, the W3C propagator and, with an OTLP
/// endpoint, span and metric export to it. With an endpoint this must run inside a Tokio
/// runtime (the gRPC exporter's channel lives on it). Fails if a global subscriber is
/// installed already.
pub fn init_with(options: TelemetryOptions) -> anyhow::Result<TelemetryGuard> {
    let mut builder = tracer_provider_builder(&options.service_name);
    let mut meter_provider = None;
    if let Some(endpoint) = options.otlp_endpoint.as_deref() {
        use opentelemetry_otlp::WithExportConfig as _;
        tokio::runtime::Handle::try_current()
            .context("OTLP export needs a Tokio runtime: call init_with inside one")?;
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .with_context(|| format!("OTLP span exporter for {endpoint}"))?;
        builder = builder.with_batch_exporter(spans);
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .with_context(|| format!("OTLP metric exporter for {endpoint}"))?;
        let reader = PeriodicReader::builder(metrics)
            .with_interval(METRIC_EXPORT_INTERVAL)
            .build();
        meter_provider = Some(
            SdkMeterProvider::builder()
                .with_resource(resource(&options.service_name))
                .with_reader(reader)
                .build(),
        );
    }
    let tracer_provider = builder.build();
    install(
        options.format,
        &options.filter,
        tracer_provider.clone(),
        meter_provider.clone(),
    )?;
    Ok(TelemetryGuard {
        tracer_provider: Some(tracer_provider),
        meter_provider,
    })
}

/// For tests: installs the global subscriber with spans going synchronously to `spans` and
/// metrics to `metrics` (on [`TelemetryGuard::flush`]). Once per process.
#[cfg(feature = "testing")]
pub fn init_for_tests(
    spans: testing::InMemorySpanExporter,
    metrics: testing::InMemoryMetricExporter,
) -> anyhow::Result<TelemetryGuard> {
    let tracer_provider = tracer_provider_builder("tryggdel-tests")
        .with_simple_exporter(spans)
        .build();
    let meter_provider = SdkMeterProvider::builder()
        .with_resource(resource("tryggdel-tests"))
        .with_reader(PeriodicReader::builder(metrics).build())
        .build();
    install(
        LogFormat::Text,
        "warn",
        tracer_provider.clone(),
        Some(meter_provider.clone()),
    )?;
    Ok(TelemetryGuard {
        tracer_provider: Some(tracer_provider),
        meter_provider: Some(meter_provider),
    })
}

/// The in-memory exporters and span data tests look at.
#[cfg(feature = "testing")]
pub mod testing {
    pub use opentelemetry::trace::{SpanKind, Status};
    pub use opentelemetry::{KeyValue, Value};
    pub use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
    pub use opentelemetry_sdk::metrics::{InMemoryMetricExporter, InMemoryMetricExporterBuilder};
    pub use opentelemetry_sdk::trace::{
        InMemorySpanExporter, InMemorySpanExporterBuilder, SpanData,
    };
}

fn resource(service_name: &str) -> Resource {
    Resource::builder()
        .with_service_name(service_name.to_owned())
        .build()
}

fn tracer_provider_builder(service_name: &str) -> opentelemetry_sdk::trace::TracerProviderBuilder {
    SdkTracerProvider::builder().with_resource(resource(service_name))
}

/// What reaches the trace layer: Tryggdel's own spans and events at INFO and above, and
/// warnings from everything else (they become span events).
fn trace_filter() -> Targets {
    Targets::new()
        .with_target("tryggdel", Level::INFO)
        .with_default(LevelFilter::WARN)
}

fn install(
    format: LogFormat,
    default_filter: &str,
    tracer_provider: SdkTracerProvider,
    meter_provider: Option<SdkMeterProvider>,
) -> anyhow::Result<()> {
    let log_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let traces = tracing_opentelemetry::layer()
        .with_tracer(tracer_provider.tracer(SCOPE))
        .with_filter(trace_filter());
    let registry = tracing_subscriber::registry().with(traces);
    match format {
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(log_filter),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_filter(log_filter),
            )
            .try_init(),
    }
    .context("a global tracing subscriber is installed already")?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(tracer_provider);
    if let Some(provider) = meter_provider {
        opentelemetry::global::set_meter_provider(provider);
        METRICS_ENABLED.store(true, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse() {
        assert_eq!(LogFormat::parse("json"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("text"), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse("xml"), None);
    }
}
