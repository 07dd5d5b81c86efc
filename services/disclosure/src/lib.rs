//! The disclosure service: caseworkers draft disclosures to the police and capture their legal
//! basis; decision makers with the delegation approve or reject them (never the drafter).
//!
//! Invariants:
//! - Every RPC is authenticated twice: a client certificate from the deployment's CA (TLS 1.3,
//!   enforced by the listener) and a verified JWT whose organisation matches the certificate.
//! - Authorisation is deny by default; a caller who may not see a disclosure is told it does
//!   not exist.
//! - Lifecycle transitions come only from `tryggdel_domain::transition`; this crate persists
//!   their results under optimistic versions, each written together with its outbox events
//!   or not at all (`tryggdel_storage::write`).
//! - Every outbox event reaches the audit log exactly once in effect (the relay retries; the
//!   log dedupes by event id). Events carry keyed hashes of identity numbers, never the numbers.
//! - Personal data is sealed at rest; protected details are masked unless revealed to the
//!   drafter or a decision maker of the case. A reveal, and any read by a compliance officer,
//!   is in the audit log before the data is returned: if the log cannot be reached, the read
//!   fails.
//!
//! Code map (no module imports one that imports it back):
//! - `grpc`: the thin `DisclosureService` adapter; each RPC authenticates and calls a handler.
//! - `drafts`, `decisions`, `reads`, `receipts`: the handlers, by who calls them.
//! - `api`: `DisclosureApi` and the steps handlers share (load, assess, save, view).
//! - `policy`: who may do what; `checks`: the request fields every handler checks alike.
//! - `wire`: proto ↔ record mapping and page tokens; `sealing`: personal data at rest;
//!   `events`: outbox events and audited reads; `content`: draft validation.
//! - `store`: typed records at the database's edge, the outbox payload (and the audit event it
//!   becomes), and every write path with its outbox event; `delivery`: the hand-over to the
//!   police, the destination of one of the outbox relays (the audit log's is from
//!   `tryggdel_service_kit`); `recall`: the relay of withdrawals after delivery to the police.
//! - `expiry`: the background task that warns the authors of untouched drafts and submitted
//!   disclosures, then expires them and erases their content.
//! - `requests`: requests for information from law-enforcement authorities (send, read, list,
//!   refuse; answered by an approved disclosure naming them) and their deadline escalation.
#![forbid(unsafe_code)]

mod api;
mod checks;
pub mod clearing;
pub mod content;
mod decisions;
pub mod delegations;
pub mod delivery;
mod drafts;
mod events;
pub mod expiry;
mod grpc;
pub mod holds;
mod policy;
mod reads;
pub mod recall;
mod receipts;
pub mod requests;
mod sealing;
mod statistics;
pub mod store;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tryggdel_domain::{LegalRegistry, PersonKey};
use tryggdel_proto::disclosure::v1::disclosure_service_server::DisclosureServiceServer;
use tryggdel_service_kit::metrics::{OutboxDepth, SAMPLE_INTERVAL, Sampler};
use tryggdel_service_kit::{
    AuditDestination, AuditLink, Authenticator, ServiceEndpoint, ServiceHost, TokenKeys,
    TokenSettings, bind, start_relay,
};
use tryggdel_storage::{Database, FieldCipher, FieldKey};

pub use api::DisclosureApi;
pub use delivery::{NotificationLink, ToPolice};
pub use expiry::{Expiry, ExpiryError, start_expiry_checker};
pub use recall::RecallsToPolice;
pub use requests::{RequestDeadlines, RequestDeadlinesError, start_request_deadline_checker};
pub use statistics::SUPPRESSION_THRESHOLD;
pub use store::{DisclosureStore, MIGRATIONS};
pub use tryggdel_domain::{DEVELOPMENT_DIRECTORY, Directory};
pub use tryggdel_service_kit::{ClientTls, Relay, RelayConfig, ServerTls};

/// The largest request the service decodes.
const MAX_MESSAGE_BYTES: usize = 512 * 1024;

/// Everything the service needs, already loaded (files are read by the binary).
#[derive(Debug)]
pub struct Settings {
    pub database_url: String,
    /// How long any call may wait on the database.
    pub database: tryggdel_storage::DatabaseOptions,
    pub tls: ServerTls,
    pub token: TokenSettings,
    pub field_key: FieldKey,
    pub person_key: PersonKey,
    pub registry: Arc<LegalRegistry>,
    pub directory: Arc<Directory>,
    pub audit: ServiceEndpoint,
    pub notification: ServiceEndpoint,
    /// The notification service's receipt key; receipts must verify with it.
    pub receipt_key: ed25519_dalek::VerifyingKey,
    pub relay: RelayConfig,
    /// When untouched drafts and submitted disclosures expire ([`Expiry::default`]).
    pub expiry: Expiry,
    /// How open requests for information past their deadline escalate
    /// ([`RequestDeadlines::default`]).
    pub request_deadlines: RequestDeadlines,
    /// The longest a hold may last, in days (`[disclosure] hold_max_days`).
    pub hold_max_days: u32,
    /// How long organisations keep disclosures before clearing (`[disclosure.clearing]`).
    pub clearing_retention: clearing::ClearingRetention,
}

/// Connects the database (running migrations, and giving outbox events written before the
/// outbox kept audit events theirs) and builds the handlers.
pub async fn build(settings: &Settings) -> anyhow::Result<DisclosureApi> {
    let database = Database::connect_with(
        &settings.database_url,
        "disclosure",
        &MIGRATIONS,
        settings.database,
    )
    .await
    .context("disclosure database")?;
    let filled = store::fill_in_audit_events(&database)
        .await
        .context("filling in the audit events of earlier outbox events")?;
    if filled > 0 {
        tracing::info!(
            events = filled,
            "audit events of earlier outbox events filled in"
        );
    }
    let store = DisclosureStore::new(database);
    let seeded = delegations::seed_delegations(&store, &settings.directory, &settings.registry)
        .await
        .context("seeding delegations from the directory")?;
    if seeded > 0 {
        tracing::info!(
            delegations = seeded,
            "delegations seeded from the directory"
        );
    }
    let keys = TokenKeys::load(&settings.token)
        .await
        .context("token keys")?;
    let api = DisclosureApi::new(
        store,
        settings.registry.clone(),
        Authenticator::new(Arc::new(keys), settings.directory.clone()),
        FieldCipher::new(&settings.field_key),
        settings.person_key.clone(),
        AuditLink::new(&settings.audit)?,
        settings.receipt_key,
    )
    .with_expiry(settings.expiry)
    .with_request_deadlines(settings.request_deadlines)
    .with_hold_max_days(settings.hold_max_days)
    .with_clearing_retention(settings.clearing_retention.clone());
    statistics::fill_clear_columns_at_start(&api).await?;
    Ok(api)
}

/// The gRPC routes of the service.
pub fn routes(api: DisclosureApi) -> tonic::service::Routes {
    tonic::service::Routes::new(
        DisclosureServiceServer::new(api).max_decoding_message_size(MAX_MESSAGE_BYTES),
    )
}

/// A service started in the background, with its outbox relays and expiry checker.
pub struct RunningService {
    pub local_addr: SocketAddr,
    pub api: DisclosureApi,
    host: ServiceHost,
}

impl RunningService {
    /// Stops accepting, lets in-flight calls finish, stops the relays and the expiry checker,
    /// closes the database.
    /// Events not yet relayed stay in the outbox for the next start.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.host.stop().await
    }
}

/// Builds and starts the service, its relays and its expiry checker on `address` (port 0 for
/// any free port).
pub async fn spawn(settings: &Settings, address: SocketAddr) -> anyhow::Result<RunningService> {
    spawn_on(settings, bind(address, "disclosure").await?).await
}

/// Builds and starts the service, its relays and its expiry checker on an already bound
/// listener.
pub async fn spawn_on(
    settings: &Settings,
    listener: TcpListener,
) -> anyhow::Result<RunningService> {
    let api = build(settings).await?;
    let notification = NotificationLink::new(&settings.notification)?;
    let database = api.store().database().clone();
    let mut host = ServiceHost::start(
        "tryggdel.disclosure.v1.DisclosureService",
        routes(api.clone()),
        &settings.tls,
        listener,
        database.clone(),
    )?;
    host.run(start_relay(
        database.clone(),
        AuditDestination::new(api.audit_link().clone(), "disclosure.audit"),
        api.outbox_signal(),
        settings.relay.clone(),
    ));
    host.run(start_relay(
        database.clone(),
        ToPolice::new(api.clone(), notification.clone()),
        api.outbox_signal(),
        settings.relay.clone(),
    ));
    host.run(start_relay(
        database,
        RecallsToPolice::new(notification),
        api.outbox_signal(),
        settings.relay.clone(),
    ));
    host.run(start_expiry_checker(api.clone()));
    host.run(start_request_deadline_checker(api.clone()));
    host.run_if_any(outbox_sampler(api.store().clone()));
    Ok(RunningService {
        local_addr: host.local_addr,
        api,
        host,
    })
}

/// Samples `tryggdel.outbox.depth` of the relays (`disclosure.audit`, `disclosure.delivery`,
/// `disclosure.recall`) while metrics are exported.
fn outbox_sampler(store: DisclosureStore) -> Option<Sampler> {
    let depth = OutboxDepth::new();
    Sampler::start("disclosure.outbox", SAMPLE_INTERVAL, move || {
        let store = store.clone();
        let depth = depth.clone();
        async move {
            depth.record(
                "disclosure.audit",
                store.audit_backlog().await.context("audit backlog")?,
            );
            depth.record(
                "disclosure.delivery",
                store.delivery_backlog().await.context("delivery backlog")?,
            );
            depth.record(
                "disclosure.recall",
                store.recall_backlog().await.context("recall backlog")?,
            );
            Ok(())
        }
    })
}

/// Loads the field-encryption key from its base64 text.
pub fn field_key(text: &str) -> anyhow::Result<FieldKey> {
    FieldKey::from_base64(text).context("field encryption key")
}
