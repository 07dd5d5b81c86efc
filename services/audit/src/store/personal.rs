//! The personal store of format-2 entries: keys (one per person, disclosure or entry, random
//! ids, random 256-bit material) and openings (an entry's personal data, sealed with
//! XChaCha20-Poly1305 under its key, the entry's event id and the key id as associated data).
//!
//! Invariants:
//! - The one way readers get entries is [`AuditStore::full_entries`]: the leaf merged with
//!   the openings that still exist, each checked against the leaf's commitment.
//! - Keys are created when an entry first needs them and never changed; clearing deletes
//!   them, then their openings and the cleared persons' index rows, in one transaction (the
//!   migrations refuse deleting an opening or an index row while its key exists). SQLite
//!   clears with `secure_delete` on and truncates the WAL afterwards; PostgreSQL vacuums the
//!   three tables.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::Row;
use tryggdel_storage::{Backend, FieldCipher, FieldKey, placeholders};

use super::{AuditStore, StoreError, StoredEntry, to_i64, to_u64};
use crate::entry::{EntryRecord, FullEntry, KeyScope, Opening, OpeningState, merge};

/// Parameters per IN list.
const CHUNK: usize = 400;

/// A key of the personal store, ready to seal openings.
#[derive(Clone)]
pub struct PersonalKey {
    pub key_id: String,
    cipher: FieldCipher,
}

impl std::fmt::Debug for PersonalKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PersonalKey")
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// An opening as stored: its key id and sealed bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedOpening {
    pub key_id: String,
    pub sealed: String,
}

/// What a clearing deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Destroyed {
    pub keys: u64,
    pub openings: u64,
    pub person_index_rows: u64,
}

/// The associated data of an opening: which entry and key it belongs to.
fn context(event_id: &str, key_id: &str) -> String {
    format!("tryggdel.audit.opening:{event_id}:{key_id}")
}

impl PersonalKey {
    fn from_stored(key_id: String, material: &str) -> Result<PersonalKey, StoreError> {
        let key = FieldKey::from_base64(material)
            .map_err(|error| StoreError::Corrupt(format!("personal key {key_id}: {error}")))?;
        Ok(PersonalKey {
            key_id,
            cipher: FieldCipher::new(&key),
        })
    }

    /// Seals `opening` of the entry with `event_id`.
    pub fn seal(&self, event_id: &str, opening: &Opening) -> Result<SealedOpening, StoreError> {
        let mut plain = Vec::with_capacity(32 + opening.data.len());
        plain.extend_from_slice(&opening.salt);
        plain.extend_from_slice(&opening.data);
        let sealed = self
            .cipher
            .seal(&plain, &context(event_id, &self.key_id))
            .map_err(|error| StoreError::Encoding(error.to_string()))?;
        Ok(SealedOpening {
            key_id: self.key_id.clone(),
            sealed,
        })
    }

    fn open(&self, event_id: &str, sealed: &str) -> Option<Opening> {
        let plain = self
            .cipher
            .open(sealed, &context(event_id, &self.key_id))
            .ok()?;
        if plain.len() < 32 {
            return None;
        }
        let (salt, data) = plain.split_at(32);
        Some(Opening {
            key: self.key_id.clone(),
            salt: salt.try_into().ok()?,
            data: data.to_vec(),
        })
    }
}

impl AuditStore {
    /// The keys of `scopes`, each created if it does not exist yet (concurrent creators agree:
    /// the first insert wins and every one reads it back).
    pub async fn personal_keys(
        &self,
        scopes: &[KeyScope],
    ) -> Result<HashMap<KeyScope, PersonalKey>, StoreError> {
        let mut wanted: Vec<&KeyScope> = scopes.iter().collect();
        wanted.sort();
        wanted.dedup();
        let mut found = self.existing_keys(&wanted).await?;
        let missing: Vec<&KeyScope> = wanted
            .iter()
            .copied()
            .filter(|scope| !found.contains_key(*scope))
            .collect();
        if missing.is_empty() {
            return Ok(found);
        }
        // New keys in one transaction, a few hundred rows per statement: a log that meets
        // many new persons at once makes their keys in one commit, not one each.
        let now = tryggdel_service_kit::now_unix_ms();
        let mut transaction = self.database.pool().begin().await?;
        for chunk in missing.chunks(CHUNK / 5) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|row| format!("({})", placeholders(row * 5 + 1, 5)))
                .collect();
            let sql = format!(
                "INSERT INTO audit_personal_keys (key_id, scope, scope_ref, key_material, \
                 created_at) VALUES {} ON CONFLICT (scope, scope_ref) DO NOTHING",
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for scope in chunk {
                query = query
                    .bind(format!("k-{}", uuid::Uuid::new_v4().simple()))
                    .bind(scope.kind())
                    .bind(scope.reference())
                    .bind(FieldKey::generate_base64())
                    .bind(now);
            }
            query.execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        found.extend(self.existing_keys(&missing).await?);
        if let Some(scope) = missing.iter().find(|scope| !found.contains_key(**scope)) {
            return Err(StoreError::Corrupt(format!(
                "a {} key was created but cannot be read back",
                scope.kind()
            )));
        }
        Ok(found)
    }

    async fn existing_keys(
        &self,
        scopes: &[&KeyScope],
    ) -> Result<HashMap<KeyScope, PersonalKey>, StoreError> {
        let mut found = HashMap::new();
        // By kind, so that the lookup is on the (scope, scope_ref) index.
        for kind in ["person", "disclosure", "entry"] {
            let wanted: HashSet<&str> = scopes
                .iter()
                .filter(|scope| scope.kind() == kind)
                .map(|scope| scope.reference())
                .collect();
            let references: Vec<&str> = wanted.iter().copied().collect();
            for chunk in references.chunks(CHUNK) {
                // (key id, scope reference, key material) of each key found.
                let rows: Vec<(String, String, String)> = match self.database.postgres_pool() {
                    // One array parameter: the plan stays an index lookup however often the
                    // statement runs (a generic plan over a long IN list scans the table).
                    Some(native) => {
                        sqlx::query_as(
                            "SELECT key_id, scope_ref, key_material FROM audit_personal_keys \
                         WHERE scope = $1 AND scope_ref = ANY($2)",
                        )
                        .bind(kind)
                        .bind(chunk)
                        .fetch_all(native)
                        .await?
                    }
                    None => {
                        let sql = format!(
                            "SELECT key_id, scope_ref, key_material FROM audit_personal_keys \
                             WHERE scope = $1 AND scope_ref IN ({})",
                            placeholders(2, chunk.len())
                        );
                        let mut query = sqlx::query_as(&sql).bind(kind);
                        for reference in chunk {
                            query = query.bind(*reference);
                        }
                        query.fetch_all(self.database.pool()).await?
                    }
                };
                for (key_id, reference, material) in rows {
                    if !wanted.contains(reference.as_str()) {
                        continue;
                    }
                    let Some(scope) = KeyScope::from_stored(kind, reference) else {
                        continue;
                    };
                    let key = PersonalKey::from_stored(key_id, &material)?;
                    found.insert(scope, key);
                }
            }
        }
        Ok(found)
    }

    /// The key ids of those of `scopes` whose keys still exist.
    pub async fn key_ids(&self, scopes: &[KeyScope]) -> Result<Vec<String>, StoreError> {
        let wanted: Vec<&KeyScope> = scopes.iter().collect();
        let mut ids: Vec<String> = self
            .existing_keys(&wanted)
            .await?
            .into_values()
            .map(|key| key.key_id)
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The event ids of a person's entries that name no disclosure (found through the person
    /// index): the scopes of those entries' own free text.
    pub async fn entries_without_disclosure_of(
        &self,
        person_ref: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.event_id FROM audit_entries e JOIN audit_entry_persons p ON p.idx = e.idx \
             WHERE p.person_ref = $1 AND e.disclosure_id = '' ORDER BY e.idx",
        )
        .bind(person_ref)
        .fetch_all(self.database.pool())
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("event_id")?))
            .collect()
    }

    /// The readers' one way to entries: each stored entry parsed, with the personal data of
    /// its openings that still exist merged in, every opening checked against the leaf's
    /// commitment (a missing key or opening is cleared; one that does not open or does not
    /// match is tampered and not merged).
    pub async fn full_entries(
        &self,
        entries: Vec<StoredEntry>,
    ) -> Result<Vec<FullEntry>, StoreError> {
        let mut records = Vec::with_capacity(entries.len());
        let mut keyed: Vec<i64> = Vec::new();
        for entry in &entries {
            let record = EntryRecord::parse(&entry.bytes).map_err(|error| {
                StoreError::Corrupt(format!("entry {} does not parse: {error}", entry.index))
            })?;
            if record
                .openings
                .as_ref()
                .is_some_and(|list| !list.is_empty())
            {
                keyed.push(to_i64(entry.index)?);
            }
            records.push(record);
        }
        let stored = self.stored_openings(&keyed).await?;
        let mut full = Vec::with_capacity(entries.len());
        for (entry, mut record) in entries.into_iter().zip(records) {
            let mut states = Vec::new();
            for commitment in record.openings.clone().unwrap_or_default() {
                let state = match stored.get(&(entry.index, commitment.key.clone())) {
                    Some((sealed, Some(material))) => {
                        let key = PersonalKey::from_stored(commitment.key.clone(), material)?;
                        match key.open(&record.body.event_id, sealed) {
                            Some(opening) if opening.commitment() == commitment.commitment => {
                                OpeningState::Present(opening)
                            }
                            _ => OpeningState::Tampered {
                                key: commitment.key,
                            },
                        }
                    }
                    // An opening whose key is gone cannot be read by anyone: cleared.
                    Some((_, None)) | None => OpeningState::Cleared {
                        key: commitment.key,
                    },
                };
                states.push(state);
            }
            merge(&mut record, &states).map_err(|error| {
                StoreError::Corrupt(format!(
                    "an opening of entry {} does not parse: {error}",
                    entry.index
                ))
            })?;
            full.push(FullEntry {
                index: entry.index,
                bytes: entry.bytes,
                leaf_hash: entry.leaf_hash,
                record,
                openings: states,
            });
        }
        Ok(full)
    }

    /// The stored openings of entries `indices`, by (index, key id): the sealed bytes and the
    /// key's material if the key still exists.
    async fn stored_openings(
        &self,
        indices: &[i64],
    ) -> Result<BTreeMap<(u64, String), (String, Option<String>)>, StoreError> {
        let mut found = BTreeMap::new();
        for chunk in indices.chunks(CHUNK) {
            let sql = format!(
                "SELECT o.idx, o.key_id, o.sealed, k.key_material \
                 FROM audit_personal_openings o \
                 LEFT JOIN audit_personal_keys k ON k.key_id = o.key_id \
                 WHERE o.idx IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for index in chunk {
                query = query.bind(*index);
            }
            for row in query.fetch_all(self.database.pool()).await? {
                let index = to_u64(row.try_get("idx")?, "index")?;
                let material: Option<String> = row.try_get("key_material")?;
                found.insert(
                    (index, row.try_get("key_id")?),
                    (row.try_get("sealed")?, material),
                );
            }
        }
        Ok(found)
    }

    /// Clearing: destroys the keys `key_ids`, then their openings and the person index rows of
    /// `person_refs` (the log's and the review's), in one transaction; then makes sure no freed page keeps them (SQLite:
    /// `secure_delete` during the deletes and the WAL truncated after; PostgreSQL: the tables
    /// vacuumed).
    pub async fn destroy_personal(
        &self,
        key_ids: &[String],
        person_refs: &[String],
    ) -> Result<Destroyed, StoreError> {
        let backend = self.database.backend();
        let mut connection = self.database.pool().acquire().await?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA secure_delete = ON")
                .execute(&mut *connection)
                .await?;
        }
        let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
        let mut destroyed = Destroyed::default();
        for (table, column, values, count) in [
            ("audit_personal_keys", "key_id", key_ids, 0),
            ("audit_personal_openings", "key_id", key_ids, 1),
            ("audit_entry_persons", "person_ref", person_refs, 2),
            ("audit_access_persons", "person_ref", person_refs, 2),
        ] {
            for chunk in values.chunks(CHUNK) {
                let sql = format!(
                    "DELETE FROM {table} WHERE {column} IN ({})",
                    placeholders(1, chunk.len())
                );
                let mut query = sqlx::query(&sql);
                for value in chunk {
                    query = query.bind(value.as_str());
                }
                let deleted = query.execute(&mut *transaction).await?.rows_affected();
                match count {
                    0 => destroyed.keys += deleted,
                    1 => destroyed.openings += deleted,
                    _ => destroyed.person_index_rows += deleted,
                }
            }
        }
        transaction.commit().await?;
        match backend {
            Backend::Sqlite => {
                // Rebuilt, the file keeps no free page that held what was deleted; then the
                // WAL, which held the pages as they were, is emptied.
                sqlx::query("VACUUM").execute(&mut *connection).await?;
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&mut *connection)
                    .await?;
            }
            Backend::Postgres => {
                sqlx::query(
                    "VACUUM audit_personal_keys, audit_personal_openings, audit_entry_persons, \
                     audit_access_persons",
                )
                .execute(&mut *connection)
                .await?;
            }
        }
        Ok(destroyed)
    }
}
