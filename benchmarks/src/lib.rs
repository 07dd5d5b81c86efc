//! What the benchmark binaries share: a throw-away PKI and token keys, fresh databases (and
//! PostgreSQL's own commit counter for them), the three services started in this process, and
//! the figures printed about the machine and the latencies.
//!
//! Invariants:
//! - Every call a benchmark makes is real gRPC over TLS 1.3 with a client certificate, and a
//!   user call carries a real EdDSA JWT: nothing is stubbed.
//! - Every database a benchmark creates is fresh and is dropped at the end of the run (unless
//!   asked to keep it).
//! - Percentiles are exact (nearest rank over every sample), not estimated.
#![forbid(unsafe_code)]

pub mod audit;
pub mod cluster;
pub mod compliance;
pub mod consistency;
pub mod database;
pub mod identity;
pub mod lifecycle;
pub mod machine;
pub mod stats;
pub mod system;

pub use database::{
    Backend, BenchDatabase, DatabaseArgs, ServerCounters, xact_commit, xact_commits,
};
pub use identity::{Bearer, BenchIdentity};
pub use lifecycle::{LoadOptions, LoadReport, Phase, Step, SubscriberLog};
pub use machine::{CpuTimes, Machine};
pub use stats::Samples;
pub use system::{System, SystemOptions};

/// The admin URL benchmarks use when none is given.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Installs the same tracing set-up a deployed service runs without an OTLP endpoint (spans
/// are made and trace ids propagate; nothing is exported), logging warnings and errors only.
pub fn init_telemetry() {
    let _ = tryggdel_telemetry::init(tryggdel_telemetry::LogFormat::Text, "warn");
}
