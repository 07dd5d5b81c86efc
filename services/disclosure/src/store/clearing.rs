//! Clearing (gallring) at the database's edge: the disclosures due, whether their events have
//! all reached the audit log and the police, and the clearing itself — the personal data
//! overwritten, the outbox rows stripped of person references and free text, and the
//! `disclosure.cleared` tombstone written, all or nothing. On SQLite each clearing runs with
//! `PRAGMA secure_delete = ON`, so the old bytes are overwritten in the file, and after a run
//! the file is rebuilt and the WAL truncated ([`DisclosureStore::compact_after_clearing`]).

use sqlx::Row;
use tryggdel_storage::{AnyQuery, Arguments, Backend, Change, OutboxEvent, Written, write_in};

use super::DisclosureStore;
use super::record::{COLUMNS, DisclosureRecord};

/// The personal data of one disclosure as it is to be after clearing, under the version it
/// was read at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClearedDisclosure {
    pub id: String,
    pub expected_version: i64,
    /// The content and protected details sealed empty (the record still opens, with nothing
    /// in it).
    pub content_sealed: String,
    pub protected_sealed: String,
    /// The approved payload with its values cleared, sealed (empty when nothing was
    /// approved).
    pub payload_sealed: String,
    pub cleared_at: i64,
    pub decision_id: String,
}

/// An outbox row of a cleared disclosure, rewritten without personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrippedOutboxRow {
    pub seq: i64,
    pub payload: String,
    pub audit_event: Vec<u8>,
}

/// Overwrites the personal data of a disclosure still at its version and not yet cleared: the
/// sealed content and protected details (sealed empty), the payload (its values cleared), the
/// free-text reason and judgement, the person references. The version moves on, and the clear columns are marked
/// current, so the crime category and recipient stay counted.
const CLEAR_STATEMENT: &str = "UPDATE disclosures SET content_sealed = $1, protected_sealed = $2, \
     payload_sealed = $7, decision_reason = '', decision_judgement = '', subject_ref = '', \
     victim_ref = '', cleared_at = $3, cleared_by_decision = $4, version = $6 + 1, \
     clear_version = $6 + 1 \
     WHERE id = $5 AND version = $6 AND cleared_at = 0";

impl Arguments for ClearedDisclosure {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(&self.content_sealed)
            .bind(&self.protected_sealed)
            .bind(self.cleared_at)
            .bind(&self.decision_id)
            .bind(&self.id)
            .bind(self.expected_version)
            .bind(&self.payload_sealed)
    }
}

impl DisclosureStore {
    /// The uncleared disclosures of `organisation` past drafting and decision (nothing left to
    /// do on them) last changed before `before` (Unix milliseconds), oldest first.
    pub async fn clearing_candidates(
        &self,
        organisation: &str,
        before: i64,
    ) -> Result<Vec<DisclosureRecord>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM disclosures \
             WHERE organisation = $1 AND cleared_at = 0 AND updated_at < $2 \
             AND state NOT IN ('draft', 'submitted') ORDER BY updated_at, id"
        ))
        .bind(organisation)
        .bind(before)
        .fetch_all(self.database.pool())
        .await
    }

    /// Whether any event of the disclosure has not yet reached the audit log, or (an approval
    /// or recall) the police.
    pub async fn awaits_relay(&self, disclosure_id: &str) -> Result<bool, sqlx::Error> {
        let waiting: i64 = sqlx::query(
            "SELECT COUNT(*) FROM outbox WHERE disclosure_id = $1 AND (\
             audit_relayed_at IS NULL \
             OR (event_type = 'disclosure.approved' AND delivery_relayed_at IS NULL) \
             OR (event_type = 'disclosure.recalled' AND recall_relayed_at IS NULL))",
        )
        .bind(disclosure_id)
        .fetch_one(self.database.pool())
        .await?
        .try_get(0)?;
        Ok(waiting > 0)
    }

    /// The outbox rows of a disclosure, as (seq, payload JSON), in order.
    pub async fn outbox_payloads(
        &self,
        disclosure_id: &str,
    ) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let rows =
            sqlx::query("SELECT seq, payload FROM outbox WHERE disclosure_id = $1 ORDER BY seq")
                .bind(disclosure_id)
                .fetch_all(self.database.pool())
                .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// Clears a disclosure: `cleared`, its outbox rows replaced by `stripped`, and the
    /// `tombstone` event, all or nothing. Returns false (and writes nothing) when the
    /// disclosure moved on or was cleared meanwhile.
    pub async fn clear_disclosure(
        &self,
        cleared: &ClearedDisclosure,
        stripped: &[StrippedOutboxRow],
        tombstone: &OutboxEvent,
    ) -> Result<bool, sqlx::Error> {
        let mut transaction = self.database.pool().begin().await?;
        if self.database.backend() == Backend::Sqlite {
            sqlx::query("PRAGMA secure_delete = ON")
                .execute(&mut *transaction)
                .await?;
        }
        let change = Change::new(CLEAR_STATEMENT, cleared, std::slice::from_ref(&tombstone));
        if write_in(&mut transaction, &change).await? != Written::All {
            transaction.rollback().await?;
            return Ok(false);
        }
        for row in stripped {
            sqlx::query("UPDATE outbox SET payload = $1, audit_event = $2 WHERE seq = $3")
                .bind(&row.payload)
                .bind(&row.audit_event)
                .bind(row.seq)
                .execute(&mut *transaction)
                .await?;
        }
        tryggdel_storage::commit(transaction).await?;
        Ok(true)
    }

    /// How many uncleared disclosures (of any organisation) have the person with keyed
    /// reference `person_ref` as their subject or victim.
    pub async fn uncleared_disclosures_of(&self, person_ref: &str) -> Result<i64, sqlx::Error> {
        let count: i64 = sqlx::query(
            "SELECT COUNT(*) FROM disclosures \
             WHERE cleared_at = 0 AND (subject_ref = $1 OR victim_ref = $1)",
        )
        .bind(person_ref)
        .fetch_one(self.database.pool())
        .await?
        .try_get(0)?;
        Ok(count)
    }

    /// After a clearing run on SQLite: the file rebuilt (`VACUUM`: the free space inside
    /// pages may still hold old versions of rows written before clearing, which
    /// `secure_delete` alone does not reach), then the write-ahead log checkpointed into it
    /// and truncated, so no old page survives in either file.
    pub async fn compact_after_clearing(&self) -> Result<(), sqlx::Error> {
        if self.database.backend() == Backend::Sqlite {
            let mut connection = self.database.pool().acquire().await?;
            for statement in [
                "PRAGMA secure_delete = ON",
                "VACUUM",
                "PRAGMA wal_checkpoint(TRUNCATE)",
            ] {
                sqlx::query(statement).execute(&mut *connection).await?;
            }
        }
        Ok(())
    }
}
