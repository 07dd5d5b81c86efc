//! Persistence of deliveries, receipts, escalations, follow-up questions and the outbox, on
//! SQLite or PostgreSQL through sqlx `Any` (the same SQL on both).
//!
//! Every change writes its outbox event in the same transaction. Changes that may race
//! (a second Deliver, two acknowledgements, an acknowledgement against an escalation, two
//! replicas escalating) are settled by the database: a unique key or a conditional UPDATE
//! decides the winner, and the loser reads what won.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
pub use tryggdel_storage::OutboxEvent;
use tryggdel_storage::{Backend, Database, Migrations, OutboxDestination, is_unique_violation};

pub const SQLITE_MIGRATIONS: &[tryggdel_storage::MigrationFile] =
    tryggdel_storage::migration_files!("migrations/sqlite", ["0001_notifications.sql"]);
pub const POSTGRES_MIGRATIONS: &[tryggdel_storage::MigrationFile] =
    tryggdel_storage::migration_files!("migrations/postgres", ["0001_notifications.sql"]);

/// The notification service's migrations on both backends.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: SQLITE_MIGRATIONS,
    postgres: POSTGRES_MIGRATIONS,
};

/// Outbox event types.
pub const EVENT_DELIVERED: &str = "notification.delivered";
pub const EVENT_ACKNOWLEDGED: &str = "notification.acknowledged";
pub const EVENT_ESCALATED: &str = "notification.escalated";
pub const EVENT_FOLLOW_UP_ASKED: &str = "notification.follow_up_asked";

const DELIVERY_COLUMNS: &str = "disclosure_id, police_region, sequence, organisation, urgent, \
     payload_sealed, payload_sha256, approved_by, approved_at, legal_basis_id, registry_version, \
     delivered_by, trace_id, delivered_at, deadline, overdue, escalations, next_escalation_at, \
     acknowledged_at, acknowledged_by, police_reference, receipt_statement, receipt_signature, \
     receipt_key_id";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// A delivery about to be stored; its sequence is assigned by [`NotificationStore::deliver`].
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub disclosure_id: String,
    pub police_region: String,
    pub organisation: String,
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

/// A stored delivery.
#[derive(Clone, Debug)]
pub struct DeliveryRow {
    pub disclosure_id: String,
    pub police_region: String,
    pub sequence: i64,
    pub organisation: String,
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
    pub escalations: i64,
    pub next_escalation_at: Option<i64>,
    pub receipt: Option<StoredReceipt>,
}

/// What [`NotificationStore::deliver`] did.
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
    pub organisation: String,
    pub police_region: String,
    pub urgent: bool,
    pub deadline: i64,
    pub raised_at: i64,
    pub round: i64,
}

/// A stored follow-up question (the question sealed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowUpRow {
    pub id: String,
    pub disclosure_id: String,
    pub organisation: String,
    pub police_region: String,
    pub asked_by: String,
    pub question_sealed: String,
    pub asked_at: i64,
}

/// Who acted, for the audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxActor {
    pub user_id: String,
    pub roles: Vec<String>,
    pub organisation: String,
    pub unit: String,
}

/// The receipt as an acknowledgement event carries it, for the hop back to the disclosure
/// service (`RecordReceipt` takes the statement, signature, key id and trace id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxReceipt {
    pub police_reference: String,
    pub acknowledged_by: String,
    pub acknowledged_at_unix_ms: i64,
    /// The signed statement's exact bytes, base64 (standard alphabet).
    pub statement_base64: String,
    /// The Ed25519 signature, base64 (standard alphabet).
    pub signature_base64: String,
    pub key_id: String,
}

/// The payload of an outbox row: everything the audit event (and, for acknowledgements, the
/// receipt hop) needs. Never personal data: no payload, no question text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxPayload {
    pub event_id: String,
    pub event_type: String,
    pub occurred_at_unix_ms: i64,
    /// None for what the service does on its own (delivery intake, escalation).
    pub actor: Option<OutboxActor>,
    pub disclosure_id: String,
    /// The disclosing organisation.
    pub organisation: String,
    pub police_region: String,
    pub legal_basis_id: String,
    pub registry_version: String,
    pub trace_id: String,
    /// The W3C `traceparent` of the span that caused the event (empty without tracing, and
    /// in events written before it was kept): the relays continue that trace.
    #[serde(default)]
    pub traceparent: String,
    pub details: BTreeMap<String, String>,
    pub receipt: Option<OutboxReceipt>,
}

impl OutboxPayload {
    /// The outbox row for this payload.
    pub fn to_event(&self) -> Result<OutboxEvent, StoreError> {
        Ok(OutboxEvent {
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            disclosure_id: self.disclosure_id.clone(),
            organisation: self.organisation.clone(),
            payload: serde_json::to_string(self)
                .map_err(|error| StoreError::Corrupt(format!("outbox payload: {error}")))?,
            created_at: self.occurred_at_unix_ms,
        })
    }
}

/// The notification service's tables.
/// Every event goes to the audit log.
const TO_AUDIT: OutboxDestination = OutboxDestination::all("audit_relayed_at");
/// Acknowledgements (with their receipts) go back to the disclosure service.
const TO_DISCLOSURE: OutboxDestination =
    OutboxDestination::only("disclosure_relayed_at", "notification.acknowledged");

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
        .bind(&delivery.police_region)
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
        .bind(&delivery.police_region)
        .bind(sequence)
        .bind(&delivery.organisation)
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
    pub async fn last_sequence(&self, police_region: &str) -> Result<i64, StoreError> {
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT last_sequence FROM region_sequences WHERE police_region = $1",
        )
        .bind(police_region)
        .fetch_optional(self.database.pool())
        .await?;
        Ok(last.unwrap_or(0))
    }

    /// Unacknowledged deliveries of `police_region` with `after < sequence <= up_to`, in
    /// sequence order, at most `limit`.
    pub async fn pending(
        &self,
        police_region: &str,
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
            .bind(police_region)
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
        police_region: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries \
             WHERE police_region = $1 AND sequence > $2 ORDER BY sequence LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(police_region)
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
        .bind(escalation.round)
        .bind(next_at)
        .bind(&delivery.disclosure_id)
        .bind(delivery.escalations)
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
        .bind(&escalation.organisation)
        .bind(&escalation.police_region)
        .bind(i64::from(escalation.urgent))
        .bind(escalation.deadline)
        .bind(escalation.raised_at)
        .bind(escalation.round)
        .execute(&mut *transaction)
        .await?;
        event.insert(&mut transaction).await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Escalations of `organisation`'s deliveries, oldest first: of one disclosure (every
    /// round), or with `disclosure_id` empty those of deliveries not yet acknowledged.
    pub async fn escalations(
        &self,
        organisation: &str,
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
        .bind(organisation)
        .bind(disclosure_id)
        .bind(i64::from(limit))
        .fetch_all(self.database.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(EscalationRow {
                    id: row.try_get("id")?,
                    disclosure_id: row.try_get("disclosure_id")?,
                    organisation: row.try_get("organisation")?,
                    police_region: row.try_get("police_region")?,
                    urgent: row.try_get::<i64, _>("urgent")? != 0,
                    deadline: row.try_get("deadline")?,
                    raised_at: row.try_get("raised_at")?,
                    round: row.try_get("escalation_round")?,
                })
            })
            .collect()
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
        .bind(&follow_up.organisation)
        .bind(&follow_up.police_region)
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
        rows.iter()
            .map(|row| {
                Ok(FollowUpRow {
                    id: row.try_get("id")?,
                    disclosure_id: row.try_get("disclosure_id")?,
                    organisation: row.try_get("organisation")?,
                    police_region: row.try_get("police_region")?,
                    asked_by: row.try_get("asked_by")?,
                    question_sealed: row.try_get("question_sealed")?,
                    asked_at: row.try_get("asked_at")?,
                })
            })
            .collect()
    }

    /// Up to `limit` events not yet in the audit log, as (seq, payload JSON), in seq order.
    pub async fn awaiting_audit(&self, limit: i64) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(TO_AUDIT.pending(&self.database, limit).await?)
    }

    /// Records that the events `seqs` are durable in the audit log.
    pub async fn mark_audited(&self, seqs: &[i64], at: i64) -> Result<(), StoreError> {
        Ok(TO_AUDIT.mark(&self.database, seqs, at).await?)
    }

    /// Up to `limit` acknowledgements whose receipt has not reached the disclosure service, as
    /// (seq, payload JSON), in seq order.
    pub async fn awaiting_disclosure(&self, limit: i64) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(TO_DISCLOSURE.pending(&self.database, limit).await?)
    }

    /// Records that the disclosure service holds the receipts of events `seqs`.
    pub async fn mark_disclosure_relayed(&self, seqs: &[i64], at: i64) -> Result<(), StoreError> {
        Ok(TO_DISCLOSURE.mark(&self.database, seqs, at).await?)
    }

    /// How many receipts have not reached the disclosure service yet.
    pub async fn receipt_backlog(&self) -> Result<i64, StoreError> {
        Ok(TO_DISCLOSURE.backlog(&self.database).await?)
    }

    /// Unacknowledged deliveries per police region: (region, pending, overdue), overdue being
    /// escalated already or past the deadline at `now`.
    pub async fn open_deliveries(&self, now: i64) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT police_region, COUNT(*) AS pending, \
             COUNT(CASE WHEN overdue <> 0 OR deadline <= $1 THEN 1 END) AS overdue \
             FROM deliveries WHERE acknowledged_at IS NULL GROUP BY police_region",
        )
        .bind(now)
        .fetch_all(self.database.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("police_region")?,
                    row.try_get("pending")?,
                    row.try_get("overdue")?,
                ))
            })
            .collect()
    }

    /// How many events have not reached the audit log yet.
    pub async fn audit_backlog(&self) -> Result<i64, StoreError> {
        Ok(TO_AUDIT.backlog(&self.database).await?)
    }

    /// The outbox events of one disclosure as (event type, payload JSON), oldest first.
    pub async fn events_of(
        &self,
        disclosure_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT event_type, payload FROM outbox WHERE disclosure_id = $1 ORDER BY seq",
        )
        .bind(disclosure_id)
        .fetch_all(self.database.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("event_type")?, row.try_get("payload")?)))
            .collect()
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

fn delivery_from_row(row: &AnyRow) -> Result<DeliveryRow, StoreError> {
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
        police_region: row.try_get("police_region")?,
        sequence: row.try_get("sequence")?,
        organisation: row.try_get("organisation")?,
        urgent: row.try_get::<i64, _>("urgent")? != 0,
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
        overdue: row.try_get::<i64, _>("overdue")? != 0,
        escalations: row.try_get("escalations")?,
        next_escalation_at: row.try_get("next_escalation_at")?,
        receipt,
        disclosure_id,
    })
}
