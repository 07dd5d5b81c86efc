//! Deadlines and escalation. Every delivery carries its next escalation time in the database
//! (`next_escalation_at`, first the deadline). A background task looks every
//! `deadline_check_interval` for unacknowledged deliveries whose time has come and, per
//! delivery in one transaction, marks it overdue, records the escalation (round 1, 2, …),
//! writes a `notification.escalated` outbox event and re-arms the timer at now +
//! `escalation_repeat`.
//!
//! Nothing lives in memory, so timers survive restarts, and the conditional update makes two
//! replicas raise each round once. Acknowledging clears the timer in the same transaction as
//! the receipt, so an acknowledged delivery never escalates. An escalation raises the alarm at
//! the disclosing organisation (ListEscalations); it never decides anything on its own.
//!
//! Tracing: an escalation is timer-driven, so each one starts its own trace (its audit
//! entry's trace id is that trace's), linked to the span that made the delivery; the
//! delivery's trace id is kept in the entry's details as `delivery_trace_id`.

use std::time::Duration;

use tracing::Instrument as _;
use tryggdel_service_kit::{Periodic, ServiceError};
use tryggdel_service_kit::{millis, now_unix_ms};

use crate::api::NotificationApi;
use crate::events;
use crate::store::{DeliveryRow, EVENT_DELIVERED, EscalationRow, OutboxPayload};

/// Due deliveries handled per database read.
const BATCH: u32 = 100;

impl NotificationApi {
    /// Raises every escalation due now; returns how many were raised.
    pub async fn escalate_due(&self) -> Result<usize, ServiceError> {
        let mut raised = 0;
        loop {
            let now = now_unix_ms();
            let due = self.store().due_for_escalation(now, BATCH).await?;
            let count = due.len();
            let next_at = now.saturating_add(millis(self.deadlines().escalation_repeat));
            for delivery in due {
                // Timer-driven: each escalation starts its own trace, linked to the delivery's
                // (the approval's) trace, which may be hours old.
                let span = tracing::info_span!(
                    parent: None,
                    "notification.escalate",
                    otel.name = "escalate delivery",
                    disclosure_id = %delivery.disclosure_id,
                    police_region = %delivery.police_region.as_str(),
                    round = delivery.escalations.saturating_add(1),
                );
                if let Some(traceparent) = self.delivered_traceparent(&delivery.disclosure_id).await
                {
                    tryggdel_service_kit::link_to(&span, &traceparent);
                }
                if self
                    .escalate_one(&delivery, now, next_at)
                    .instrument(span)
                    .await?
                {
                    raised += 1;
                }
            }
            if count < BATCH as usize {
                break;
            }
        }
        if raised > 0 {
            self.signal_outbox();
        }
        Ok(raised)
    }

    /// Raises the next escalation of `delivery`; false if it changed since it was read.
    async fn escalate_one(
        &self,
        delivery: &DeliveryRow,
        now: i64,
        next_at: i64,
    ) -> Result<bool, ServiceError> {
        let escalation = EscalationRow {
            id: uuid::Uuid::now_v7().hyphenated().to_string(),
            disclosure_id: delivery.disclosure_id.clone(),
            organisation: delivery.organisation.clone(),
            police_region: delivery.police_region,
            urgent: delivery.urgent,
            deadline: delivery.deadline,
            raised_at: now,
            round: delivery.escalations.saturating_add(1),
        };
        // The entry belongs to this escalation's trace; the delivery's is kept beside it.
        let event = events::escalated(delivery, &escalation, next_at).to_event()?;
        let raised = self
            .store()
            .escalate(delivery, &escalation, next_at, &event)
            .await?;
        if raised {
            tracing::warn!(
                disclosure_id = %delivery.disclosure_id,
                organisation = %delivery.organisation.as_str(),
                police_region = %delivery.police_region.as_str(),
                round = escalation.round,
                urgent = delivery.urgent,
                "delivery not acknowledged in time: escalated"
            );
        }
        Ok(raised)
    }

    /// The `traceparent` the delivery of `disclosure_id` was made in, if known.
    async fn delivered_traceparent(&self, disclosure_id: &str) -> Option<String> {
        let events = self.store().events_of(disclosure_id).await.ok()?;
        events
            .into_iter()
            .find(|(event_type, _)| event_type == EVENT_DELIVERED)
            .and_then(|(_, payload)| serde_json::from_str::<OutboxPayload>(&payload).ok())
            .map(|payload| payload.traceparent)
            .filter(|traceparent| !traceparent.is_empty())
    }
}

/// Starts the deadline checker: due escalations are raised every `interval` until it stops.
pub fn start_deadline_checker(api: NotificationApi, interval: Duration) -> Periodic {
    Periodic::start(
        interval.max(Duration::from_millis(1)),
        move || {
            let api = api.clone();
            async move { api.escalate_due().await.map(drop) }
        },
        |error| {
            let status = tonic::Status::from(error);
            tracing::warn!(
                reason = status.message(),
                "deadline check failed; retrying at the next interval"
            );
        },
    )
}
