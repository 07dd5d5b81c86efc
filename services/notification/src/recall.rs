//! A delivered disclosure its organisation withdrew: Recall (the disclosure service tells the
//! police, its certificate only, like Deliver; idempotent by disclosure id) and
//! AcknowledgeRecall (a police officer of the delivery's region; acknowledging again returns
//! the first acknowledgement). A recall stops the delivery's escalation, seals its reason like
//! the payload, and is pushed to the region's subscribers with the delivery; until a police
//! officer acknowledges it, ListPending lists the delivery.

use tonic::Request;
use tryggdel_proto::notification::v1::{
    AcknowledgeRecallRequest, Recall, RecallRequest, RecallResponse,
};
use tryggdel_service_kit::{ServiceError, now_unix_ms, trace_id};

use crate::api::NotificationApi;
use crate::delivery_request::TraceId;
use crate::events;
use crate::policy::RECALL;
use crate::store::{
    DeliveryRow, RecallAcknowledgement, StoredRecall, payload_context, recall_reason_context,
};
use crate::validate::{DisclosureId, MAX_QUESTION_CHARS, MAX_TEXT_CHARS, required_text};
use crate::wire::recall_message;

impl NotificationApi {
    pub(crate) async fn recall(
        &self,
        request: Request<RecallRequest>,
    ) -> Result<RecallResponse, ServiceError> {
        RECALL.check(&request, |name| self.is_sender(name))?;
        let call_trace_id = trace_id(request.metadata());
        let request = request.into_inner();
        let disclosure_id = DisclosureId::parse(&request.disclosure_id)?;
        let reason = request.reason.trim();
        let reason = required_text("reason", reason, MAX_QUESTION_CHARS)?;
        let withdrawn_by = required_text("withdrawn_by", &request.withdrawn_by, MAX_TEXT_CHARS)?;
        if request.withdrawn_at_unix_ms <= 0 {
            return Err(ServiceError::invalid(
                "withdrawn_at_unix_ms",
                "must be a time after 1970",
            ));
        }
        let trace_id =
            TraceId::parse_optional(request.trace_id)?.map_or(call_trace_id, TraceId::into_string);
        let row = self
            .store()
            .get(disclosure_id.as_str())
            .await?
            .ok_or(ServiceError::NotFound("delivery"))?;
        if row.recall.is_some() {
            return Ok(RecallResponse { duplicate: true });
        }
        let now = now_unix_ms();
        let recall = StoredRecall {
            recalled_at: now,
            withdrawn_by,
            withdrawn_at: request.withdrawn_at_unix_ms,
            reason_sealed: self.cipher().seal(
                reason.as_bytes(),
                &recall_reason_context(disclosure_id.as_str()),
            )?,
            acknowledgement: None,
        };
        let event = events::recalled(
            &row,
            &recall.withdrawn_by,
            recall.withdrawn_at,
            reason.chars().count(),
            now,
            trace_id,
        )
        .to_event()?;
        if !self
            .store()
            .recall(disclosure_id.as_str(), &recall, &event)
            .await?
        {
            // A concurrent Recall committed first.
            return Ok(RecallResponse { duplicate: true });
        }
        let recalled = DeliveryRow {
            next_escalation_at: None,
            recall: Some(recall),
            ..row
        };
        let payload = self.cipher().open(
            &recalled.payload_sealed,
            &payload_context(disclosure_id.as_str()),
        )?;
        self.publish_recall(&recalled, payload.to_vec(), reason);
        tracing::info!(
            disclosure_id = %disclosure_id,
            police_region = %recalled.police_region.as_str(),
            "recalled"
        );
        Ok(RecallResponse { duplicate: false })
    }

    pub(crate) async fn acknowledge_recall(
        &self,
        request: Request<AcknowledgeRecallRequest>,
    ) -> Result<Recall, ServiceError> {
        let (caller, region) = self.officer(&request, "acknowledging a recall").await?;
        let disclosure_id = DisclosureId::parse(&request.into_inner().disclosure_id)?;
        let row = self.delivery_in_region(&disclosure_id, region).await?;
        let Some(recall) = &row.recall else {
            return Err(ServiceError::FailedPrecondition(format!(
                "disclosure {disclosure_id} has not been recalled"
            )));
        };
        if recall.acknowledgement.is_some() {
            return self.recall_view(&row);
        }
        let now = now_unix_ms();
        let acknowledgement = RecallAcknowledgement {
            acknowledged_by: caller.user().to_owned(),
            acknowledged_at: now,
        };
        let event = events::recall_acknowledged(&row, &caller, now).to_event()?;
        if self
            .store()
            .acknowledge_recall(disclosure_id.as_str(), &acknowledgement, &event)
            .await?
        {
            self.signal_outbox();
            tracing::info!(disclosure_id = %disclosure_id, "recall acknowledged");
            let mut recall = recall.clone();
            recall.acknowledgement = Some(acknowledgement);
            return self.recall_view(&DeliveryRow {
                recall: Some(recall),
                ..row
            });
        }
        // A concurrent acknowledgement won; it is the one.
        let stored = self
            .store()
            .get(disclosure_id.as_str())
            .await?
            .ok_or(ServiceError::NotFound("delivery"))?;
        self.recall_view(&stored)
    }

    /// The recall of `row` with its reason opened (FAILED_PRECONDITION if there is none).
    pub(crate) fn recall_view(&self, row: &DeliveryRow) -> Result<Recall, ServiceError> {
        let Some(recall) = &row.recall else {
            return Err(ServiceError::FailedPrecondition(format!(
                "disclosure {} has not been recalled",
                row.disclosure_id
            )));
        };
        Ok(recall_message(
            row,
            recall,
            self.recall_reason(row, recall)?,
        ))
    }

    /// The opened reason of `recall` of `row`.
    pub(crate) fn recall_reason(
        &self,
        row: &DeliveryRow,
        recall: &StoredRecall,
    ) -> Result<String, ServiceError> {
        let opened = self.cipher().open(
            &recall.reason_sealed,
            &recall_reason_context(&row.disclosure_id),
        )?;
        String::from_utf8(opened.to_vec())
            .map_err(|_| ServiceError::internal(anyhow::anyhow!("a recall reason is not text")))
    }
}

/// A recalled delivery is no longer acknowledged (its recall is); an acknowledgement that
/// came before the recall stays.
pub(crate) fn refuse_acknowledging_recalled(row: &DeliveryRow) -> Result<(), ServiceError> {
    if row.recall.is_some() && row.receipt.is_none() {
        return Err(ServiceError::FailedPrecondition(format!(
            "disclosure {} was recalled by its organisation; acknowledge the recall instead",
            row.disclosure_id
        )));
    }
    Ok(())
}
