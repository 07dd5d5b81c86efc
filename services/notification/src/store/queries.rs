//! [`NotificationStore`]: the statements on deliveries, region sequences, receipts,
//! escalations and follow-up questions. Each change is stored with its outbox event by
//! `tryggdel_storage::write` (or `write_in`, inside the delivery's transaction), so the event
//! is written exactly when the change is. Rows are decoded in [`super::records`]; what each
//! write binds is an [`Arguments`] here, what a read binds a list of `Value`s beside its SQL.

use sqlx::any::AnyRow;
use tryggdel_domain::{Inbox, OrganisationCode};
use tryggdel_storage::{
    AnyQuery, Arguments, Change, Companion, Database, OutboxEvent, Written, write, write_in,
};

use self::Value::{Integer, Text};
use super::records::{
    DELIVERY_COLUMNS, DeliverOutcome, DeliveryRow, EscalationRow, FollowUpRow, NewDelivery,
    OpenDeliveries, RecallAcknowledgement, StoreError, StoredRecall, StoredReceipt,
    delivery_from_row, escalation_from_row, follow_up_from_row, open_deliveries_from_row,
};

/// The notification service's tables.
#[derive(Clone, Debug)]
pub struct NotificationStore {
    database: Database,
}

impl NotificationStore {
    pub fn new(database: Database) -> NotificationStore {
        NotificationStore { database }
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Stores `delivery` with the next sequence of its region and the outbox event that
    /// `event` builds from that sequence, in one transaction. If the disclosure was delivered
    /// before (also by a concurrent call that committed first), returns what is stored.
    pub async fn deliver(
        &self,
        delivery: &NewDelivery,
        event: impl FnOnce(i64) -> Result<OutboxEvent, StoreError>,
    ) -> Result<DeliverOutcome, StoreError> {
        let mut transaction = self.database.pool().begin().await?;
        // The counter row stays locked until commit (PostgreSQL; SQLite has one writer), so
        // the region's deliveries commit in sequence order and without gaps.
        let sequence: i64 = sqlx::query_scalar(
            "INSERT INTO region_sequences (police_region, last_sequence) VALUES ($1, 1) \
             ON CONFLICT (police_region) \
             DO UPDATE SET last_sequence = region_sequences.last_sequence + 1 \
             RETURNING last_sequence",
        )
        .bind(delivery.police_region.as_str())
        .fetch_one(&mut *transaction)
        .await?;
        let event = event(sequence)?;
        let numbered = Numbered { delivery, sequence };
        let events = [&event];
        let change = Change::new(INSERT_DELIVERY, &numbered, &events);
        let written = write_in(&mut transaction, &change).await?;
        if written == Written::All {
            // A connection lost while committing leaves the outcome unknown (UNAVAILABLE).
            tryggdel_storage::commit(transaction).await?;
            return Ok(DeliverOutcome::Delivered { sequence });
        }
        // Delivered before: a repeat is found by its collision, so a first delivery costs no
        // lookup. The rollback returns the region's sequence unused.
        transaction.rollback().await?;
        let existing = self.get(&delivery.disclosure_id).await?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "delivery {} collided but is not stored",
                delivery.disclosure_id
            ))
        })?;
        Ok(DeliverOutcome::Existing(Box::new(existing)))
    }

    /// The delivery of `disclosure_id`, if any.
    pub async fn get(&self, disclosure_id: &str) -> Result<Option<DeliveryRow>, StoreError> {
        let found = self
            .deliveries("disclosure_id = $1", &[Text(disclosure_id)])
            .await?;
        Ok(found.into_iter().next())
    }

    /// The last sequence assigned in `police_region` (0 before its first delivery). Every
    /// delivery up to it is committed.
    pub async fn last_sequence(&self, police_region: Inbox) -> Result<i64, StoreError> {
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT last_sequence FROM region_sequences WHERE police_region = $1",
        )
        .bind(police_region.as_str())
        .fetch_optional(self.database.pool())
        .await?;
        Ok(last.unwrap_or(0))
    }

    /// Unacknowledged deliveries not recalled, and deliveries with an unacknowledged recall,
    /// of `police_region` with `after < sequence <= up_to`, in sequence order, at most
    /// `limit`.
    pub async fn pending(
        &self,
        police_region: Inbox,
        after: i64,
        up_to: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        self.deliveries(
            "police_region = $1 \
             AND ((acknowledged_at IS NULL AND recalled_at IS NULL) \
                  OR (recalled_at IS NOT NULL AND recall_acknowledged_at IS NULL)) \
             AND sequence > $2 AND sequence <= $3 ORDER BY sequence LIMIT $4",
            &[
                Text(police_region.as_str()),
                Integer(after),
                Integer(up_to),
                Integer(i64::from(limit)),
            ],
        )
        .await
    }

    /// Every delivery of `police_region` with a sequence above `after`, in sequence order, at
    /// most `limit`.
    pub async fn after(
        &self,
        police_region: Inbox,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        self.deliveries(
            "police_region = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
            &[
                Text(police_region.as_str()),
                Integer(after),
                Integer(i64::from(limit)),
            ],
        )
        .await
    }

    /// Records the receipt unless the delivery is acknowledged already; true when this call
    /// recorded it. Stops the delivery's escalation timer.
    pub async fn acknowledge(
        &self,
        disclosure_id: &str,
        receipt: &StoredReceipt,
        event: &OutboxEvent,
    ) -> Result<bool, StoreError> {
        let acknowledgement = Acknowledgement {
            receipt,
            disclosure_id,
        };
        let events = [event];
        let change = Change::new(ACKNOWLEDGE, &acknowledgement, &events);
        Ok(write(&self.database, &change).await? == Written::All)
    }

    /// Records the recall unless the delivery was recalled already; true when this call
    /// recorded it. Stops the delivery's escalation timer.
    pub async fn recall(
        &self,
        disclosure_id: &str,
        recall: &StoredRecall,
        event: &OutboxEvent,
    ) -> Result<bool, StoreError> {
        let recalling = Recalling {
            recall,
            disclosure_id,
        };
        let events = [event];
        let change = Change::new(RECALL, &recalling, &events);
        Ok(write(&self.database, &change).await? == Written::All)
    }

    /// Records the police's acknowledgement of a recall unless it is acknowledged already;
    /// true when this call recorded it.
    pub async fn acknowledge_recall(
        &self,
        disclosure_id: &str,
        acknowledgement: &RecallAcknowledgement,
        event: &OutboxEvent,
    ) -> Result<bool, StoreError> {
        let acknowledging = AcknowledgingRecall {
            acknowledgement,
            disclosure_id,
        };
        let events = [event];
        let change = Change::new(ACKNOWLEDGE_RECALL, &acknowledging, &events);
        Ok(write(&self.database, &change).await? == Written::All)
    }

    /// Unacknowledged deliveries whose next escalation is due at `now`, earliest first.
    pub async fn due_for_escalation(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        self.deliveries(
            "next_escalation_at IS NOT NULL AND next_escalation_at <= $1 \
             AND acknowledged_at IS NULL ORDER BY next_escalation_at, disclosure_id LIMIT $2",
            &[Integer(now), Integer(i64::from(limit))],
        )
        .await
    }

    /// Raises `escalation` for `delivery` (as read by [`Self::due_for_escalation`]): marks it
    /// overdue, counts the round, re-arms the timer at `next_at` and writes the escalation
    /// and `event`, in one transaction. False (nothing written) when the delivery changed
    /// since it was read: acknowledged, or escalated by another replica.
    pub async fn escalate(
        &self,
        delivery: &DeliveryRow,
        escalation: &EscalationRow,
        next_at: i64,
        event: &OutboxEvent,
    ) -> Result<bool, StoreError> {
        let round = EscalationRound {
            delivery,
            escalation,
            next_at,
        };
        let companions = [Companion::Insert {
            into: "escalations (id, disclosure_id, organisation, police_region, urgent, \
                   deadline, raised_at, escalation_round)",
            count: 8,
            tail: "",
            arguments: escalation,
        }];
        let change = Change {
            statement: ESCALATE,
            arguments: &round,
            companions: &companions,
            events: &[event],
        };
        Ok(write(&self.database, &change).await? == Written::All)
    }

    /// Escalations of `organisation`'s deliveries not yet acknowledged, oldest first.
    pub async fn open_escalations(
        &self,
        organisation: &OrganisationCode,
        limit: u32,
    ) -> Result<Vec<EscalationRow>, StoreError> {
        self.escalations(organisation, "", limit).await
    }

    /// Every escalation (every round) of `organisation`'s delivery of `disclosure_id`, oldest
    /// first.
    pub async fn escalations_of(
        &self,
        organisation: &OrganisationCode,
        disclosure_id: &str,
        limit: u32,
    ) -> Result<Vec<EscalationRow>, StoreError> {
        self.escalations(organisation, disclosure_id, limit).await
    }

    /// One statement for both: with `disclosure_id` empty, those of deliveries not yet
    /// acknowledged.
    async fn escalations(
        &self,
        organisation: &OrganisationCode,
        disclosure_id: &str,
        limit: u32,
    ) -> Result<Vec<EscalationRow>, StoreError> {
        self.read(
            "SELECT e.id, e.disclosure_id, e.organisation, e.police_region, e.urgent, \
             e.deadline, e.raised_at, e.escalation_round FROM escalations e \
             JOIN deliveries d ON d.disclosure_id = e.disclosure_id \
             WHERE e.organisation = $1 \
             AND (($2 = '' AND d.acknowledged_at IS NULL) OR e.disclosure_id = $2) \
             ORDER BY e.raised_at, e.disclosure_id, e.escalation_round LIMIT $3",
            &[
                Text(organisation.as_str()),
                Text(disclosure_id),
                Integer(i64::from(limit)),
            ],
            escalation_from_row,
        )
        .await
    }

    /// Stores a follow-up question and its event in one transaction.
    pub async fn insert_follow_up(
        &self,
        follow_up: &FollowUpRow,
        event: &OutboxEvent,
    ) -> Result<(), StoreError> {
        let events = [event];
        let change = Change::new(
            "INSERT INTO follow_ups (id, disclosure_id, organisation, police_region, asked_by, \
             question_sealed, asked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            follow_up,
            &events,
        );
        match write(&self.database, &change).await? {
            Written::All => Ok(()),
            Written::Nothing | Written::Duplicate => Err(StoreError::Corrupt(format!(
                "follow-up question {} collided with a stored one",
                follow_up.id
            ))),
        }
    }

    /// The follow-up questions on one disclosure, oldest first.
    pub async fn follow_ups(&self, disclosure_id: &str) -> Result<Vec<FollowUpRow>, StoreError> {
        self.read(
            "SELECT id, disclosure_id, organisation, police_region, asked_by, question_sealed, \
             asked_at FROM follow_ups WHERE disclosure_id = $1 ORDER BY asked_at, id",
            &[Text(disclosure_id)],
            follow_up_from_row,
        )
        .await
    }

    /// Unacknowledged deliveries not recalled per police region (only regions with any), overdue being
    /// escalated already or past the deadline at `now`.
    pub async fn open_deliveries(&self, now: i64) -> Result<Vec<OpenDeliveries>, StoreError> {
        self.read(
            "SELECT police_region, COUNT(*) AS pending, \
             COUNT(CASE WHEN overdue <> 0 OR deadline <= $1 THEN 1 END) AS overdue \
             FROM deliveries WHERE acknowledged_at IS NULL AND recalled_at IS NULL \
             GROUP BY police_region",
            &[Integer(now)],
            open_deliveries_from_row,
        )
        .await
    }

    /// Runs the read `sql` with `values` bound to `$1`, `$2`, … and decodes every row it
    /// returns with `decode`.
    pub(super) async fn read<T>(
        &self,
        sql: &str,
        values: &[Value<'_>],
        decode: fn(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let query = values
            .iter()
            .fold(sqlx::query(sql), |query, value| match *value {
                Text(text) => query.bind(text),
                Integer(integer) => query.bind(integer),
            });
        let rows = query.fetch_all(self.database.pool()).await?;
        rows.iter().map(decode).collect()
    }

    /// The deliveries that match `condition` (what follows `WHERE`, with any `ORDER BY` and
    /// `LIMIT`), its placeholders bound to `values`.
    async fn deliveries(
        &self,
        condition: &str,
        values: &[Value<'_>],
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE {condition}");
        self.read(&sql, values, delivery_from_row).await
    }
}

/// A value bound to a read's placeholder (every column a read compares is text or an
/// integer).
#[derive(Clone, Copy, Debug)]
pub(super) enum Value<'a> {
    Text(&'a str),
    Integer(i64),
}

/// A new delivery's row, `$1`–`$16` in [`Numbered`]'s order.
const INSERT_DELIVERY: &str = "INSERT INTO deliveries (disclosure_id, police_region, sequence, \
    organisation, urgent, payload_sealed, payload_sha256, approved_by, approved_at, \
    legal_basis_id, registry_version, delivered_by, trace_id, delivered_at, deadline, overdue, \
    escalations, next_escalation_at, person_refs) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, 0, $15, $16)";

/// A delivery with the sequence its region gave it.
struct Numbered<'a> {
    delivery: &'a NewDelivery,
    sequence: i64,
}

impl Arguments for Numbered<'_> {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let delivery = self.delivery;
        query
            .bind(&delivery.disclosure_id)
            .bind(delivery.police_region.as_str())
            .bind(self.sequence)
            .bind(delivery.organisation.as_str())
            .bind(i64::from(delivery.urgent))
            .bind(&delivery.payload_sealed)
            .bind(&delivery.payload_sha256)
            .bind(&delivery.approved_by)
            .bind(delivery.approved_at)
            .bind(&delivery.legal_basis_id)
            .bind(&delivery.registry_version)
            .bind(&delivery.delivered_by)
            .bind(&delivery.trace_id)
            .bind(delivery.delivered_at)
            .bind(delivery.deadline)
            .bind(delivery.person_refs.join(","))
    }
}

/// The receipt's UPDATE, `$1`–`$7` in [`Acknowledgement`]'s order; it matches only a delivery
/// not yet acknowledged.
const ACKNOWLEDGE: &str = "UPDATE deliveries SET acknowledged_at = $1, acknowledged_by = $2, \
    police_reference = $3, receipt_statement = $4, receipt_signature = $5, receipt_key_id = $6, \
    next_escalation_at = NULL WHERE disclosure_id = $7 AND acknowledged_at IS NULL";

/// A receipt for the delivery of a disclosure.
struct Acknowledgement<'a> {
    receipt: &'a StoredReceipt,
    disclosure_id: &'a str,
}

impl Arguments for Acknowledgement<'_> {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let receipt = self.receipt;
        query
            .bind(receipt.acknowledged_at)
            .bind(&receipt.acknowledged_by)
            .bind(&receipt.police_reference)
            .bind(receipt.statement.as_slice())
            .bind(receipt.signature.as_slice())
            .bind(&receipt.key_id)
            .bind(self.disclosure_id)
    }
}

/// The recall's UPDATE, `$1`–`$5` in [`Recalling`]'s order; it matches only a delivery not
/// yet recalled.
const RECALL: &str = "UPDATE deliveries SET recalled_at = $1, recall_withdrawn_by = $2, \
    recall_withdrawn_at = $3, recall_reason_sealed = $4, next_escalation_at = NULL \
    WHERE disclosure_id = $5 AND recalled_at IS NULL";

/// The recall of the delivery of a disclosure.
struct Recalling<'a> {
    recall: &'a StoredRecall,
    disclosure_id: &'a str,
}

impl Arguments for Recalling<'_> {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let recall = self.recall;
        query
            .bind(recall.recalled_at)
            .bind(&recall.withdrawn_by)
            .bind(recall.withdrawn_at)
            .bind(&recall.reason_sealed)
            .bind(self.disclosure_id)
    }
}

/// The recall acknowledgement's UPDATE, `$1`–`$3` in [`AcknowledgingRecall`]'s order; it
/// matches only a recalled delivery whose recall is not yet acknowledged.
const ACKNOWLEDGE_RECALL: &str = "UPDATE deliveries SET recall_acknowledged_at = $1, \
    recall_acknowledged_by = $2 WHERE disclosure_id = $3 AND recalled_at IS NOT NULL \
    AND recall_acknowledged_at IS NULL";

/// The police's acknowledgement of the recall of a disclosure.
struct AcknowledgingRecall<'a> {
    acknowledgement: &'a RecallAcknowledgement,
    disclosure_id: &'a str,
}

impl Arguments for AcknowledgingRecall<'_> {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.acknowledgement.acknowledged_at)
            .bind(&self.acknowledgement.acknowledged_by)
            .bind(self.disclosure_id)
    }
}

/// An escalation round's UPDATE, `$1`–`$4` in [`EscalationRound`]'s order; it matches only a
/// delivery still unacknowledged at the round it was read in.
const ESCALATE: &str = "UPDATE deliveries SET overdue = 1, escalations = $1, \
    next_escalation_at = $2 WHERE disclosure_id = $3 AND acknowledged_at IS NULL \
    AND escalations = $4 AND next_escalation_at IS NOT NULL";

/// The next escalation round of a delivery as it was read.
struct EscalationRound<'a> {
    delivery: &'a DeliveryRow,
    escalation: &'a EscalationRow,
    next_at: i64,
}

impl Arguments for EscalationRound<'_> {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(i64::from(self.escalation.round))
            .bind(self.next_at)
            .bind(&self.delivery.disclosure_id)
            .bind(i64::from(self.delivery.escalations))
    }
}

/// The escalation's row, in its INSERT's column order.
impl Arguments for EscalationRow {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(&self.id)
            .bind(&self.disclosure_id)
            .bind(self.organisation.as_str())
            .bind(self.police_region.as_str())
            .bind(i64::from(self.urgent))
            .bind(self.deadline)
            .bind(self.raised_at)
            .bind(i64::from(self.round))
    }
}

/// The follow-up question's row, in its INSERT's column order.
impl Arguments for FollowUpRow {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(&self.id)
            .bind(&self.disclosure_id)
            .bind(self.organisation.as_str())
            .bind(self.police_region.as_str())
            .bind(&self.asked_by)
            .bind(&self.question_sealed)
            .bind(self.asked_at)
    }
}
