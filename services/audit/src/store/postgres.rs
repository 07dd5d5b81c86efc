//! A writer's transaction on PostgreSQL, on a native connection of
//! [`tryggdel_storage::Database::postgres_pool`]: `BEGIN` with the log's lock, the entries by
//! binary `COPY`, and the person index and the dedupe lookup with array parameters. The reads
//! and the checkpoint insert of the same transaction are the parent module's, written once for
//! both drivers. Nothing here runs on SQLite.

use std::collections::HashMap;

use sqlx::postgres::PgPool;
use sqlx::{Executor, PgConnection, Postgres};
use tryggdel_storage::copy::{BinaryCopy, FieldTooLong};

use crate::review::access::AccessRow;

use super::{
    AccessPerson, ClosingConnection, ExistingEntry, NewEntry, StoreError, access_persons,
    existing_from_rows, to_i64,
};

/// A writer's first round trip: the transaction, its planner setting and the log's lock
/// ([`super::LOG_LOCK_CLASS`]).
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

/// The entries' insert: the rows in COPY's binary format ([`copy_rows`]), built in one buffer
/// and sent in one message. COPY fires the tables' row triggers for INSERT and needs only the
/// INSERT privilege, as the statements it replaces did.
const COPY_ENTRIES: &str = "COPY audit_entries (idx, event_id, fingerprint, entry, leaf_hash, \
     recorded_at, occurred_at, organisation, actor_organisation, actor_user_id, action, \
     legal_basis_id, disclosure_id) FROM STDIN (FORMAT BINARY)";
/// The columns of [`COPY_ENTRIES`].
const COPY_ENTRY_FIELDS: i16 = 13;
/// The person index of a batch with no access (as two arrays).
const INSERT_PERSONS: &str = "INSERT INTO audit_entry_persons (person_ref, idx) \
     SELECT * FROM unnest($1::text[], $2::int8[])";
/// The person index and the review's access index ([`crate::review::access`]) of a batch, in
/// one statement: each table's rows as arrays. An access's `prev_at` is the later of the
/// batch's own (`$17`) and the table's latest access of the person by the user at or before
/// it, read from `audit_access_persons_by_person` (ordered as that index is, so that the
/// planner cannot prefer walking the organisation's accesses by time instead: for a person
/// the user never accessed, that walk reads all of them).
const INSERT_INDICES: &str = "WITH accesses AS (INSERT INTO audit_accesses (idx, organisation, \
     occurred_at, actor_user_id, disclosure_id, action, access, protected_identity, \
     compliance_actor) SELECT * FROM unnest($3::int8[], $4::text[], $5::int8[], $6::text[], \
     $7::text[], $8::text[], $9::int2[], $10::int2[], $11::int2[])), \
     access_persons AS (INSERT INTO audit_access_persons (organisation, occurred_at, \
     actor_user_id, person_ref, idx, prev_at) SELECT u.o, u.t, u.a, u.p, u.i, GREATEST(u.b, \
     (SELECT x.occurred_at FROM audit_access_persons x WHERE x.person_ref = u.p \
     AND x.actor_user_id = u.a AND x.organisation = u.o AND x.occurred_at <= u.t \
     ORDER BY x.person_ref DESC, x.actor_user_id DESC, x.organisation DESC, \
     x.occurred_at DESC LIMIT 1)) \
     FROM unnest($12::text[], $13::int8[], $14::text[], $15::text[], $16::int8[], \
     $17::int8[]) AS u (o, t, a, p, i, b)) \
     INSERT INTO audit_entry_persons (person_ref, idx) SELECT * FROM unnest($1::text[], $2::int8[])";
/// A batch's openings (format 2), as three arrays.
const INSERT_OPENINGS: &str = "INSERT INTO audit_personal_openings (idx, key_id, sealed) \
     SELECT * FROM unnest($1::int8[], $2::text[], $3::text[])";

/// The dedupe lookup: one statement for any batch, the ids as one array.
const EXISTING: &str = "SELECT event_id, idx, fingerprint, leaf_hash FROM audit_entries \
     WHERE event_id = ANY($1)";

impl From<FieldTooLong> for StoreError {
    fn from(error: FieldTooLong) -> StoreError {
        StoreError::Encoding(error.to_string())
    }
}

/// A connection of `pool` in a transaction holding the log's lock; closed, not returned to the
/// pool, if that fails.
pub(super) async fn begin(pool: &PgPool) -> Result<ClosingConnection<Postgres>, StoreError> {
    let mut writer = ClosingConnection::new(pool.acquire().await?);
    writer.get()?.execute(BEGIN_AND_LOCK).await?;
    Ok(writer)
}

/// Ends the writer's transaction with `statement` (`COMMIT` or `ROLLBACK`); only then may the
/// pool have the connection back.
pub(super) async fn end(
    mut writer: ClosingConnection<Postgres>,
    statement: &'static str,
) -> Result<(), StoreError> {
    writer.get()?.execute(statement).await?;
    writer.release();
    Ok(())
}

/// Writes `entries` with their person index: the entries by COPY, the person index by one
/// INSERT of two arrays (COPY costs two round trips, one to start it and one to end it; this
/// statement costs one).
pub(super) async fn insert_entries(
    connection: &mut PgConnection,
    entries: &[NewEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    copy_in(connection, COPY_ENTRIES, copy_rows(entries)?).await?;
    let mut references: Vec<&str> = Vec::new();
    let mut indices: Vec<i64> = Vec::new();
    let mut accesses = AccessRows::default();
    for entry in entries {
        let index = to_i64(entry.index)?;
        for reference in &entry.person_refs {
            references.push(reference);
            indices.push(index);
        }
        if let Some(access) = &entry.access {
            accesses.push(entry, access, index);
        }
    }
    if accesses.indices.is_empty() {
        if !indices.is_empty() {
            sqlx::query(INSERT_PERSONS)
                .bind(references)
                .bind(indices)
                .execute(&mut *connection)
                .await?;
        }
    } else {
        let access_persons = access_persons(entries)?;
        sqlx::query(INSERT_INDICES)
            .bind(references)
            .bind(indices)
            .bind(accesses.indices)
            .bind(accesses.organisations)
            .bind(accesses.occurred_at)
            .bind(accesses.actors)
            .bind(accesses.disclosures)
            .bind(accesses.actions)
            .bind(accesses.kinds)
            .bind(accesses.protected_identity)
            .bind(accesses.compliance_actor)
            .bind(column(&access_persons, |row| {
                row.entry.organisation.as_str()
            }))
            .bind(column(&access_persons, |row| row.entry.occurred_at))
            .bind(column(&access_persons, |row| {
                row.entry.actor_user_id.as_str()
            }))
            .bind(column(&access_persons, |row| row.person_ref))
            .bind(column(&access_persons, |row| row.index))
            .bind(column(&access_persons, |row| row.batch_prev))
            .execute(&mut *connection)
            .await?;
    }
    let mut opening_indices: Vec<i64> = Vec::new();
    let mut key_ids: Vec<&str> = Vec::new();
    let mut sealed: Vec<&str> = Vec::new();
    for entry in entries {
        let index = to_i64(entry.index)?;
        for opening in &entry.openings {
            opening_indices.push(index);
            key_ids.push(&opening.key_id);
            sealed.push(&opening.sealed);
        }
    }
    if !opening_indices.is_empty() {
        sqlx::query(INSERT_OPENINGS)
            .bind(opening_indices)
            .bind(key_ids)
            .bind(sealed)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// One column of `rows`, as an array parameter.
fn column<'a, T>(rows: &[AccessPerson<'a>], value: impl Fn(&AccessPerson<'a>) -> T) -> Vec<T> {
    rows.iter().map(value).collect()
}

/// Rows of `audit_accesses`, column by column.
#[derive(Default)]
struct AccessRows<'a> {
    indices: Vec<i64>,
    organisations: Vec<&'a str>,
    occurred_at: Vec<i64>,
    actors: Vec<&'a str>,
    disclosures: Vec<&'a str>,
    actions: Vec<&'a str>,
    kinds: Vec<i16>,
    protected_identity: Vec<i16>,
    compliance_actor: Vec<i16>,
}

impl<'a> AccessRows<'a> {
    fn push(&mut self, entry: &'a NewEntry, access: &AccessRow, index: i64) {
        self.indices.push(index);
        self.organisations.push(&entry.organisation);
        self.occurred_at.push(entry.occurred_at);
        self.actors.push(&entry.actor_user_id);
        self.disclosures.push(&entry.disclosure_id);
        self.actions.push(&entry.action);
        self.kinds.push(access.kind.code());
        self.protected_identity
            .push(i16::from(access.protected_identity));
        self.compliance_actor
            .push(i16::from(access.compliance_actor));
    }
}

/// See [`super::existing`]: [`EXISTING`], with the ids as one array.
pub(super) async fn existing(
    connection: &mut PgConnection,
    event_ids: &[String],
) -> Result<HashMap<String, ExistingEntry>, StoreError> {
    let rows = sqlx::query(EXISTING)
        .bind(event_ids)
        .fetch_all(connection)
        .await?;
    let mut found = HashMap::new();
    existing_from_rows(&rows, &mut found)?;
    Ok(found)
}

/// The COPY data of `entries`: each entry's fields in the column order of [`COPY_ENTRIES`].
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
    let mut rows = BinaryCopy::with_capacity(entry_bytes);
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
            openings: Vec::new(),
            person_refs: person_refs.iter().map(|r| (*r).to_owned()).collect(),
            access: None,
        }
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

    #[test]
    fn no_entries_are_the_header_and_trailer_alone() {
        assert_eq!(copy_rows(&[]).unwrap(), [HEADER, TRAILER].concat());
    }
}
