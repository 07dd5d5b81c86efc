//! One way to build and start Tryggdel. A deployed service loads a [`Config`] (a TOML file
//! plus `TRYGGDEL_…` environment variables); [`settings`] turns a `Config` into that
//! service's settings; [`SystemBuilder`] starts all three services in one process from the
//! development data directory's configuration — for `tryggdel start`, the end-to-end tests,
//! the services' test harnesses and the benchmarks alike, which differ only in the overrides
//! they ask for.
//!
//! Invariants:
//! - Every way of starting a service goes through [`settings`]: no caller builds a service's
//!   settings by hand, so what the tests run is what a deployment runs.
//! - Outside development mode, [`Config::check_mode`] refuses the development CA, token
//!   issuer and audit origin ([`development`]), SQLite and a missing directory.
//! - Development secrets are created once (mode 0600) and never overwritten.
#![forbid(unsafe_code)]

pub mod config;
pub mod console;
pub mod data_directory;
pub mod development;
mod files;
pub mod settings;
mod system;
#[cfg(feature = "testing")]
pub mod testing;
pub mod witnesses;

pub use config::Config;
pub use data_directory::DataDirectory;
pub use files::read;
pub use settings::Service;
pub use system::{
    BoundSystem, CERTIFICATES, Listeners, RunningSystem, SERVICES, SystemBuilder, SystemOptions,
    SystemSettings, start_system,
};
