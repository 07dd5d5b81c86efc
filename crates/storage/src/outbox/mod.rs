//! The outbox, one capability for every service: a table `outbox` with `seq` (in commit
//! order), `event_type`, `payload` (JSON, the service's own record of the event),
//! `audit_event` (the event as the audit log takes it, encoded, ready to send),
//! `traceparent` (the trace the relays continue) and one `<destination>_relayed_at` column per
//! destination, NULL until that destination holds the event.
//!
//! [`write`] (or [`write_in`]) stores a change and its events together, the one place that
//! knows how on each backend; [`OutboxDestination`] reads what a relay still has to send and
//! records what it sent.

mod group;
mod write;

pub(crate) use group::{GroupCommit, POSTGRES_BATCHES_IN_FLIGHT, WriterPools};

pub use write::{AnyQuery, Arguments, Change, Companion, Written, write, write_in};

use std::sync::LazyLock;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::{Executor as _, Row};

use crate::{Backend, Database};

/// A SQLite connection whose commits do not wait for the disk (`synchronous = NORMAL`; in WAL
/// mode they still reach it in order, with the next synchronous commit at the latest).
/// Invariant: it goes back to the pool only as it came (`synchronous = FULL`), through
/// [`Unsynced::restore`]; dropped otherwise (an error, a cancelled call), it is closed instead.
struct Unsynced(Option<PoolConnection<sqlx::Any>>);

impl Unsynced {
    async fn acquire(pool: &sqlx::AnyPool) -> Result<Unsynced, sqlx::Error> {
        let mut connection = Unsynced(Some(pool.acquire().await?));
        connection
            .get()?
            .execute("PRAGMA synchronous = NORMAL")
            .await?;
        Ok(connection)
    }

    fn get(&mut self) -> Result<&mut sqlx::AnyConnection, sqlx::Error> {
        self.0.as_deref_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// Makes the connection synchronous again and gives it back to the pool.
    async fn restore(mut self) -> Result<(), sqlx::Error> {
        self.get()?.execute("PRAGMA synchronous = FULL").await?;
        self.0.take();
        Ok(())
    }
}

impl Drop for Unsynced {
    fn drop(&mut self) {
        if let Some(connection) = self.0.take() {
            // Not back into the pool unsynchronised: the pool opens a fresh connection, with
            // the pragmas every connection starts with, when it needs one.
            drop(connection.detach());
        }
    }
}

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
    /// The event as the audit log takes it (a protobuf `AuditEvent`), encoded. Empty only in
    /// rows written before it was kept, until the service fills it in at start.
    pub audit_event: Vec<u8>,
    /// The W3C `traceparent` of the span that caused the event (empty without tracing).
    pub traceparent: String,
}

impl OutboxEvent {
    /// The columns an event writes (and reads), in [`OutboxEvent::bind`] order.
    pub const COLUMNS: &str = "event_id, event_type, disclosure_id, organisation, payload, \
        created_at, audit_event, traceparent";

    /// The placeholders [`OutboxEvent::bind`] fills.
    pub const COLUMN_COUNT: usize = 8;

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
            .bind(self.audit_event.as_slice())
            .bind(&self.traceparent)
    }

    /// Rows one INSERT of [`OutboxEvent::insert_all`] writes: 8,000 placeholders, well within
    /// what both databases take in one statement.
    pub(crate) const ROWS_PER_INSERT: usize = 1_000;

    /// Writes `events` with one multi-row INSERT per [`Self::ROWS_PER_INSERT`] of them: one
    /// round trip for the usual handful instead of one per event.
    pub async fn insert_all(
        events: &[&OutboxEvent],
        connection: &mut sqlx::AnyConnection,
    ) -> Result<(), sqlx::Error> {
        for chunk in events.chunks(Self::ROWS_PER_INSERT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|row| {
                    format!(
                        "({})",
                        placeholders(1 + row * Self::COLUMN_COUNT, Self::COLUMN_COUNT)
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO outbox ({}) VALUES {}",
                Self::COLUMNS,
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for event in chunk {
                query = event.bind(query);
            }
            query.execute(&mut *connection).await?;
        }
        Ok(())
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
}

/// Stores `events` that report no change of a row (e.g. that someone read personal data), all
/// or nothing, and answers once they are committed: the relays take them like any other
/// event. Concurrent calls are committed together (see the `group` module).
pub async fn record_events(
    database: &crate::Database,
    events: &[OutboxEvent],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    database.reads().record(events.to_vec()).await
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
            audit_event: row
                .try_get::<Option<Vec<u8>>, _>("audit_event")?
                .unwrap_or_default(),
            traceparent: row.try_get("traceparent")?,
        })
    }
}

/// An event a relay still has to send, with its place in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEvent {
    pub seq: i64,
    pub event: OutboxEvent,
}

/// Up to `limit` events written before the outbox kept the audit event, as (seq, payload
/// JSON), oldest first: the service fills them in with [`set_audit_event`] at start.
pub async fn events_without_audit_event(
    database: &Database,
    limit: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, payload FROM outbox WHERE audit_event IS NULL ORDER BY seq LIMIT $1",
    )
    .bind(limit)
    .fetch_all(database.pool())
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("seq")?, row.try_get("payload")?)))
        .collect()
}

/// Stores the audit event (and trace context) of an event written before they were kept.
pub async fn set_audit_event(
    database: &Database,
    seq: i64,
    audit_event: &[u8],
    traceparent: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET audit_event = $1, traceparent = $2 WHERE seq = $3")
        .bind(audit_event)
        .bind(traceparent)
        .bind(seq)
        .execute(database.pool())
        .await?;
    Ok(())
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

    /// The `…_relayed_at` column, which names the destination in logs and metrics.
    pub fn column(&self) -> &'static str {
        self.column
    }

    /// Up to `limit` events not yet at the destination, oldest first.
    pub async fn pending(
        &self,
        database: &Database,
        limit: i64,
    ) -> Result<Vec<PendingEvent>, sqlx::Error> {
        let sql = format!(
            "SELECT seq, {} FROM outbox WHERE {} ORDER BY seq LIMIT $1",
            OutboxEvent::COLUMNS,
            self.filter()
        );
        let mut query = sqlx::query(&sql).bind(limit);
        if let Some(event_type) = self.event_type {
            query = query.bind(event_type);
        }
        // On a reader's connection (SQLite): a relay's read does not hold up the writes.
        let rows = query.fetch_all(database.read_pool()).await?;
        rows.iter()
            .map(|row| {
                Ok(PendingEvent {
                    seq: row.try_get("seq")?,
                    event: sqlx::FromRow::from_row(row)?,
                })
            })
            .collect()
    }

    /// Records that the destination holds the events `seqs`.
    ///
    /// The record is atomic and ordered with every other commit, but its commit does not wait
    /// for the disk: destinations take a repeat as a no-op, so a mark lost in a crash only
    /// sends those events again, which a crash between sending and marking does anyway. The
    /// flush it skips is one the reads' group commit would otherwise queue behind.
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
        match database.backend() {
            Backend::Postgres => {
                let mut transaction = database.pool().begin().await?;
                transaction
                    .execute("SET LOCAL synchronous_commit = off")
                    .await?;
                query.execute(&mut *transaction).await?;
                transaction.commit().await
            }
            Backend::Sqlite => {
                let mut connection = Unsynced::acquire(database.pool()).await?;
                let updated = query.execute(connection.get()?).await;
                connection.restore().await?;
                updated.map(drop)
            }
        }
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
    }

    pub(super) const OUTBOX: &[MigrationFile] = &[MigrationFile {
        name: "0001_outbox.sql",
        sql: "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, \
              event_type TEXT NOT NULL, disclosure_id TEXT NOT NULL, organisation TEXT NOT NULL, \
              payload TEXT NOT NULL, created_at INTEGER NOT NULL, audit_event BLOB, \
              traceparent TEXT NOT NULL DEFAULT '', audit_relayed_at INTEGER); \
              CREATE TABLE rows (id TEXT PRIMARY KEY, version INTEGER NOT NULL); \
              CREATE TABLE notes (id TEXT PRIMARY KEY, note TEXT NOT NULL);",
    }];

    /// An event of `n`, as [`write`] tests and marking tests store them.
    pub(super) fn event(n: i64) -> OutboxEvent {
        OutboxEvent {
            event_id: format!("e{n}"),
            event_type: "t".into(),
            disclosure_id: "d".into(),
            organisation: "o".into(),
            payload: "{}".into(),
            created_at: n,
            audit_event: vec![1, 2, u8::try_from(n).unwrap()],
            traceparent: format!("tp{n}"),
        }
    }

    /// Every event not yet in the audit log, oldest first.
    pub(super) async fn pending_at_audit(database: &Database) -> Vec<PendingEvent> {
        OutboxDestination::all("audit_relayed_at")
            .pending(database, 100)
            .await
            .unwrap()
    }

    /// A fresh SQLite database with [`OUTBOX`].
    pub(super) async fn database(directory: &tempfile::TempDir) -> Database {
        let url = format!("sqlite://{}", directory.path().join("o.db").display());
        let migrations = Migrations {
            sqlite: OUTBOX,
            postgres: &[],
        };
        Database::connect(&url, "o", &migrations).await.unwrap()
    }

    #[tokio::test]
    async fn marking_touches_exactly_the_given_events_whatever_their_number() {
        let directory = tempfile::tempdir().unwrap();
        let database = database(&directory).await;
        for n in 0..20 {
            let event = event(n);
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
        let pending: Vec<i64> = pending_at_audit(&database)
            .await
            .iter()
            .map(|pending| pending.seq)
            .collect();
        assert_eq!(pending, [1, 3, 5, 7, 9, 11, 12, 14, 18, 19, 20]);
        assert_eq!(audit.backlog(&database).await.unwrap(), 11);
    }

    /// Events written together, more than one statement takes, are all stored, each with
    /// its own columns, in the order given.
    #[tokio::test]
    async fn insert_all_writes_every_event_in_order_over_several_statements() {
        let directory = tempfile::tempdir().unwrap();
        let database = database(&directory).await;
        let count = OutboxEvent::ROWS_PER_INSERT * 2 + 37;
        let events: Vec<OutboxEvent> = (0..i64::try_from(count).unwrap())
            .map(|n| OutboxEvent {
                event_id: format!("all-{n}"),
                audit_event: n.to_be_bytes().to_vec(),
                ..event(n % 200)
            })
            .collect();
        let refs: Vec<&OutboxEvent> = events.iter().collect();
        let mut transaction = database.pool().begin().await.unwrap();
        OutboxEvent::insert_all(&refs, &mut transaction)
            .await
            .unwrap();
        transaction.commit().await.unwrap();
        let stored: Vec<OutboxEvent> = OutboxDestination::all("audit_relayed_at")
            .pending(&database, i64::try_from(count).unwrap() + 10)
            .await
            .unwrap()
            .into_iter()
            .map(|pending| pending.event)
            .collect();
        assert_eq!(stored, events);
    }

    /// The one connection every SQLite call shares is synchronous again after a mark, also
    /// after one that failed; one dropped halfway is closed, not given back unsynchronised.
    #[tokio::test]
    async fn a_mark_leaves_every_later_commit_synchronous() {
        let directory = tempfile::tempdir().unwrap();
        let database = database(&directory).await;
        let synchronous = || async {
            sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
                .fetch_one(database.pool())
                .await
                .unwrap()
        };
        // 2 is FULL.
        assert_eq!(synchronous().await, 2);
        let audit = OutboxDestination::all("audit_relayed_at");
        audit.mark(&database, &[1], 100).await.unwrap();
        assert_eq!(synchronous().await, 2);
        let missing = OutboxDestination::all("no_such_column");
        assert!(missing.mark(&database, &[1], 100).await.is_err());
        assert_eq!(synchronous().await, 2);
        let unsynced = Unsynced::acquire(database.pool()).await.unwrap();
        drop(unsynced);
        assert_eq!(synchronous().await, 2);
    }

    #[tokio::test]
    async fn a_pending_event_reads_back_as_written_and_old_rows_get_their_audit_event() {
        let directory = tempfile::tempdir().unwrap();
        let database = database(&directory).await;
        let mut transaction = database.pool().begin().await.unwrap();
        event(7).insert(&mut transaction).await.unwrap();
        transaction.commit().await.unwrap();
        // A row as written before the outbox kept the audit event.
        sqlx::query(
            "INSERT INTO outbox (event_id, event_type, disclosure_id, organisation, payload, \
             created_at) VALUES ('old', 't', 'd', 'o', '{\"old\":1}', 1)",
        )
        .execute(database.pool())
        .await
        .unwrap();
        let audit = OutboxDestination::all("audit_relayed_at");
        let pending = audit.pending(&database, 10).await.unwrap();
        assert_eq!(
            pending[0],
            PendingEvent {
                seq: 1,
                event: event(7)
            }
        );
        assert!(pending[1].event.audit_event.is_empty());
        assert_eq!(
            events_without_audit_event(&database, 10).await.unwrap(),
            [(2, "{\"old\":1}".to_owned())]
        );
        set_audit_event(&database, 2, &[9, 9], "tp").await.unwrap();
        assert!(
            events_without_audit_event(&database, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let filled = &audit.pending(&database, 10).await.unwrap()[1].event;
        assert_eq!(
            (filled.audit_event.as_slice(), filled.traceparent.as_str()),
            (&[9u8, 9][..], "tp")
        );
    }
}
