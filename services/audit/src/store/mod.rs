//! Persistence of the log: entries with their person index, and signed checkpoints. Only
//! inserts and selects; the migrations make the database refuse anything else.
//!
//! Every write goes through a [`LogWriter`]: one transaction that, on PostgreSQL, first takes
//! the log's advisory lock, so that the writes of all instances sharing one database are
//! serialised and each sees everything committed before it (the lock is taken before any read
//! of the transaction, and READ COMMITTED gives each statement a fresh snapshot).
//!
//! On PostgreSQL a writer's transaction runs on a native connection
//! ([`Database::postgres_pool`]) rather than the `Any` pool, so that its batch inserts can be
//! `COPY ... FROM STDIN (FORMAT BINARY)`: the rows go as they are stored, with nothing for the
//! server to parse but the binary format, which is most of the time a batch holds the lock.
//! Every other statement of the transaction (the lock, the catch-up reads, the dedupe lookup,
//! the checkpoint) therefore runs on that connection too; SQLite, and every read outside a
//! writer, stay on the `Any` pool. What the two drivers do differently (the writer's begin and
//! end, the entries' insert, the dedupe lookup) is in `postgres` and `sqlite`; this module
//! holds the API, the types, the row decoding, and the statements that are the same on both,
//! each written once over either driver's connection (`*_on`).

mod personal;
mod postgres;
mod sqlite;

pub use personal::{Destroyed, PersonalKey, SealedOpening};

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{
    Any, AnyConnection, Encode, Executor, IntoArguments, PgConnection, Postgres, Row, Type,
};
use tryggdel_merkle::{Hash, hash_from_slice};
use tryggdel_storage::{Database, Migrations};

use crate::review::access::AccessRow;

/// The audit service's migrations on both backends.
pub const MIGRATIONS: Migrations = tryggdel_storage::migrations!([
    "0001_audit_log.sql",
    "0002_audit_scrub.sql",
    "0003_personal_store.sql",
    "0004_log_review.sql",
    "0005_log_review_relations.sql",
    "0006_review_index.sql",
]);

/// The log's lock on PostgreSQL: `pg_advisory_xact_lock(LOG_LOCK_CLASS, hashtext(schema))`, so
/// logs in different schemas of one database do not wait for each other. The class is "TGAU"
/// in ASCII; nothing else in a Tryggdel database takes advisory locks.
pub const LOG_LOCK_CLASS: i32 = 0x5447_4155;

/// An entry about to be written.
#[derive(Clone, Debug)]
pub struct NewEntry {
    pub index: u64,
    pub event_id: String,
    pub fingerprint: String,
    pub bytes: Vec<u8>,
    pub leaf_hash: Hash,
    pub recorded_at: i64,
    pub occurred_at: i64,
    pub organisation: String,
    pub actor_organisation: String,
    pub actor_user_id: String,
    pub action: String,
    pub legal_basis_id: String,
    pub disclosure_id: String,
    pub person_refs: Vec<String>,
    /// Format 2: the entry's openings, sealed under their keys.
    pub openings: Vec<SealedOpening>,
    /// The entry's row of the review's access index, if it is an access or marked.
    pub access: Option<AccessRow>,
}

/// An entry already in the log, as found by its event id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingEntry {
    pub index: u64,
    pub fingerprint: String,
    pub leaf_hash: Hash,
}

/// A stored entry: its index, exact bytes and leaf hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    pub index: u64,
    pub bytes: Vec<u8>,
    pub leaf_hash: Hash,
}

/// A signed checkpoint as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub tree_size: u64,
    pub root: Hash,
    pub note: String,
    pub signed_at: i64,
}

/// Filters of a query; empty strings and zero times do not filter.
#[derive(Clone, Debug, Default)]
pub struct QueryFilter {
    pub occurred_from: i64,
    pub occurred_until: i64,
    pub organisation: String,
    pub actor_user_id: String,
    pub action: String,
    pub legal_basis_id: String,
    pub disclosure_id: String,
    pub person_ref: String,
    /// Only entries with a larger index (paging).
    pub after_index: Option<u64>,
    pub limit: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("the stored log is inconsistent: {0}")]
    Corrupt(String),
    #[error("a batch could not be encoded for the database: {0}")]
    Encoding(String),
    /// A [`ClosingConnection`] asked for after it gave its connection up. `release` consumes
    /// it, so this is not expected; the connection is an `Option` only so that `Drop` can take it.
    #[error("the log's connection has already been released")]
    Ended,
}

/// A connection the log reads on: one of the `Any` pool's, or a [`LogWriter`]'s transaction
/// (which, on PostgreSQL, is a native connection).
pub enum LogConnection<'c> {
    Any(&'c mut AnyConnection),
    Postgres(&'c mut PgConnection),
}

#[derive(Clone, Debug)]
pub struct AuditStore {
    database: Database,
}

/// One write to the log: a transaction holding the log's lock until it commits or is dropped
/// (rolled back; on PostgreSQL by closing its connection), which is also when a killed
/// instance's lock goes, with its connection.
pub struct LogWriter {
    transaction: WriterTransaction,
}

enum WriterTransaction {
    /// SQLite.
    Any(sqlx::Transaction<'static, Any>),
    /// PostgreSQL, on the native pool, in a transaction begun by hand (not a `sqlx::Transaction`,
    /// which would go back to the pool when dropped).
    Postgres(ClosingConnection<Postgres>),
}

/// A connection of a pool that is closed where it stands when dropped, unless released: the
/// pool would first test a returned connection with a round trip, which never ends on a
/// connection that has stalled. What holds one can therefore be abandoned at any await (the
/// log's deadlines) without leaving a connection, or a transaction, behind: the server rolls
/// back whatever the closed connection had open, and the log's lock goes with it.
pub struct ClosingConnection<DB: sqlx::Database> {
    /// Some until released or dropped.
    connection: Option<PoolConnection<DB>>,
}

const INSERT_CHECKPOINT: &str = "INSERT INTO audit_checkpoints (tree_size, root_hash, note, \
     signed_at) VALUES ($1, $2, $3, $4)";
const LEAVES_FROM: &str =
    "SELECT idx, leaf_hash FROM audit_entries WHERE idx >= $1 ORDER BY idx LIMIT $2";
const LATEST_CHECKPOINT: &str = "SELECT tree_size, root_hash, note, signed_at \
     FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1";

impl AuditStore {
    pub fn new(database: Database) -> AuditStore {
        AuditStore { database }
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    /// A connection of the pool, for a series of reads that may be abandoned.
    pub async fn connection(&self) -> Result<ClosingConnection<Any>, StoreError> {
        Ok(ClosingConnection::new(
            self.database.pool().acquire().await?,
        ))
    }

    /// Starts a write: a transaction holding the log's lock (PostgreSQL, on the native pool;
    /// on SQLite the single connection of the pool already serialises every transaction of the
    /// one instance a database file may have).
    ///
    /// On PostgreSQL, `BEGIN` and the lock go in one round trip; if either fails, or the writer
    /// is dropped before it ends, its connection is closed (see [`ClosingConnection`]).
    pub async fn begin_write(&self) -> Result<LogWriter, StoreError> {
        let transaction = match self.database.postgres_pool() {
            Some(pool) => WriterTransaction::Postgres(postgres::begin(pool).await?),
            None => WriterTransaction::Any(self.database.pool().begin().await?),
        };
        Ok(LogWriter { transaction })
    }

    pub async fn checkpoint_at(
        &self,
        tree_size: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row = sqlx::query(
            "SELECT tree_size, root_hash, note, signed_at FROM audit_checkpoints \
             WHERE tree_size = $1",
        )
        .bind(to_i64(tree_size)?)
        .fetch_optional(self.database.pool())
        .await?;
        row.map(|row| checkpoint_from_row(&row)).transpose()
    }

    pub async fn entry(&self, index: u64) -> Result<Option<StoredEntry>, StoreError> {
        let row = sqlx::query("SELECT idx, entry, leaf_hash FROM audit_entries WHERE idx = $1")
            .bind(to_i64(index)?)
            .fetch_optional(self.database.pool())
            .await?;
        row.map(|row| entry_from_row(&row)).transpose()
    }

    pub async fn index_of(&self, event_id: &str) -> Result<Option<u64>, StoreError> {
        let row = sqlx::query("SELECT idx FROM audit_entries WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(self.database.pool())
            .await?;
        row.map(|row| to_u64(row.try_get("idx")?, "index"))
            .transpose()
    }

    /// Entries with `from <= index < until`, at most `limit`, in index order.
    pub async fn range(
        &self,
        from: u64,
        until: u64,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT idx, entry, leaf_hash FROM audit_entries \
             WHERE idx >= $1 AND idx < $2 ORDER BY idx LIMIT $3",
        )
        .bind(to_i64(from)?)
        .bind(to_i64(until)?)
        .bind(i64::from(limit))
        .fetch_all(self.database.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Entries matching every filter, in index order, up to index `below` (exclusive).
    pub async fn query(
        &self,
        filter: &QueryFilter,
        below: u64,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let until = if filter.occurred_until > 0 {
            filter.occurred_until
        } else {
            i64::MAX
        };
        let after = match filter.after_index {
            Some(index) => to_i64(index)?,
            None => -1,
        };
        // Only the filters given, so that each shape gets its own plan: a person's entries
        // are found through the person index, a disclosure's through its index, instead of
        // one generic plan walking the whole log in index order.
        enum Value<'a> {
            Number(i64),
            Text(&'a str),
        }
        let mut values = vec![Value::Number(after), Value::Number(to_i64(below)?)];
        let mut conditions = vec!["e.idx > $1".to_owned(), "e.idx < $2".to_owned()];
        let mut condition = |values: &mut Vec<Value<'_>>, make: &dyn Fn(usize) -> String| {
            conditions.push(make(values.len()));
        };
        if filter.occurred_from > 0 {
            values.push(Value::Number(filter.occurred_from));
            condition(&mut values, &|n| format!("e.occurred_at >= ${n}"));
        }
        if until < i64::MAX {
            values.push(Value::Number(until));
            condition(&mut values, &|n| format!("e.occurred_at < ${n}"));
        }
        for (column, value) in [
            ("organisation", filter.organisation.as_str()),
            ("actor_user_id", filter.actor_user_id.as_str()),
            ("action", filter.action.as_str()),
            ("legal_basis_id", filter.legal_basis_id.as_str()),
            ("disclosure_id", filter.disclosure_id.as_str()),
        ] {
            if value.is_empty() {
                continue;
            }
            values.push(Value::Text(value));
            if column == "organisation" {
                condition(&mut values, &|n| {
                    format!("(e.organisation = ${n} OR e.actor_organisation = ${n})")
                });
            } else {
                condition(&mut values, &|n| format!("e.{column} = ${n}"));
            }
        }
        let by_person = !filter.person_ref.is_empty();
        if by_person {
            values.push(Value::Text(filter.person_ref.as_str()));
            condition(&mut values, &|n| format!("p.person_ref = ${n}"));
        }
        values.push(Value::Number(i64::from(filter.limit)));
        let limit = values.len();
        let (from, order) = if by_person {
            (
                "audit_entry_persons p JOIN audit_entries e ON e.idx = p.idx",
                "p.idx",
            )
        } else {
            ("audit_entries e", "e.idx")
        };
        let statement = format!(
            "SELECT e.idx AS idx, e.entry AS entry, e.leaf_hash AS leaf_hash FROM {from} \
             WHERE {} ORDER BY {order} LIMIT ${limit}",
            conditions.join(" AND ")
        );
        let mut query = sqlx::query(&statement);
        for value in values {
            query = match value {
                Value::Number(number) => query.bind(number),
                Value::Text(text) => query.bind(text),
            };
        }
        let rows = query.fetch_all(self.database.pool()).await?;
        rows.iter().map(entry_from_row).collect()
    }
}

impl LogWriter {
    /// The transaction's connection, for the reads in [`leaves_from`] and friends.
    pub fn connection(&mut self) -> Result<LogConnection<'_>, StoreError> {
        Ok(match &mut self.transaction {
            WriterTransaction::Any(transaction) => LogConnection::Any(transaction),
            WriterTransaction::Postgres(writer) => LogConnection::Postgres(writer.get()?),
        })
    }

    /// Writes `entries` with their person index.
    pub async fn insert_entries(&mut self, entries: &[NewEntry]) -> Result<(), StoreError> {
        match &mut self.transaction {
            WriterTransaction::Any(transaction) => {
                sqlite::insert_entries(transaction, entries).await
            }
            WriterTransaction::Postgres(writer) => {
                postgres::insert_entries(writer.get()?, entries).await
            }
        }
    }

    pub async fn insert_checkpoint(
        &mut self,
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError> {
        match &mut self.transaction {
            WriterTransaction::Any(transaction) => {
                insert_checkpoint_on(&mut **transaction, checkpoint).await
            }
            WriterTransaction::Postgres(writer) => {
                insert_checkpoint_on(writer.get()?, checkpoint).await
            }
        }
    }

    /// Makes everything written durable and lets the lock go.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.transaction {
            WriterTransaction::Any(transaction) => Ok(transaction.commit().await?),
            WriterTransaction::Postgres(writer) => postgres::end(writer, "COMMIT").await,
        }
    }

    /// Ends a write that wrote nothing, letting the lock go.
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self.transaction {
            WriterTransaction::Any(transaction) => Ok(transaction.rollback().await?),
            WriterTransaction::Postgres(writer) => postgres::end(writer, "ROLLBACK").await,
        }
    }
}

impl<DB: sqlx::Database> ClosingConnection<DB> {
    fn new(connection: PoolConnection<DB>) -> ClosingConnection<DB> {
        ClosingConnection {
            connection: Some(connection),
        }
    }

    pub fn get(&mut self) -> Result<&mut DB::Connection, StoreError> {
        self.connection.as_deref_mut().ok_or(StoreError::Ended)
    }

    /// Gives the connection back to the pool: only once it is idle again.
    pub fn release(mut self) {
        drop(self.connection.take());
    }
}

impl<DB: sqlx::Database> Drop for ClosingConnection<DB> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            drop(connection.detach());
        }
    }
}

/// Up to `limit` leaf hashes from index `from` on, in index order; refuses a gap.
pub async fn leaves_from(
    connection: &mut LogConnection<'_>,
    from: u64,
    limit: u32,
) -> Result<Vec<Hash>, StoreError> {
    match connection {
        LogConnection::Any(connection) => leaves_from_on(&mut **connection, from, limit).await,
        LogConnection::Postgres(connection) => leaves_from_on(&mut **connection, from, limit).await,
    }
}

/// The latest signed checkpoint (by size).
pub async fn latest_checkpoint(
    connection: &mut LogConnection<'_>,
) -> Result<Option<StoredCheckpoint>, StoreError> {
    match connection {
        LogConnection::Any(connection) => latest_checkpoint_on(&mut **connection).await,
        LogConnection::Postgres(connection) => latest_checkpoint_on(&mut **connection).await,
    }
}

/// The entries already logged under any of `event_ids`: one statement with an array on a
/// writer's PostgreSQL connection, IN lists of a few hundred ids on the `Any` driver.
pub async fn existing(
    connection: &mut LogConnection<'_>,
    event_ids: &[String],
) -> Result<HashMap<String, ExistingEntry>, StoreError> {
    if event_ids.is_empty() {
        return Ok(HashMap::new());
    }
    match connection {
        LogConnection::Any(connection) => sqlite::existing(connection, event_ids).await,
        LogConnection::Postgres(connection) => postgres::existing(connection, event_ids).await,
    }
}

/// [`INSERT_CHECKPOINT`] on either driver's connection.
async fn insert_checkpoint_on<'c, DB>(
    connection: impl Executor<'c, Database = DB>,
    checkpoint: &StoredCheckpoint,
) -> Result<(), StoreError>
where
    DB: sqlx::Database,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    sqlx::query(INSERT_CHECKPOINT)
        .bind(to_i64(checkpoint.tree_size)?)
        .bind(checkpoint.root.to_vec())
        .bind(checkpoint.note.as_str())
        .bind(checkpoint.signed_at)
        .execute(connection)
        .await?;
    Ok(())
}

/// [`leaves_from`] on either driver's connection.
async fn leaves_from_on<'c, DB>(
    connection: impl Executor<'c, Database = DB>,
    from: u64,
    limit: u32,
) -> Result<Vec<Hash>, StoreError>
where
    DB: sqlx::Database,
    DB::Row: Columns,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let rows = sqlx::query(LEAVES_FROM)
        .bind(to_i64(from)?)
        .bind(i64::from(limit))
        .fetch_all(connection)
        .await?;
    leaves_from_rows(&rows, from)
}

/// [`latest_checkpoint`] on either driver's connection.
async fn latest_checkpoint_on<'c, DB>(
    connection: impl Executor<'c, Database = DB>,
) -> Result<Option<StoredCheckpoint>, StoreError>
where
    DB: sqlx::Database,
    DB::Row: Columns,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    sqlx::query(LATEST_CHECKPOINT)
        .fetch_optional(connection)
        .await?
        .map(|row| checkpoint_from_row(&row))
        .transpose()
}

/// A row of `audit_access_persons` that a batch writes: a person of an access.
pub(crate) struct AccessPerson<'a> {
    pub entry: &'a NewEntry,
    pub person_ref: &'a str,
    pub index: i64,
    /// The latest earlier access of the same person by the same user in the same
    /// organisation within this batch (by time, then index); the insert takes the later of
    /// this and what the table already holds.
    pub batch_prev: Option<i64>,
}

/// The person rows of the batch's accesses, in the batch's order.
pub(crate) fn access_persons(entries: &[NewEntry]) -> Result<Vec<AccessPerson<'_>>, StoreError> {
    let mut rows = Vec::new();
    for entry in entries {
        if !entry.access.is_some_and(|access| access.is_access()) {
            continue;
        }
        let index = to_i64(entry.index)?;
        for person_ref in &entry.person_refs {
            rows.push(AccessPerson {
                entry,
                person_ref,
                index,
                batch_prev: None,
            });
        }
    }
    let mut by_key: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
    for (position, row) in rows.iter().enumerate() {
        by_key
            .entry((
                &row.entry.organisation,
                &row.entry.actor_user_id,
                row.person_ref,
            ))
            .or_default()
            .push(position);
    }
    for positions in by_key.into_values().filter(|positions| positions.len() > 1) {
        let mut ordered = positions;
        ordered.sort_by_key(|position| (rows[*position].entry.occurred_at, rows[*position].index));
        for pair in ordered.windows(2) {
            rows[pair[1]].batch_prev = Some(rows[pair[0]].entry.occurred_at);
        }
    }
    Ok(rows)
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("index {value} out of range")))
}

fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative {what} {value}")))
}

fn hash(bytes: &[u8], what: &str) -> Result<Hash, StoreError> {
    hash_from_slice(bytes).map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

/// The columns of a row of either driver, by name.
trait Columns {
    fn int8(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn bytes(&self, column: &str) -> Result<&[u8], sqlx::Error>;
}

/// Both drivers' rows decode these three types the same way.
macro_rules! columns_of {
    ($($row:ty),*) => {$(
        impl Columns for $row {
            fn int8(&self, column: &str) -> Result<i64, sqlx::Error> {
                self.try_get(column)
            }

            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                self.try_get(column)
            }

            fn bytes(&self, column: &str) -> Result<&[u8], sqlx::Error> {
                self.try_get(column)
            }
        }
    )*};
}

columns_of!(AnyRow, PgRow);

/// The leaf hashes of the rows of [`LEAVES_FROM`], which must be the entries from `from` on
/// without a gap.
fn leaves_from_rows(rows: &[impl Columns], from: u64) -> Result<Vec<Hash>, StoreError> {
    let mut hashes = Vec::with_capacity(rows.len());
    for row in rows {
        hashes.push(leaf_from_row(row, from + hashes.len() as u64)?);
    }
    Ok(hashes)
}

/// The leaf hash of a row of [`LEAVES_FROM`], which must be entry `expected`.
fn leaf_from_row(row: &impl Columns, expected: u64) -> Result<Hash, StoreError> {
    let index = row.int8("idx")?;
    if to_u64(index, "index")? != expected {
        return Err(StoreError::Corrupt(format!(
            "entry {expected} is missing (found index {index} in its place)"
        )));
    }
    hash(row.bytes("leaf_hash")?, "leaf hash")
}

/// The rows of an event-id lookup, by event id.
fn existing_from_rows(
    rows: &[impl Columns],
    found: &mut HashMap<String, ExistingEntry>,
) -> Result<(), StoreError> {
    for row in rows {
        let event_id = row.text("event_id")?;
        let entry = ExistingEntry {
            index: to_u64(row.int8("idx")?, "index")?,
            fingerprint: row.text("fingerprint")?,
            leaf_hash: hash(row.bytes("leaf_hash")?, "leaf hash")?,
        };
        found.insert(event_id, entry);
    }
    Ok(())
}

fn checkpoint_from_row(row: &impl Columns) -> Result<StoredCheckpoint, StoreError> {
    Ok(StoredCheckpoint {
        tree_size: to_u64(row.int8("tree_size")?, "tree size")?,
        root: hash(row.bytes("root_hash")?, "checkpoint root")?,
        note: row.text("note")?,
        signed_at: row.int8("signed_at")?,
    })
}

fn entry_from_row(row: &impl Columns) -> Result<StoredEntry, StoreError> {
    Ok(StoredEntry {
        index: to_u64(row.int8("idx")?, "index")?,
        bytes: row.bytes("entry")?.to_vec(),
        leaf_hash: hash(row.bytes("leaf_hash")?, "leaf hash")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use sqlx::Row as _;
    use tryggdel_test_support::{TestBackend, TestDatabase, on_both_backends};

    use super::*;
    use crate::review::access::AccessKind;

    /// More entries, and person references, than one multi-row INSERT of the SQLite path takes.
    const ENTRIES: u64 = 450;

    fn entry(index: u64) -> NewEntry {
        NewEntry {
            index,
            event_id: format!("event-{index}"),
            fingerprint: format!("fingerprint-{index}"),
            bytes: format!("{{\"entry\":{index}}}").into_bytes(),
            leaf_hash: [(index % 251) as u8; 32],
            recorded_at: 1_000 + index as i64,
            occurred_at: 2_000 + index as i64,
            organisation: "bollnas-kommun".into(),
            actor_organisation: "bollnas-kommun".into(),
            actor_user_id: format!("user-{}", index % 3),
            action: "disclosure.drafted".into(),
            legal_basis_id: "osl-10-18c".into(),
            disclosure_id: format!("d-{index}"),
            person_refs: vec![format!("ref-{}", index % 7), format!("other-{index}")],
            openings: vec![SealedOpening {
                key_id: format!("k-{}", index % 5),
                sealed: format!("sealed-{index}"),
            }],
            // Every third entry a read, every fifth marked.
            access: (index.is_multiple_of(3) || index.is_multiple_of(5)).then_some(AccessRow {
                kind: if index.is_multiple_of(3) {
                    AccessKind::Read
                } else {
                    AccessKind::None
                },
                protected_identity: index.is_multiple_of(5),
                compliance_actor: index.is_multiple_of(2),
            }),
        }
    }

    /// What a writer writes, every read of both paths (the writer's connection and the pool)
    /// finds again, entry by entry.
    async fn a_batch_reads_back_on_every_path(backend: TestBackend) {
        let Some(database) = TestDatabase::create(backend).await else {
            return;
        };
        let store = AuditStore::new(
            Database::connect(&database.url, "audit", &MIGRATIONS)
                .await
                .unwrap(),
        );
        let entries: Vec<NewEntry> = (0..ENTRIES).map(entry).collect();
        let checkpoint = StoredCheckpoint {
            tree_size: ENTRIES,
            root: [9; 32],
            note: "note".into(),
            signed_at: 77,
        };
        let mut writer = store.begin_write().await.unwrap();
        writer.insert_entries(&entries).await.unwrap();
        writer.insert_checkpoint(&checkpoint).await.unwrap();
        let ids = vec![
            "event-3".to_owned(),
            "event-449".to_owned(),
            "none".to_owned(),
        ];
        let found = existing(&mut writer.connection().unwrap(), &ids)
            .await
            .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            found["event-449"],
            ExistingEntry {
                index: 449,
                fingerprint: "fingerprint-449".into(),
                leaf_hash: [(449 % 251) as u8; 32],
            }
        );
        writer.commit().await.unwrap();

        let stored = store.range(0, ENTRIES, 1000).await.unwrap();
        assert_eq!(stored.len() as u64, ENTRIES);
        for (stored, written) in stored.iter().zip(&entries) {
            assert_eq!(stored.index, written.index);
            assert_eq!(stored.bytes, written.bytes);
            assert_eq!(stored.leaf_hash, written.leaf_hash);
        }
        let by_person = store
            .query(
                &QueryFilter {
                    person_ref: "ref-5".into(),
                    limit: 1000,
                    ..QueryFilter::default()
                },
                ENTRIES,
            )
            .await
            .unwrap();
        let indices: Vec<u64> = by_person.iter().map(|entry| entry.index).collect();
        let expected: Vec<u64> = (0..ENTRIES).filter(|index| index % 7 == 5).collect();
        assert_eq!(indices, expected);
        assert_eq!(store.index_of("event-17").await.unwrap(), Some(17));
        assert_eq!(
            store.checkpoint_at(ENTRIES).await.unwrap(),
            Some(checkpoint.clone())
        );

        let mut connection = store.connection().await.unwrap();
        let mut reads = LogConnection::Any(connection.get().unwrap());
        let leaves = leaves_from(&mut reads, 440, 100).await.unwrap();
        let expected: Vec<Hash> = (440..ENTRIES).map(|index| entry(index).leaf_hash).collect();
        assert_eq!(leaves, expected);
        assert_eq!(
            latest_checkpoint(&mut reads).await.unwrap(),
            Some(checkpoint)
        );
        assert_eq!(existing(&mut reads, &ids).await.unwrap(), found);
        connection.release();

        // The review's access index: a row per read or marked entry, a row per read's person.
        let pool = store.database().pool();
        let rows = sqlx::query(
            "SELECT idx, CAST(access AS BIGINT) AS access, \
             CAST(protected_identity AS BIGINT) AS protected_identity, \
             CAST(compliance_actor AS BIGINT) AS compliance_actor, actor_user_id \
             FROM audit_accesses ORDER BY idx",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let expected: Vec<u64> = (0..ENTRIES).filter(|i| i % 3 == 0 || i % 5 == 0).collect();
        assert_eq!(rows.len(), expected.len());
        for (row, index) in rows.iter().zip(&expected) {
            assert_eq!(row.try_get::<i64, _>("idx").unwrap(), *index as i64);
            let access: i64 = row.try_get("access").unwrap();
            assert_eq!(access, i64::from(index % 3 == 0));
            let marked: i64 = row.try_get("protected_identity").unwrap();
            assert_eq!(marked, i64::from(index % 5 == 0));
            let compliance: i64 = row.try_get("compliance_actor").unwrap();
            assert_eq!(compliance, i64::from(index % 2 == 0));
            assert_eq!(
                row.try_get::<String, _>("actor_user_id").unwrap(),
                format!("user-{}", index % 3)
            );
        }
        let persons: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_access_persons")
            .fetch_one(pool)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(
            persons as u64,
            2 * (0..ENTRIES).filter(|i| i % 3 == 0).count() as u64
        );
        database.remove().await;
    }

    /// A read of one person by one user at `occurred_at`, entry `index`.
    fn read(index: u64, occurred_at: i64, user: &str, person: &str) -> NewEntry {
        NewEntry {
            occurred_at,
            actor_user_id: user.into(),
            action: "disclosure.read".into(),
            person_refs: vec![person.into()],
            openings: Vec::new(),
            access: Some(AccessRow {
                kind: AccessKind::Read,
                protected_identity: false,
                compliance_actor: false,
            }),
            ..entry(index)
        }
    }

    /// Each access's `prev_at` is the user's latest access of the person at or before it, from
    /// the same batch (whatever its order there) or from the table; another user's or
    /// person's accesses do not count.
    async fn an_access_knows_the_users_previous_access_of_the_person(backend: TestBackend) {
        let Some(database) = TestDatabase::create(backend).await else {
            return;
        };
        let store = AuditStore::new(
            Database::connect(&database.url, "audit", &MIGRATIONS)
                .await
                .unwrap(),
        );
        let batches = [
            vec![
                read(0, 100, "anna", "p1"),
                read(1, 50, "anna", "p1"),
                read(2, 60, "bo", "p1"),
                read(3, 70, "anna", "p2"),
            ],
            vec![
                read(4, 200, "anna", "p1"),
                // Late: it happened before the latest access already in the table.
                read(5, 75, "anna", "p1"),
                read(6, 200, "anna", "p1"),
            ],
        ];
        for batch in &batches {
            let mut writer = store.begin_write().await.unwrap();
            writer.insert_entries(batch).await.unwrap();
            writer.commit().await.unwrap();
        }
        let rows = sqlx::query("SELECT idx, prev_at FROM audit_access_persons ORDER BY idx")
            .fetch_all(store.database().pool())
            .await
            .unwrap();
        let found: Vec<(i64, Option<i64>)> = rows
            .iter()
            .map(|row| (row.try_get("idx").unwrap(), row.try_get("prev_at").unwrap()))
            .collect();
        assert_eq!(
            found,
            vec![
                (0, Some(50)),
                (1, None),
                (2, None),
                (3, None),
                (4, Some(100)),
                (5, Some(50)),
                (6, Some(200)),
            ]
        );
        database.remove().await;
    }

    on_both_backends!(
        a_batch_reads_back_on_every_path,
        an_access_knows_the_users_previous_access_of_the_person
    );
}
