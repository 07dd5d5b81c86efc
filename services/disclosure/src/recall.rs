//! The recall relay: a disclosure withdrawn after delivery (its `disclosure.recalled` event)
//! is told to the notification service (`Recall`, idempotent there by disclosure id), which
//! shows the police the recall and records their acknowledgement. [`RecallsToPolice`] is the
//! outbox destination of those events.
//!
//! Invariants: every recall reaches the notification service at least once, in the trace of
//! the withdrawal, with the withdrawal's reason, who withdrew and when; a recall the
//! notification service refuses for good is logged as an error and not sent again (the
//! withdrawal itself stands, and its `disclosure.recalled` entry is in the audit log).

use anyhow::Context as _;
use tryggdel_proto::notification::v1::RecallRequest;
use tryggdel_service_kit::{Destination, Retry, Sent};
use tryggdel_storage::{OutboxDestination, PendingEvent};

use crate::delivery::NotificationLink;
use crate::store::{OutboxPayload, TO_POLICE_RECALL};

/// The notification service as the destination of recalls.
pub struct RecallsToPolice {
    link: NotificationLink,
}

impl RecallsToPolice {
    /// Recalls over `link`.
    pub fn new(link: NotificationLink) -> RecallsToPolice {
        RecallsToPolice { link }
    }
}

impl Destination for RecallsToPolice {
    fn name(&self) -> &'static str {
        "disclosure.recall"
    }

    fn outbox(&self) -> OutboxDestination {
        TO_POLICE_RECALL
    }

    /// Sends the recalls one after another, in withdrawal order; stops at the first
    /// transient failure, which is returned (the relay backs off and sends the rest again).
    async fn send(&self, events: Vec<PendingEvent>) -> Sent {
        let mut sent = Sent::default();
        for pending in events {
            match self.recall_one(&pending).await {
                Ok(()) => sent.held.push(pending.seq),
                Err(error) => {
                    sent.failure = Some(error);
                    break;
                }
            }
        }
        sent
    }
}

impl RecallsToPolice {
    /// Sends the recall `pending`; a refusal for good is logged and settles it.
    async fn recall_one(&self, pending: &PendingEvent) -> anyhow::Result<()> {
        let seq = pending.seq;
        let payload: OutboxPayload = serde_json::from_str(&pending.event.payload)
            .with_context(|| format!("outbox event {seq} has an unreadable payload"))?;
        let request = recall_request(&payload)
            .with_context(|| format!("recall event {seq} is incomplete"))?;
        let disclosure_id = request.disclosure_id.clone();
        match self.link.recall(request, &pending.event.traceparent).await {
            Ok(response) => {
                tracing::info!(
                    disclosure_id = %disclosure_id,
                    duplicate = response.duplicate,
                    "recall handed to the police"
                );
                Ok(())
            }
            Err(status) if Retry::of(&status) == Retry::Never => {
                tracing::error!(
                    disclosure_id = %disclosure_id,
                    code = ?status.code(),
                    message = status.message(),
                    "the notification service refused the recall for good"
                );
                Ok(())
            }
            Err(status) => Err(anyhow::Error::new(status))
                .with_context(|| format!("recalling {disclosure_id} from the police")),
        }
    }
}

/// The Recall call a `disclosure.recalled` event asks for.
fn recall_request(payload: &OutboxPayload) -> anyhow::Result<RecallRequest> {
    let detail = |name: &str| {
        payload
            .details
            .get(name)
            .with_context(|| format!("no {name}"))
    };
    Ok(RecallRequest {
        disclosure_id: payload.disclosure_id.clone(),
        reason: detail("reason")?.clone(),
        withdrawn_by: payload.actor.user_id.clone(),
        withdrawn_at_unix_ms: detail("withdrawn_at_unix_ms")?
            .parse()
            .context("withdrawn_at_unix_ms is not a time")?,
        trace_id: payload.trace_id.clone(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_recalled_event_names_the_withdrawal() {
        let payload: OutboxPayload = serde_json::from_value(serde_json::json!({
            "event_id": "e1",
            "event_type": "disclosure.recalled",
            "occurred_at_unix_ms": 5,
            "disclosure_id": "d1",
            "organisation": "bollnas-kommun",
            "police_region": "mitt",
            "actor": {"user_id": "handlaggare-bollnas", "roles": ["caseworker"], "organisation": "bollnas-kommun", "unit": ""},
            "state": "withdrawn",
            "version": 4,
            "legal_basis_id": "OSL-10-18c",
            "registry_version": "v",
            "urgent": false,
            "person_refs": [],
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "details": {"reason": "Fel person", "withdrawn_at_unix_ms": "1700", "recalled_from": "delivered"}
        }))
        .unwrap();
        let request = recall_request(&payload).unwrap();
        assert_eq!(request.disclosure_id, "d1");
        assert_eq!(request.reason, "Fel person");
        assert_eq!(request.withdrawn_by, "handlaggare-bollnas");
        assert_eq!(request.withdrawn_at_unix_ms, 1700);
        assert_eq!(request.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        let mut incomplete = payload.clone();
        incomplete.details.remove("reason");
        assert!(recall_request(&incomplete).is_err());
    }
}
