//! The audit service: an append-only RFC 9162 Merkle log of everything done with disclosures,
//! with C2SP signed checkpoints, inclusion and consistency proofs, queries and exports that a
//! compliance officer verifies offline.
//!
//! Invariants:
//! - Append is for Tryggdel services only (service certificate, allow-listed by name); it is
//!   idempotent by event id, and answers only once the entries are durable.
//! - Each instance's sequencer assigns indices and commits in batches, one batch at a time
//!   across all instances of a PostgreSQL database (the log's advisory lock); the stored bytes
//!   of an entry are exactly what its leaf hash covers, and are never re-serialised.
//! - The database refuses UPDATE and DELETE on entries, the person index and checkpoints.
//! - A checkpoint is signed only for a tree consistent with the previous checkpoint; at start
//!   the stored leaves must reproduce the latest checkpoint, or the service does not start.
//! - Identity numbers never enter the log: entries carry keyed hashes (HMAC) of them.
//! - Every Query and Export is itself appended to the log before anything is returned.
//! - The stored entries are re-hashed in the background (`scrub`); an entry found changed in
//!   the database is quarantined and refused to every reader, naming its index.
//! - With witnesses configured, the checkpoint served as the latest is the latest one whose
//!   cosignatures meet the witness policy (`witnessing`), never one the witnesses did not
//!   vouch for.
#![forbid(unsafe_code)]

pub mod clearing;
pub mod entry;
pub mod log;
pub mod report;
pub mod review;
pub mod scrub;
pub mod service;
pub mod store;
pub mod witnessing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use tokio::net::TcpListener;
use tryggdel_domain::{Directory, PersonKey};
use tryggdel_merkle::checkpoint::CheckpointSigner;
use tryggdel_proto::audit::v1::audit_service_server::AuditServiceServer;
use tryggdel_proto::audit::v1::log_review_service_server::LogReviewServiceServer;
use tryggdel_service_kit::{
    Authenticator, ServerTls, ServiceHost, TokenKeys, TokenSettings, bind, now_unix_ms,
};
use tryggdel_storage::Database;

pub use log::{AuditLog, LogConfig};
pub use service::AuditApi;
pub use store::{AuditStore, MIGRATIONS};

/// The largest request the service decodes (an Append of many events).
const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// The services allowed to append by default.
pub const DEFAULT_APPENDERS: [&str; 2] = ["disclosure", "notification"];

/// Everything the service needs, already loaded (files are read by the binary).
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    /// How long any call may wait on the database.
    pub database: tryggdel_storage::DatabaseOptions,
    pub tls: ServerTls,
    pub token: TokenSettings,
    pub directory: Arc<Directory>,
    pub person_key: PersonKey,
    /// The log's origin line and checkpoint key name, e.g. `audit.tryggdel.example/log`.
    pub origin: String,
    pub signing_key: SigningKey,
    pub checkpoint_interval: Duration,
    /// Service certificate names that may append.
    pub appenders: Vec<String>,
    /// The witnesses and their policy; None: checkpoints are published unwitnessed.
    pub witnessing: Option<witnessing::WitnessingSettings>,
    /// How often, and how much at a time, the integrity scrub re-hashes stored entries.
    pub scrub: scrub::ScrubSettings,
    /// The log review's working hours, burst threshold, sample and findings limits.
    pub review: review::ReviewSettings,
    /// How subject reports are made (`[report]`).
    pub report: report::ReportSettings,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("origin", &self.origin)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("appenders", &self.appenders)
            .field("witnessing", &self.witnessing.is_some())
            .field("scrub", &self.scrub)
            .finish_non_exhaustive()
    }
}

/// Reads the log's Ed25519 signing key from PKCS#8 PEM.
pub fn signing_key_from_pem(pem: &str) -> anyhow::Result<SigningKey> {
    SigningKey::from_pkcs8_pem(pem).context("audit log signing key (expected Ed25519 PKCS#8 PEM)")
}

/// Connects the database (running migrations), opens the log and builds the handlers.
pub async fn build(settings: &Settings) -> anyhow::Result<AuditApi> {
    let database = Database::connect_with(
        &settings.database_url,
        "audit",
        &MIGRATIONS,
        settings.database,
    )
    .await
    .context("audit database")?;
    let signer = CheckpointSigner::new(settings.signing_key.clone(), settings.origin.clone())
        .context("checkpoint signer")?;
    let log = AuditLog::open(
        AuditStore::new(database),
        LogConfig {
            signer: Arc::new(signer),
            checkpoint_interval: settings.checkpoint_interval,
            // A step of the log on the database, and a caller's wait for its append, take
            // no longer than any call on the database may.
            write_deadline: settings.database.deadline,
        },
    )
    .await?;
    register_metrics(log.probe());
    let keys = TokenKeys::load(&settings.token)
        .await
        .context("token keys")?;
    let witnessing = match &settings.witnessing {
        Some(witnessing) => {
            let witnessing = Arc::new(
                witnessing::Witnessing::new(witnessing, log.verifier())
                    .context("the audit log's witnesses")?,
            );
            witnessing::register_metrics(&witnessing);
            witnessing.start(log.clone());
            Some(witnessing)
        }
        None => None,
    };
    Ok(AuditApi::new(
        log,
        Authenticator::new(Arc::new(keys), settings.directory.clone()),
        settings.person_key.clone(),
        settings.appenders.clone(),
    )
    .with_witnessing(witnessing)
    .with_report(settings.report.clone()))
}

/// `tryggdel.audit.tree_size` (durable entries) and `tryggdel.audit.checkpoint_age` (seconds
/// since the latest checkpoint was signed; it grows while the log is idle, as a checkpoint is
/// signed only when the log has grown), observed at each metrics export while the log runs.
fn register_metrics(probe: log::LogProbe) {
    let meter = tryggdel_service_kit::metrics::meter();
    let size = probe.clone();
    meter
        .u64_observable_gauge("tryggdel.audit.tree_size")
        .with_unit("{entry}")
        .with_description("Entries durable in the audit log")
        .with_callback(move |observer| {
            if let Some(tree_size) = size.tree_size() {
                observer.observe(tree_size, &[]);
            }
        })
        .build();
    meter
        .f64_observable_gauge("tryggdel.audit.checkpoint_age")
        .with_unit("s")
        .with_description("Seconds since the latest checkpoint was signed")
        .with_callback(move |observer| {
            if let Some(signed_at) = probe.checkpoint_signed_at() {
                let age_ms = now_unix_ms().saturating_sub(signed_at).max(0);
                // Millisecond counts fit an f64 exactly for millennia.
                observer.observe(age_ms as f64 / 1000.0, &[]);
            }
        })
        .build();
}

/// The gRPC routes of the service.
pub fn routes(api: AuditApi, review: review::ReviewSettings) -> tonic::service::Routes {
    tonic::service::Routes::new(
        AuditServiceServer::new(api.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES),
    )
    .add_service(LogReviewServiceServer::new(review::ReviewApi::new(
        api.log().clone(),
        api.authenticator().clone(),
        review,
    )))
    .add_service(report::server(api))
}

/// A service started in the background.
pub struct RunningService {
    pub local_addr: SocketAddr,
    pub api: AuditApi,
    host: ServiceHost,
}

impl RunningService {
    /// Stops accepting, lets in-flight calls finish, then closes the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        if let Some(witnessing) = self.api.witnessing() {
            witnessing.stop();
        }
        self.host.stop().await
    }
}

/// Builds and starts the service on `address` (port 0 for any free port).
pub async fn spawn(settings: &Settings, address: SocketAddr) -> anyhow::Result<RunningService> {
    spawn_on(settings, bind(address, "audit").await?).await
}

/// Builds and starts the service on an already bound listener.
pub async fn spawn_on(
    settings: &Settings,
    listener: TcpListener,
) -> anyhow::Result<RunningService> {
    let api = build(settings).await?;
    let mut host = ServiceHost::start(
        "tryggdel.audit.v1.AuditService",
        routes(api.clone(), settings.review),
        &settings.tls,
        listener,
        api.log().store().database().clone(),
    )?;
    // The integrity scrub: a pass at once from where the last one ended, then in batches.
    host.run(api.integrity().start(settings.scrub));
    Ok(RunningService {
        local_addr: host.local_addr,
        api,
        host,
    })
}
