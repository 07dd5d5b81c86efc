//! RecordReceipt: the police's signed receipt, brought back by the notification service.
//!
//! Invariants: only the notification service may record a receipt; a receipt is accepted only
//! with a valid signature of the pinned receipt key, for this disclosure, its region and its
//! approved payload's hash; a receipt recorded twice is answered as a duplicate.

use tonic::Request;
use tryggdel_domain::{DisclosureState, LifecycleAction, ReceiptStatement, verify_receipt};
use tryggdel_proto::common::v1::DisclosureState as WireState;
use tryggdel_proto::disclosure::v1::{RecordReceiptRequest, RecordReceiptResponse};
use tryggdel_service_kit::{ServiceError, now_unix_ms};

use crate::api::DisclosureApi;
use crate::checks::{self, parse_disclosure_id};
use crate::events::{Trace, outbox_event, police_actor, system_actor};
use crate::policy::{NOTIFICATION_SERVICE, RECORDS_RECEIPTS};
use crate::store::{DeliveryRow, DisclosureRecord};

impl DisclosureApi {
    /// The police's signed receipt, from the notification service.
    pub(crate) async fn record_receipt(
        &self,
        request: Request<RecordReceiptRequest>,
    ) -> Result<RecordReceiptResponse, ServiceError> {
        RECORDS_RECEIPTS.check(&request, |name| name == NOTIFICATION_SERVICE)?;
        let request = request.into_inner();
        // The server span continues the receipt relay's trace (the police acknowledgement's).
        let trace = Trace::continuing(&request.trace_id);
        let id = parse_disclosure_id(&request.disclosure_id)?;
        let statement = verify_receipt(
            &request.statement,
            &request.signature,
            &request.key_id,
            &self.receipt_key,
        )
        .map_err(|error| ServiceError::invalid("signature", error))?;
        if statement.disclosure_id != id {
            return Err(ServiceError::invalid(
                "statement",
                "the receipt is about another disclosure",
            ));
        }
        // A concurrent change (the delivery relay recording the hand-over) moves the version.
        for _ in 0..3 {
            let record = self
                .store
                .get(&id)
                .await?
                .ok_or(ServiceError::NotFound("disclosure"))?;
            check_receipt_matches(&statement, &record)?;
            if record.state == DisclosureState::Acknowledged {
                return Ok(acknowledged(true));
            }
            if self
                .acknowledge(&trace, &request, &statement, record)
                .await?
            {
                tracing::info!(disclosure_id = %id, "receipt recorded");
                return Ok(acknowledged(false));
            }
        }
        Err(ServiceError::Unavailable(
            "the disclosure kept changing; retry".into(),
        ))
    }

    /// Moves `record` to acknowledged (through delivered, if the receipt overtook the delivery
    /// relay's own record of the hand-over) with the receipt as its delivery record. False when
    /// the record changed meanwhile.
    async fn acknowledge(
        &self,
        trace: &Trace,
        request: &RecordReceiptRequest,
        statement: &ReceiptStatement,
        record: DisclosureRecord,
    ) -> Result<bool, ServiceError> {
        let mut next = record.clone();
        let mut events = Vec::new();
        if record.state == DisclosureState::Approved {
            next.advance(
                checks::step(&next, LifecycleAction::Deliver)?,
                now_unix_ms(),
            );
            let details = [("police_region", record.police_region.clone())];
            events.push(
                self.payload_as(
                    system_actor(),
                    trace,
                    &next,
                    "disclosure.delivered",
                    &details,
                )
                .and_then(outbox_event)?,
            );
        }
        next.advance(
            checks::step(&next, LifecycleAction::Acknowledge)?,
            now_unix_ms(),
        );
        let details = [
            ("police_reference", statement.police_reference.clone()),
            ("acknowledged_at", statement.acknowledged_at.clone()),
            ("receipt_key_id", request.key_id.clone()),
        ];
        events.push(
            self.payload_as(
                police_actor(&statement.acknowledged_by),
                trace,
                &next,
                "disclosure.acknowledged",
                &details,
            )
            .and_then(outbox_event)?,
        );
        let delivered_at = self
            .store
            .delivery(&record.id)
            .await?
            .map(|delivery| delivery.delivered_at)
            .unwrap_or(statement.acknowledged_at_unix_ms);
        let delivery = DeliveryRow {
            disclosure_id: record.id.clone(),
            police_region: record.police_region.clone(),
            delivered_at,
            police_reference: statement.police_reference.clone(),
            acknowledged_by: statement.acknowledged_by.clone(),
            acknowledged_at: statement.acknowledged_at_unix_ms,
            receipt_statement: Some(request.statement.clone()),
            receipt_signature: Some(request.signature.clone()),
            receipt_key_id: request.key_id.clone(),
        };
        let recorded = self
            .store
            .record_delivery(&next, record.version, &events, &delivery, None)
            .await?;
        if recorded {
            self.signal_outbox();
        }
        Ok(recorded)
    }
}

/// The receipt must be from the region the disclosure went to, for the payload approved.
fn check_receipt_matches(
    statement: &ReceiptStatement,
    record: &DisclosureRecord,
) -> Result<(), ServiceError> {
    if statement.police_region != record.police_region {
        return Err(ServiceError::invalid(
            "statement",
            format!(
                "the receipt is from region {}, the disclosure went to {}",
                statement.police_region, record.police_region
            ),
        ));
    }
    if statement.payload_sha256 != record.payload_sha256() {
        return Err(ServiceError::FailedPrecondition(
            "the receipt is for another payload than the one approved".into(),
        ));
    }
    Ok(())
}

fn acknowledged(duplicate: bool) -> RecordReceiptResponse {
    RecordReceiptResponse {
        state: WireState::Acknowledged as i32,
        duplicate,
    }
}
