//! The outbox as the notification service uses it: what an event carries (never personal
//! data), its types, the audit event each becomes, and where events go (every event to the
//! audit log, acknowledgements also back to the disclosure service). The rows themselves are
//! `tryggdel_storage::OutboxEvent`; an event is always written with the change it reports
//! (`tryggdel_storage::write`, in [`super::queries`]).

use std::collections::BTreeMap;

use prost::Message as _;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use tryggdel_proto::audit::v1::{Actor, AuditEvent, ObjectRef};
use tryggdel_service_kit::audit_event::PoliceDisclosureEvent;
use tryggdel_service_kit::{AuditDestination, TracedEvent};
use tryggdel_storage::{OutboxDestination, OutboxEvent};

use super::queries::{NotificationStore, Value};
use super::records::StoreError;

/// Outbox event types.
pub const EVENT_DELIVERED: &str = "notification.delivered";
pub const EVENT_ACKNOWLEDGED: &str = "notification.acknowledged";
pub const EVENT_ESCALATED: &str = "notification.escalated";
pub const EVENT_FOLLOW_UP_ASKED: &str = "notification.follow_up_asked";
pub const EVENT_RECALLED: &str = "notification.recalled";
pub const EVENT_RECALL_ACKNOWLEDGED: &str = "notification.recall_acknowledged";
/// An officer read deliveries (their payloads hold personal data): the access log.
pub const EVENT_READ: &str = "notification.read";
/// The detail of a read of several deliveries that lists their disclosures (comma-separated).
pub const READ_DISCLOSURES: &str = "disclosure_ids";

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
    /// The persons the event concerns, as keyed references (reads of deliveries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub person_refs: Vec<String>,
}

impl OutboxPayload {
    /// The outbox row for this payload, with its audit event ready to send.
    pub fn to_event(&self) -> Result<OutboxEvent, StoreError> {
        Ok(OutboxEvent {
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            disclosure_id: self.disclosure_id.clone(),
            organisation: self.organisation.clone(),
            payload: serde_json::to_string(self)
                .map_err(|error| StoreError::Corrupt(format!("outbox payload: {error}")))?,
            created_at: self.occurred_at_unix_ms,
            audit_event: self.audit_event().encode_to_vec(),
            traceparent: self.traceparent.clone(),
        })
    }

    /// The audit event: the disclosing organisation as the data controller, the police
    /// region as the recipient, the officer (or nobody, for what the service does on its own)
    /// as the actor.
    pub fn audit_event(&self) -> AuditEvent {
        let mut details = self.details.clone();
        details.insert("police_region".into(), self.police_region.clone());
        if let Some(receipt) = &self.receipt {
            details.insert("police_reference".into(), receipt.police_reference.clone());
            details.insert("receipt_key_id".into(), receipt.key_id.clone());
            details.insert(
                "acknowledged_at_unix_ms".into(),
                receipt.acknowledged_at_unix_ms.to_string(),
            );
        }
        let event = PoliceDisclosureEvent {
            event_id: &self.event_id,
            action: &self.event_type,
            occurred_at_unix_ms: self.occurred_at_unix_ms,
            disclosure_id: &self.disclosure_id,
            organisation: &self.organisation,
            police_region: &self.police_region,
            legal_basis_id: &self.legal_basis_id,
            registry_version: &self.registry_version,
            trace_id: &self.trace_id,
        }
        .audit_event(
            self.actor.as_ref().map(|actor| Actor {
                user_id: actor.user_id.clone(),
                roles: actor.roles.clone(),
                organisation: actor.organisation.clone(),
                unit: actor.unit.clone(),
            }),
            details,
        );
        let event = AuditEvent {
            person_refs: self.person_refs.clone(),
            ..event
        };
        // A read of a page of deliveries names each disclosure on it.
        match self.details.get(READ_DISCLOSURES) {
            Some(ids) if self.disclosure_id.is_empty() => AuditEvent {
                objects: ids
                    .split(',')
                    .filter(|id| !id.is_empty())
                    .map(|id| ObjectRef {
                        kind: "disclosure".into(),
                        id: id.to_owned(),
                    })
                    .collect(),
                ..event
            },
            _ => event,
        }
    }
}

/// Acknowledgements (with their receipts) go back to the disclosure service.
pub const TO_DISCLOSURE: OutboxDestination =
    OutboxDestination::only("disclosure_relayed_at", EVENT_ACKNOWLEDGED);

impl NotificationStore {
    /// Gives every event written before the outbox kept audit events its audit event, from
    /// its payload. An event whose payload does not read is an error naming it: it would
    /// otherwise never reach the audit log.
    pub async fn complete_audit_events(&self) -> anyhow::Result<()> {
        tryggdel_service_kit::fill_in_audit_events(
            self.database(),
            500,
            |payload: &OutboxPayload| TracedEvent {
                event: payload.audit_event(),
                traceparent: payload.traceparent.clone(),
            },
        )
        .await
        .map(drop)
    }

    /// How many events have not reached the audit log yet.
    pub async fn audit_backlog(&self) -> Result<i64, StoreError> {
        Ok(AuditDestination::OUTBOX.backlog(self.database()).await?)
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
        self.read(
            "SELECT event_type, payload FROM outbox WHERE disclosure_id = $1 ORDER BY seq",
            &[Value::Text(disclosure_id)],
            |row| Ok((row.try_get("event_type")?, row.try_get("payload")?)),
        )
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tryggdel_storage::Database;
    use tryggdel_test_support::{TestBackend, TestDatabase};

    use super::*;
    use crate::store::MIGRATIONS;

    fn payload(event_id: &str) -> OutboxPayload {
        OutboxPayload {
            event_id: event_id.into(),
            event_type: EVENT_ESCALATED.into(),
            occurred_at_unix_ms: 1_700_000_000_000,
            actor: None,
            disclosure_id: "d-1".into(),
            organisation: "kommun-0180".into(),
            police_region: "stockholm".into(),
            legal_basis_id: "osl-10-18c".into(),
            registry_version: "2025-07-01".into(),
            trace_id: "t".into(),
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            details: BTreeMap::from([("escalation_round".into(), "1".into())]),
            receipt: None,
            person_refs: Vec::new(),
        }
    }

    #[tokio::test]
    async fn events_written_before_audit_events_were_kept_get_theirs_at_start() {
        let database = TestDatabase::create(TestBackend::Sqlite).await.unwrap();
        let database = Database::connect(&database.url, "notification", &MIGRATIONS)
            .await
            .unwrap();
        let store = NotificationStore::new(database.clone());
        let (old, new) = (payload("old"), payload("new"));
        // A row as the service wrote it before: no audit event, no trace column.
        sqlx::query(
            "INSERT INTO outbox (event_id, event_type, disclosure_id, organisation, payload, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&old.event_id)
        .bind(&old.event_type)
        .bind(&old.disclosure_id)
        .bind(&old.organisation)
        .bind(serde_json::to_string(&old).unwrap())
        .bind(old.occurred_at_unix_ms)
        .execute(database.pool())
        .await
        .unwrap();
        let mut transaction = database.pool().begin().await.unwrap();
        new.to_event()
            .unwrap()
            .insert(&mut transaction)
            .await
            .unwrap();
        transaction.commit().await.unwrap();

        store.complete_audit_events().await.unwrap();
        let pending = AuditDestination::OUTBOX
            .pending(&database, 10)
            .await
            .unwrap();
        for (pending, payload) in pending.iter().zip([&old, &new]) {
            let event = AuditEvent::decode(pending.event.audit_event.as_slice()).unwrap();
            assert_eq!(event, payload.audit_event());
            assert_eq!(pending.event.traceparent, payload.traceparent);
        }
        assert_eq!(pending.len(), 2);

        // A payload that does not read is named, not skipped.
        sqlx::query(
            "INSERT INTO outbox (event_id, event_type, disclosure_id, organisation, payload, \
             created_at) VALUES ('bad', 't', 'd', 'o', 'not json', 1)",
        )
        .execute(database.pool())
        .await
        .unwrap();
        let error = store.complete_audit_events().await.unwrap_err();
        assert!(format!("{error:#}").contains("outbox event 3 has a payload that does not parse"));
    }
}
