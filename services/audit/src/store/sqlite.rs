//! The statements of sqlx's `Any` driver that the native PostgreSQL path does differently: a
//! SQLite writer's entry inserts, and the dedupe lookup by IN lists, which also serves a
//! connection outside a writer on either backend. The lookup runs unchanged on both backends;
//! the multi-row inserts only a SQLite writer makes (see [`insert_entries`]). The reads and the
//! checkpoint insert that are the same on both drivers are in the parent module.

use std::collections::HashMap;

use sqlx::{AnyConnection, QueryBuilder};
use tryggdel_storage::placeholders;

use crate::review::access::AccessRow;

use super::{
    ExistingEntry, NewEntry, SealedOpening, StoreError, access_persons, existing_from_rows, to_i64,
};

/// Rows per multi-row INSERT (13 parameters each, well under SQLite's limit), and event ids per
/// IN list of [`existing`].
const INSERT_CHUNK: usize = 400;

/// Writes `entries` with their person index, in multi-row INSERTs of [`INSERT_CHUNK`] rows.
///
/// Only a SQLite writer runs this: on PostgreSQL a writer is a native connection
/// ([`super::postgres::insert_entries`]). That is why the `?` placeholders that
/// [`QueryBuilder`] writes for the `Any` driver are fine here.
pub(super) async fn insert_entries(
    connection: &mut AnyConnection,
    entries: &[NewEntry],
) -> Result<(), StoreError> {
    for chunk in entries.chunks(INSERT_CHUNK) {
        let indices = chunk
            .iter()
            .map(|entry| to_i64(entry.index))
            .collect::<Result<Vec<_>, _>>()?;
        let mut insert = QueryBuilder::new(
            "INSERT INTO audit_entries (idx, event_id, fingerprint, entry, leaf_hash, \
             recorded_at, occurred_at, organisation, actor_organisation, actor_user_id, \
             action, legal_basis_id, disclosure_id) ",
        );
        insert.push_values(chunk.iter().zip(indices), |mut row, (entry, index)| {
            row.push_bind(index)
                .push_bind(&entry.event_id)
                .push_bind(&entry.fingerprint)
                .push_bind(entry.bytes.as_slice())
                .push_bind(entry.leaf_hash.to_vec())
                .push_bind(entry.recorded_at)
                .push_bind(entry.occurred_at)
                .push_bind(&entry.organisation)
                .push_bind(&entry.actor_organisation)
                .push_bind(&entry.actor_user_id)
                .push_bind(&entry.action)
                .push_bind(&entry.legal_basis_id)
                .push_bind(&entry.disclosure_id);
        });
        insert.build().execute(&mut *connection).await?;
    }
    let mut persons: Vec<(&str, i64)> = Vec::new();
    for entry in entries {
        let index = to_i64(entry.index)?;
        for reference in &entry.person_refs {
            persons.push((reference, index));
        }
    }
    for chunk in persons.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::new("INSERT INTO audit_entry_persons (person_ref, idx) ");
        insert.push_values(chunk, |mut row, (reference, index)| {
            row.push_bind(*reference).push_bind(*index);
        });
        insert.build().execute(&mut *connection).await?;
    }
    let mut accesses: Vec<(&NewEntry, &AccessRow, i64)> = Vec::new();
    for entry in entries {
        if let Some(access) = &entry.access {
            accesses.push((entry, access, to_i64(entry.index)?));
        }
    }
    for chunk in accesses.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::new(
            "INSERT INTO audit_accesses (idx, organisation, occurred_at, actor_user_id, \
             disclosure_id, action, access, protected_identity, compliance_actor) ",
        );
        insert.push_values(chunk, |mut row, (entry, access, index)| {
            row.push_bind(*index)
                .push_bind(&entry.organisation)
                .push_bind(entry.occurred_at)
                .push_bind(&entry.actor_user_id)
                .push_bind(&entry.disclosure_id)
                .push_bind(&entry.action)
                .push_bind(access.kind.code())
                .push_bind(i16::from(access.protected_identity))
                .push_bind(i16::from(access.compliance_actor));
        });
        insert.build().execute(&mut *connection).await?;
    }
    // Each row's `prev_at`: the later of the batch's own and the table's latest access of the
    // person by the user (which holds the earlier chunks of this batch).
    let access_persons = access_persons(entries)?;
    for chunk in access_persons.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::new("WITH u (o, t, a, p, i, b) AS (");
        insert.push_values(chunk, |mut row, person| {
            row.push_bind(&person.entry.organisation)
                .push_bind(person.entry.occurred_at)
                .push_bind(&person.entry.actor_user_id)
                .push_bind(person.person_ref)
                .push_bind(person.index)
                .push_bind(person.batch_prev);
        });
        insert.push(
            ") INSERT INTO audit_access_persons (organisation, occurred_at, actor_user_id, \
             person_ref, idx, prev_at) SELECT o, t, a, p, i, CASE WHEN s IS NULL THEN b \
             WHEN b IS NULL OR s > b THEN s ELSE b END FROM (SELECT u.*, \
             (SELECT x.occurred_at FROM audit_access_persons x WHERE x.person_ref = u.p \
             AND x.actor_user_id = u.a AND x.organisation = u.o AND x.occurred_at <= u.t \
             ORDER BY x.person_ref DESC, x.actor_user_id DESC, x.organisation DESC, \
             x.occurred_at DESC LIMIT 1) AS s \
             FROM u)",
        );
        insert.build().execute(&mut *connection).await?;
    }
    let mut openings: Vec<(i64, &SealedOpening)> = Vec::new();
    for entry in entries {
        let index = to_i64(entry.index)?;
        for opening in &entry.openings {
            openings.push((index, opening));
        }
    }
    for chunk in openings.chunks(INSERT_CHUNK) {
        let mut insert =
            QueryBuilder::new("INSERT INTO audit_personal_openings (idx, key_id, sealed) ");
        insert.push_values(chunk, |mut row, (index, opening)| {
            row.push_bind(*index)
                .push_bind(opening.key_id.as_str())
                .push_bind(opening.sealed.as_str());
        });
        insert.build().execute(&mut *connection).await?;
    }
    Ok(())
}

/// See [`super::existing`]: an IN list per [`INSERT_CHUNK`] ids, with `$n` placeholders, so it
/// runs on either backend.
pub(super) async fn existing(
    connection: &mut AnyConnection,
    event_ids: &[String],
) -> Result<HashMap<String, ExistingEntry>, StoreError> {
    let mut found = HashMap::new();
    for chunk in event_ids.chunks(INSERT_CHUNK) {
        let sql = format!(
            "SELECT event_id, idx, fingerprint, leaf_hash FROM audit_entries \
             WHERE event_id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&mut *connection).await?;
        existing_from_rows(&rows, &mut found)?;
    }
    Ok(found)
}
