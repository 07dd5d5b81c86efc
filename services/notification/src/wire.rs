//! Stored records as the gRPC messages callers receive. Pure: the payload and question are
//! passed in already opened, and "now" is a parameter (overdue is decided against it).

use tryggdel_proto::notification::v1::{
    Delivery, DeliveryStatus, Escalation, FollowUp, Recall, Receipt,
};

use crate::store::{DeliveryRow, EscalationRow, FollowUpRow, StoredRecall, StoredReceipt};

/// A delivery as the police receive it, with its opened `payload` and its `recall` (the
/// reason opened), if any.
pub fn delivery_message(
    row: &DeliveryRow,
    payload: Vec<u8>,
    recall: Option<Recall>,
    now: i64,
) -> Delivery {
    Delivery {
        sequence: to_u64(row.sequence),
        disclosure_id: row.disclosure_id.clone(),
        organisation: row.organisation.as_str().to_owned(),
        police_region: row.police_region.as_str().to_owned(),
        urgent: row.urgent,
        payload,
        payload_sha256: row.payload_sha256.clone(),
        delivered_at_unix_ms: row.delivered_at,
        deadline_unix_ms: row.deadline,
        overdue: row.is_overdue(now),
        receipt: row
            .receipt
            .as_ref()
            .map(|receipt| receipt_message(row, receipt)),
        recall,
    }
}

/// The recall of `row` with its opened `reason`.
pub fn recall_message(row: &DeliveryRow, recall: &StoredRecall, reason: String) -> Recall {
    let acknowledgement = recall.acknowledgement.as_ref();
    Recall {
        disclosure_id: row.disclosure_id.clone(),
        reason,
        withdrawn_by: recall.withdrawn_by.clone(),
        withdrawn_at_unix_ms: recall.withdrawn_at,
        recalled_at_unix_ms: recall.recalled_at,
        acknowledged_by: acknowledgement
            .map(|acknowledged| acknowledged.acknowledged_by.clone())
            .unwrap_or_default(),
        acknowledged_at_unix_ms: acknowledgement
            .map_or(0, |acknowledged| acknowledged.acknowledged_at),
    }
}

/// The signed receipt of `row`, the statement and signature exactly as stored.
pub fn receipt_message(row: &DeliveryRow, receipt: &StoredReceipt) -> Receipt {
    Receipt {
        disclosure_id: row.disclosure_id.clone(),
        police_reference: receipt.police_reference.clone(),
        acknowledged_by: receipt.acknowledged_by.clone(),
        police_region: row.police_region.as_str().to_owned(),
        acknowledged_at_unix_ms: receipt.acknowledged_at,
        payload_sha256: row.payload_sha256.clone(),
        statement: receipt.statement.clone(),
        signature: receipt.signature.clone(),
        key_id: receipt.key_id.clone(),
    }
}

/// A delivery as the disclosing organisation sees it: no payload.
pub fn delivery_status(row: &DeliveryRow, now: i64) -> DeliveryStatus {
    DeliveryStatus {
        disclosure_id: row.disclosure_id.clone(),
        police_region: row.police_region.as_str().to_owned(),
        delivered_at_unix_ms: row.delivered_at,
        deadline_unix_ms: row.deadline,
        overdue: row.is_overdue(now),
        escalations: row.escalations,
        receipt: row
            .receipt
            .as_ref()
            .map(|receipt| receipt_message(row, receipt)),
    }
}

/// A follow-up question with its opened text.
pub fn follow_up_message(row: &FollowUpRow, question: String) -> FollowUp {
    FollowUp {
        id: row.id.clone(),
        disclosure_id: row.disclosure_id.clone(),
        organisation: row.organisation.as_str().to_owned(),
        asked_by: row.asked_by.clone(),
        police_region: row.police_region.as_str().to_owned(),
        question,
        asked_at_unix_ms: row.asked_at,
    }
}

pub fn escalation_message(row: EscalationRow) -> Escalation {
    Escalation {
        id: row.id,
        disclosure_id: row.disclosure_id,
        organisation: row.organisation.as_str().to_owned(),
        police_region: row.police_region.as_str().to_owned(),
        urgent: row.urgent,
        deadline_unix_ms: row.deadline,
        raised_at_unix_ms: row.raised_at,
        round: row.round,
    }
}

/// A sequence on the wire (never negative in the database).
pub fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
