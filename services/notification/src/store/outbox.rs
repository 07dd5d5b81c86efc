//! The outbox as the notification service uses it: what an event carries (never personal
//! data), its types, where events go (every event to the audit log, acknowledgements also
//! back to the disclosure service), and the relays' reads and marks. The rows themselves
//! and their INSERT are `tryggdel_storage::OutboxEvent`; an event is always written in the
//! transaction (or statement) of the change it reports, in [`super::queries`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use tryggdel_storage::{OutboxDestination, OutboxEvent};

use super::queries::NotificationStore;
use super::records::StoreError;

/// Outbox event types.
pub const EVENT_DELIVERED: &str = "notification.delivered";
pub const EVENT_ACKNOWLEDGED: &str = "notification.acknowledged";
pub const EVENT_ESCALATED: &str = "notification.escalated";
pub const EVENT_FOLLOW_UP_ASKED: &str = "notification.follow_up_asked";

/// Who acted, for the audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxActor {
    pub user_id: String,
    pub roles: Vec<String>,
    pub organisation: String,
    pub unit: String,
}

/// The receipt as an acknowledgement event carries it, for the hop back to the disclosure
/// service (`RecordReceipt` takes the statement, signature, key id and trace id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxReceipt {
    pub police_reference: String,
    pub acknowledged_by: String,
    pub acknowledged_at_unix_ms: i64,
    /// The signed statement's exact bytes, base64 (standard alphabet).
    pub statement_base64: String,
    /// The Ed25519 signature, base64 (standard alphabet).
    pub signature_base64: String,
    pub key_id: String,
}

/// The payload of an outbox row: everything the audit event (and, for acknowledgements, the
/// receipt hop) needs. Never personal data: no payload, no question text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxPayload {
    pub event_id: String,
    pub event_type: String,
    pub occurred_at_unix_ms: i64,
    /// None for what the service does on its own (delivery intake, escalation).
    pub actor: Option<OutboxActor>,
    pub disclosure_id: String,
    /// The disclosing organisation.
    pub organisation: String,
    pub police_region: String,
    pub legal_basis_id: String,
    pub registry_version: String,
    pub trace_id: String,
    /// The W3C `traceparent` of the span that caused the event (empty without tracing, and
    /// in events written before it was kept): the relays continue that trace.
    #[serde(default)]
    pub traceparent: String,
    pub details: BTreeMap<String, String>,
    pub receipt: Option<OutboxReceipt>,
}

impl OutboxPayload {
    /// The outbox row for this payload.
    pub fn to_event(&self) -> Result<OutboxEvent, StoreError> {
        Ok(OutboxEvent {
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            disclosure_id: self.disclosure_id.clone(),
            organisation: self.organisation.clone(),
            payload: serde_json::to_string(self)
                .map_err(|error| StoreError::Corrupt(format!("outbox payload: {error}")))?,
            created_at: self.occurred_at_unix_ms,
        })
    }
}

/// Every event goes to the audit log.
const TO_AUDIT: OutboxDestination = OutboxDestination::all("audit_relayed_at");
/// Acknowledgements (with their receipts) go back to the disclosure service.
const TO_DISCLOSURE: OutboxDestination =
    OutboxDestination::only("disclosure_relayed_at", "notification.acknowledged");

impl NotificationStore {
    /// Up to `limit` events not yet in the audit log, as (seq, payload JSON), in seq order.
    pub async fn awaiting_audit(&self, limit: i64) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(TO_AUDIT.pending(self.database(), limit).await?)
    }

    /// Records that the events `seqs` are durable in the audit log.
    pub async fn mark_audited(&self, seqs: &[i64], at: i64) -> Result<(), StoreError> {
        Ok(TO_AUDIT.mark(self.database(), seqs, at).await?)
    }

    /// How many events have not reached the audit log yet.
    pub async fn audit_backlog(&self) -> Result<i64, StoreError> {
        Ok(TO_AUDIT.backlog(self.database()).await?)
    }

    /// Up to `limit` acknowledgements whose receipt has not reached the disclosure service, as
    /// (seq, payload JSON), in seq order.
    pub async fn awaiting_disclosure(&self, limit: i64) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(TO_DISCLOSURE.pending(self.database(), limit).await?)
    }

    /// Records that the disclosure service holds the receipts of events `seqs`.
    pub async fn mark_disclosure_relayed(&self, seqs: &[i64], at: i64) -> Result<(), StoreError> {
        Ok(TO_DISCLOSURE.mark(self.database(), seqs, at).await?)
    }

    /// How many receipts have not reached the disclosure service yet.
    pub async fn receipt_backlog(&self) -> Result<i64, StoreError> {
        Ok(TO_DISCLOSURE.backlog(self.database()).await?)
    }

    /// The outbox events of one disclosure as (event type, payload JSON), oldest first.
    pub async fn events_of(
        &self,
        disclosure_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT event_type, payload FROM outbox WHERE disclosure_id = $1 ORDER BY seq",
        )
        .bind(disclosure_id)
        .fetch_all(self.database().pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("event_type")?, row.try_get("payload")?)))
            .collect()
    }
}
