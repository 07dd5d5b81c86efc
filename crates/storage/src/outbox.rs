//! The outbox convention every service follows: a table `outbox` with `seq` (in commit
//! order), `event_type`, `payload` (JSON) and one `<destination>_relayed_at` column per
//! destination, NULL until that destination holds the event. These queries read what a relay
//! still has to send and record what it sent.

use std::sync::LazyLock;

use sqlx::Row;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;

use crate::Database;

/// `$first, $first+1, …`: `count` numbered placeholders.
pub fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The event's INSERT on its own, in a transaction with its change.
static INSERT_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO outbox ({}) VALUES ({})",
        OutboxEvent::COLUMNS,
        placeholders(1, OutboxEvent::COLUMN_COUNT)
    )
});

/// One outbox row, written in the transaction of the change it records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEvent {
    pub event_id: String,
    pub event_type: String,
    pub disclosure_id: String,
    pub organisation: String,
    /// JSON, in the service's own payload format.
    pub payload: String,
    pub created_at: i64,
}

impl OutboxEvent {
    /// The columns an event writes (and reads), in [`OutboxEvent::bind`] order.
    pub const COLUMNS: &str =
        "event_id, event_type, disclosure_id, organisation, payload, created_at";

    /// The placeholders [`OutboxEvent::bind`] fills.
    pub const COLUMN_COUNT: usize = 6;

    /// Binds the event's columns after what `query` binds already.
    pub fn bind<'q>(
        &'q self,
        query: Query<'q, sqlx::Any, AnyArguments<'q>>,
    ) -> Query<'q, sqlx::Any, AnyArguments<'q>> {
        query
            .bind(&self.event_id)
            .bind(&self.event_type)
            .bind(&self.disclosure_id)
            .bind(&self.organisation)
            .bind(&self.payload)
            .bind(self.created_at)
    }

    /// Writes the event in `transaction`.
    pub async fn insert(
        &self,
        transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    ) -> Result<(), sqlx::Error> {
        self.bind(sqlx::query(INSERT_EVENT.as_str()))
            .execute(&mut **transaction)
            .await?;
        Ok(())
    }

    /// The tail of a PostgreSQL statement `WITH <cte> AS (<one row's INSERT or UPDATE>
    /// RETURNING …) <this>` that writes the event once if the CTE wrote its row and not at all
    /// if it did not, all in one statement (one round trip, committed together). The event's
    /// placeholders follow the CTE's `bound_before`; bind it with [`OutboxEvent::bind`] after
    /// the CTE's values.
    pub fn insert_after(cte: &str, bound_before: usize) -> String {
        format!(
            "INSERT INTO outbox ({}) SELECT {} FROM {cte}",
            Self::COLUMNS,
            placeholders(bound_before + 1, Self::COLUMN_COUNT)
        )
    }

    /// PostgreSQL: `row_statement` (an INSERT or UPDATE of at most one row, with
    /// `bound_before` placeholders) and the event, as one statement: `WITH written AS
    /// (<row_statement> RETURNING <returning>) INSERT INTO outbox …`. Its row count is 1 when
    /// both were written, 0 when the row statement wrote nothing (and so neither was).
    pub fn with_row(row_statement: &str, returning: &str, bound_before: usize) -> String {
        format!(
            "WITH written AS ({row_statement} RETURNING {returning}) {}",
            Self::insert_after("written", bound_before)
        )
    }
}

impl sqlx::FromRow<'_, AnyRow> for OutboxEvent {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            event_id: row.try_get("event_id")?,
            event_type: row.try_get("event_type")?,
            disclosure_id: row.try_get("disclosure_id")?,
            organisation: row.try_get("organisation")?,
            payload: row.try_get("payload")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// One destination of a service's outbox.
#[derive(Clone, Copy, Debug)]
pub struct OutboxDestination {
    /// The `…_relayed_at` column.
    column: &'static str,
    /// Only events of this type go to the destination (all when None).
    event_type: Option<&'static str>,
}

impl OutboxDestination {
    /// A destination of every event, recorded in `column`. `column` is a compile-time name
    /// (lowercase letters and `_`), never input.
    pub const fn all(column: &'static str) -> OutboxDestination {
        OutboxDestination {
            column,
            event_type: None,
        }
    }

    /// A destination of events of `event_type` only.
    pub const fn only(column: &'static str, event_type: &'static str) -> OutboxDestination {
        OutboxDestination {
            column,
            event_type: Some(event_type),
        }
    }

    fn filter(&self) -> String {
        match self.event_type {
            Some(_) => format!("{} IS NULL AND event_type = $2", self.column),
            None => format!("{} IS NULL", self.column),
        }
    }

    /// Up to `limit` events not yet at the destination, as (seq, payload), oldest first.
    pub async fn pending(
        &self,
        database: &Database,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let sql = format!(
            "SELECT seq, payload FROM outbox WHERE {} ORDER BY seq LIMIT $1",
            self.filter()
        );
        let mut query = sqlx::query(&sql).bind(limit);
        if let Some(event_type) = self.event_type {
            query = query.bind(event_type);
        }
        let rows = query.fetch_all(database.pool()).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("seq")?, row.try_get("payload")?)))
            .collect()
    }

    /// Records that the destination holds the events `seqs`.
    pub async fn mark(
        &self,
        database: &Database,
        seqs: &[i64],
        at: i64,
    ) -> Result<(), sqlx::Error> {
        let Some(&last) = seqs.last() else {
            return Ok(());
        };
        // The list is padded to a power of two with repeats of the last seq, so a relay's
        // batches of any size use a handful of statement texts (each prepared once per
        // connection), not one per length.
        let slots = seqs.len().next_power_of_two();
        let sql = format!(
            "UPDATE outbox SET {} = $1 WHERE seq IN ({})",
            self.column,
            placeholders(2, slots)
        );
        let mut query = sqlx::query(&sql).bind(at);
        for seq in seqs
            .iter()
            .copied()
            .chain(std::iter::repeat(last))
            .take(slots)
        {
            query = query.bind(seq);
        }
        query.execute(database.pool()).await?;
        Ok(())
    }

    /// How many events the destination does not hold yet.
    pub async fn backlog(&self, database: &Database) -> Result<i64, sqlx::Error> {
        let sql = format!(
            "SELECT COUNT(*) FROM outbox WHERE {}",
            self.filter().replace("$2", "$1")
        );
        let mut query = sqlx::query_scalar(&sql);
        if let Some(event_type) = self.event_type {
            query = query.bind(event_type);
        }
        query.fetch_one(database.pool()).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{MigrationFile, Migrations};

    #[test]
    fn placeholders_are_numbered_from_first() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(placeholders(1, 1), "$1");
        assert_eq!(placeholders(7, 0), "");
        assert_eq!(
            OutboxEvent::with_row("UPDATE t SET a = $1", "id", 1),
            "WITH written AS (UPDATE t SET a = $1 RETURNING id) INSERT INTO outbox (event_id, \
             event_type, disclosure_id, organisation, payload, created_at) SELECT $2, $3, $4, $5, \
             $6, $7 FROM written"
        );
    }

    const OUTBOX: &[MigrationFile] = &[MigrationFile {
        name: "0001_outbox.sql",
        sql: "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, \
              event_type TEXT NOT NULL, disclosure_id TEXT NOT NULL, organisation TEXT NOT NULL, \
              payload TEXT NOT NULL, created_at INTEGER NOT NULL, audit_relayed_at INTEGER);",
    }];

    #[tokio::test]
    async fn marking_touches_exactly_the_given_events_whatever_their_number() {
        let directory = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", directory.path().join("o.db").display());
        let migrations = Migrations {
            sqlite: OUTBOX,
            postgres: &[],
        };
        let database = Database::connect(&url, "o", &migrations).await.unwrap();
        for n in 0..20 {
            let event = OutboxEvent {
                event_id: format!("e{n}"),
                event_type: "t".into(),
                disclosure_id: "d".into(),
                organisation: "o".into(),
                payload: "{}".into(),
                created_at: n,
            };
            let mut transaction = database.pool().begin().await.unwrap();
            event.insert(&mut transaction).await.unwrap();
            transaction.commit().await.unwrap();
        }
        let audit = OutboxDestination::all("audit_relayed_at");
        // 5 ids fill 8 placeholders, 1 fills 1, 3 fill 4: nothing else may be marked.
        audit.mark(&database, &[2, 4, 6, 8, 10], 100).await.unwrap();
        audit.mark(&database, &[13], 101).await.unwrap();
        audit.mark(&database, &[15, 16, 17], 102).await.unwrap();
        audit.mark(&database, &[], 103).await.unwrap();
        let pending: Vec<i64> = audit
            .pending(&database, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|(seq, _)| seq)
            .collect();
        assert_eq!(pending, [1, 3, 5, 7, 9, 11, 12, 14, 18, 19, 20]);
        assert_eq!(audit.backlog(&database).await.unwrap(), 11);
    }
}
