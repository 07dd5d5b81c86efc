//! What a police officer does, in the region their token names: ListPending (the region's
//! unacknowledged deliveries, paged by sequence), Acknowledge (a receipt signed once over its
//! exact bytes; acknowledging again returns the first receipt) and AskFollowUp (a question to
//! the disclosing organisation, sealed at rest). Subscribe is in [`crate::subscription`],
//! recalls and their acknowledgement in [`crate::recall`]; a recalled delivery is listed as
//! pending until its recall is acknowledged, and is no longer acknowledged itself.

use tonic::Request;
use tryggdel_domain::{Inbox, RECEIPT_FORMAT, ReceiptStatement, sign_receipt};
use tryggdel_proto::notification::v1::{
    AcknowledgeRequest, AskFollowUpRequest, FollowUp, ListPendingRequest, ListPendingResponse,
    Receipt,
};
use tryggdel_service_kit::{
    Caller, ServiceError, decode_page_token, encode_page_token, invalid_page_token, now_unix_ms,
    page_size, rfc3339,
};

use crate::api::NotificationApi;
use crate::events;
use crate::policy::{delivery_for_region, officer_inbox};
use crate::recall::refuse_acknowledging_recalled;
use crate::store::{DeliveryRow, FollowUpRow, StoredReceipt, question_context};
use crate::validate::{DisclosureId, MAX_POLICE_REFERENCE_CHARS, question, required_text};
use crate::wire::{follow_up_message, receipt_message};

/// The largest ListPending page.
pub const MAX_PAGE_SIZE: u32 = 200;
const DEFAULT_PAGE_SIZE: u32 = 50;

impl NotificationApi {
    pub(crate) async fn list_pending(
        &self,
        request: Request<ListPendingRequest>,
    ) -> Result<ListPendingResponse, ServiceError> {
        let (caller, region) = self.officer(&request, "listing pending deliveries").await?;
        let request = request.into_inner();
        if request.page_size > MAX_PAGE_SIZE {
            return Err(ServiceError::invalid(
                "page_size",
                format!("at most {MAX_PAGE_SIZE}"),
            ));
        }
        let limit = page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
        let after = if request.page_token.is_empty() {
            0
        } else {
            decode_pending_token(&request.page_token)?
        };
        let rows = self.store().pending(region, after, i64::MAX, limit).await?;
        let next_page_token = match rows.last() {
            Some(last) if rows.len() == limit as usize => encode_pending_token(last.sequence),
            _ => String::new(),
        };
        let deliveries = rows
            .iter()
            .map(|row| self.wire_delivery(row))
            .collect::<Result<_, _>>()?;
        let read: Vec<&DeliveryRow> = rows.iter().collect();
        self.log_read(&caller, &read, "list_pending").await?;
        Ok(ListPendingResponse {
            deliveries,
            next_page_token,
        })
    }

    pub(crate) async fn acknowledge(
        &self,
        request: Request<AcknowledgeRequest>,
    ) -> Result<Receipt, ServiceError> {
        let (caller, region) = self.officer(&request, "acknowledging a delivery").await?;
        let request = request.into_inner();
        let disclosure_id = DisclosureId::parse(&request.disclosure_id)?;
        let police_reference = required_text(
            "police_reference",
            request.police_reference.trim(),
            MAX_POLICE_REFERENCE_CHARS,
        )?;
        let row = self.delivery_in_region(&disclosure_id, region).await?;
        if let Some(receipt) = &row.receipt {
            return Ok(receipt_message(&row, receipt));
        }
        refuse_acknowledging_recalled(&row)?;
        let receipt = self.sign_receipt(&row, police_reference, &caller, now_unix_ms())?;
        let event = events::acknowledged(&row, &caller, &receipt).to_event()?;
        if self
            .store()
            .acknowledge(disclosure_id.as_str(), &receipt, &event)
            .await?
        {
            self.signal_outbox();
            tracing::info!(disclosure_id = %disclosure_id, police_region = %row.police_region.as_str(), "acknowledged");
            return Ok(receipt_message(&row, &receipt));
        }
        // A concurrent acknowledgement won; its receipt is the one.
        let stored = self.store().get(disclosure_id.as_str()).await?;
        match stored {
            Some(stored) => match &stored.receipt {
                Some(receipt) => Ok(receipt_message(&stored, receipt)),
                None => Err(ServiceError::internal(anyhow::anyhow!(
                    "acknowledgement of {disclosure_id} neither applied nor found"
                ))),
            },
            None => Err(ServiceError::NotFound("delivery")),
        }
    }

    pub(crate) async fn ask_follow_up(
        &self,
        request: Request<AskFollowUpRequest>,
    ) -> Result<FollowUp, ServiceError> {
        let (caller, region) = self
            .officer(&request, "asking a follow-up question")
            .await?;
        let request = request.into_inner();
        let disclosure_id = DisclosureId::parse(&request.disclosure_id)?;
        let question = question(&request.question)?;
        let row = self.delivery_in_region(&disclosure_id, region).await?;
        let now = now_unix_ms();
        let id = uuid::Uuid::now_v7().hyphenated().to_string();
        let follow_up = FollowUpRow {
            id: id.clone(),
            disclosure_id: row.disclosure_id.clone(),
            organisation: row.organisation.clone(),
            police_region: row.police_region,
            asked_by: caller.user().to_owned(),
            question_sealed: self
                .cipher()
                .seal(question.as_bytes(), &question_context(&id))?,
            asked_at: now,
        };
        let event = events::follow_up_asked(&row, &caller, &id, question.chars().count(), now)
            .to_event()?;
        self.store().insert_follow_up(&follow_up, &event).await?;
        self.signal_outbox();
        tracing::info!(disclosure_id = %disclosure_id, follow_up_id = %id, "follow-up question asked");
        Ok(follow_up_message(&follow_up, question))
    }

    /// The calling police officer and the region they act in; anyone else is refused, naming
    /// `action`.
    pub(crate) async fn officer<T>(
        &self,
        request: &Request<T>,
        action: &str,
    ) -> Result<(Caller, Inbox), ServiceError> {
        let caller = self.authenticator().user(request).await?;
        let region = officer_inbox(&caller, action)?;
        Ok((caller, region))
    }

    /// The delivery of `disclosure_id` if it went to `region`; otherwise it does not exist.
    pub(crate) async fn delivery_in_region(
        &self,
        disclosure_id: &DisclosureId,
        region: Inbox,
    ) -> Result<DeliveryRow, ServiceError> {
        delivery_for_region(self.store().get(disclosure_id.as_str()).await?, region)
    }

    /// The receipt of `officer`'s acknowledgement of `row` at `now`: the statement signed
    /// with the receipt key, kept as the exact bytes signed.
    fn sign_receipt(
        &self,
        row: &DeliveryRow,
        police_reference: String,
        officer: &Caller,
        now: i64,
    ) -> Result<StoredReceipt, ServiceError> {
        let acknowledged_at = rfc3339(now)
            .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("clock out of range")))?;
        let statement = ReceiptStatement {
            format: RECEIPT_FORMAT.to_owned(),
            disclosure_id: row.disclosure_id.clone(),
            police_region: row.police_region.as_str().to_owned(),
            police_reference: police_reference.clone(),
            acknowledged_by: officer.user().to_owned(),
            acknowledged_at,
            acknowledged_at_unix_ms: now,
            payload_sha256: row.payload_sha256.clone(),
        };
        let signed = sign_receipt(&statement, self.receipt_key()).map_err(|error| {
            ServiceError::internal(anyhow::Error::new(error).context("signing"))
        })?;
        Ok(StoredReceipt {
            police_reference,
            acknowledged_by: officer.user().to_owned(),
            acknowledged_at: now,
            statement: signed.statement,
            signature: signed.signature,
            key_id: signed.key_id,
        })
    }
}

/// The ListPending token of the page after `sequence`.
fn encode_pending_token(sequence: i64) -> String {
    encode_page_token(&format!("after:{sequence}"))
}

/// The sequence a ListPending token continues after.
fn decode_pending_token(token: &str) -> Result<i64, ServiceError> {
    decode_page_token(token)?
        .strip_prefix("after:")
        .and_then(|n| n.parse().ok())
        .filter(|sequence: &i64| *sequence >= 0)
        .ok_or_else(invalid_page_token)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tonic::Status;

    use super::*;

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_pending_token(&encode_pending_token(41)).unwrap(), 41);
        for bad in [
            "garbage!",
            &encode_page_token("after:x"),
            &encode_page_token("after:-3"),
        ] {
            let status: Status = decode_pending_token(bad).unwrap_err().into();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(status.message().starts_with("page_token:"), "{bad}");
        }
    }
}
