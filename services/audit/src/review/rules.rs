//! The review's set-based reads of the log: each targeted rule is one statement over the
//! indexed columns (organisation, occurred_at, action, actor, disclosure) that counts what it
//! matches and returns the first matches in index order; the sample's population is one
//! statement of indices. Entry bytes are searched by the database only where a rule needs a
//! detail (the protected identity mark, a compliance officer's role) and parsed by the service
//! only for the entries that become findings.

use sqlx::Row;
use tryggdel_storage::{Backend, Database};

use crate::store::StoreError;

/// The entries that count as accesses to personal data: reads, list pages, reveals of
/// protected details, and the compliance reads of the log (`audit.*`, except what the review
/// and clearing themselves write).
const ACCESS: &str = "(e.action LIKE '%.read' OR e.action LIKE '%.listed' \
     OR e.action LIKE '%.protected_revealed' OR (e.action LIKE 'audit.%' AND e.action NOT IN \
     ('audit.review_criteria_set', 'audit.review_outcome', 'audit.cleared')))";

/// The organisation's entries of the period: $1 organisation, $2 first millisecond, $3 the
/// millisecond after.
const PERIOD: &str = "e.organisation = $1 AND e.occurred_at >= $2 AND e.occurred_at < $3";

/// What a user did that relates them to a case: drafting, submitting, deciding it, or answering
/// for it (a request's answer or refusal, an acknowledgement).
const RELATING_ACTIONS: &str = "('disclosure.drafted', 'disclosure.draft_created', \
     'disclosure.draft_updated', 'disclosure.submitted', 'disclosure.approved', \
     'disclosure.rejected', 'disclosure.withdrawn', 'disclosure.recalled', \
     'disclosure.acknowledged', 'information_request.answered', 'information_request.refused')";

/// The mark the disclosure service puts in every event of a disclosure with protected details.
pub const PROTECTED_MARK: &[u8] = br#""protected_identity":"true""#;
/// A compliance officer's role as an entry's JSON spells it.
const COMPLIANCE_ROLE: &[u8] = br#""compliance_officer""#;

/// The rules, by the id each finding carries.
pub const RULE_SAMPLE: &str = "sample";
pub const RULE_PROTECTED_IDENTITY: &str = "protected_identity";
pub const RULE_NO_RELATION: &str = "no_relation";
pub const RULE_OUTSIDE_HOURS: &str = "outside_hours";
pub const RULE_MANY_PERSONS: &str = "many_persons";
pub const RULE_PROTECTED_REVEALED: &str = "protected_revealed";
pub const RULE_COMPLIANCE_READ: &str = "compliance_read";

/// The period a rule reads, for one organisation.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub organisation: &'a str,
    pub from_ms: i64,
    pub until_ms: i64,
}

/// An entry a rule matched, by its columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub index: i64,
    pub occurred_at: i64,
    pub actor_user_id: String,
    pub disclosure_id: String,
    pub action: String,
}

/// How many entries a rule matched, and the first of them.
#[derive(Clone, Debug, Default)]
pub struct Matches {
    pub matched: u64,
    pub hits: Vec<Hit>,
}

/// One user's many persons within one window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Burst {
    pub actor_user_id: String,
    pub persons: i64,
    pub first_index: i64,
    pub first_at: i64,
    pub last_at: i64,
}

enum Arg {
    Int(i64),
    Bytes(&'static [u8]),
}

/// The reads of the review over one database.
pub struct Rules<'a> {
    database: &'a Database,
    scope: Scope<'a>,
    limit: u32,
}

impl<'a> Rules<'a> {
    /// Each rule returns at most `limit` hits.
    pub fn new(database: &'a Database, scope: Scope<'a>, limit: u32) -> Rules<'a> {
        Rules {
            database,
            scope,
            limit,
        }
    }

    /// SQL true where `column` contains the bytes of parameter `param`.
    fn contains(&self, column: &str, param: &str) -> String {
        match self.database.backend() {
            Backend::Postgres => format!("position({param} IN {column}) > 0"),
            Backend::Sqlite => format!("instr({column}, {param}) > 0"),
        }
    }

    /// The indices of the period's accesses, in index order: the sample's population.
    pub async fn accesses(&self) -> Result<Vec<i64>, StoreError> {
        let sql =
            format!("SELECT e.idx FROM audit_entries e WHERE {PERIOD} AND {ACCESS} ORDER BY e.idx");
        let rows = sqlx::query(&sql)
            .bind(self.scope.organisation)
            .bind(self.scope.from_ms)
            .bind(self.scope.until_ms)
            .fetch_all(self.database.pool())
            .await?;
        rows.iter()
            .map(|row| row.try_get::<i64, _>("idx").map_err(StoreError::from))
            .collect()
    }

    /// The period's entries matching `condition` (over `e`; parameters from $4 on are `args`).
    async fn matching(&self, condition: &str, args: &[Arg]) -> Result<Matches, StoreError> {
        let sql = format!(
            "SELECT e.idx, e.occurred_at, e.actor_user_id, e.disclosure_id, e.action, \
             COUNT(*) OVER () AS matched FROM audit_entries e \
             WHERE {PERIOD} AND ({condition}) ORDER BY e.idx LIMIT {}",
            self.limit
        );
        let mut query = sqlx::query(&sql)
            .bind(self.scope.organisation)
            .bind(self.scope.from_ms)
            .bind(self.scope.until_ms);
        for arg in args {
            query = match arg {
                Arg::Int(value) => query.bind(*value),
                Arg::Bytes(value) => query.bind(*value),
            };
        }
        let rows = query.fetch_all(self.database.pool()).await?;
        let mut matches = Matches::default();
        for row in &rows {
            let matched: i64 = row.try_get("matched")?;
            matches.matched = u64::try_from(matched).unwrap_or_default();
            matches.hits.push(Hit {
                index: row.try_get("idx")?,
                occurred_at: row.try_get("occurred_at")?,
                actor_user_id: row.try_get("actor_user_id")?,
                disclosure_id: row.try_get("disclosure_id")?,
                action: row.try_get("action")?,
            });
        }
        Ok(matches)
    }

    /// (a) Accesses to a person with protected identity: accesses marked so, and accesses to
    /// the persons of any entry of the period marked so.
    pub async fn protected_identity(&self) -> Result<Matches, StoreError> {
        let marked_e = self.contains("e.entry", "$4");
        let marked_f = self.contains("f.entry", "$4");
        let condition = format!(
            "{ACCESS} AND ({marked_e} OR e.idx IN (SELECT p.idx FROM audit_entry_persons p \
             WHERE p.person_ref IN (SELECT q.person_ref FROM audit_entry_persons q \
             JOIN audit_entries f ON f.idx = q.idx WHERE f.organisation = $1 \
             AND f.occurred_at >= $2 AND f.occurred_at < $3 AND {marked_f})))"
        );
        self.matching(&condition, &[Arg::Bytes(PROTECTED_MARK)])
            .await
    }

    /// (b) Accesses of one case by a user with no relation to it: not its drafter, submitter
    /// or decision maker (no relating change of the case by them in the log), not an officer
    /// of the receiving inbox (the notification service serves a delivery only to those, so
    /// its reads are related), not a compliance officer (the entry's roles).
    pub async fn no_relation(&self) -> Result<Matches, StoreError> {
        let compliance = self.contains("e.entry", "$4");
        let condition = format!(
            "{ACCESS} AND e.disclosure_id <> '' AND e.action NOT LIKE 'audit.%' \
             AND e.action NOT LIKE 'notification.%' AND NOT ({compliance}) \
             AND NOT EXISTS (SELECT 1 FROM audit_entries c WHERE c.disclosure_id = e.disclosure_id \
             AND c.actor_user_id = e.actor_user_id AND c.action IN {RELATING_ACTIONS})"
        );
        self.matching(&condition, &[Arg::Bytes(COMPLIANCE_ROLE)])
            .await
    }

    /// (c) Accesses outside every window of `windows` (the working hours).
    pub async fn outside(&self, windows: &[(i64, i64)]) -> Result<Matches, StoreError> {
        let mut args = Vec::with_capacity(windows.len() * 2);
        let mut inside = Vec::with_capacity(windows.len());
        for (i, (start, end)) in windows.iter().enumerate() {
            inside.push(format!(
                "(e.occurred_at >= ${} AND e.occurred_at < ${})",
                4 + 2 * i,
                5 + 2 * i
            ));
            args.push(Arg::Int(*start));
            args.push(Arg::Int(*end));
        }
        let condition = if inside.is_empty() {
            ACCESS.to_owned()
        } else {
            format!("{ACCESS} AND NOT ({})", inside.join(" OR "))
        };
        self.matching(&condition, &args).await
    }

    /// (e) Reveals of protected details.
    pub async fn protected_revealed(&self) -> Result<Matches, StoreError> {
        self.matching("e.action = 'disclosure.protected_revealed'", &[])
            .await
    }

    /// (f) Compliance reads of the log.
    pub async fn compliance_reads(&self) -> Result<Matches, StoreError> {
        self.matching(&format!("{ACCESS} AND e.action LIKE 'audit.%'"), &[])
            .await
    }

    /// (d) Users who accessed at least `persons` distinct persons within one window of
    /// `window_ms`: windows aligned to the period's start, and again shifted by half a window
    /// (so a burst across a boundary is still found); overlapping finds of one user are one.
    pub async fn bursts(&self, persons: u32, window_ms: i64) -> Result<Vec<Burst>, StoreError> {
        let mut found = Vec::new();
        for origin in [self.scope.from_ms, self.scope.from_ms - window_ms / 2] {
            let sql = format!(
                "SELECT e.actor_user_id AS actor_user_id, COUNT(DISTINCT p.person_ref) AS persons, \
                 MIN(e.idx) AS first_index, MIN(e.occurred_at) AS first_at, \
                 MAX(e.occurred_at) AS last_at FROM audit_entries e \
                 JOIN audit_entry_persons p ON p.idx = e.idx \
                 WHERE {PERIOD} AND {ACCESS} AND e.actor_user_id <> '' \
                 GROUP BY e.actor_user_id, (e.occurred_at - $4) / $5 \
                 HAVING COUNT(DISTINCT p.person_ref) >= $6 ORDER BY first_index LIMIT {}",
                self.limit
            );
            let rows = sqlx::query(&sql)
                .bind(self.scope.organisation)
                .bind(self.scope.from_ms)
                .bind(self.scope.until_ms)
                .bind(origin)
                .bind(window_ms)
                .bind(i64::from(persons))
                .fetch_all(self.database.pool())
                .await?;
            for row in &rows {
                let burst = Burst {
                    actor_user_id: row.try_get("actor_user_id")?,
                    persons: row.try_get("persons")?,
                    first_index: row.try_get("first_index")?,
                    first_at: row.try_get("first_at")?,
                    last_at: row.try_get("last_at")?,
                };
                let overlaps = found.iter().any(|kept: &Burst| {
                    kept.actor_user_id == burst.actor_user_id
                        && kept.first_at <= burst.last_at
                        && burst.first_at <= kept.last_at
                });
                if !overlaps {
                    found.push(burst);
                }
            }
        }
        found.sort_by_key(|burst| burst.first_index);
        found.truncate(self.limit as usize);
        Ok(found)
    }

    /// The stored bytes of entries `indices`, by index.
    pub async fn entries(
        &self,
        indices: &[i64],
    ) -> Result<std::collections::HashMap<i64, Vec<u8>>, StoreError> {
        let mut found = std::collections::HashMap::with_capacity(indices.len());
        for chunk in indices.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT idx, entry FROM audit_entries WHERE idx IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for index in chunk {
                query = query.bind(*index);
            }
            for row in query.fetch_all(self.database.pool()).await? {
                let index: i64 = row.try_get("idx")?;
                let bytes: Vec<u8> = row.try_get("entry")?;
                found.insert(index, bytes);
            }
        }
        Ok(found)
    }
}
