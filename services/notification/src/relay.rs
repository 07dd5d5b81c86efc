//! The outbox relay to the audit log: every event the service committed reaches the log
//! exactly once in effect. The relay reads events not yet relayed in seq order, appends them
//! (the log dedupes by event id), and marks them only after the log has made them durable. A
//! crash anywhere in between at worst sends an event again. Mirrors the disclosure service's
//! relay.

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt as _;
use tryggdel_proto::audit::v1::{Actor, AuditEvent, ObjectRef, Outcome};
use tryggdel_proto::disclosure::v1::RecordReceiptRequest;
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_service_kit::now_unix_ms;
use tryggdel_service_kit::{
    AuditLink, ServiceEndpoint, TracedChannel, TracedEvent, call_in_span, client_span,
};
pub use tryggdel_service_kit::{Relay, RelayConfig};

use crate::store::{NotificationStore, OutboxPayload};

/// The audit event for an outbox payload: the disclosing organisation as the data
/// controller, the police region as the recipient, the officer (or nobody, for what the
/// service does on its own) as the actor.
pub fn audit_event(payload: &OutboxPayload) -> AuditEvent {
    let mut details = payload.details.clone();
    details.insert("police_region".into(), payload.police_region.clone());
    if let Some(receipt) = &payload.receipt {
        details.insert("police_reference".into(), receipt.police_reference.clone());
        details.insert("receipt_key_id".into(), receipt.key_id.clone());
        details.insert(
            "acknowledged_at_unix_ms".into(),
            receipt.acknowledged_at_unix_ms.to_string(),
        );
    }
    AuditEvent {
        event_id: payload.event_id.clone(),
        action: payload.event_type.clone(),
        occurred_at_unix_ms: payload.occurred_at_unix_ms,
        actor: payload.actor.as_ref().map(|actor| Actor {
            user_id: actor.user_id.clone(),
            roles: actor.roles.clone(),
            organisation: actor.organisation.clone(),
            unit: actor.unit.clone(),
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
        outcome: Outcome::Success as i32,
        outcome_detail: String::new(),
        person_refs: Vec::new(),
        trace_id: payload.trace_id.clone(),
        details: details.into_iter().collect(),
    }
}

/// Moves up to `batch` events not yet in the audit log there; returns how many.
pub async fn relay_to_audit(
    store: &NotificationStore,
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

/// How many receipts are on their way to the disclosure service at once.
const RECEIPTS_IN_FLIGHT: usize = 16;

/// Hands up to `batch` receipts to the disclosure service (`RecordReceipt`, idempotent there),
/// several at once (each waits for the disclosure service's commit), and marks those it
/// recorded in one transaction; returns how many. If any failed, the others are still marked
/// and the first failure is returned (the relay backs off and sends the rest again).
pub async fn relay_receipts(
    store: &NotificationStore,
    disclosure: &DisclosureLink,
    batch: i64,
) -> anyhow::Result<usize> {
    let pending = store
        .awaiting_disclosure(batch)
        .await
        .context("reading acknowledgements")?;
    let count = pending.len();
    let outcomes: Vec<anyhow::Result<i64>> = futures::stream::iter(pending)
        .map(|(seq, payload)| relay_receipt(disclosure, seq, payload))
        .buffer_unordered(RECEIPTS_IN_FLIGHT)
        .collect()
        .await;
    let mut recorded = Vec::with_capacity(outcomes.len());
    let mut first_failure = None;
    for outcome in outcomes {
        match outcome {
            Ok(seq) => recorded.push(seq),
            Err(error) => {
                first_failure.get_or_insert(error);
            }
        }
    }
    recorded.sort_unstable();
    if !recorded.is_empty() {
        store
            .mark_disclosure_relayed(&recorded, now_unix_ms())
            .await
            .context("marking relayed receipts")?;
    }
    match first_failure {
        Some(error) => Err(error),
        None => Ok(count),
    }
}

/// Sends the receipt of acknowledgement `seq` to the disclosure service; returns `seq`.
async fn relay_receipt(
    disclosure: &DisclosureLink,
    seq: i64,
    payload: String,
) -> anyhow::Result<i64> {
    let payload: OutboxPayload = serde_json::from_str(&payload)
        .with_context(|| format!("outbox event {seq} has an unreadable payload"))?;
    let receipt = payload
        .receipt
        .as_ref()
        .with_context(|| format!("acknowledgement {seq} carries no receipt"))?;
    let request = RecordReceiptRequest {
        disclosure_id: payload.disclosure_id.clone(),
        statement: STANDARD
            .decode(&receipt.statement_base64)
            .with_context(|| format!("acknowledgement {seq}: receipt statement"))?,
        signature: STANDARD
            .decode(&receipt.signature_base64)
            .with_context(|| format!("acknowledgement {seq}: receipt signature"))?,
        key_id: receipt.key_id.clone(),
        trace_id: payload.trace_id.clone(),
    };
    // The hop back continues the acknowledgement's trace.
    let span = client_span("tryggdel.disclosure.v1.DisclosureService", "RecordReceipt");
    if let Some(parent) = tryggdel_service_kit::context_from_traceparent(&payload.traceparent) {
        tryggdel_service_kit::set_parent(&span, parent);
    }
    disclosure
        .record_receipt(span, request)
        .await
        .with_context(|| {
            format!(
                "recording the receipt of {} in the disclosure service",
                payload.disclosure_id
            )
        })?;
    Ok(seq)
}

/// A connection to the disclosure service, as the notification service (connects on first
/// use). Calls carry the trace context of their client span.
#[derive(Clone)]
pub struct DisclosureLink {
    client: DisclosureServiceClient<TracedChannel>,
    timeout: std::time::Duration,
}

impl DisclosureLink {
    pub fn new(endpoint: &ServiceEndpoint) -> anyhow::Result<DisclosureLink> {
        Ok(DisclosureLink {
            client: DisclosureServiceClient::new(endpoint.traced_channel()?),
            timeout: endpoint.timeout,
        })
    }

    /// Calls `RecordReceipt` in `span` (a client span).
    async fn record_receipt(
        &self,
        span: tracing::Span,
        request: RecordReceiptRequest,
    ) -> anyhow::Result<()> {
        let mut client = self.client.clone();
        call_in_span(span, self.timeout, client.record_receipt(request))
            .await
            // The status stays the error's source, with its own cause (e.g. the transport's).
            .map_err(anyhow::Error::new)?;
        Ok(())
    }
}
