//! The notification service's rows as typed values: what the store takes and what it gives
//! back. A row becomes one of these here, at the edge: flags are `bool`, counts `u32`,
//! regions and organisations parsed, a receipt present or absent as a whole, a timer an
//! `Option`. A column that does not fit is [`StoreError::Corrupt`], never a default.

use sqlx::Row;
use sqlx::any::AnyRow;
use tryggdel_domain::{Inbox, OrganisationCode};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// A delivery about to be stored; its sequence is assigned by
/// [`NotificationStore::deliver`](super::NotificationStore::deliver).
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub disclosure_id: String,
    pub police_region: Inbox,
    pub organisation: OrganisationCode,
    pub urgent: bool,
    pub payload_sealed: String,
    pub payload_sha256: String,
    pub approved_by: String,
    pub approved_at: i64,
    pub legal_basis_id: String,
    pub registry_version: String,
    pub delivered_by: String,
    pub trace_id: String,
    pub delivered_at: i64,
    pub deadline: i64,
    /// The persons the disclosure concerns, as keyed references.
    pub person_refs: Vec<String>,
}

/// The receipt of an acknowledged delivery, the statement and signature exactly as signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReceipt {
    pub police_reference: String,
    pub acknowledged_by: String,
    pub acknowledged_at: i64,
    pub statement: Vec<u8>,
    pub signature: Vec<u8>,
    pub key_id: String,
}

/// The recall of a delivered disclosure its organisation withdrew (the reason sealed), and
/// the police's acknowledgement of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecall {
    pub recalled_at: i64,
    pub withdrawn_by: String,
    pub withdrawn_at: i64,
    pub reason_sealed: String,
    /// None until a police officer acknowledged the recall.
    pub acknowledgement: Option<RecallAcknowledgement>,
}

/// Who acknowledged a recall, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecallAcknowledgement {
    pub acknowledged_by: String,
    pub acknowledged_at: i64,
}

/// A stored delivery.
#[derive(Clone, Debug)]
pub struct DeliveryRow {
    pub disclosure_id: String,
    pub police_region: Inbox,
    pub sequence: i64,
    pub organisation: OrganisationCode,
    pub urgent: bool,
    pub payload_sealed: String,
    pub payload_sha256: String,
    pub approved_by: String,
    pub approved_at: i64,
    pub legal_basis_id: String,
    pub registry_version: String,
    pub delivered_by: String,
    pub trace_id: String,
    pub delivered_at: i64,
    pub deadline: i64,
    /// Set by the first escalation; stays set after a late acknowledgement.
    pub overdue: bool,
    /// Escalations raised so far (the last round).
    pub escalations: u32,
    /// When the next escalation is due; None once acknowledged.
    pub next_escalation_at: Option<i64>,
    /// None until acknowledged.
    pub receipt: Option<StoredReceipt>,
    /// None unless the disclosure was withdrawn after delivery.
    pub recall: Option<StoredRecall>,
    /// The persons the disclosure concerns, as keyed references (empty for deliveries stored
    /// before they were kept).
    pub person_refs: Vec<String>,
}

/// What [`NotificationStore::deliver`](super::NotificationStore::deliver) did.
#[derive(Clone, Debug)]
pub enum DeliverOutcome {
    /// Stored with this sequence of its region.
    Delivered { sequence: i64 },
    /// The disclosure had been delivered before; this is what is stored.
    Existing(Box<DeliveryRow>),
}

/// A stored escalation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscalationRow {
    pub id: String,
    pub disclosure_id: String,
    pub organisation: OrganisationCode,
    pub police_region: Inbox,
    pub urgent: bool,
    pub deadline: i64,
    pub raised_at: i64,
    /// 1 for the first escalation of a delivery, then 2, 3, …
    pub round: u32,
}

/// A stored follow-up question (the question sealed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowUpRow {
    pub id: String,
    pub disclosure_id: String,
    pub organisation: OrganisationCode,
    pub police_region: Inbox,
    pub asked_by: String,
    pub question_sealed: String,
    pub asked_at: i64,
}

/// The unacknowledged deliveries of one police region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenDeliveries {
    pub police_region: Inbox,
    /// Not yet acknowledged.
    pub pending: i64,
    /// Of those, escalated already or past the deadline.
    pub overdue: i64,
}

impl NewDelivery {
    /// The stored row of this delivery, just committed with `sequence`: not overdue, not
    /// escalated, its timer at the deadline, no receipt.
    pub fn into_row(self, sequence: i64) -> DeliveryRow {
        DeliveryRow {
            next_escalation_at: Some(self.deadline),
            disclosure_id: self.disclosure_id,
            police_region: self.police_region,
            sequence,
            organisation: self.organisation,
            urgent: self.urgent,
            payload_sealed: self.payload_sealed,
            payload_sha256: self.payload_sha256,
            approved_by: self.approved_by,
            approved_at: self.approved_at,
            legal_basis_id: self.legal_basis_id,
            registry_version: self.registry_version,
            delivered_by: self.delivered_by,
            trace_id: self.trace_id,
            delivered_at: self.delivered_at,
            deadline: self.deadline,
            overdue: false,
            escalations: 0,
            receipt: None,
            recall: None,
            person_refs: self.person_refs,
        }
    }
}

impl DeliveryRow {
    /// Overdue: escalated once, or unacknowledged past the deadline.
    pub fn is_overdue(&self, now: i64) -> bool {
        self.overdue || (self.receipt.is_none() && now >= self.deadline)
    }
}

/// The sealing context of a delivery's payload (binds the sealed value to its row and field).
pub fn payload_context(disclosure_id: &str) -> String {
    format!("notification:delivery:{disclosure_id}:payload")
}

/// The sealing context of a follow-up question.
pub fn question_context(follow_up_id: &str) -> String {
    format!("notification:follow_up:{follow_up_id}:question")
}

/// The columns [`delivery_from_row`] reads, in a SELECT's order.
pub(super) const DELIVERY_COLUMNS: &str = "disclosure_id, police_region, sequence, organisation, \
     urgent, payload_sealed, payload_sha256, approved_by, approved_at, legal_basis_id, \
     registry_version, delivered_by, trace_id, delivered_at, deadline, overdue, escalations, \
     next_escalation_at, acknowledged_at, acknowledged_by, police_reference, receipt_statement, \
     receipt_signature, receipt_key_id, recalled_at, recall_withdrawn_by, recall_withdrawn_at, \
     recall_reason_sealed, recall_acknowledged_at, recall_acknowledged_by, person_refs";

pub(super) fn delivery_from_row(row: &AnyRow) -> Result<DeliveryRow, StoreError> {
    let disclosure_id: String = row.try_get("disclosure_id")?;
    let acknowledged_at: Option<i64> = row.try_get("acknowledged_at")?;
    let receipt = match acknowledged_at {
        None => None,
        Some(acknowledged_at) => {
            let missing = |field: &str| {
                StoreError::Corrupt(format!("receipt of {disclosure_id} lacks {field}"))
            };
            Some(StoredReceipt {
                police_reference: row
                    .try_get::<Option<String>, _>("police_reference")?
                    .ok_or_else(|| missing("police_reference"))?,
                acknowledged_by: row
                    .try_get::<Option<String>, _>("acknowledged_by")?
                    .ok_or_else(|| missing("acknowledged_by"))?,
                acknowledged_at,
                statement: row
                    .try_get::<Option<Vec<u8>>, _>("receipt_statement")?
                    .ok_or_else(|| missing("receipt_statement"))?,
                signature: row
                    .try_get::<Option<Vec<u8>>, _>("receipt_signature")?
                    .ok_or_else(|| missing("receipt_signature"))?,
                key_id: row
                    .try_get::<Option<String>, _>("receipt_key_id")?
                    .ok_or_else(|| missing("receipt_key_id"))?,
            })
        }
    };
    Ok(DeliveryRow {
        police_region: region(row, "police_region")?,
        sequence: row.try_get("sequence")?,
        organisation: organisation(row, "organisation")?,
        urgent: flag(row, "urgent")?,
        payload_sealed: row.try_get("payload_sealed")?,
        payload_sha256: row.try_get("payload_sha256")?,
        approved_by: row.try_get("approved_by")?,
        approved_at: row.try_get("approved_at")?,
        legal_basis_id: row.try_get("legal_basis_id")?,
        registry_version: row.try_get("registry_version")?,
        delivered_by: row.try_get("delivered_by")?,
        trace_id: row.try_get("trace_id")?,
        delivered_at: row.try_get("delivered_at")?,
        deadline: row.try_get("deadline")?,
        overdue: flag(row, "overdue")?,
        escalations: count(row, "escalations")?,
        next_escalation_at: row.try_get("next_escalation_at")?,
        receipt,
        recall: recall_from_row(row, &disclosure_id)?,
        person_refs: row
            .try_get::<String, _>("person_refs")?
            .split(',')
            .filter(|reference| !reference.is_empty())
            .map(str::to_owned)
            .collect(),
        disclosure_id,
    })
}

/// The recall columns of a delivery: all NULL, or all set but the acknowledgement's.
fn recall_from_row(row: &AnyRow, disclosure_id: &str) -> Result<Option<StoredRecall>, StoreError> {
    let Some(recalled_at) = row.try_get::<Option<i64>, _>("recalled_at")? else {
        return Ok(None);
    };
    let missing =
        |field: &str| StoreError::Corrupt(format!("recall of {disclosure_id} lacks {field}"));
    let acknowledged_at: Option<i64> = row.try_get("recall_acknowledged_at")?;
    let acknowledgement = match acknowledged_at {
        None => None,
        Some(acknowledged_at) => Some(RecallAcknowledgement {
            acknowledged_by: row
                .try_get::<Option<String>, _>("recall_acknowledged_by")?
                .ok_or_else(|| missing("recall_acknowledged_by"))?,
            acknowledged_at,
        }),
    };
    Ok(Some(StoredRecall {
        recalled_at,
        withdrawn_by: row
            .try_get::<Option<String>, _>("recall_withdrawn_by")?
            .ok_or_else(|| missing("recall_withdrawn_by"))?,
        withdrawn_at: row
            .try_get::<Option<i64>, _>("recall_withdrawn_at")?
            .ok_or_else(|| missing("recall_withdrawn_at"))?,
        reason_sealed: row
            .try_get::<Option<String>, _>("recall_reason_sealed")?
            .ok_or_else(|| missing("recall_reason_sealed"))?,
        acknowledgement,
    }))
}

/// Reads the columns `id, disclosure_id, organisation, police_region, urgent, deadline,
/// raised_at, escalation_round` of the escalations table.
pub(super) fn escalation_from_row(row: &AnyRow) -> Result<EscalationRow, StoreError> {
    Ok(EscalationRow {
        id: row.try_get("id")?,
        disclosure_id: row.try_get("disclosure_id")?,
        organisation: organisation(row, "organisation")?,
        police_region: region(row, "police_region")?,
        urgent: flag(row, "urgent")?,
        deadline: row.try_get("deadline")?,
        raised_at: row.try_get("raised_at")?,
        round: count(row, "escalation_round")?,
    })
}

/// Reads every column of the follow_ups table.
pub(super) fn follow_up_from_row(row: &AnyRow) -> Result<FollowUpRow, StoreError> {
    Ok(FollowUpRow {
        id: row.try_get("id")?,
        disclosure_id: row.try_get("disclosure_id")?,
        organisation: organisation(row, "organisation")?,
        police_region: region(row, "police_region")?,
        asked_by: row.try_get("asked_by")?,
        question_sealed: row.try_get("question_sealed")?,
        asked_at: row.try_get("asked_at")?,
    })
}

/// Reads `police_region, pending, overdue`.
pub(super) fn open_deliveries_from_row(row: &AnyRow) -> Result<OpenDeliveries, StoreError> {
    Ok(OpenDeliveries {
        police_region: region(row, "police_region")?,
        pending: row.try_get("pending")?,
        overdue: row.try_get("overdue")?,
    })
}

/// The sealing context of a recall's reason.
pub fn recall_reason_context(disclosure_id: &str) -> String {
    format!("notification:delivery:{disclosure_id}:recall_reason")
}

/// A 0/1 flag column (BIGINT on both backends).
fn flag(row: &AnyRow, column: &str) -> Result<bool, StoreError> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

/// A count column that is never negative.
fn count(row: &AnyRow, column: &str) -> Result<u32, StoreError> {
    let value: i64 = row.try_get(column)?;
    u32::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("{column} is {value}, not a count")))
}

fn region(row: &AnyRow, column: &str) -> Result<Inbox, StoreError> {
    let value: String = row.try_get(column)?;
    Inbox::parse(&value).map_err(|error| StoreError::Corrupt(format!("{column}: {error}")))
}

fn organisation(row: &AnyRow, column: &str) -> Result<OrganisationCode, StoreError> {
    let value: String = row.try_get(column)?;
    OrganisationCode::parse(&value)
        .map_err(|error| StoreError::Corrupt(format!("{column}: {error}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;
    use tryggdel_domain::PoliceRegion;

    /// The unit tests' delivery: Bollnäs to region Mitt, urgent, delivered at 2 000 with its
    /// deadline at 3 000.
    pub(crate) fn new_delivery() -> NewDelivery {
        NewDelivery {
            disclosure_id: "0193a1b2-0000-7000-8000-000000000001".into(),
            police_region: Inbox::Police(PoliceRegion::Mitt),
            organisation: OrganisationCode::parse("bollnas-kommun").unwrap(),
            urgent: true,
            payload_sealed: "sealed".into(),
            payload_sha256: "ab".repeat(32),
            approved_by: "beslut-bollnas".into(),
            approved_at: 1_000,
            legal_basis_id: "OSL-10-18c".into(),
            registry_version: format!("sha256:{}", "cd".repeat(32)),
            delivered_by: "disclosure".into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            delivered_at: 2_000,
            deadline: 3_000,
            person_refs: Vec::new(),
        }
    }

    #[test]
    fn a_new_delivery_becomes_an_unacknowledged_row_timed_at_its_deadline() {
        let row = new_delivery().into_row(7);
        assert_eq!(row.sequence, 7);
        assert_eq!(row.next_escalation_at, Some(3_000));
        assert_eq!((row.overdue, row.escalations), (false, 0));
        assert!(row.receipt.is_none());
        assert_eq!(row.police_region, Inbox::Police(PoliceRegion::Mitt));
        assert_eq!(row.organisation.as_str(), "bollnas-kommun");
    }

    #[test]
    fn overdue_is_escalated_or_unacknowledged_past_the_deadline() {
        let mut row = new_delivery().into_row(1);
        assert!(!row.is_overdue(2_999));
        assert!(row.is_overdue(3_000));
        row.receipt = Some(StoredReceipt {
            police_reference: "5000-K123456-26".into(),
            acknowledged_by: "polis-mitt-1".into(),
            acknowledged_at: 2_500,
            statement: b"statement".to_vec(),
            signature: b"signature".to_vec(),
            key_id: "01020304".into(),
        });
        assert!(!row.is_overdue(4_000));
        // Escalated once, it stays overdue after a late acknowledgement.
        row.overdue = true;
        assert!(row.is_overdue(0));
    }

    #[test]
    fn sealing_contexts_name_the_row_and_the_field() {
        assert_eq!(
            payload_context("0193a1b2-0000-7000-8000-000000000001"),
            "notification:delivery:0193a1b2-0000-7000-8000-000000000001:payload"
        );
        assert_eq!(question_context("f1"), "notification:follow_up:f1:question");
    }
}
