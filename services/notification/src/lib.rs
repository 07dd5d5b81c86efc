//! The notification service: delivery of approved disclosures to the police region they
//! belong to, signed receipts, deadlines with escalation, and follow-up questions.
//!
//! The disclosure service hands over an approved disclosure with `Deliver` (its service
//! certificate, no token). The service routes it by the disclosing organisation's county to
//! one of the seven police regions (domain.md §5) and gives it the next sequence number of
//! that region. Officers of the region receive it through `Subscribe` (or `ListPending`),
//! acknowledge it with their police reference (diarienummer) and get a receipt signed with
//! Ed25519, which the disclosing organisation can show (`GetDeliveryStatus`) and anyone can
//! check with [`verify_receipt`]. An unacknowledged delivery escalates to the disclosing
//! organisation when its deadline passes, and again every `escalation_repeat`
//! (`ListEscalations`). An officer may ask the disclosing organisation a follow-up question
//! (`AskFollowUp`, read with `ListFollowUps`); the answer is a new disclosure through the
//! disclosure service, assessed and approved like any other — never a free-text reply here,
//! which is why this service has no reply call.
//!
//! Invariants:
//! - Deliver is for allow-listed Tryggdel service certificates only; it takes only approved
//!   disclosures whose payload bytes are canonical and hash to the SHA-256 bound at approval,
//!   and whose payload names the same disclosure, organisation, region and urgency. It is
//!   idempotent by disclosure id; the same id with another hash is refused.
//! - Sequences are per region, gap-free, and commit in sequence order: a per-region counter
//!   row is incremented in the delivery's own transaction and stays locked until commit.
//!   Subscribers rely on this to resume from a cursor without missing or repeating anything.
//! - A police officer sees only deliveries of the region in their token; any other delivery
//!   does not exist for them (NOT_FOUND). The disclosing organisation sees only its own.
//! - A receipt is signed once: acknowledging again returns the first receipt unchanged.
//! - Timers live in the database (`next_escalation_at`), so escalations survive restarts;
//!   acknowledging clears the timer in the receipt's transaction.
//! - Every change commits its outbox event in the same transaction; the relay appends every
//!   event to the audit log exactly once in effect. Events carry no personal data.
//! - Payloads and follow-up questions are personal data: sealed at rest
//!   (XChaCha20-Poly1305, bound to their row and field), never logged.
//!
//! Modules, one concern each (none imports a module that imports it back):
//! - `api`: [`NotificationApi`], what every handler shares; `grpc`: the thin adapter.
//! - Handlers: `deliver` (Deliver), `officer` (ListPending, Acknowledge, AskFollowUp),
//!   `subscription` (Subscribe), `organisation` (GetDeliveryStatus, ListFollowUps,
//!   ListEscalations), `escalation` (the deadline timers).
//! - `delivery_request` (a Deliver request checked once into a `ValidDelivery`), `validate`
//!   (ids and bounded text), `policy` (who may do what; pure), `wire` (records to messages),
//!   `events` (the outbox events).
//! - `store` (typed records, statements, the outbox) and `relay` (to the audit log and back
//!   to the disclosure service).
#![forbid(unsafe_code)]

pub mod api;
mod deliver;
pub mod delivery_request;
pub mod escalation;
mod events;
mod grpc;
pub mod officer;
pub mod organisation;
mod policy;
mod recall;
pub mod relay;
pub mod store;
pub mod subscription;
pub mod validate;
mod wire;

/// The fixtures the integration tests use too.
#[cfg(test)]
#[path = "../tests/support/mod.rs"]
mod fixtures;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ed25519_dalek::SigningKey;
use ed25519_dalek::VerifyingKey;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use tokio::net::TcpListener;
use tryggdel_domain::{Directory, Inbox, ReceiptError, ReceiptStatement};
use tryggdel_proto::notification::v1::Receipt;
use tryggdel_proto::notification::v1::notification_service_server::NotificationServiceServer;
use tryggdel_service_kit::metrics::{OutboxDepth, SAMPLE_INTERVAL, Sampler, meter};
use tryggdel_service_kit::{
    AuditDestination, AuditLink, Authenticator, ServerTls, ServiceEndpoint, ServiceHost, TokenKeys,
    TokenSettings, bind, now_unix_ms, start_relay,
};
use tryggdel_storage::{Database, FieldCipher, FieldKey};

pub use api::{Deadlines, NotificationApi};
pub use escalation::start_deadline_checker;
pub use store::{MIGRATIONS, NotificationStore};
pub use tryggdel_service_kit::{Relay, RelayConfig};

/// The largest request the service decodes (a Deliver with its payload).
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// The gRPC service name (health reporting).
pub const SERVICE_NAME: &str = "tryggdel.notification.v1.NotificationService";

/// The services allowed to deliver by default.
pub const DEFAULT_SENDERS: [&str; 1] = ["disclosure"];
/// Deadline of an urgent delivery.
pub const DEFAULT_URGENT_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// Deadline of any other delivery.
pub const DEFAULT_ORDINARY_DEADLINE: Duration = Duration::from_secs(24 * 60 * 60);
/// Time between escalations of a delivery still not acknowledged.
pub const DEFAULT_ESCALATION_REPEAT: Duration = Duration::from_secs(15 * 60);
/// How often deadlines are checked.
pub const DEFAULT_DEADLINE_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// Everything the service needs, already loaded (files are read by the binary).
pub struct Settings {
    pub database_url: String,
    /// How long any call may wait on the database.
    pub database: tryggdel_storage::DatabaseOptions,
    pub tls: ServerTls,
    pub token: TokenSettings,
    pub directory: Arc<Directory>,
    /// Seals payloads and follow-up questions at rest.
    pub field_key: FieldKey,
    /// Signs receipts; its public key is what [`verify_receipt`] needs.
    pub receipt_signing_key: SigningKey,
    /// Deadline of an urgent delivery ([`DEFAULT_URGENT_DEADLINE`]).
    pub urgent_deadline: Duration,
    /// Deadline of any other delivery ([`DEFAULT_ORDINARY_DEADLINE`]).
    pub ordinary_deadline: Duration,
    /// Time between escalations ([`DEFAULT_ESCALATION_REPEAT`]).
    pub escalation_repeat: Duration,
    /// How often the deadline timers are checked ([`DEFAULT_DEADLINE_CHECK_INTERVAL`]).
    pub deadline_check_interval: Duration,
    /// Service certificate names that may Deliver ([`DEFAULT_SENDERS`]).
    pub senders: Vec<String>,
    /// Where the service appends its own events.
    pub audit: ServiceEndpoint,
    /// Where receipts go back to (`RecordReceipt`).
    pub disclosure: ServiceEndpoint,
    pub relay: RelayConfig,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("urgent_deadline", &self.urgent_deadline)
            .field("ordinary_deadline", &self.ordinary_deadline)
            .field("escalation_repeat", &self.escalation_repeat)
            .field("deadline_check_interval", &self.deadline_check_interval)
            .field("senders", &self.senders)
            .field("audit", &self.audit.uri)
            .finish_non_exhaustive()
    }
}

/// Reads the receipt signing key from PKCS#8 PEM.
pub fn receipt_key_from_pem(pem: &str) -> anyhow::Result<SigningKey> {
    SigningKey::from_pkcs8_pem(pem).context("receipt signing key (expected Ed25519 PKCS#8 PEM)")
}

/// Connects the database (running migrations) and builds the handlers.
pub async fn build(settings: &Settings) -> anyhow::Result<NotificationApi> {
    let database = Database::connect_with(
        &settings.database_url,
        "notification",
        &MIGRATIONS,
        settings.database,
    )
    .await
    .context("notification database")?;
    let store = NotificationStore::new(database);
    store
        .complete_audit_events()
        .await
        .context("notification outbox")?;
    let keys = TokenKeys::load(&settings.token)
        .await
        .context("token keys")?;
    Ok(NotificationApi::new(
        store,
        Authenticator::new(Arc::new(keys), settings.directory.clone()),
        FieldCipher::new(&settings.field_key),
        settings.receipt_signing_key.clone(),
        Deadlines {
            urgent: settings.urgent_deadline,
            ordinary: settings.ordinary_deadline,
            escalation_repeat: settings.escalation_repeat,
        },
        settings.senders.clone(),
        AuditLink::new(&settings.audit)?,
    ))
}

/// The gRPC routes of the service.
pub fn routes(api: NotificationApi) -> tonic::service::Routes {
    tonic::service::Routes::new(
        NotificationServiceServer::new(api).max_decoding_message_size(MAX_MESSAGE_BYTES),
    )
}

/// A service started in the background, with its outbox relays and deadline checker.
pub struct RunningService {
    pub local_addr: SocketAddr,
    pub api: NotificationApi,
    host: ServiceHost,
}

impl RunningService {
    /// Ends the subscriptions (clients get UNAVAILABLE and reconnect with their cursor),
    /// stops accepting, lets in-flight calls finish, stops the deadline checker and the
    /// relays, and closes the database. Events not yet relayed and timers not yet due stay in
    /// the database for the next start.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.api.stop_subscriptions();
        self.host.stop().await
    }
}

/// Samples, while metrics are exported, `tryggdel.outbox.depth` of both relays
/// (`notification.audit`, `notification.receipts`) and, per police region,
/// `tryggdel.notification.deliveries.pending` (unacknowledged) and
/// `tryggdel.notification.deliveries.overdue` (escalated or past the deadline).
fn metrics_sampler(store: NotificationStore) -> Option<Sampler> {
    let depth = OutboxDepth::new();
    let meter = meter();
    let pending = meter
        .i64_gauge("tryggdel.notification.deliveries.pending")
        .with_unit("{delivery}")
        .with_description("Deliveries not yet acknowledged by the police, by region")
        .build();
    let overdue = meter
        .i64_gauge("tryggdel.notification.deliveries.overdue")
        .with_unit("{delivery}")
        .with_description("Unacknowledged deliveries past their deadline, by region")
        .build();
    Sampler::start("notification.metrics", SAMPLE_INTERVAL, move || {
        let (store, depth, pending, overdue) = (
            store.clone(),
            depth.clone(),
            pending.clone(),
            overdue.clone(),
        );
        async move {
            depth.record(
                "notification.audit",
                store.audit_backlog().await.context("audit backlog")?,
            );
            depth.record(
                "notification.receipts",
                store.receipt_backlog().await.context("receipt backlog")?,
            );
            let open = store
                .open_deliveries(now_unix_ms())
                .await
                .context("open deliveries")?;
            // Every region reports, zero when nothing of it is open.
            for region in Inbox::all() {
                let (open_count, overdue_count) = open
                    .iter()
                    .find(|open| open.police_region == region)
                    .map(|open| (open.pending, open.overdue))
                    .unwrap_or((0, 0));
                let attributes = [opentelemetry::KeyValue::new(
                    "police_region",
                    region.as_str(),
                )];
                pending.record(open_count, &attributes);
                overdue.record(overdue_count, &attributes);
            }
            Ok(())
        }
    })
}

/// Builds and starts the service, its relays and its deadline checker on `address` (port 0
/// for any free port).
pub async fn spawn(settings: &Settings, address: SocketAddr) -> anyhow::Result<RunningService> {
    spawn_on(settings, bind(address, "notification").await?).await
}

/// Builds and starts the service, its relays and its deadline checker on an already bound
/// listener.
pub async fn spawn_on(
    settings: &Settings,
    listener: TcpListener,
) -> anyhow::Result<RunningService> {
    let api = build(settings).await?;
    let audit = api.audit_link().clone();
    let receipts = relay::ReceiptsToDisclosure::new(&settings.disclosure)?;
    let database = api.store().database().clone();
    let mut host = ServiceHost::start(
        SERVICE_NAME,
        routes(api.clone()),
        &settings.tls,
        listener,
        database.clone(),
    )?;
    host.run(start_deadline_checker(
        api.clone(),
        settings.deadline_check_interval,
    ));
    host.run(start_relay(
        database.clone(),
        AuditDestination::new(audit, "notification.audit"),
        api.outbox_signal(),
        settings.relay.clone(),
    ));
    host.run(start_relay(
        database,
        receipts,
        api.outbox_signal(),
        settings.relay.clone(),
    ));
    host.run_if_any(metrics_sampler(api.store().clone()));
    Ok(RunningService {
        local_addr: host.local_addr,
        api,
        host,
    })
}

/// Why a receipt does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptCheckError {
    /// The signature, key id or statement format is wrong.
    #[error(transparent)]
    Signature(#[from] ReceiptError),
    /// The receipt's clear fields say something other than its signed statement.
    #[error("the receipt's {0} differs from its signed statement")]
    Mismatch(&'static str),
}

/// Checks a receipt as a client receives it: the key id and the Ed25519 signature over the
/// exact statement bytes (never re-serialised), then that every clear field of the receipt
/// says what the signed statement says. Returns the signed statement.
pub fn verify_receipt(
    receipt: &Receipt,
    key: &VerifyingKey,
) -> Result<ReceiptStatement, ReceiptCheckError> {
    let statement = tryggdel_domain::verify_receipt(
        &receipt.statement,
        &receipt.signature,
        &receipt.key_id,
        key,
    )?;
    // Each field is named once, so a mismatch names the field that differs.
    macro_rules! same {
        ($field:ident) => {
            (stringify!($field), statement.$field == receipt.$field)
        };
    }
    let checks = [
        same!(disclosure_id),
        same!(police_region),
        same!(police_reference),
        same!(acknowledged_by),
        same!(acknowledged_at_unix_ms),
        same!(payload_sha256),
    ];
    match checks.into_iter().find(|(_, same)| !same) {
        Some((field, _)) => Err(ReceiptCheckError::Mismatch(field)),
        None => Ok(statement),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tryggdel_domain::sign_receipt;

    fn signed(key: &SigningKey) -> Receipt {
        let statement = tryggdel_domain::testing::receipt_statement();
        let signed = sign_receipt(&statement, key).unwrap();
        Receipt {
            disclosure_id: statement.disclosure_id,
            police_reference: statement.police_reference,
            acknowledged_by: statement.acknowledged_by,
            police_region: statement.police_region,
            acknowledged_at_unix_ms: statement.acknowledged_at_unix_ms,
            payload_sha256: statement.payload_sha256,
            statement: signed.statement,
            signature: signed.signature,
            key_id: signed.key_id,
        }
    }

    #[test]
    fn a_receipt_verifies_and_its_clear_fields_must_match_the_statement() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let receipt = signed(&key);
        let statement = verify_receipt(&receipt, &key.verifying_key()).unwrap();
        assert_eq!(statement.police_reference, "5000-K123456-26");

        let lying = Receipt {
            police_reference: "another".into(),
            ..receipt.clone()
        };
        assert_eq!(
            verify_receipt(&lying, &key.verifying_key()),
            Err(ReceiptCheckError::Mismatch("police_reference"))
        );

        let mut tampered = receipt.clone();
        tampered.statement[10] ^= 1;
        assert_eq!(
            verify_receipt(&tampered, &key.verifying_key()),
            Err(ReceiptCheckError::Signature(ReceiptError::Signature))
        );

        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(matches!(
            verify_receipt(&receipt, &other),
            Err(ReceiptCheckError::Signature(ReceiptError::KeyId { .. }))
        ));
    }
}
