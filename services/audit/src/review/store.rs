//! The review's tables (migration 0004): criteria versions, runs and their findings.

use sqlx::Row;
use sqlx::any::AnyRow;
use tryggdel_storage::{Database, placeholders};

use crate::store::StoreError;

/// One version of an organisation's criteria.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCriteria {
    pub organisation: String,
    pub version: i64,
    pub text: String,
    pub set_by: String,
    pub set_at: i64,
}

/// A run as stored, without its findings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRun {
    pub run_id: String,
    pub organisation: String,
    pub period_from: String,
    pub period_until: String,
    pub from_ms: i64,
    pub until_ms: i64,
    pub seed: String,
    pub sample_size: i64,
    pub sample_algorithm: String,
    pub criteria_version: i64,
    /// One rule and its parameters a line.
    pub rules: String,
    /// `rule matched findings` a line.
    pub rule_counts: String,
    pub started_by: String,
    pub started_at: i64,
    pub access_entries: i64,
}

/// A finding as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFinding {
    pub run_id: String,
    pub number: i64,
    pub rule: String,
    pub entry_index: i64,
    pub actor_user_id: String,
    pub disclosure_id: String,
    pub action: String,
    pub occurred_at: i64,
    pub explanation: String,
    pub explanation_sv: String,
    /// Empty while open; else the outcome's name.
    pub outcome: String,
    pub note: String,
    pub outcome_by: String,
    pub outcome_at: i64,
}

/// The columns of [`FINDING_COLUMNS`], and the findings one INSERT writes.
const FINDING_FIELDS: usize = 14;
const FINDINGS_PER_INSERT: usize = 50;

const FINDING_COLUMNS: &str = "run_id, number, rule, entry_index, actor_user_id, disclosure_id, \
     action, occurred_at, explanation, explanation_sv, outcome, note, outcome_by, outcome_at";
const RUN_COLUMNS: &str = "run_id, organisation, period_from, period_until, from_ms, until_ms, \
     seed, sample_size, sample_algorithm, criteria_version, rules, rule_counts, started_by, \
     started_at, access_entries";

/// The review's reads and writes.
#[derive(Clone, Debug)]
pub struct ReviewStore {
    database: Database,
}

impl ReviewStore {
    pub fn new(database: Database) -> ReviewStore {
        ReviewStore { database }
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The organisation's criteria: `version`, or for 0 the latest.
    pub async fn criteria(
        &self,
        organisation: &str,
        version: i64,
    ) -> Result<Option<StoredCriteria>, StoreError> {
        let row = sqlx::query(
            "SELECT organisation, version, text, set_by, set_at FROM review_criteria \
             WHERE organisation = $1 AND ($2 = 0 OR version = $2) ORDER BY version DESC LIMIT 1",
        )
        .bind(organisation)
        .bind(version)
        .fetch_optional(self.database.pool())
        .await?;
        row.map(|row| {
            Ok(StoredCriteria {
                organisation: row.try_get("organisation")?,
                version: row.try_get("version")?,
                text: row.try_get("text")?,
                set_by: row.try_get("set_by")?,
                set_at: row.try_get("set_at")?,
            })
        })
        .transpose()
    }

    /// Stores the next version of the organisation's criteria; a concurrent setter's insert of
    /// the same version fails on the primary key, and the caller retries.
    pub async fn insert_criteria(
        &self,
        organisation: &str,
        text: &str,
        set_by: &str,
        set_at: i64,
    ) -> Result<StoredCriteria, StoreError> {
        let latest = self
            .criteria(organisation, 0)
            .await?
            .map(|criteria| criteria.version)
            .unwrap_or(0);
        let stored = StoredCriteria {
            organisation: organisation.to_owned(),
            version: latest + 1,
            text: text.to_owned(),
            set_by: set_by.to_owned(),
            set_at,
        };
        sqlx::query(
            "INSERT INTO review_criteria (organisation, version, text, set_by, set_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&stored.organisation)
        .bind(stored.version)
        .bind(&stored.text)
        .bind(&stored.set_by)
        .bind(stored.set_at)
        .execute(self.database.pool())
        .await?;
        Ok(stored)
    }

    /// Stores a run with its findings in one transaction.
    pub async fn insert_run(
        &self,
        run: &StoredRun,
        findings: &[StoredFinding],
    ) -> Result<(), StoreError> {
        let mut transaction = self.database.pool().begin().await?;
        sqlx::query(&format!(
            "INSERT INTO review_runs ({RUN_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(&run.run_id)
        .bind(&run.organisation)
        .bind(&run.period_from)
        .bind(&run.period_until)
        .bind(run.from_ms)
        .bind(run.until_ms)
        .bind(&run.seed)
        .bind(run.sample_size)
        .bind(&run.sample_algorithm)
        .bind(run.criteria_version)
        .bind(&run.rules)
        .bind(&run.rule_counts)
        .bind(&run.started_by)
        .bind(run.started_at)
        .bind(run.access_entries)
        .execute(&mut *transaction)
        .await?;
        // Many rows per statement: a run of every rule may have a thousand findings.
        for chunk in findings.chunks(FINDINGS_PER_INSERT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|row| {
                    format!(
                        "({})",
                        placeholders(1 + row * FINDING_FIELDS, FINDING_FIELDS)
                    )
                })
                .collect();
            let insert = format!(
                "INSERT INTO review_findings ({FINDING_COLUMNS}) VALUES {}",
                rows.join(", ")
            );
            let mut query = sqlx::query(&insert);
            for finding in chunk {
                query = query
                    .bind(&finding.run_id)
                    .bind(finding.number)
                    .bind(&finding.rule)
                    .bind(finding.entry_index)
                    .bind(&finding.actor_user_id)
                    .bind(&finding.disclosure_id)
                    .bind(&finding.action)
                    .bind(finding.occurred_at)
                    .bind(&finding.explanation)
                    .bind(&finding.explanation_sv)
                    .bind(&finding.outcome)
                    .bind(&finding.note)
                    .bind(&finding.outcome_by)
                    .bind(finding.outcome_at);
            }
            query.execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    pub async fn run(&self, run_id: &str) -> Result<Option<StoredRun>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM review_runs WHERE run_id = $1"
        ))
        .bind(run_id)
        .fetch_optional(self.database.pool())
        .await?;
        row.map(|row| run_from_row(&row)).transpose()
    }

    /// The organisation's runs, newest first, skipping `offset`.
    pub async fn runs(
        &self,
        organisation: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<StoredRun>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM review_runs WHERE organisation = $1 \
             ORDER BY started_at DESC, run_id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(organisation)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.database.pool())
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    pub async fn findings(&self, run_id: &str) -> Result<Vec<StoredFinding>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {FINDING_COLUMNS} FROM review_findings WHERE run_id = $1 ORDER BY number"
        ))
        .bind(run_id)
        .fetch_all(self.database.pool())
        .await?;
        rows.iter().map(finding_from_row).collect()
    }

    /// Findings of the run and how many of them are still open.
    pub async fn finding_counts(&self, run_id: &str) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, \
             COALESCE(SUM(CASE WHEN outcome = '' THEN 1 ELSE 0 END), 0) AS open \
             FROM review_findings WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_one(self.database.pool())
        .await?;
        Ok((row.try_get("total")?, row.try_get("open")?))
    }

    /// Records an outcome; None if the run has no such finding.
    pub async fn record_outcome(
        &self,
        run_id: &str,
        number: i64,
        outcome: &str,
        note: &str,
        by: &str,
        at: i64,
    ) -> Result<Option<StoredFinding>, StoreError> {
        let updated = sqlx::query(
            "UPDATE review_findings SET outcome = $1, note = $2, outcome_by = $3, outcome_at = $4 \
             WHERE run_id = $5 AND number = $6",
        )
        .bind(outcome)
        .bind(note)
        .bind(by)
        .bind(at)
        .bind(run_id)
        .bind(number)
        .execute(self.database.pool())
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT {FINDING_COLUMNS} FROM review_findings WHERE run_id = $1 AND number = $2"
        ))
        .bind(run_id)
        .bind(number)
        .fetch_optional(self.database.pool())
        .await?;
        row.map(|row| finding_from_row(&row)).transpose()
    }
}

fn run_from_row(row: &AnyRow) -> Result<StoredRun, StoreError> {
    Ok(StoredRun {
        run_id: row.try_get("run_id")?,
        organisation: row.try_get("organisation")?,
        period_from: row.try_get("period_from")?,
        period_until: row.try_get("period_until")?,
        from_ms: row.try_get("from_ms")?,
        until_ms: row.try_get("until_ms")?,
        seed: row.try_get("seed")?,
        sample_size: row.try_get("sample_size")?,
        sample_algorithm: row.try_get("sample_algorithm")?,
        criteria_version: row.try_get("criteria_version")?,
        rules: row.try_get("rules")?,
        rule_counts: row.try_get("rule_counts")?,
        started_by: row.try_get("started_by")?,
        started_at: row.try_get("started_at")?,
        access_entries: row.try_get("access_entries")?,
    })
}

fn finding_from_row(row: &AnyRow) -> Result<StoredFinding, StoreError> {
    Ok(StoredFinding {
        run_id: row.try_get("run_id")?,
        number: row.try_get("number")?,
        rule: row.try_get("rule")?,
        entry_index: row.try_get("entry_index")?,
        actor_user_id: row.try_get("actor_user_id")?,
        disclosure_id: row.try_get("disclosure_id")?,
        action: row.try_get("action")?,
        occurred_at: row.try_get("occurred_at")?,
        explanation: row.try_get("explanation")?,
        explanation_sv: row.try_get("explanation_sv")?,
        outcome: row.try_get("outcome")?,
        note: row.try_get("note")?,
        outcome_by: row.try_get("outcome_by")?,
        outcome_at: row.try_get("outcome_at")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tryggdel_storage::Database;
    use tryggdel_test_support::{TestBackend, TestDatabase, on_both_backends};

    use super::*;
    use crate::store::MIGRATIONS;

    /// A run with more findings than one INSERT writes stores and reads back every one, in order.
    async fn a_run_keeps_every_finding(backend: TestBackend) {
        let Some(database) = TestDatabase::create(backend).await else {
            return;
        };
        let store = ReviewStore::new(
            Database::connect(&database.url, "audit", &MIGRATIONS)
                .await
                .unwrap(),
        );
        let run = StoredRun {
            run_id: "run-1".into(),
            organisation: "bollnas-kommun".into(),
            period_from: "2026-10-01".into(),
            period_until: "2026-10-31".into(),
            from_ms: 1,
            until_ms: 2,
            seed: "00".repeat(32),
            sample_size: 50,
            sample_algorithm: "chacha20-fisher-yates/1".into(),
            criteria_version: 0,
            rules: "sample".into(),
            rule_counts: "sample 120 120".into(),
            started_by: "granskare".into(),
            started_at: 3,
            access_entries: 120,
        };
        let findings: Vec<StoredFinding> = (0..2 * FINDINGS_PER_INSERT as i64 + 7)
            .map(|number| StoredFinding {
                run_id: run.run_id.clone(),
                number,
                rule: "sample".into(),
                entry_index: 1000 + number,
                actor_user_id: format!("user-{number}"),
                disclosure_id: format!("d-{number}"),
                action: "disclosure.read".into(),
                occurred_at: 10 * number,
                explanation: format!("finding {number}"),
                explanation_sv: format!("fynd {number}"),
                outcome: String::new(),
                note: String::new(),
                outcome_by: String::new(),
                outcome_at: 0,
            })
            .collect();
        store.insert_run(&run, &findings).await.unwrap();
        assert_eq!(store.run("run-1").await.unwrap(), Some(run));
        assert_eq!(store.findings("run-1").await.unwrap(), findings);
        database.remove().await;
    }

    on_both_backends!(a_run_keeps_every_finding);
}
