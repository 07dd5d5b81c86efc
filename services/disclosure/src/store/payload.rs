//! What an outbox event of this service says: [`OutboxPayload`], the service's own record of
//! the event (the outbox row's JSON), and the audit event the audit log takes for it. Both are
//! built once, when the event is, and stored together in the row ([`OutboxPayload::to_event`]);
//! rows written before the outbox kept the audit event get it at start
//! ([`fill_in_audit_events`]).

use prost::Message as _;
use tryggdel_proto::audit::v1::{Actor, AuditEvent, ObjectRef, Outcome};
use tryggdel_service_kit::TracedEvent;
use tryggdel_service_kit::audit_event::PoliceDisclosureEvent;
use tryggdel_storage::{Database, OutboxEvent};

/// How many old rows [`fill_in_audit_events`] reads at a time.
const FILL_BATCH: i64 = 500;

/// Who caused an outbox event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxActor {
    pub user_id: String,
    pub roles: Vec<String>,
    pub organisation: String,
    pub unit: Option<String>,
}

/// The payload of an outbox event: what the audit log needs to record it (who, what, when,
/// why, about whom — the last as keyed hashes only). Free of identity numbers and protected
/// details.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxPayload {
    pub event_id: String,
    pub event_type: String,
    pub occurred_at_unix_ms: i64,
    pub disclosure_id: String,
    pub organisation: String,
    pub police_region: String,
    pub actor: OutboxActor,
    pub state: String,
    pub version: i64,
    pub legal_basis_id: String,
    /// The legal-basis registry version in force when the event happened.
    pub registry_version: String,
    pub urgent: bool,
    pub person_refs: Vec<String>,
    pub trace_id: String,
    /// The W3C `traceparent` of the span that caused the event (empty without tracing, and
    /// in events written before it was kept): the relays continue that trace.
    #[serde(default)]
    pub traceparent: String,
    pub details: std::collections::BTreeMap<String, String>,
    /// Set when the event records a refusal, with its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

impl OutboxPayload {
    /// The event as the audit log records it.
    pub fn audit_event(&self) -> AuditEvent {
        let mut details = self.details.clone();
        details.insert("state".into(), self.state.clone());
        details.insert("version".into(), self.version.to_string());
        details.insert("urgent".into(), self.urgent.to_string());
        let actor = Actor {
            user_id: self.actor.user_id.clone(),
            roles: self.actor.roles.clone(),
            organisation: self.actor.organisation.clone(),
            unit: self.actor.unit.clone().unwrap_or_default(),
        };
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
        .audit_event(Some(actor), details);
        let event = if self.event_type.starts_with(DELEGATION_EVENT_PREFIX) {
            delegation_audit_event(event)
        } else if self.event_type.starts_with(REQUEST_EVENT_PREFIX) {
            request_audit_event(event)
        } else if self.disclosure_id.is_empty() {
            page_audit_event(event)
        } else {
            event
        };
        AuditEvent {
            outcome: if self.refusal.is_some() {
                Outcome::Refused as i32
            } else {
                Outcome::Success as i32
            },
            outcome_detail: self.refusal.clone().unwrap_or_default(),
            person_refs: self.person_refs.clone(),
            ..event
        }
    }

    /// The outbox row of the event: this payload as JSON, its audit event encoded, and the
    /// trace the relays continue.
    pub fn to_event(&self) -> Result<OutboxEvent, serde_json::Error> {
        Ok(OutboxEvent {
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            disclosure_id: self.disclosure_id.clone(),
            organisation: self.organisation.clone(),
            payload: serde_json::to_string(self)?,
            created_at: self.occurred_at_unix_ms,
            audit_event: self.audit_event().encode_to_vec(),
            traceparent: self.traceparent.clone(),
        })
    }
}

/// The event types of delegation changes start so; their `disclosure_id` is the delegation's
/// id.
pub const DELEGATION_EVENT_PREFIX: &str = "delegation.";

/// The audit event of a delegation change: about the delegation (its id in `disclosure_id`
/// of the payload), no disclosure, no recipient, the purpose its administration.
fn delegation_audit_event(event: AuditEvent) -> AuditEvent {
    let delegation_id = event.disclosure_id.clone();
    AuditEvent {
        objects: vec![ObjectRef {
            kind: "delegation".into(),
            id: delegation_id,
        }],
        disclosure_id: String::new(),
        purpose: DELEGATION_PURPOSE.into(),
        recipient: String::new(),
        ..event
    }
}

/// The audit event of a read of a page of disclosures: each disclosure on it (its
/// `disclosure_ids` detail) as an object, none as the one disclosure, no recipient.
fn page_audit_event(event: AuditEvent) -> AuditEvent {
    let objects = event
        .details
        .get("disclosure_ids")
        .map(|ids| {
            ids.split(',')
                .filter(|id| !id.is_empty())
                .map(|id| ObjectRef {
                    kind: "disclosure".into(),
                    id: id.to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    AuditEvent {
        objects,
        disclosure_id: String::new(),
        recipient: String::new(),
        ..event
    }
}

/// The event types of requests for information start so; their `disclosure_id` is the
/// request's id.
pub const REQUEST_EVENT_PREFIX: &str = "information_request.";

/// The audit event of a step of a request for information: about the request (its id in
/// `disclosure_id` of the payload), the organisation asked as the controller, the requesting
/// authority's inbox as the recipient.
fn request_audit_event(event: AuditEvent) -> AuditEvent {
    // A page of requests names each (its `information_request_ids` detail), one request itself.
    let ids: Vec<String> = match event.details.get("information_request_ids") {
        Some(ids) => ids
            .split(',')
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect(),
        None => vec![event.disclosure_id.clone()],
    };
    AuditEvent {
        objects: ids
            .into_iter()
            .map(|id| ObjectRef {
                kind: "information_request".into(),
                id,
            })
            .collect(),
        disclosure_id: String::new(),
        purpose: REQUEST_PURPOSE.into(),
        ..event
    }
}

/// Why the steps of a request for information are recorded.
const REQUEST_PURPOSE: &str = "request for information from a law-enforcement authority";

/// Why a delegation change is recorded.
const DELEGATION_PURPOSE: &str = "administering who may decide disclosures";

/// Gives every outbox row written before the outbox kept the audit event its audit event and
/// `traceparent`, from its payload, so the relays can send it. Returns how many rows it
/// filled in. A payload that does not parse stops the start: the event would otherwise never
/// reach the audit log.
pub async fn fill_in_audit_events(database: &Database) -> anyhow::Result<usize> {
    fill_in(database, FILL_BATCH).await
}

/// [`fill_in_audit_events`], reading `batch` rows at a time.
async fn fill_in(database: &Database, batch: i64) -> anyhow::Result<usize> {
    tryggdel_service_kit::fill_in_audit_events(database, batch, |payload: &OutboxPayload| {
        TracedEvent {
            event: payload.audit_event(),
            traceparent: payload.traceparent.clone(),
        }
    })
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use prost::Message as _;
    use tryggdel_service_kit::AuditDestination;
    use tryggdel_storage::events_without_audit_event;
    use tryggdel_test_support::{TestBackend, TestDatabase, on_both_backends};

    use super::*;
    use crate::store::MIGRATIONS;

    fn payload(n: usize) -> OutboxPayload {
        OutboxPayload {
            event_id: format!("event-{n}"),
            event_type: "disclosure.submitted".into(),
            occurred_at_unix_ms: 1_000 + i64::try_from(n).unwrap(),
            disclosure_id: format!("disclosure-{n}"),
            organisation: "bollnas-kommun".into(),
            police_region: "mitt".into(),
            actor: OutboxActor {
                user_id: "handlaggare".into(),
                roles: vec!["caseworker".into()],
                organisation: "bollnas-kommun".into(),
                unit: Some("individ-och-familj".into()),
            },
            state: "submitted".into(),
            version: 2,
            legal_basis_id: "OSL-10-18c".into(),
            registry_version: "sha256:ab".into(),
            urgent: true,
            person_refs: vec!["ref-1".into()],
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            traceparent: format!("00-0af7651916cd43dd8448eb211c80319c-{n:016x}-01"),
            details: [("answers_follow_up_id".to_owned(), "f-1".to_owned())].into(),
            refusal: None,
        }
    }

    #[test]
    fn the_audit_event_says_what_the_payload_says() {
        let event = payload(1).audit_event();
        assert_eq!(event.event_id, "event-1");
        assert_eq!(event.action, "disclosure.submitted");
        assert_eq!(event.occurred_at_unix_ms, 1_001);
        let actor = event.actor.unwrap();
        assert_eq!(
            (actor.user_id.as_str(), actor.unit.as_str()),
            ("handlaggare", "individ-och-familj")
        );
        assert_eq!(event.objects[0].id, "disclosure-1");
        assert_eq!(event.recipient, "polisen/mitt");
        assert_eq!(event.outcome, Outcome::Success as i32);
        assert_eq!(event.details["state"], "submitted");
        assert_eq!(event.details["version"], "2");
        assert_eq!(event.details["urgent"], "true");
        assert_eq!(event.details["answers_follow_up_id"], "f-1");

        let refused = OutboxPayload {
            refusal: Some("FailedPrecondition: no".into()),
            ..payload(1)
        }
        .audit_event();
        assert_eq!(refused.outcome, Outcome::Refused as i32);
        assert_eq!(refused.outcome_detail, "FailedPrecondition: no");
    }

    #[test]
    fn an_event_carries_its_payload_its_audit_event_and_its_trace() {
        let payload = payload(2);
        let event = payload.to_event().unwrap();
        assert_eq!(
            serde_json::from_str::<OutboxPayload>(&event.payload).unwrap(),
            payload
        );
        assert_eq!(
            AuditEvent::decode(event.audit_event.as_slice()).unwrap(),
            payload.audit_event()
        );
        assert_eq!(event.traceparent, payload.traceparent);
        assert_eq!(
            (
                event.event_id.as_str(),
                event.event_type.as_str(),
                event.disclosure_id.as_str(),
                event.organisation.as_str(),
                event.created_at
            ),
            (
                "event-2",
                "disclosure.submitted",
                "disclosure-2",
                "bollnas-kommun",
                1_002
            )
        );
    }

    /// Writes `payload` as a row written before the outbox kept audit events.
    async fn insert_old_row(database: &Database, event_id: &str, payload: &str) -> i64 {
        sqlx::query(
            "INSERT INTO outbox (event_id, event_type, disclosure_id, organisation, payload, \
             created_at) VALUES ($1, 'disclosure.submitted', 'd', 'bollnas-kommun', $2, 1)",
        )
        .bind(event_id)
        .bind(payload)
        .execute(database.pool())
        .await
        .unwrap();
        sqlx::query_scalar("SELECT seq FROM outbox WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(database.pool())
            .await
            .unwrap()
    }

    /// A fresh database of the service on `backend`, migrated (None: the backend is not
    /// configured).
    async fn migrated(backend: TestBackend) -> Option<(TestDatabase, Database)> {
        let test_database = TestDatabase::create(backend).await?;
        let database = Database::connect(&test_database.url, "disclosure", &MIGRATIONS)
            .await
            .unwrap();
        Some((test_database, database))
    }

    async fn old_rows_get_their_audit_event_and_trace(backend: TestBackend) {
        let Some((test_database, database)) = migrated(backend).await else {
            return;
        };
        let payloads: Vec<OutboxPayload> = (0..5).map(payload).collect();
        for (n, payload) in payloads.iter().enumerate() {
            let mut json = serde_json::to_value(payload).unwrap();
            if n == 0 {
                // The oldest rows have no traceparent in their payload either.
                json.as_object_mut().unwrap().remove("traceparent");
            }
            insert_old_row(&database, &payload.event_id, &json.to_string()).await;
        }
        // A row written since is left as it is.
        let new = payload(9).to_event().unwrap();
        let mut transaction = database.pool().begin().await.unwrap();
        new.insert(&mut transaction).await.unwrap();
        transaction.commit().await.unwrap();

        // Two at a time, until none is left.
        assert_eq!(fill_in(&database, 2).await.unwrap(), 5);
        assert!(
            events_without_audit_event(&database, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let pending = AuditDestination::OUTBOX
            .pending(&database, 10)
            .await
            .unwrap();
        assert_eq!(pending.len(), 6);
        for (row, payload) in pending.iter().zip(&payloads) {
            let audit_event = AuditEvent::decode(row.event.audit_event.as_slice()).unwrap();
            assert_eq!(audit_event, payload.audit_event());
            let traceparent = if row.event.event_id == "event-0" {
                ""
            } else {
                payload.traceparent.as_str()
            };
            assert_eq!(row.event.traceparent, traceparent);
        }
        assert_eq!(pending[5].event, new);
        assert_eq!(fill_in_audit_events(&database).await.unwrap(), 0);
        database.close().await;
        test_database.remove().await;
    }

    async fn a_payload_that_does_not_parse_is_an_error_naming_its_row(backend: TestBackend) {
        let Some((test_database, database)) = migrated(backend).await else {
            return;
        };
        let good = serde_json::to_string(&payload(1)).unwrap();
        insert_old_row(&database, "event-1", &good).await;
        let bad = insert_old_row(&database, "event-2", "{\"not\":\"a payload\"}").await;
        let error = fill_in_audit_events(&database).await.unwrap_err();
        assert!(
            format!("{error:#}").starts_with(&format!(
                "outbox event {bad} has a payload that does not parse: "
            )),
            "{error:#}"
        );
        // Nothing is skipped: the row still waits for its audit event.
        let waiting = events_without_audit_event(&database, 10).await.unwrap();
        assert_eq!(
            waiting.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
            [bad]
        );
        database.close().await;
        test_database.remove().await;
    }

    on_both_backends!(
        old_rows_get_their_audit_event_and_trace,
        a_payload_that_does_not_parse_is_an_error_naming_its_row,
    );
}
