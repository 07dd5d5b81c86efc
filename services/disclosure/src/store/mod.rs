//! Persistence of disclosures and their outbox. Every state change is one transaction that
//! updates the row under its version and appends one outbox event. Rows become typed records
//! ([`DisclosureRecord`]) as they are read; the write paths (one statement on PostgreSQL, a
//! transaction otherwise) are all here.

mod delivery;
mod record;

use std::sync::{LazyLock, OnceLock};

use sqlx::Row;
use tryggdel_domain::DisclosureState;
pub use tryggdel_storage::OutboxEvent;
use tryggdel_storage::{
    Backend, Database, Migrations, OutboxDestination, is_unique_violation, placeholders,
};

pub use self::delivery::DeliveryRow;
use self::delivery::{DELIVERY_COLUMN_COUNT, DELIVERY_COLUMNS, bind_delivery, upsert_delivery};
use self::record::{COLUMNS, bind_record};
pub use self::record::{Decision, DecisionOutcome, DisclosureRecord, RecordError, Step};

pub const SQLITE_MIGRATIONS: &[tryggdel_storage::MigrationFile] = tryggdel_storage::migration_files!(
    "migrations/sqlite",
    [
        "0001_disclosures.sql",
        "0002_outbox_relay.sql",
        "0003_deliveries.sql",
        "0004_outbox_by_disclosure.sql",
    ]
);
pub const POSTGRES_MIGRATIONS: &[tryggdel_storage::MigrationFile] = tryggdel_storage::migration_files!(
    "migrations/postgres",
    [
        "0001_disclosures.sql",
        "0002_outbox_relay.sql",
        "0003_deliveries.sql",
        "0004_outbox_by_disclosure.sql",
    ]
);

/// The disclosure service's migrations on both backends.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: SQLITE_MIGRATIONS,
    postgres: POSTGRES_MIGRATIONS,
};

/// Every event goes to the audit log.
const TO_AUDIT: OutboxDestination = OutboxDestination::all("audit_relayed_at");
/// Approvals go to the notification service.
const TO_POLICE: OutboxDestination =
    OutboxDestination::only("delivery_relayed_at", "disclosure.approved");

/// Who caused an outbox event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxActor {
    pub user_id: String,
    pub roles: Vec<String>,
    pub organisation: String,
    pub unit: Option<String>,
}

/// The payload of an outbox event: what the audit log needs to record it (who, what, when,
/// why, about whom — the last as keyed hashes only). Free of identity numbers and protected
/// details.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxPayload {
    pub event_id: String,
    pub event_type: String,
    pub occurred_at_unix_ms: i64,
    pub disclosure_id: String,
    pub organisation: String,
    pub police_region: String,
    pub actor: OutboxActor,
    pub state: String,
    pub version: i64,
    pub legal_basis_id: String,
    /// The legal-basis registry version in force when the event happened.
    pub registry_version: String,
    pub urgent: bool,
    pub person_refs: Vec<String>,
    pub trace_id: String,
    /// The W3C `traceparent` of the span that caused the event (empty without tracing, and
    /// in events written before it was kept): the relays continue that trace.
    #[serde(default)]
    pub traceparent: String,
    pub details: std::collections::BTreeMap<String, String>,
    /// Set when the event records a refusal, with its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

/// An approval the delivery relay has not settled yet.
#[derive(Clone, Debug)]
pub struct PendingApproval {
    /// The approval event's outbox sequence.
    pub seq: i64,
    pub disclosure_id: String,
    pub organisation: String,
    /// The approval event's payload (JSON of an `OutboxPayload`).
    pub payload: String,
}

/// What inserting a new draft did.
#[derive(Debug)]
pub enum InsertOutcome {
    Inserted,
    /// Another draft with the same (organisation, drafter, client request id) exists.
    DuplicateRequest,
}

/// Filters for [`DisclosureStore::list`].
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// None: every organisation (supervisors only).
    pub organisation: Option<String>,
    pub state: Option<DisclosureState>,
    pub created_from: i64,
    pub created_until: i64,
    /// Keyset cursor: rows strictly after (created_at, id) in descending order.
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

#[derive(Clone, Debug)]
pub struct DisclosureStore {
    database: Database,
}

impl DisclosureStore {
    pub fn new(database: Database) -> DisclosureStore {
        DisclosureStore { database }
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    pub async fn insert_draft(
        &self,
        row: &DisclosureRecord,
        event: &OutboxEvent,
    ) -> Result<InsertOutcome, sqlx::Error> {
        if self.database.backend() == Backend::Postgres {
            // One statement, so one round trip: the row and its event commit together.
            static STATEMENT: LazyLock<String> = LazyLock::new(|| {
                OutboxEvent::with_row(&INSERT_STATEMENT, "id", COLUMNS.split(',').count())
            });
            let inserted = event
                .bind(bind_record(sqlx::query(STATEMENT.as_str()), row))
                .execute(self.database.pool())
                .await;
            return match inserted {
                Ok(_) => Ok(InsertOutcome::Inserted),
                Err(error) if is_unique_violation(&error) => Ok(InsertOutcome::DuplicateRequest),
                Err(error) => Err(error),
            };
        }
        let mut transaction = self.database.pool().begin().await?;
        let inserted = bind_record(sqlx::query(INSERT_STATEMENT.as_str()), row)
            .execute(&mut *transaction)
            .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                transaction.rollback().await?;
                return Ok(InsertOutcome::DuplicateRequest);
            }
            Err(error) => return Err(error),
        }
        event.insert(&mut transaction).await?;
        transaction.commit().await?;
        Ok(InsertOutcome::Inserted)
    }

    pub async fn find_by_client_request(
        &self,
        organisation: &str,
        drafted_by: &str,
        client_request_id: &str,
    ) -> Result<Option<DisclosureRecord>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM disclosures \
             WHERE organisation = $1 AND drafted_by = $2 AND client_request_id = $3"
        ))
        .bind(organisation)
        .bind(drafted_by)
        .bind(client_request_id)
        .fetch_optional(self.database.pool())
        .await
    }

    pub async fn get(&self, id: &str) -> Result<Option<DisclosureRecord>, sqlx::Error> {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM disclosures WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.database.pool())
            .await
    }

    /// Writes `row` if the stored version is still `expected_version`, with `event`, in one
    /// transaction. Returns false (and writes nothing) when the version moved on.
    pub async fn update(
        &self,
        row: &DisclosureRecord,
        expected_version: i64,
        event: &OutboxEvent,
    ) -> Result<bool, sqlx::Error> {
        if self.database.backend() == Backend::Postgres {
            return self
                .update_in_one_statement(row, expected_version, Some(event), None, None)
                .await;
        }
        let mut transaction = self.database.pool().begin().await?;
        if !update_row(&mut transaction, row, expected_version).await? {
            transaction.rollback().await?;
            return Ok(false);
        }
        event.insert(&mut transaction).await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Approvals not yet handed to the notification service, oldest first.
    pub async fn awaiting_delivery(&self, limit: i64) -> Result<Vec<PendingApproval>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT outbox.seq, outbox.disclosure_id, outbox.payload, disclosures.organisation \
             FROM outbox JOIN disclosures ON disclosures.id = outbox.disclosure_id \
             WHERE outbox.delivery_relayed_at IS NULL \
             AND outbox.event_type = 'disclosure.approved' \
             ORDER BY outbox.seq LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.database.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingApproval {
                    seq: row.try_get("seq")?,
                    disclosure_id: row.try_get("disclosure_id")?,
                    organisation: row.try_get("organisation")?,
                    payload: row.try_get("payload")?,
                })
            })
            .collect()
    }

    /// Marks the approval `seq` as handed over (or settled otherwise), with `event` if given,
    /// in one transaction.
    pub async fn settle_delivery(
        &self,
        seq: i64,
        event: Option<&OutboxEvent>,
        at: i64,
    ) -> Result<(), sqlx::Error> {
        let mut transaction = self.database.pool().begin().await?;
        if let Some(event) = event {
            event.insert(&mut transaction).await?;
        }
        mark_delivered(&mut transaction, seq, at).await?;
        transaction.commit().await
    }

    /// Moves `row` on under `expected_version` with `events`, writes its delivery record, and,
    /// for the delivery relay, settles the approval `seq` — all in one transaction. Returns
    /// false (and writes nothing) when the version moved on.
    pub async fn record_delivery(
        &self,
        row: &DisclosureRecord,
        expected_version: i64,
        events: &[OutboxEvent],
        delivery: &DeliveryRow,
        settles: Option<(i64, i64)>,
    ) -> Result<bool, sqlx::Error> {
        if self.database.backend() == Backend::Postgres && events.len() <= 1 {
            // (Two events stay in a transaction, where their order in the outbox is certain.)
            return self
                .update_in_one_statement(
                    row,
                    expected_version,
                    events.first(),
                    Some(delivery),
                    settles,
                )
                .await;
        }
        let mut transaction = self.database.pool().begin().await?;
        if !update_row(&mut transaction, row, expected_version).await? {
            transaction.rollback().await?;
            return Ok(false);
        }
        for event in events {
            event.insert(&mut transaction).await?;
        }
        bind_delivery(
            sqlx::query(&upsert_delivery(
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )),
            delivery,
        )
        .execute(&mut *transaction)
        .await?;
        if let Some((seq, at)) = settles {
            mark_delivered(&mut transaction, seq, at).await?;
        }
        transaction.commit().await?;
        Ok(true)
    }

    /// PostgreSQL: `row`'s update under `expected_version` with what goes with it (its event,
    /// its delivery record, the approval `settles` marks handed over) as one statement, so one
    /// round trip, committed whole. Each part is written only if the update matched, which the
    /// result says.
    async fn update_in_one_statement(
        &self,
        row: &DisclosureRecord,
        expected_version: i64,
        event: Option<&OutboxEvent>,
        delivery: Option<&DeliveryRow>,
        settles: Option<(i64, i64)>,
    ) -> Result<bool, sqlx::Error> {
        // Each combination of parts is one statement text, built once.
        static STATEMENTS: [OnceLock<String>; 8] = [const { OnceLock::new() }; 8];
        let parts = (event.is_some(), delivery.is_some(), settles.is_some());
        let key = usize::from(parts.0) | usize::from(parts.1) << 1 | usize::from(parts.2) << 2;
        let statement = STATEMENTS[key].get_or_init(|| one_statement_update(parts));
        let mut query = bind_record(sqlx::query(statement.as_str()), row).bind(expected_version);
        if let Some(event) = event {
            query = event.bind(query);
        }
        if let Some(delivery) = delivery {
            query = bind_delivery(query, delivery);
        }
        if let Some((seq, at)) = settles {
            query = query.bind(at).bind(seq);
        }
        let updated: i64 = query.fetch_one(self.database.pool()).await?.try_get(0)?;
        Ok(updated == 1)
    }

    /// The delivery record of a disclosure, if it was delivered.
    pub async fn delivery(&self, disclosure_id: &str) -> Result<Option<DeliveryRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE disclosure_id = $1"
        ))
        .bind(disclosure_id)
        .fetch_optional(self.database.pool())
        .await
    }

    /// A disclosure and its delivery record, if it has one, in one query.
    pub async fn get_with_delivery(
        &self,
        id: &str,
    ) -> Result<Option<(DisclosureRecord, Option<DeliveryRow>)>, sqlx::Error> {
        static STATEMENT: LazyLock<String> = LazyLock::new(|| {
            let disclosure: Vec<String> = COLUMNS
                .split(',')
                .map(|column| format!("disclosures.{}", column.trim()))
                .collect();
            let delivery: Vec<String> = DELIVERY_COLUMNS
                .split(',')
                .map(|column| format!("deliveries.{0} AS delivery_{0}", column.trim()))
                .collect();
            format!(
                "SELECT {}, {} FROM disclosures \
                 LEFT JOIN deliveries ON deliveries.disclosure_id = disclosures.id \
                 WHERE disclosures.id = $1",
                disclosure.join(", "),
                delivery.join(", ")
            )
        });
        let row = sqlx::query(STATEMENT.as_str())
            .bind(id)
            .fetch_optional(self.database.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let delivered: Option<String> = row.try_get("delivery_disclosure_id")?;
        let delivery = match delivered {
            Some(_) => Some(DeliveryRow::from_prefixed(&row, "delivery_")?),
            None => None,
        };
        Ok(Some((sqlx::FromRow::from_row(&row)?, delivery)))
    }

    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<DisclosureRecord>, sqlx::Error> {
        let (after_time, after_id) = filter.after.clone().unwrap_or((i64::MAX, String::new()));
        let until = if filter.created_until > 0 {
            filter.created_until
        } else {
            i64::MAX
        };
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM disclosures \
             WHERE ($1 = '' OR organisation = $1) AND ($2 = '' OR state = $2) \
             AND created_at >= $3 AND created_at < $4 \
             AND (created_at < $5 OR (created_at = $5 AND ($6 = '' OR id < $6))) \
             ORDER BY created_at DESC, id DESC LIMIT $7"
        ))
        .bind(filter.organisation.clone().unwrap_or_default())
        .bind(filter.state.map_or("", DisclosureState::as_str))
        .bind(filter.created_from)
        .bind(until)
        .bind(after_time)
        .bind(after_id)
        .bind(filter.limit)
        .fetch_all(self.database.pool())
        .await
    }

    /// Up to `limit` events not yet in the audit log, oldest first, with their sequence numbers.
    pub async fn awaiting_audit(&self, limit: i64) -> Result<Vec<(i64, String)>, sqlx::Error> {
        TO_AUDIT.pending(&self.database, limit).await
    }

    /// Records that the events `seqs` are durable in the audit log.
    pub async fn mark_audited(&self, seqs: &[i64], at: i64) -> Result<(), sqlx::Error> {
        TO_AUDIT.mark(&self.database, seqs, at).await
    }

    /// How many events have not reached the audit log yet.
    pub async fn audit_backlog(&self) -> Result<i64, sqlx::Error> {
        TO_AUDIT.backlog(&self.database).await
    }

    /// How many approvals have not been handed to the notification service yet.
    pub async fn delivery_backlog(&self) -> Result<i64, sqlx::Error> {
        TO_POLICE.backlog(&self.database).await
    }

    /// Outbox events of one disclosure, oldest first.
    pub async fn events_of(&self, disclosure_id: &str) -> Result<Vec<OutboxEvent>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {} FROM outbox WHERE disclosure_id = $1 ORDER BY seq",
            OutboxEvent::COLUMNS
        ))
        .bind(disclosure_id)
        .fetch_all(self.database.pool())
        .await
    }
}

/// `INSERT INTO disclosures (<COLUMNS>) VALUES ($1, … $25)`, in [`bind_record`] order.
static INSERT_STATEMENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO disclosures ({COLUMNS}) VALUES ({})",
        placeholders(1, COLUMNS.split(',').count())
    )
});

/// `UPDATE disclosures SET <column> = $n, … WHERE id = $1 AND version = $26`, with the
/// placeholders numbered in [`COLUMNS`] order to match [`bind_record`].
static UPDATE_STATEMENT: LazyLock<String> = LazyLock::new(|| {
    let assignments: Vec<String> = COLUMNS
        .split(',')
        .map(str::trim)
        .enumerate()
        .skip(1)
        .map(|(index, column)| format!("{column} = ${}", index + 1))
        .collect();
    let version_placeholder = COLUMNS.split(',').count() + 1;
    format!(
        "UPDATE disclosures SET {} WHERE id = $1 AND version = ${version_placeholder}",
        assignments.join(", ")
    )
});

/// The statement of [`DisclosureStore::update_in_one_statement`] with its optional parts
/// (event, delivery record, settled approval), their placeholders after the row's and its
/// version's, in that order.
fn one_statement_update((event, delivery, settles): (bool, bool, bool)) -> String {
    let mut bound = COLUMNS.split(',').count() + 1;
    let mut parts = vec![format!(
        "updated AS ({} RETURNING id)",
        UPDATE_STATEMENT.as_str()
    )];
    if event {
        parts.push(format!(
            "event AS ({})",
            OutboxEvent::insert_after("updated", bound)
        ));
        bound += OutboxEvent::COLUMN_COUNT;
    }
    if delivery {
        parts.push(format!(
            "delivery AS ({})",
            upsert_delivery(&format!(
                "SELECT {} FROM updated",
                placeholders(bound + 1, DELIVERY_COLUMN_COUNT)
            ))
        ));
        bound += DELIVERY_COLUMN_COUNT;
    }
    if settles {
        parts.push(format!(
            "settled AS (UPDATE outbox SET delivery_relayed_at = ${} WHERE seq = ${} \
             AND EXISTS (SELECT 1 FROM updated))",
            bound + 1,
            bound + 2
        ));
    }
    format!("WITH {} SELECT COUNT(*) FROM updated", parts.join(", "))
}

/// Writes every column of `row` if its stored version is still `expected_version`.
async fn update_row(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    row: &DisclosureRecord,
    expected_version: i64,
) -> Result<bool, sqlx::Error> {
    // Every column but the id is written (the immutable ones with their stored values), so
    // one binding list serves insert and update alike.
    let result = bind_record(sqlx::query(UPDATE_STATEMENT.as_str()), row)
        .bind(expected_version)
        .execute(&mut **transaction)
        .await?;
    Ok(result.rows_affected() == 1)
}

async fn mark_delivered(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    seq: i64,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET delivery_relayed_at = $1 WHERE seq = $2")
        .bind(at)
        .bind(seq)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}
