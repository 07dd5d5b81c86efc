//! [`NotificationApi`]: what every handler shares (store, authenticator, field cipher,
//! receipt key, deadlines, allowed senders) and the signals between them (the live broadcast
//! of committed deliveries, the outbox wake-up, stopping). The handlers are `impl` blocks in
//! their own modules (`deliver`, `officer`, `organisation`, `subscription`, `escalation`);
//! the gRPC adapter is `grpc`.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use tokio::sync::{broadcast, watch};
use tryggdel_domain::receipt_key_id;
use tryggdel_proto::notification::v1::Delivery;
use tryggdel_service_kit::{AuditLink, Authenticator, Caller, ServiceError, now_unix_ms};
use tryggdel_storage::FieldCipher;

use crate::store::{DeliveryRow, NotificationStore, StoreError, payload_context};
use crate::wire::{delivery_message, recall_message};

/// Most deliveries one read event names (the audit log takes at most 32 objects an entry).
const MAX_OBJECTS_PER_EVENT: usize = 32;

/// Live deliveries a slow subscriber may fall behind by before it re-reads from the database.
const LIVE_CAPACITY: usize = 1024;

/// When deliveries fall due and how often escalations repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// An urgent delivery must be acknowledged within this.
    pub urgent: Duration,
    /// Any other delivery must be acknowledged within this.
    pub ordinary: Duration,
    /// After an escalation, the next one follows after this if still unacknowledged.
    pub escalation_repeat: Duration,
}

/// The handlers and what they need; cheap to clone.
#[derive(Clone)]
pub struct NotificationApi {
    inner: Arc<Inner>,
}

struct Inner {
    store: NotificationStore,
    authenticator: Authenticator,
    cipher: FieldCipher,
    receipt_key: SigningKey,
    receipt_key_id: String,
    deadlines: Deadlines,
    senders: Vec<String>,
    /// Deliveries as they commit, for the subscriptions (each filters its region).
    live: broadcast::Sender<Arc<Delivery>>,
    /// Changed whenever an outbox event commits (wakes the relay).
    outbox_signal: watch::Sender<u64>,
    /// Set to true when the service stops: every subscription ends.
    stopping: watch::Sender<bool>,
    /// Where the outbox relay appends the service's events; whether the audit log answers
    /// decides whether a read may be served.
    audit: AuditLink,
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> ServiceError {
        match error {
            // An outage is UNAVAILABLE, a defect INTERNAL: service-kit's one classification.
            StoreError::Database(error) => ServiceError::from(error),
            corrupt @ StoreError::Corrupt(_) => {
                ServiceError::internal(anyhow::Error::new(corrupt).context("notification store"))
            }
        }
    }
}

impl NotificationApi {
    pub fn new(
        store: NotificationStore,
        authenticator: Authenticator,
        cipher: FieldCipher,
        receipt_key: SigningKey,
        deadlines: Deadlines,
        senders: Vec<String>,
        audit: AuditLink,
    ) -> NotificationApi {
        let receipt_key_id = receipt_key_id(&receipt_key.verifying_key());
        NotificationApi {
            inner: Arc::new(Inner {
                store,
                authenticator,
                cipher,
                receipt_key,
                receipt_key_id,
                deadlines,
                senders,
                live: broadcast::Sender::new(LIVE_CAPACITY),
                outbox_signal: watch::Sender::new(0),
                stopping: watch::Sender::new(false),
                audit,
            }),
        }
    }

    /// This API with room for only `live_capacity` deliveries in the live broadcast (tests
    /// make it small to make subscribers lag). Before anything else holds a clone of it.
    #[cfg(test)]
    #[allow(clippy::expect_used)]
    pub(crate) fn with_live_capacity(mut self, live_capacity: usize) -> NotificationApi {
        Arc::get_mut(&mut self.inner)
            .expect("with_live_capacity before the API is shared")
            .live = broadcast::Sender::new(live_capacity);
        self
    }

    pub fn store(&self) -> &NotificationStore {
        &self.inner.store
    }

    /// The link the outbox relay appends to the audit log with.
    pub fn audit_link(&self) -> &AuditLink {
        &self.inner.audit
    }

    /// Records that `officer` read `rows` (`how`: the call), committed in the outbox before
    /// anything is returned; the audit relay takes it to the log exactly once. Refused while
    /// the audit log is known not to answer, so a read is never served unlogged.
    pub(crate) async fn log_read(
        &self,
        officer: &Caller,
        rows: &[&DeliveryRow],
        how: &str,
    ) -> Result<(), ServiceError> {
        if !self.inner.audit.check_reachable().await {
            return Err(ServiceError::Unavailable(
                "the audit log does not answer, so this read cannot be logged and nothing is \
                 returned; retry later"
                    .into(),
            ));
        }
        // The audit log takes at most 32 objects an entry: a page is one event per 32.
        let now = now_unix_ms();
        let mut events = Vec::new();
        for chunk in rows.chunks(MAX_OBJECTS_PER_EVENT) {
            if let Some(payload) = crate::events::read(chunk, officer, how, now) {
                events.push(payload.to_event()?);
            }
        }
        if events.is_empty() {
            return Ok(());
        }
        tryggdel_storage::record_events(self.inner.store.database(), &events)
            .await
            .map_err(ServiceError::from)?;
        // Not signalled: the relay takes reads with its next batch (within its poll
        // interval), so a busy read path does not wake the relays for each read.
        Ok(())
    }

    pub fn deadlines(&self) -> Deadlines {
        self.inner.deadlines
    }

    /// The id of the receipt key (hex of the first 4 bytes of SHA-256 of the public key).
    pub fn receipt_key_id(&self) -> &str {
        &self.inner.receipt_key_id
    }

    /// The key receipts verify with.
    pub fn receipt_verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.inner.receipt_key.verifying_key()
    }

    /// Changes whenever an outbox event commits.
    pub fn outbox_signal(&self) -> watch::Receiver<u64> {
        self.inner.outbox_signal.subscribe()
    }

    /// Ends every subscription (with UNAVAILABLE, so clients reconnect with their cursor) and
    /// refuses new ones; the service is about to stop.
    pub fn stop_subscriptions(&self) {
        self.inner.stopping.send_replace(true);
    }

    pub(crate) fn signal_outbox(&self) {
        self.inner
            .outbox_signal
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    pub(crate) fn authenticator(&self) -> &Authenticator {
        &self.inner.authenticator
    }

    pub(crate) fn cipher(&self) -> &FieldCipher {
        &self.inner.cipher
    }

    pub(crate) fn receipt_key(&self) -> &SigningKey {
        &self.inner.receipt_key
    }

    /// Whether the service certificate `name` may Deliver.
    pub(crate) fn is_sender(&self, name: &str) -> bool {
        self.inner.senders.iter().any(|sender| sender == name)
    }

    pub(crate) fn live_deliveries(&self) -> broadcast::Receiver<Arc<Delivery>> {
        self.inner.live.subscribe()
    }

    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stopping.subscribe()
    }

    /// A stored delivery as the police receive it (the payload and any recall's reason
    /// opened).
    pub(crate) fn wire_delivery(&self, row: &DeliveryRow) -> Result<Delivery, ServiceError> {
        let payload = self
            .inner
            .cipher
            .open(&row.payload_sealed, &payload_context(&row.disclosure_id))?;
        let recall = match &row.recall {
            Some(recall) => Some(recall_message(
                row,
                recall,
                self.recall_reason(row, recall)?,
            )),
            None => None,
        };
        Ok(delivery_message(
            row,
            payload.to_vec(),
            recall,
            now_unix_ms(),
        ))
    }

    /// Tells the relay and the subscriptions about a delivery that has just committed.
    pub(crate) fn publish(&self, row: &DeliveryRow, payload: Vec<u8>) {
        self.signal_outbox();
        // Nobody subscribed is not an error: the delivery waits in the database.
        let _ = self.inner.live.send(Arc::new(delivery_message(
            row,
            payload,
            None,
            now_unix_ms(),
        )));
    }

    /// Tells the relay and the subscriptions about a recall of `row` (its opened `payload`
    /// and `reason`) that has just committed: subscribers get the delivery again, with its
    /// recall.
    pub(crate) fn publish_recall(&self, row: &DeliveryRow, payload: Vec<u8>, reason: String) {
        self.signal_outbox();
        let recall = row
            .recall
            .as_ref()
            .map(|recall| recall_message(row, recall, reason));
        // Nobody subscribed is not an error: ListPending lists the recall until acknowledged.
        let _ = self.inner.live.send(Arc::new(delivery_message(
            row,
            payload,
            recall,
            now_unix_ms(),
        )));
    }
}
