//! The outbox relays: to the audit log (every event) and, in `delivery`, to the notification
//! service (approvals). Every event the service committed reaches the log exactly once in
//! effect. The relay reads events not yet relayed in sequence order, appends
//! them (the log dedupes by event id), and marks them only after the log has made them
//! durable. A crash anywhere in between at worst sends an event again.

use anyhow::Context;
use tryggdel_proto::audit::v1::{Actor, AuditEvent, ObjectRef, Outcome};
use tryggdel_service_kit::{AuditLink, TracedEvent, now_unix_ms};
pub use tryggdel_service_kit::{Relay, RelayConfig};

use crate::store::{DisclosureStore, OutboxPayload};

/// The audit event for an outbox payload.
pub fn audit_event(payload: &OutboxPayload) -> AuditEvent {
    let mut details = payload.details.clone();
    details.insert("state".into(), payload.state.clone());
    details.insert("version".into(), payload.version.to_string());
    details.insert("urgent".into(), payload.urgent.to_string());
    AuditEvent {
        event_id: payload.event_id.clone(),
        action: payload.event_type.clone(),
        occurred_at_unix_ms: payload.occurred_at_unix_ms,
        actor: Some(Actor {
            user_id: payload.actor.user_id.clone(),
            roles: payload.actor.roles.clone(),
            organisation: payload.actor.organisation.clone(),
            unit: payload.actor.unit.clone().unwrap_or_default(),
        }),
        objects: vec![ObjectRef {
            kind: "disclosure".into(),
            id: payload.disclosure_id.clone(),
        }],
        disclosure_id: payload.disclosure_id.clone(),
        organisation: payload.organisation.clone(),
        legal_basis_id: payload.legal_basis_id.clone(),
        registry_version: payload.registry_version.clone(),
        purpose: "disclosure to the police to prevent crime".into(),
        recipient: format!("polisen/{}", payload.police_region),
        outcome: if payload.refusal.is_some() {
            Outcome::Refused as i32
        } else {
            Outcome::Success as i32
        },
        outcome_detail: payload.refusal.clone().unwrap_or_default(),
        person_refs: payload.person_refs.clone(),
        trace_id: payload.trace_id.clone(),
        details: details.into_iter().collect(),
    }
}

/// Moves up to `batch` events not yet in the audit log there; returns how many.
pub async fn relay_to_audit(
    store: &DisclosureStore,
    link: &AuditLink,
    batch: i64,
) -> anyhow::Result<usize> {
    let pending = store
        .awaiting_audit(batch)
        .await
        .context("reading the outbox")?;
    tryggdel_service_kit::relay_to_audit(
        pending,
        link,
        |payload: OutboxPayload| TracedEvent {
            event: audit_event(&payload),
            traceparent: payload.traceparent,
        },
        |seqs| async move {
            store
                .mark_audited(&seqs, now_unix_ms())
                .await
                .map_err(anyhow::Error::from)
        },
    )
    .await
}
