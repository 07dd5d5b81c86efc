//! [`NotificationStore`]: the statements on deliveries, region sequences, receipts,
//! escalations and follow-up questions. Each change commits its outbox event with it, in one
//! transaction; an acknowledgement on PostgreSQL is one statement (the receipt's UPDATE in a
//! CTE before the event's INSERT), so the event is written exactly when the receipt is. Rows
//! are decoded in [`super::records`].

use std::sync::LazyLock;

use tryggdel_domain::{OrganisationCode, PoliceRegion};
use tryggdel_storage::{Backend, Database, OutboxEvent, is_unique_violation};

use super::records::{
    DELIVERY_COLUMNS, DeliverOutcome, DeliveryRow, EscalationRow, FollowUpRow, NewDelivery,
    OpenDeliveries, StoreError, StoredReceipt, delivery_from_row, escalation_from_row,
    follow_up_from_row, open_deliveries_from_row,
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
        match self.insert_delivery(delivery, event).await {
            Ok(sequence) => Ok(DeliverOutcome::Delivered { sequence }),
            Err(StoreError::Database(error)) if is_unique_violation(&error) => {
                // Delivered before: a repeat is found by its collision, so a first delivery
                // costs no lookup. The rollback returns the region's sequence unused.
                let existing = self.get(&delivery.disclosure_id).await?.ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "delivery {} collided but is not stored",
                        delivery.disclosure_id
                    ))
                })?;
                Ok(DeliverOutcome::Existing(Box::new(existing)))
            }
            Err(error) => Err(error),
        }
    }

    async fn insert_delivery(
        &self,
        delivery: &NewDelivery,
        event: impl FnOnce(i64) -> Result<OutboxEvent, StoreError>,
    ) -> Result<i64, StoreError> {
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
        sqlx::query(
            "INSERT INTO deliveries (disclosure_id, police_region, sequence, organisation, urgent, \
             payload_sealed, payload_sha256, approved_by, approved_at, legal_basis_id, \
             registry_version, delivered_by, trace_id, delivered_at, deadline, overdue, \
             escalations, next_escalation_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, 0, $15)",
        )
        .bind(&delivery.disclosure_id)
        .bind(delivery.police_region.as_str())
        .bind(sequence)
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
        .execute(&mut *transaction)
        .await?;
        event(sequence)?.insert(&mut transaction).await?;
        transaction.commit().await?;
        Ok(sequence)
    }

    /// The delivery of `disclosure_id`, if any.
    pub async fn get(&self, disclosure_id: &str) -> Result<Option<DeliveryRow>, StoreError> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE disclosure_id = $1");
        let row = sqlx::query(&sql)
            .bind(disclosure_id)
            .fetch_optional(self.database.pool())
            .await?;
        row.map(|row| delivery_from_row(&row)).transpose()
    }

    /// The last sequence assigned in `police_region` (0 before its first delivery). Every
    /// delivery up to it is committed.
    pub async fn last_sequence(&self, police_region: PoliceRegion) -> Result<i64, StoreError> {
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT last_sequence FROM region_sequences WHERE police_region = $1",
        )
        .bind(police_region.as_str())
        .fetch_optional(self.database.pool())
        .await?;
        Ok(last.unwrap_or(0))
    }

    /// Unacknowledged deliveries of `police_region` with `after < sequence <= up_to`, in
    /// sequence order, at most `limit`.
    pub async fn pending(
        &self,
        police_region: PoliceRegion,
        after: i64,
        up_to: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries \
             WHERE police_region = $1 AND acknowledged_at IS NULL \
             AND sequence > $2 AND sequence <= $3 ORDER BY sequence LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(police_region.as_str())
            .bind(after)
            .bind(up_to)
            .bind(i64::from(limit))
            .fetch_all(self.database.pool())
            .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// Every delivery of `police_region` with a sequence above `after`, in sequence order, at
    /// most `limit`.
    pub async fn after(
        &self,
        police_region: PoliceRegion,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries \
             WHERE police_region = $1 AND sequence > $2 ORDER BY sequence LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(police_region.as_str())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(self.database.pool())
            .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// Records the receipt unless the delivery is acknowledged already; true when this call
    /// recorded it. Stops the delivery's escalation timer.
    pub async fn acknowledge(
        &self,
        disclosure_id: &str,
        receipt: &StoredReceipt,
        event: &OutboxEvent,
    ) -> Result<bool, StoreError> {
        const UPDATE: &str = "UPDATE deliveries SET acknowledged_at = $1, acknowledged_by = $2, \
             police_reference = $3, receipt_statement = $4, receipt_signature = $5, \
             receipt_key_id = $6, next_escalation_at = NULL \
             WHERE disclosure_id = $7 AND acknowledged_at IS NULL";
        if self.database.backend() == Backend::Postgres {
            // One statement, so one round trip: the event is written only with the receipt.
            static STATEMENT: LazyLock<String> =
                LazyLock::new(|| OutboxEvent::with_row(UPDATE, "disclosure_id", 7));
            let updated = event
                .bind(bind_receipt(
                    sqlx::query(STATEMENT.as_str()),
                    receipt,
                    disclosure_id,
                ))
                .execute(self.database.pool())
                .await?
                .rows_affected();
            return Ok(updated == 1);
        }
        let mut transaction = self.database.pool().begin().await?;
        let updated = bind_receipt(sqlx::query(UPDATE), receipt, disclosure_id)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if updated != 1 {
            transaction.rollback().await?;
            return Ok(false);
        }
        event.insert(&mut transaction).await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Unacknowledged deliveries whose next escalation is due at `now`, earliest first.
    pub async fn due_for_escalation(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries \
             WHERE next_escalation_at IS NOT NULL AND next_escalation_at <= $1 \
             AND acknowledged_at IS NULL ORDER BY next_escalation_at, disclosure_id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(self.database.pool())
            .await?;
        rows.iter().map(delivery_from_row).collect()
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
        let mut transaction = self.database.pool().begin().await?;
        let updated = sqlx::query(
            "UPDATE deliveries SET overdue = 1, escalations = $1, next_escalation_at = $2 \
             WHERE disclosure_id = $3 AND acknowledged_at IS NULL AND escalations = $4 \
             AND next_escalation_at IS NOT NULL",
        )
        .bind(i64::from(escalation.round))
        .bind(next_at)
        .bind(&delivery.disclosure_id)
        .bind(i64::from(delivery.escalations))
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if updated != 1 {
            transaction.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO escalations (id, disclosure_id, organisation, police_region, urgent, \
             deadline, raised_at, escalation_round) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&escalation.id)
        .bind(&escalation.disclosure_id)
        .bind(escalation.organisation.as_str())
        .bind(escalation.police_region.as_str())
        .bind(i64::from(escalation.urgent))
        .bind(escalation.deadline)
        .bind(escalation.raised_at)
        .bind(i64::from(escalation.round))
        .execute(&mut *transaction)
        .await?;
        event.insert(&mut transaction).await?;
        transaction.commit().await?;
        Ok(true)
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
        let rows = sqlx::query(
            "SELECT e.id, e.disclosure_id, e.organisation, e.police_region, e.urgent, \
             e.deadline, e.raised_at, e.escalation_round FROM escalations e \
             JOIN deliveries d ON d.disclosure_id = e.disclosure_id \
             WHERE e.organisation = $1 \
             AND (($2 = '' AND d.acknowledged_at IS NULL) OR e.disclosure_id = $2) \
             ORDER BY e.raised_at, e.disclosure_id, e.escalation_round LIMIT $3",
        )
        .bind(organisation.as_str())
        .bind(disclosure_id)
        .bind(i64::from(limit))
        .fetch_all(self.database.pool())
        .await?;
        rows.iter().map(escalation_from_row).collect()
    }

    /// Stores a follow-up question and its event in one transaction.
    pub async fn insert_follow_up(
        &self,
        follow_up: &FollowUpRow,
        event: &OutboxEvent,
    ) -> Result<(), StoreError> {
        let mut transaction = self.database.pool().begin().await?;
        sqlx::query(
            "INSERT INTO follow_ups (id, disclosure_id, organisation, police_region, asked_by, \
             question_sealed, asked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&follow_up.id)
        .bind(&follow_up.disclosure_id)
        .bind(follow_up.organisation.as_str())
        .bind(follow_up.police_region.as_str())
        .bind(&follow_up.asked_by)
        .bind(&follow_up.question_sealed)
        .bind(follow_up.asked_at)
        .execute(&mut *transaction)
        .await?;
        event.insert(&mut transaction).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The follow-up questions on one disclosure, oldest first.
    pub async fn follow_ups(&self, disclosure_id: &str) -> Result<Vec<FollowUpRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, disclosure_id, organisation, police_region, asked_by, question_sealed, \
             asked_at FROM follow_ups WHERE disclosure_id = $1 ORDER BY asked_at, id",
        )
        .bind(disclosure_id)
        .fetch_all(self.database.pool())
        .await?;
        rows.iter().map(follow_up_from_row).collect()
    }

    /// Unacknowledged deliveries per police region (only regions with any), overdue being
    /// escalated already or past the deadline at `now`.
    pub async fn open_deliveries(&self, now: i64) -> Result<Vec<OpenDeliveries>, StoreError> {
        let rows = sqlx::query(
            "SELECT police_region, COUNT(*) AS pending, \
             COUNT(CASE WHEN overdue <> 0 OR deadline <= $1 THEN 1 END) AS overdue \
             FROM deliveries WHERE acknowledged_at IS NULL GROUP BY police_region",
        )
        .bind(now)
        .fetch_all(self.database.pool())
        .await?;
        rows.iter().map(open_deliveries_from_row).collect()
    }
}

/// Binds `$1`–`$7` of the receipt's UPDATE in [`NotificationStore::acknowledge`].
fn bind_receipt<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    receipt: &'q StoredReceipt,
    disclosure_id: &'q str,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(receipt.acknowledged_at)
        .bind(&receipt.acknowledged_by)
        .bind(&receipt.police_reference)
        .bind(receipt.statement.clone())
        .bind(receipt.signature.clone())
        .bind(&receipt.key_id)
        .bind(disclosure_id)
}
