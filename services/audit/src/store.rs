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
//! the checkpoint) therefore has a PostgreSQL variant on that connection; SQLite, and every
//! read outside a writer, stay on the `Any` pool.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{Any, AnyConnection, Executor, PgConnection, Postgres, Row};
use tryggdel_merkle::{Hash, hash_from_slice};
use tryggdel_storage::{Database, Migrations};

pub const SQLITE_MIGRATIONS: &[tryggdel_storage::MigrationFile] =
    tryggdel_storage::migration_files!("migrations/sqlite", ["0001_audit_log.sql"]);
pub const POSTGRES_MIGRATIONS: &[tryggdel_storage::MigrationFile] =
    tryggdel_storage::migration_files!("migrations/postgres", ["0001_audit_log.sql"]);

/// The audit service's migrations on both backends.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: SQLITE_MIGRATIONS,
    postgres: POSTGRES_MIGRATIONS,
};

/// Rows per multi-row INSERT (13 parameters each, well under both backends' limits).
const INSERT_CHUNK: usize = 400;

/// The log's lock on PostgreSQL: `pg_advisory_xact_lock(LOG_LOCK_CLASS, hashtext(schema))`, so
/// logs in different schemas of one database do not wait for each other. The class is "TGAU"
/// in ASCII; nothing else in a Tryggdel database takes advisory locks.
pub const LOG_LOCK_CLASS: i32 = 0x5447_4155;
/// A writer's first round trip: the transaction, its planner setting and the log's lock.
///
/// Every statement of a writer is a lookup or range by an index (event id, index), an insert,
/// or a COPY; `enable_seqscan = off` (for this transaction only) keeps them so whatever the
/// statistics say. The writer's connection is long-lived and its statements are prepared once,
/// and PostgreSQL settles on one generic plan after five executions: on a young log whose
/// tables have not yet been analysed that plan was a sequential scan, which the event-id lookup
/// then kept as the log grew (7–15 ms per batch at a few thousand entries, half of
/// PostgreSQL's statement time in a lifecycle run). Planning every statement afresh
/// (`plan_cache_mode = force_custom_plan`) avoids that too, but costs the serial write path
/// about 2 ms per batch of 320 entries.
const BEGIN_AND_LOCK: &str = "BEGIN; SET LOCAL enable_seqscan = off; \
     SELECT pg_advisory_xact_lock(1413955925, hashtext(current_schema()))";

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

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("index {value} out of range")))
}

fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative {what} {value}")))
}

fn hash(bytes: &[u8], what: &str) -> Result<Hash, StoreError> {
    hash_from_slice(bytes).map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

#[derive(Clone, Debug)]
pub struct AuditStore {
    database: Database,
}

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
            Some(pool) => {
                let mut writer = ClosingConnection::new(pool.acquire().await?);
                writer.get()?.execute(BEGIN_AND_LOCK).await?;
                WriterTransaction::Postgres(writer)
            }
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
        let rows = sqlx::query(
            "SELECT idx, entry, leaf_hash FROM audit_entries \
             WHERE idx > $1 AND idx < $2 AND occurred_at >= $3 AND occurred_at < $4 \
             AND ($5 = '' OR organisation = $5 OR actor_organisation = $5) \
             AND ($6 = '' OR actor_user_id = $6) \
             AND ($7 = '' OR action = $7) \
             AND ($8 = '' OR legal_basis_id = $8) \
             AND ($9 = '' OR disclosure_id = $9) \
             AND ($10 = '' OR idx IN (SELECT idx FROM audit_entry_persons WHERE person_ref = $10)) \
             ORDER BY idx LIMIT $11",
        )
        .bind(after)
        .bind(to_i64(below)?)
        .bind(filter.occurred_from)
        .bind(until)
        .bind(&filter.organisation)
        .bind(&filter.actor_user_id)
        .bind(&filter.action)
        .bind(&filter.legal_basis_id)
        .bind(&filter.disclosure_id)
        .bind(&filter.person_ref)
        .bind(i64::from(filter.limit))
        .fetch_all(self.database.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }
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
            WriterTransaction::Any(transaction) => insert_entries(transaction, entries).await,
            WriterTransaction::Postgres(writer) => {
                insert_entries_postgres(writer.get()?, entries).await
            }
        }
    }

    pub async fn insert_checkpoint(
        &mut self,
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError> {
        let tree_size = to_i64(checkpoint.tree_size)?;
        let root = checkpoint.root.to_vec();
        match &mut self.transaction {
            WriterTransaction::Any(transaction) => {
                sqlx::query(INSERT_CHECKPOINT)
                    .bind(tree_size)
                    .bind(root)
                    .bind(&checkpoint.note)
                    .bind(checkpoint.signed_at)
                    .execute(&mut **transaction)
                    .await?;
            }
            WriterTransaction::Postgres(writer) => {
                sqlx::query(INSERT_CHECKPOINT)
                    .bind(tree_size)
                    .bind(root)
                    .bind(&checkpoint.note)
                    .bind(checkpoint.signed_at)
                    .execute(&mut *writer.get()?)
                    .await?;
            }
        }
        Ok(())
    }

    /// Makes everything written durable and lets the lock go.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.end(true).await
    }

    /// Ends a write that wrote nothing, letting the lock go.
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.end(false).await
    }

    async fn end(self, commit: bool) -> Result<(), StoreError> {
        match self.transaction {
            WriterTransaction::Any(transaction) if commit => transaction.commit().await?,
            WriterTransaction::Any(transaction) => transaction.rollback().await?,
            WriterTransaction::Postgres(mut writer) => {
                let statement = if commit { "COMMIT" } else { "ROLLBACK" };
                writer.get()?.execute(statement).await?;
                // Ended: the pool may have the connection back.
                writer.release();
            }
        }
        Ok(())
    }
}

const INSERT_CHECKPOINT: &str = "INSERT INTO audit_checkpoints (tree_size, root_hash, note, \
     signed_at) VALUES ($1, $2, $3, $4)";

/// The entries' insert on PostgreSQL: the rows in COPY's binary format ([`CopyRows`]), built in
/// one buffer and sent in one message. COPY fires the tables' row triggers for INSERT and
/// needs only the INSERT privilege, as the statements it replaces did.
const COPY_ENTRIES: &str = "COPY audit_entries (idx, event_id, fingerprint, entry, leaf_hash, \
     recorded_at, occurred_at, organisation, actor_organisation, actor_user_id, action, \
     legal_basis_id, disclosure_id) FROM STDIN (FORMAT BINARY)";
const COPY_ENTRY_FIELDS: i16 = 13;
const INSERT_PERSONS_POSTGRES: &str = "INSERT INTO audit_entry_persons (person_ref, idx) \
     SELECT * FROM unnest($1::text[], $2::int8[])";

/// The dedupe lookup on PostgreSQL: one statement for any batch, the ids as one array.
const EXISTING_POSTGRES: &str = "SELECT event_id, idx, fingerprint, leaf_hash FROM audit_entries \
     WHERE event_id = ANY($1)";
const LEAVES_FROM: &str =
    "SELECT idx, leaf_hash FROM audit_entries WHERE idx >= $1 ORDER BY idx LIMIT $2";
const LATEST_CHECKPOINT: &str = "SELECT tree_size, root_hash, note, signed_at \
     FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1";

/// Rows in PostgreSQL's binary COPY format
/// (<https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4>): the signature,
/// flags and header-extension length; per row the field count, then per field its length
/// and bytes (`int8` as 8 bytes, `text` as its UTF-8 bytes, `bytea` as is), all big-endian;
/// a field count of -1 as trailer.
struct CopyRows {
    buffer: Vec<u8>,
}

impl CopyRows {
    const SIGNATURE: &'static [u8; 11] = b"PGCOPY\n\xff\r\n\0";

    fn with_capacity(bytes: usize) -> CopyRows {
        let mut buffer = Vec::with_capacity(bytes + 21);
        buffer.extend_from_slice(Self::SIGNATURE);
        buffer.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
        buffer.extend_from_slice(&0i32.to_be_bytes()); // no header extension
        CopyRows { buffer }
    }

    fn row(&mut self, fields: i16) {
        self.buffer.extend_from_slice(&fields.to_be_bytes());
    }

    fn int8(&mut self, value: i64) {
        self.buffer.extend_from_slice(&8i32.to_be_bytes());
        self.buffer.extend_from_slice(&value.to_be_bytes());
    }

    fn text(&mut self, value: &str) -> Result<(), StoreError> {
        self.bytea(value.as_bytes())
    }

    fn bytea(&mut self, value: &[u8]) -> Result<(), StoreError> {
        let length = i32::try_from(value.len()).map_err(|_| {
            StoreError::Encoding(format!("a field of {} bytes is too long", value.len()))
        })?;
        self.buffer.extend_from_slice(&length.to_be_bytes());
        self.buffer.extend_from_slice(value);
        Ok(())
    }

    fn finish(mut self) -> Vec<u8> {
        self.buffer.extend_from_slice(&(-1i16).to_be_bytes());
        self.buffer
    }
}

/// The COPY data of `entries`.
fn copy_rows(entries: &[NewEntry]) -> Result<Vec<u8>, StoreError> {
    let entry_bytes: usize = entries
        .iter()
        .map(|entry| {
            // 13 length words, two int8s and the fixed-size leaf hash.
            2 + 13 * 4
                + 3 * 8
                + 32
                + entry.event_id.len()
                + entry.fingerprint.len()
                + entry.bytes.len()
                + entry.organisation.len()
                + entry.actor_organisation.len()
                + entry.actor_user_id.len()
                + entry.action.len()
                + entry.legal_basis_id.len()
                + entry.disclosure_id.len()
        })
        .sum();
    let mut rows = CopyRows::with_capacity(entry_bytes);
    for entry in entries {
        rows.row(COPY_ENTRY_FIELDS);
        rows.int8(to_i64(entry.index)?);
        rows.text(&entry.event_id)?;
        rows.text(&entry.fingerprint)?;
        rows.bytea(&entry.bytes)?;
        rows.bytea(&entry.leaf_hash)?;
        rows.int8(entry.recorded_at);
        rows.int8(entry.occurred_at);
        rows.text(&entry.organisation)?;
        rows.text(&entry.actor_organisation)?;
        rows.text(&entry.actor_user_id)?;
        rows.text(&entry.action)?;
        rows.text(&entry.legal_basis_id)?;
        rows.text(&entry.disclosure_id)?;
    }
    Ok(rows.finish())
}

/// Runs `statement` (a `COPY ... FROM STDIN`) with `data` as its whole input.
async fn copy_in(
    connection: &mut PgConnection,
    statement: &str,
    data: Vec<u8>,
) -> Result<(), StoreError> {
    let mut copy = connection.copy_in_raw(statement).await?;
    let sent = copy.send(data).await.map(|_| ());
    if let Err(error) = sent {
        // The transaction is lost either way; the error worth reporting is the first.
        let _ = copy.abort("the client could not send the rows").await;
        return Err(error.into());
    }
    copy.finish().await?;
    Ok(())
}

/// [`insert_entries`] on PostgreSQL: the entries by COPY, the person index by one INSERT of
/// two arrays (COPY costs two round trips, one to start it and one to end it; this statement
/// costs one).
async fn insert_entries_postgres(
    connection: &mut PgConnection,
    entries: &[NewEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    copy_in(connection, COPY_ENTRIES, copy_rows(entries)?).await?;
    let mut references: Vec<&str> = Vec::new();
    let mut indices: Vec<i64> = Vec::new();
    for entry in entries {
        let index = to_i64(entry.index)?;
        for reference in &entry.person_refs {
            references.push(reference);
            indices.push(index);
        }
    }
    if !references.is_empty() {
        sqlx::query(INSERT_PERSONS_POSTGRES)
            .bind(references)
            .bind(indices)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// Writes `entries` with their person index (inside a [`LogWriter`]'s transaction on SQLite;
/// PostgreSQL has [`insert_entries_postgres`]).
async fn insert_entries(
    connection: &mut AnyConnection,
    entries: &[NewEntry],
) -> Result<(), StoreError> {
    for chunk in entries.chunks(INSERT_CHUNK) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|row| {
                let first = row * 13;
                let params: Vec<String> = (1..=13)
                    .map(|column| format!("${}", first + column))
                    .collect();
                format!("({})", params.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO audit_entries (idx, event_id, fingerprint, entry, leaf_hash, \
             recorded_at, occurred_at, organisation, actor_organisation, actor_user_id, \
             action, legal_basis_id, disclosure_id) VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for entry in chunk {
            query = query
                .bind(to_i64(entry.index)?)
                .bind(&entry.event_id)
                .bind(&entry.fingerprint)
                .bind(entry.bytes.clone())
                .bind(entry.leaf_hash.to_vec())
                .bind(entry.recorded_at)
                .bind(entry.occurred_at)
                .bind(&entry.organisation)
                .bind(&entry.actor_organisation)
                .bind(&entry.actor_user_id)
                .bind(&entry.action)
                .bind(&entry.legal_basis_id)
                .bind(&entry.disclosure_id);
        }
        query.execute(&mut *connection).await?;
    }
    let persons: Vec<(&str, u64)> = entries
        .iter()
        .flat_map(|entry| {
            entry
                .person_refs
                .iter()
                .map(move |reference| (reference.as_str(), entry.index))
        })
        .collect();
    for chunk in persons.chunks(INSERT_CHUNK) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|row| format!("(${}, ${})", row * 2 + 1, row * 2 + 2))
            .collect();
        let sql = format!(
            "INSERT INTO audit_entry_persons (person_ref, idx) VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (reference, index) in chunk {
            query = query.bind(*reference).bind(to_i64(*index)?);
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

/// Up to `limit` leaf hashes from index `from` on, in index order; refuses a gap.
pub async fn leaves_from(
    connection: &mut LogConnection<'_>,
    from: u64,
    limit: u32,
) -> Result<Vec<Hash>, StoreError> {
    let first = to_i64(from)?;
    let limit = i64::from(limit);
    let mut hashes = Vec::new();
    match connection {
        LogConnection::Any(connection) => {
            let rows = sqlx::query(LEAVES_FROM)
                .bind(first)
                .bind(limit)
                .fetch_all(&mut **connection)
                .await?;
            hashes.reserve(rows.len());
            for row in &rows {
                hashes.push(leaf_from_row(row, from + hashes.len() as u64)?);
            }
        }
        LogConnection::Postgres(connection) => {
            let rows = sqlx::query(LEAVES_FROM)
                .bind(first)
                .bind(limit)
                .fetch_all(&mut **connection)
                .await?;
            hashes.reserve(rows.len());
            for row in &rows {
                hashes.push(leaf_from_row(row, from + hashes.len() as u64)?);
            }
        }
    }
    Ok(hashes)
}

/// The latest signed checkpoint (by size).
pub async fn latest_checkpoint(
    connection: &mut LogConnection<'_>,
) -> Result<Option<StoredCheckpoint>, StoreError> {
    match connection {
        LogConnection::Any(connection) => sqlx::query(LATEST_CHECKPOINT)
            .fetch_optional(&mut **connection)
            .await?
            .map(|row| checkpoint_from_row(&row))
            .transpose(),
        LogConnection::Postgres(connection) => sqlx::query(LATEST_CHECKPOINT)
            .fetch_optional(&mut **connection)
            .await?
            .map(|row| checkpoint_from_row(&row))
            .transpose(),
    }
}

/// The entries already logged under any of `event_ids`: one statement with an array on a
/// writer's PostgreSQL connection, IN lists of [`INSERT_CHUNK`] ids on the `Any` driver.
pub async fn existing(
    connection: &mut LogConnection<'_>,
    event_ids: &[String],
) -> Result<HashMap<String, ExistingEntry>, StoreError> {
    let mut found = HashMap::new();
    if event_ids.is_empty() {
        return Ok(found);
    }
    let connection = match connection {
        LogConnection::Postgres(connection) => {
            let rows = sqlx::query(EXISTING_POSTGRES)
                .bind(event_ids)
                .fetch_all(&mut **connection)
                .await?;
            for row in &rows {
                let (event_id, entry) = existing_from_row(row)?;
                found.insert(event_id, entry);
            }
            return Ok(found);
        }
        LogConnection::Any(connection) => connection,
    };
    for chunk in event_ids.chunks(INSERT_CHUNK) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT event_id, idx, fingerprint, leaf_hash FROM audit_entries \
             WHERE event_id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id);
        }
        for row in query.fetch_all(&mut **connection).await? {
            let (event_id, entry) = existing_from_row(&row)?;
            found.insert(event_id, entry);
        }
    }
    Ok(found)
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

fn existing_from_row(row: &impl Columns) -> Result<(String, ExistingEntry), StoreError> {
    Ok((
        row.text("event_id")?,
        ExistingEntry {
            index: to_u64(row.int8("idx")?, "index")?,
            fingerprint: row.text("fingerprint")?,
            leaf_hash: hash(row.bytes("leaf_hash")?, "leaf hash")?,
        },
    ))
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
    use super::*;

    const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
    const TRAILER: &[u8] = b"\xff\xff";

    fn entry(index: u64, person_refs: &[&str]) -> NewEntry {
        NewEntry {
            index,
            event_id: "e".into(),
            fingerprint: "f".into(),
            bytes: vec![0x00, 0xff],
            leaf_hash: [7; 32],
            recorded_at: 1,
            occurred_at: -2,
            organisation: "o".into(),
            actor_organisation: "å".into(),
            actor_user_id: String::new(),
            action: "a".into(),
            legal_basis_id: "l".into(),
            disclosure_id: "d".into(),
            person_refs: person_refs.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    #[test]
    fn copy_rows_are_the_binary_format_field_by_field() {
        let mut rows = CopyRows::with_capacity(0);
        rows.row(3);
        rows.int8(-2);
        rows.text("hé").unwrap();
        rows.bytea(&[]).unwrap();
        let data = rows.finish();
        let mut expected = HEADER.to_vec();
        expected.extend_from_slice(&[0, 3]);
        expected.extend_from_slice(&[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        expected.extend_from_slice(&[0, 0, 0, 3, b'h', 0xc3, 0xa9]);
        expected.extend_from_slice(&[0, 0, 0, 0]);
        expected.extend_from_slice(TRAILER);
        assert_eq!(data, expected);
    }

    #[test]
    fn an_empty_copy_is_header_and_trailer() {
        let data = CopyRows::with_capacity(0).finish();
        assert_eq!(data, [HEADER, TRAILER].concat());
        assert_eq!(data.len(), 21);
    }

    #[test]
    fn entries_are_encoded_in_column_order() {
        let rows = copy_rows(&[entry(5, &["p1", "p2"])]).unwrap();
        let mut expected = HEADER.to_vec();
        expected.extend_from_slice(&COPY_ENTRY_FIELDS.to_be_bytes());
        let int8 = |value: i64| [&8i32.to_be_bytes()[..], &value.to_be_bytes()[..]].concat();
        let field = |bytes: &[u8]| [&(bytes.len() as i32).to_be_bytes()[..], bytes].concat();
        expected.extend(int8(5));
        expected.extend(field(b"e"));
        expected.extend(field(b"f"));
        expected.extend(field(&[0x00, 0xff]));
        expected.extend(field(&[7; 32]));
        expected.extend(int8(1));
        expected.extend(int8(-2));
        expected.extend(field(b"o"));
        expected.extend(field("å".as_bytes()));
        expected.extend(field(b""));
        expected.extend(field(b"a"));
        expected.extend(field(b"l"));
        expected.extend(field(b"d"));
        expected.extend_from_slice(TRAILER);
        assert_eq!(rows, expected);
        // The capacity estimate is exact for the entry rows.
        assert_eq!(rows.capacity(), rows.len());
    }

    #[test]
    fn an_index_beyond_int8_is_refused() {
        assert!(matches!(
            copy_rows(&[entry(u64::MAX, &[])]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
