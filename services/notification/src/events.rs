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
    EscalationRow, NewDelivery, OutboxActor, OutboxPayload, OutboxReceipt, StoredReceipt,
};

/// `notification.delivered`: the service took `delivery` with `sequence` (no actor: the
/// sender is a service, named in the details).
pub fn delivered(delivery: &NewDelivery, sequence: i64) -> OutboxPayload {
    let row = delivery.clone().into_row(sequence);
    let mut payload = event_payload(&row, EVENT_DELIVERED, delivery.delivered_at, None);
    let details = [
        ("sequence", sequence.to_string()),
        ("urgent", delivery.urgent.to_string()),
        ("payload_sha256", delivery.payload_sha256.clone()),
        ("deadline_unix_ms", delivery.deadline.to_string()),
        ("delivered_by", delivery.delivered_by.clone()),
        ("approved_by", delivery.approved_by.clone()),
    ];
    payload.details.extend(
        details
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value)),
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
    payload
        .details
        .insert("payload_sha256".into(), row.payload_sha256.clone());
    payload
        .details
        .insert("sequence".into(), row.sequence.to_string());
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
    payload
        .details
        .insert("follow_up_id".into(), follow_up_id.to_owned());
    payload
        .details
        .insert("question_chars".into(), question_chars.to_string());
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
    let details = [
        ("escalation_id", escalation.id.clone()),
        ("round", escalation.round.to_string()),
        ("urgent", delivery.urgent.to_string()),
        ("deadline_unix_ms", delivery.deadline.to_string()),
        ("next_escalation_at_unix_ms", next_at.to_string()),
        ("delivery_trace_id", delivery.trace_id.clone()),
    ];
    payload.details.extend(
        details
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value)),
    );
    payload
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
    }
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
