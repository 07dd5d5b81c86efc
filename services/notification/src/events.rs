//! The outbox events the service writes, one builder per event type. Every event names the
//! delivery it is about (disclosure, organisation, region, legal basis, registry version) and
//! carries the `traceparent` of the span that wrote it, so the relays continue its trace.
//! Never personal data: no payload bytes, no question text.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tryggdel_service_kit::Caller;

use crate::store::{
    DeliveryRow, EVENT_ACKNOWLEDGED, EVENT_DELIVERED, EVENT_ESCALATED, EVENT_FOLLOW_UP_ASKED,
    EVENT_READ, EVENT_RECALL_ACKNOWLEDGED, EVENT_RECALLED, EscalationRow, NewDelivery, OutboxActor,
    OutboxPayload, OutboxReceipt, READ_DISCLOSURES, StoredReceipt,
};

/// `notification.delivered`: the service took `delivery` with `sequence` (no actor: the
/// sender is a service, named in the details).
pub fn delivered(delivery: &NewDelivery, sequence: i64) -> OutboxPayload {
    let row = delivery.clone().into_row(sequence);
    let mut payload = event_payload(&row, EVENT_DELIVERED, delivery.delivered_at, None);
    add_details(
        &mut payload,
        [
            ("sequence", sequence.to_string()),
            ("urgent", delivery.urgent.to_string()),
            ("payload_sha256", delivery.payload_sha256.clone()),
            ("deadline_unix_ms", delivery.deadline.to_string()),
            ("delivered_by", delivery.delivered_by.clone()),
            ("approved_by", delivery.approved_by.clone()),
        ],
    );
    payload
}

/// `notification.acknowledged`: `officer` acknowledged `row` with `receipt`, which the event
/// carries for the hop back to the disclosure service.
pub fn acknowledged(row: &DeliveryRow, officer: &Caller, receipt: &StoredReceipt) -> OutboxPayload {
    let mut payload = event_payload(
        row,
        EVENT_ACKNOWLEDGED,
        receipt.acknowledged_at,
        Some(actor(officer)),
    );
    payload.trace_id = officer.trace_id.clone();
    add_details(
        &mut payload,
        [
            ("payload_sha256", row.payload_sha256.clone()),
            ("sequence", row.sequence.to_string()),
        ],
    );
    payload.receipt = Some(OutboxReceipt {
        police_reference: receipt.police_reference.clone(),
        acknowledged_by: receipt.acknowledged_by.clone(),
        acknowledged_at_unix_ms: receipt.acknowledged_at,
        statement_base64: STANDARD.encode(&receipt.statement),
        signature_base64: STANDARD.encode(&receipt.signature),
        key_id: receipt.key_id.clone(),
    });
    payload
}

/// `notification.recalled`: the disclosure service recalled `row` (withdrawn by
/// `withdrawn_by` at `withdrawn_at`), at `at`, in the trace `trace_id` (the withdrawal's, or
/// the call's). The reason may hold personal data: the event counts its characters, never
/// quotes it (the disclosure service's own event has it).
pub fn recalled(
    row: &DeliveryRow,
    withdrawn_by: &str,
    withdrawn_at: i64,
    reason_chars: usize,
    at: i64,
    trace_id: String,
) -> OutboxPayload {
    let mut payload = event_payload(row, EVENT_RECALLED, at, None);
    payload.trace_id = trace_id;
    add_details(
        &mut payload,
        [
            ("sequence", row.sequence.to_string()),
            ("withdrawn_by", withdrawn_by.to_owned()),
            ("withdrawn_at_unix_ms", withdrawn_at.to_string()),
            ("reason_chars", reason_chars.to_string()),
            ("acknowledged", row.receipt.is_some().to_string()),
        ],
    );
    payload
}

/// `notification.recall_acknowledged`: `officer` acknowledged the recall of `row` at `at`.
pub fn recall_acknowledged(row: &DeliveryRow, officer: &Caller, at: i64) -> OutboxPayload {
    let mut payload = event_payload(row, EVENT_RECALL_ACKNOWLEDGED, at, Some(actor(officer)));
    payload.trace_id = officer.trace_id.clone();
    add_details(&mut payload, [("sequence", row.sequence.to_string())]);
    payload
}

/// `notification.follow_up_asked`: `officer` asked follow-up `follow_up_id` about `row`. The
/// question may hold personal data: the event names it and counts its characters, never
/// quotes it.
pub fn follow_up_asked(
    row: &DeliveryRow,
    officer: &Caller,
    follow_up_id: &str,
    question_chars: usize,
    at: i64,
) -> OutboxPayload {
    let mut payload = event_payload(row, EVENT_FOLLOW_UP_ASKED, at, Some(actor(officer)));
    payload.trace_id = officer.trace_id.clone();
    add_details(
        &mut payload,
        [
            ("follow_up_id", follow_up_id.to_owned()),
            ("question_chars", question_chars.to_string()),
        ],
    );
    payload
}

/// `notification.escalated`: `escalation` of `delivery` was raised, the next due at
/// `next_at`. The entry belongs to the escalation's own trace (the current span's, when
/// there is one); the delivery's trace id is kept beside it as `delivery_trace_id`.
pub fn escalated(
    delivery: &DeliveryRow,
    escalation: &EscalationRow,
    next_at: i64,
) -> OutboxPayload {
    let mut payload = event_payload(delivery, EVENT_ESCALATED, escalation.raised_at, None);
    if let Some(trace_id) = tryggdel_service_kit::current_trace_id() {
        payload.trace_id = trace_id;
    }
    add_details(
        &mut payload,
        [
            ("escalation_id", escalation.id.clone()),
            ("round", escalation.round.to_string()),
            ("urgent", delivery.urgent.to_string()),
            ("deadline_unix_ms", delivery.deadline.to_string()),
            ("next_escalation_at_unix_ms", next_at.to_string()),
            ("delivery_trace_id", delivery.trace_id.clone()),
        ],
    );
    payload
}

/// `notification.read`: `officer` read `rows` (their payloads) at `at`: about the one
/// delivery, or for a page one event naming each disclosure on it; with every person the
/// deliveries concern, as keyed references. `how` says which call (`list_pending`,
/// `subscribe`).
pub fn read(rows: &[&DeliveryRow], officer: &Caller, how: &str, at: i64) -> Option<OutboxPayload> {
    let first = rows.first()?;
    let mut payload = event_payload(first, EVENT_READ, at, Some(actor(officer)));
    payload.trace_id = officer.trace_id.clone();
    let mut person_refs: Vec<String> = Vec::new();
    for row in rows {
        for reference in &row.person_refs {
            if !person_refs.contains(reference) {
                person_refs.push(reference.clone());
            }
        }
    }
    payload.person_refs = person_refs;
    add_details(&mut payload, [("call", how.to_owned())]);
    if rows.len() > 1 {
        let ids: Vec<&str> = rows.iter().map(|row| row.disclosure_id.as_str()).collect();
        payload.disclosure_id = String::new();
        payload.organisation = String::new();
        payload.legal_basis_id = String::new();
        add_details(
            &mut payload,
            [
                (READ_DISCLOSURES, ids.join(",")),
                ("count", ids.len().to_string()),
            ],
        );
    }
    Some(payload)
}

/// An outbox payload about `row` with no details yet; the trace id is the delivery's, the
/// `traceparent` the current span's (the relays continue its trace).
fn event_payload(
    row: &DeliveryRow,
    event_type: &str,
    at: i64,
    actor: Option<OutboxActor>,
) -> OutboxPayload {
    OutboxPayload {
        event_id: uuid::Uuid::now_v7().hyphenated().to_string(),
        event_type: event_type.to_owned(),
        occurred_at_unix_ms: at,
        actor,
        disclosure_id: row.disclosure_id.clone(),
        organisation: row.organisation.as_str().to_owned(),
        police_region: row.police_region.as_str().to_owned(),
        legal_basis_id: row.legal_basis_id.clone(),
        registry_version: row.registry_version.clone(),
        trace_id: row.trace_id.clone(),
        traceparent: tryggdel_service_kit::current_traceparent().unwrap_or_default(),
        details: BTreeMap::new(),
        receipt: None,
        person_refs: Vec::new(),
    }
}

/// Adds `details` (key, value) to the payload's details.
fn add_details<const N: usize>(payload: &mut OutboxPayload, details: [(&str, String); N]) {
    payload.details.extend(
        details
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value)),
    );
}

/// The actor of an officer's event.
fn actor(caller: &Caller) -> OutboxActor {
    OutboxActor {
        user_id: caller.user().to_owned(),
        roles: caller.role_names(),
        organisation: caller.organisation.code().as_str().to_owned(),
        unit: caller.principal.unit.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tryggdel_auth::{Principal, Role};
    use tryggdel_domain::{Organisation, OrganisationCode, OrganisationKind};

    use super::*;
    use crate::store::records::tests::new_delivery;

    fn officer() -> Caller {
        Caller {
            principal: Principal {
                user_id: "polis-mitt-1".into(),
                organisation: "polisen".into(),
                unit: Some("Regionledningscentralen".into()),
                roles: vec![Role::PoliceOfficer],
                police_region: Some("mitt".into()),
                display_name: None,
                token_id: "jti-1".into(),
            },
            organisation: Organisation::new(
                OrganisationCode::parse("polisen").unwrap(),
                "Polismyndigheten",
                OrganisationKind::Police,
            )
            .unwrap(),
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            traceparent: String::new(),
        }
    }

    fn details(payload: &OutboxPayload) -> Vec<(&str, &str)> {
        payload
            .details
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect()
    }

    #[test]
    fn a_delivery_event_names_the_delivery_and_its_sender() {
        let payload = delivered(&new_delivery(), 7);
        assert_eq!(payload.event_type, EVENT_DELIVERED);
        assert_eq!(payload.occurred_at_unix_ms, 2_000);
        assert_eq!(payload.actor, None);
        assert_eq!(
            (
                payload.disclosure_id.as_str(),
                payload.organisation.as_str(),
                payload.police_region.as_str()
            ),
            (
                "0193a1b2-0000-7000-8000-000000000001",
                "bollnas-kommun",
                "mitt"
            )
        );
        assert_eq!(payload.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        let hash = "ab".repeat(32);
        assert_eq!(
            details(&payload),
            [
                ("approved_by", "beslut-bollnas"),
                ("deadline_unix_ms", "3000"),
                ("delivered_by", "disclosure"),
                ("payload_sha256", hash.as_str()),
                ("sequence", "7"),
                ("urgent", "true"),
            ]
        );
    }

    #[test]
    fn an_acknowledgement_carries_the_receipt_and_the_officers_trace() {
        let row = new_delivery().into_row(7);
        let receipt = StoredReceipt {
            police_reference: "5000-K123456-26".into(),
            acknowledged_by: "polis-mitt-1".into(),
            acknowledged_at: 2_500,
            statement: b"statement".to_vec(),
            signature: vec![0, 1, 2],
            key_id: "01020304".into(),
        };
        let payload = acknowledged(&row, &officer(), &receipt);
        assert_eq!(payload.event_type, EVENT_ACKNOWLEDGED);
        assert_eq!(payload.occurred_at_unix_ms, 2_500);
        assert_eq!(payload.trace_id, "0af7651916cd43dd8448eb211c80319c");
        let actor = payload.actor.clone().unwrap();
        assert_eq!(
            (actor.user_id.as_str(), actor.organisation.as_str()),
            ("polis-mitt-1", "polisen")
        );
        assert_eq!(actor.unit, "Regionledningscentralen");
        let carried = payload.receipt.clone().unwrap();
        assert_eq!(carried.statement_base64, "c3RhdGVtZW50");
        assert_eq!(carried.signature_base64, "AAEC");
        assert_eq!(carried.police_reference, "5000-K123456-26");
        assert_eq!(details(&payload).len(), 2);
    }

    #[test]
    fn a_follow_up_event_never_quotes_the_question() {
        let row = new_delivery().into_row(7);
        let payload = follow_up_asked(&row, &officer(), "f1", 21, 2_600);
        assert_eq!(payload.event_type, EVENT_FOLLOW_UP_ASKED);
        assert_eq!(
            details(&payload),
            [("follow_up_id", "f1"), ("question_chars", "21")]
        );
        assert!(payload.receipt.is_none());
    }

    #[test]
    fn an_escalation_keeps_the_deliverys_trace_beside_its_own() {
        let row = new_delivery().into_row(7);
        let escalation = EscalationRow {
            id: "e1".into(),
            disclosure_id: row.disclosure_id.clone(),
            organisation: row.organisation.clone(),
            police_region: row.police_region,
            urgent: true,
            deadline: 3_000,
            raised_at: 3_100,
            round: 2,
        };
        let payload = escalated(&row, &escalation, 4_000);
        assert_eq!(payload.event_type, EVENT_ESCALATED);
        assert_eq!(payload.occurred_at_unix_ms, 3_100);
        assert_eq!(payload.actor, None);
        assert_eq!(
            details(&payload),
            [
                ("deadline_unix_ms", "3000"),
                ("delivery_trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
                ("escalation_id", "e1"),
                ("next_escalation_at_unix_ms", "4000"),
                ("round", "2"),
                ("urgent", "true"),
            ]
        );
    }
}
