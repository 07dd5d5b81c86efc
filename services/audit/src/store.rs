//! Persistence of the log: entries with their person index, and signed checkpoints. Only
//! inserts and selects; the migrations make the database refuse anything else.
//!
//! Every write goes through a [`LogWriter`]: one transaction that, on PostgreSQL, first takes
//! the log's advisory lock, so that the writes of all instances sharing one database are
//! serialised and each sees everything committed before it (the lock is taken before any read
//! of the transaction, and READ COMMITTED gives each statement a fresh snapshot).

use std::collections::HashMap;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Row};
use tryggdel_merkle::{Hash, hash_from_slice};
use tryggdel_storage::{Backend, Database, Migrations};

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
const TAKE_LOG_LOCK: &str =
    "SELECT 1 AS locked FROM pg_advisory_xact_lock(1413955925, hashtext(current_schema()))";

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

    /// A connection of the pool, for a series of reads.
    pub async fn connection(&self) -> Result<PoolConnection<Any>, StoreError> {
        Ok(self.database.pool().acquire().await?)
    }

    /// Starts a write: a transaction holding the log's lock (PostgreSQL; on SQLite the single
    /// connection of the pool already serialises every transaction of the one instance a
    /// database file may have).
    pub async fn begin_write(&self) -> Result<LogWriter, StoreError> {
        let mut transaction = self.database.pool().begin().await?;
        if self.database.backend() == Backend::Postgres {
            sqlx::query(TAKE_LOG_LOCK)
                .execute(&mut *transaction)
                .await?;
        }
        Ok(LogWriter { transaction })
    }

    /// The entries already logged under any of `event_ids` (outside any write: an answer that
    /// may be outdated by the time it is used).
    pub async fn existing(
        &self,
        event_ids: &[String],
    ) -> Result<HashMap<String, ExistingEntry>, StoreError> {
        existing(&mut *self.connection().await?, event_ids).await
    }

    /// The latest signed checkpoint (by size).
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        latest_checkpoint(&mut *self.connection().await?).await
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
/// (rolled back), which is also when a killed instance's lock goes, with its connection.
pub struct LogWriter {
    transaction: sqlx::Transaction<'static, Any>,
}

impl LogWriter {
    /// The transaction's connection, for the reads in [`leaves_from`] and friends.
    pub fn connection(&mut self) -> &mut AnyConnection {
        &mut self.transaction
    }

    /// Writes `entries` with their person index.
    pub async fn insert_entries(&mut self, entries: &[NewEntry]) -> Result<(), StoreError> {
        insert_entries(&mut self.transaction, entries).await
    }

    pub async fn insert_checkpoint(
        &mut self,
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (tree_size, root_hash, note, signed_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(to_i64(checkpoint.tree_size)?)
        .bind(checkpoint.root.to_vec())
        .bind(&checkpoint.note)
        .bind(checkpoint.signed_at)
        .execute(&mut *self.transaction)
        .await?;
        Ok(())
    }

    /// Makes everything written durable and lets the lock go.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.transaction.commit().await?;
        Ok(())
    }
}

/// Whether `connection` talks to PostgreSQL.
fn is_postgres(connection: &AnyConnection) -> bool {
    connection.backend_name().eq_ignore_ascii_case("postgres")
}

/// The batch insert on PostgreSQL: one statement whatever the batch size, so that it is parsed
/// and planned once per connection and then served from the statement cache. The rows travel
/// as one JSON array (bytes hex-encoded, decoded by the server into exactly those bytes);
/// multi-row `VALUES` lists with 13 parameters a row would give every batch size its own
/// statement text, each parsed and planned anew.
const INSERT_ENTRIES_POSTGRES: &str = "INSERT INTO audit_entries (idx, event_id, fingerprint, \
     entry, leaf_hash, recorded_at, occurred_at, organisation, actor_organisation, actor_user_id, \
     action, legal_basis_id, disclosure_id) \
     SELECT r.idx, r.event_id, r.fingerprint, decode(r.entry, 'hex'), decode(r.leaf_hash, 'hex'), \
     r.recorded_at, r.occurred_at, r.organisation, r.actor_organisation, r.actor_user_id, \
     r.action, r.legal_basis_id, r.disclosure_id \
     FROM json_to_recordset($1::json) AS r(idx BIGINT, event_id TEXT, fingerprint TEXT, \
     entry TEXT, leaf_hash TEXT, recorded_at BIGINT, occurred_at BIGINT, organisation TEXT, \
     actor_organisation TEXT, actor_user_id TEXT, action TEXT, legal_basis_id TEXT, \
     disclosure_id TEXT)";
const INSERT_PERSONS_POSTGRES: &str = "INSERT INTO audit_entry_persons (person_ref, idx) \
     SELECT r.person_ref, r.idx FROM json_to_recordset($1::json) AS r(person_ref TEXT, idx BIGINT)";
const EXISTING_POSTGRES: &str = "SELECT event_id, idx, fingerprint, leaf_hash FROM audit_entries \
     WHERE event_id IN (SELECT json_array_elements_text($1::json))";

/// One row of [`INSERT_ENTRIES_POSTGRES`].
#[derive(serde::Serialize)]
struct EntryRow<'a> {
    idx: i64,
    event_id: &'a str,
    fingerprint: &'a str,
    entry: String,
    leaf_hash: String,
    recorded_at: i64,
    occurred_at: i64,
    organisation: &'a str,
    actor_organisation: &'a str,
    actor_user_id: &'a str,
    action: &'a str,
    legal_basis_id: &'a str,
    disclosure_id: &'a str,
}

/// One row of [`INSERT_PERSONS_POSTGRES`].
#[derive(serde::Serialize)]
struct PersonRow<'a> {
    person_ref: &'a str,
    idx: i64,
}

fn to_json<T: serde::Serialize>(rows: &T) -> Result<String, StoreError> {
    serde_json::to_string(rows)
        .map_err(|error| StoreError::Corrupt(format!("encoding a batch as JSON: {error}")))
}

/// [`insert_entries`] on PostgreSQL: two statements for any batch.
async fn insert_entries_postgres(
    connection: &mut AnyConnection,
    entries: &[NewEntry],
) -> Result<(), StoreError> {
    let mut rows = Vec::with_capacity(entries.len());
    let mut persons = Vec::new();
    for entry in entries {
        let idx = to_i64(entry.index)?;
        rows.push(EntryRow {
            idx,
            event_id: &entry.event_id,
            fingerprint: &entry.fingerprint,
            entry: hex::encode(&entry.bytes),
            leaf_hash: hex::encode(entry.leaf_hash),
            recorded_at: entry.recorded_at,
            occurred_at: entry.occurred_at,
            organisation: &entry.organisation,
            actor_organisation: &entry.actor_organisation,
            actor_user_id: &entry.actor_user_id,
            action: &entry.action,
            legal_basis_id: &entry.legal_basis_id,
            disclosure_id: &entry.disclosure_id,
        });
        persons.extend(entry.person_refs.iter().map(|reference| PersonRow {
            person_ref: reference,
            idx,
        }));
    }
    sqlx::query(INSERT_ENTRIES_POSTGRES)
        .bind(to_json(&rows)?)
        .execute(&mut *connection)
        .await?;
    if !persons.is_empty() {
        sqlx::query(INSERT_PERSONS_POSTGRES)
            .bind(to_json(&persons)?)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// Writes `entries` with their person index (inside a [`LogWriter`]'s transaction).
async fn insert_entries(
    connection: &mut AnyConnection,
    entries: &[NewEntry],
) -> Result<(), StoreError> {
    if is_postgres(connection) {
        return insert_entries_postgres(connection, entries).await;
    }
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
    connection: &mut AnyConnection,
    from: u64,
    limit: u32,
) -> Result<Vec<Hash>, StoreError> {
    let rows = sqlx::query(
        "SELECT idx, leaf_hash FROM audit_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
    )
    .bind(to_i64(from)?)
    .bind(i64::from(limit))
    .fetch_all(&mut *connection)
    .await?;
    let mut hashes = Vec::with_capacity(rows.len());
    for (offset, row) in rows.iter().enumerate() {
        let expected = from + offset as u64;
        let index: i64 = row.try_get("idx")?;
        if to_u64(index, "index")? != expected {
            return Err(StoreError::Corrupt(format!(
                "entry {expected} is missing (found index {index} in its place)"
            )));
        }
        let bytes: &[u8] = row.try_get("leaf_hash")?;
        hashes.push(hash(bytes, "leaf hash")?);
    }
    Ok(hashes)
}

/// The latest signed checkpoint (by size).
pub async fn latest_checkpoint(
    connection: &mut AnyConnection,
) -> Result<Option<StoredCheckpoint>, StoreError> {
    let row = sqlx::query(
        "SELECT tree_size, root_hash, note, signed_at FROM audit_checkpoints \
         ORDER BY tree_size DESC LIMIT 1",
    )
    .fetch_optional(&mut *connection)
    .await?;
    row.map(|row| checkpoint_from_row(&row)).transpose()
}

/// The entries already logged under any of `event_ids`.
pub async fn existing(
    connection: &mut AnyConnection,
    event_ids: &[String],
) -> Result<HashMap<String, ExistingEntry>, StoreError> {
    let mut found = HashMap::new();
    if is_postgres(connection) {
        if event_ids.is_empty() {
            return Ok(found);
        }
        let rows = sqlx::query(EXISTING_POSTGRES)
            .bind(to_json(&event_ids)?)
            .fetch_all(&mut *connection)
            .await?;
        for row in &rows {
            let (event_id, entry) = existing_from_row(row)?;
            found.insert(event_id, entry);
        }
        return Ok(found);
    }
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
        for row in query.fetch_all(&mut *connection).await? {
            let (event_id, entry) = existing_from_row(&row)?;
            found.insert(event_id, entry);
        }
    }
    Ok(found)
}

fn existing_from_row(row: &sqlx::any::AnyRow) -> Result<(String, ExistingEntry), StoreError> {
    let event_id: String = row.try_get("event_id")?;
    let index: i64 = row.try_get("idx")?;
    let leaf: Vec<u8> = row.try_get("leaf_hash")?;
    Ok((
        event_id,
        ExistingEntry {
            index: to_u64(index, "index")?,
            fingerprint: row.try_get("fingerprint")?,
            leaf_hash: hash(&leaf, "leaf hash")?,
        },
    ))
}

fn checkpoint_from_row(row: &sqlx::any::AnyRow) -> Result<StoredCheckpoint, StoreError> {
    let root: Vec<u8> = row.try_get("root_hash")?;
    Ok(StoredCheckpoint {
        tree_size: to_u64(row.try_get("tree_size")?, "tree size")?,
        root: hash(&root, "checkpoint root")?,
        note: row.try_get("note")?,
        signed_at: row.try_get("signed_at")?,
    })
}

fn entry_from_row(row: &sqlx::any::AnyRow) -> Result<StoredEntry, StoreError> {
    let leaf: Vec<u8> = row.try_get("leaf_hash")?;
    Ok(StoredEntry {
        index: to_u64(row.try_get("idx")?, "index")?,
        bytes: row.try_get("entry")?,
        leaf_hash: hash(&leaf, "leaf hash")?,
    })
}
