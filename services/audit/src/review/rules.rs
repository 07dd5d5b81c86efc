//! The review's set-based reads: each targeted rule is a statement over the review's access
//! index ([`super::access`]: `audit_accesses`, a narrow row per access or marked entry, and
//! `audit_access_persons`, a row per person of an access, both by organisation and time) that
//! counts what it matches and returns the first matches in index order; the sample's
//! population is counted, and the drawn positions numbered, by the database. Entry bytes are
//! read only for the entries that become findings.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;
use tryggdel_storage::{Backend, Database};

use super::access::AccessKind;
use crate::store::StoreError;

/// The organisation's rows of the period: $1 organisation, $2 first millisecond, $3 the
/// millisecond after.
const PERIOD: &str = "a.organisation = $1 AND a.occurred_at >= $2 AND a.occurred_at < $3";

/// The rows that are accesses to personal data (`access` > 0: reads, list pages, reveals of
/// protected details, compliance reads of the log).
const ACCESS: &str = "a.access > 0";

/// What a user did that relates them to a case: drafting, submitting, deciding it, or answering
/// for it (a request's answer or refusal, an acknowledgement).
const RELATING_ACTIONS: &str = "('disclosure.drafted', 'disclosure.draft_created', \
     'disclosure.draft_updated', 'disclosure.submitted', 'disclosure.approved', \
     'disclosure.rejected', 'disclosure.withdrawn', 'disclosure.recalled', \
     'disclosure.acknowledged', 'information_request.answered', 'information_request.refused')";

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

/// A review statement's settings on PostgreSQL: memory for its sorts and hash tables (a
/// month's accesses of a large organisation, grouped by user and window or by case and user:
/// with less, "many persons" sorts two million rows on disk instead of hashing them, 6 s
/// instead of 1.8 s on a month of a million accesses), and no parallel workers (the run's two
/// statements at a time already use the cores).
const WORK_MEM: &str = "SELECT set_config('work_mem', '256MB', true), \
     set_config('max_parallel_workers_per_gather', '0', true)";

/// Most values one IN list binds.
const CHUNK: usize = 500;

/// `$first, $first+1, ...`, `count` of them.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The parity (1 odd, 0 even) of how many of the ascending bounds `$first+lo .. $first+hi`
/// plus the `lo` below them are at or before `a.occurred_at`, known to be before the bound
/// `hi` (if any) and at or after the bound `lo - 1`: a balanced tree of `CASE`s.
fn parity_tree(first: usize, lo: usize, hi: usize) -> String {
    if lo == hi {
        return (lo % 2).to_string();
    }
    let mid = lo + (hi - lo) / 2;
    format!(
        "(CASE WHEN a.occurred_at < ${} THEN {} ELSE {} END)",
        first + mid,
        parity_tree(first, lo, mid),
        parity_tree(first, mid + 1, hi)
    )
}

/// A hit from a row with the columns idx, occurred_at, actor_user_id, disclosure_id, action.
fn hit_from_row(row: &sqlx::any::AnyRow) -> Result<Hit, StoreError> {
    Ok(Hit {
        index: row.try_get("idx")?,
        occurred_at: row.try_get("occurred_at")?,
        actor_user_id: row.try_get("actor_user_id")?,
        disclosure_id: row.try_get("disclosure_id")?,
        action: row.try_get("action")?,
    })
}

/// A burst from a row with the columns actor_user_id, persons, first_index, first_at, last_at.
fn burst_from_row(row: &sqlx::any::AnyRow) -> Result<Burst, StoreError> {
    Ok(Burst {
        actor_user_id: row.try_get("actor_user_id")?,
        persons: row.try_get("persons")?,
        first_index: row.try_get("first_index")?,
        first_at: row.try_get("first_at")?,
        last_at: row.try_get("last_at")?,
    })
}

/// The kinds of [`AccessKind`] a case's reads are: a read or list page, a reveal.
fn case_access() -> String {
    format!(
        "a.access IN ({}, {})",
        AccessKind::Read.code(),
        AccessKind::ProtectedRevealed.code()
    )
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

    /// The rows of `query`: on PostgreSQL in a transaction of its own with [`WORK_MEM`] (the
    /// default memory spills the hash tables to disk); on SQLite as it is.
    async fn rows<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        if self.database.backend() != Backend::Postgres {
            return Ok(query.fetch_all(self.database.pool()).await?);
        }
        let mut transaction = self.database.pool().begin().await?;
        sqlx::query(WORK_MEM).execute(&mut *transaction).await?;
        let rows = query.fetch_all(&mut *transaction).await?;
        transaction.commit().await?;
        Ok(rows)
    }

    /// How many accesses the period has: the sample's population, positions 0..n in index
    /// order.
    pub async fn access_count(&self) -> Result<u64, StoreError> {
        let sql = format!("SELECT COUNT(*) AS n FROM audit_accesses a WHERE {PERIOD} AND {ACCESS}");
        let row = sqlx::query(&sql)
            .bind(self.scope.organisation)
            .bind(self.scope.from_ms)
            .bind(self.scope.until_ms)
            .fetch_one(self.database.pool())
            .await?;
        let count: i64 = row.try_get("n")?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    /// The indices of the accesses at `positions` of the population (in index order), numbered
    /// by the database so that only the drawn entries leave it.
    pub async fn accesses_at(&self, positions: &[usize]) -> Result<Vec<i64>, StoreError> {
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        // Positions are numbers this service computed, written into the statement as such.
        let list: Vec<String> = positions.iter().map(usize::to_string).collect();
        let sql = format!(
            "SELECT idx FROM (SELECT a.idx AS idx, ROW_NUMBER() OVER (ORDER BY a.idx) - 1 AS position \
             FROM audit_accesses a WHERE {PERIOD} AND {ACCESS}) numbered \
             WHERE position IN ({}) ORDER BY idx",
            list.join(", ")
        );
        let query = sqlx::query(&sql)
            .bind(self.scope.organisation)
            .bind(self.scope.from_ms)
            .bind(self.scope.until_ms);
        let rows = self.rows(query).await?;
        rows.iter()
            .map(|row| row.try_get::<i64, _>("idx").map_err(StoreError::from))
            .collect()
    }

    /// The accesses of the period that match each of `conditions` (SQL over the columns of
    /// `audit_accesses a`; parameters: the scope, then `args`), in one scan of the period:
    /// each condition's count and first hits in index order, in the order of `conditions`.
    /// Materialised, so that the limits do not steer the plan of the matching itself towards
    /// row-at-a-time lookups: every match is counted anyway.
    async fn matching(
        &self,
        conditions: &[String],
        args: &[i64],
    ) -> Result<Vec<Matches>, StoreError> {
        let flags: Vec<String> = conditions
            .iter()
            .enumerate()
            .map(|(i, condition)| format!("CASE WHEN {condition} THEN 1 ELSE 0 END AS r{i}"))
            .collect();
        let any: Vec<String> = conditions.iter().map(|c| format!("({c})")).collect();
        let parts: Vec<String> = (0..conditions.len())
            .map(|i| {
                format!(
                    "SELECT * FROM (SELECT {i} AS rule, f.idx, f.occurred_at, f.actor_user_id, \
                     f.disclosure_id, f.action, (SELECT COUNT(*) FROM f WHERE f.r{i} = 1) \
                     AS matched FROM f WHERE f.r{i} = 1 ORDER BY f.idx LIMIT {}) p{i}",
                    self.limit
                )
            })
            .collect();
        let sql = format!(
            "WITH f AS MATERIALIZED (SELECT a.idx, a.occurred_at, a.actor_user_id, \
             a.disclosure_id, a.action, {} FROM audit_accesses a WHERE {PERIOD} AND {ACCESS} \
             AND ({})) {}",
            flags.join(", "),
            any.join(" OR "),
            parts.join(" UNION ALL ")
        );
        let mut query = sqlx::query(&sql)
            .bind(self.scope.organisation)
            .bind(self.scope.from_ms)
            .bind(self.scope.until_ms);
        for arg in args {
            query = query.bind(*arg);
        }
        let mut found = vec![Matches::default(); conditions.len()];
        for row in self.rows(query).await? {
            let rule: i64 = row.try_get("rule")?;
            let matched: i64 = row.try_get("matched")?;
            let Some(matches) = usize::try_from(rule).ok().and_then(|i| found.get_mut(i)) else {
                continue;
            };
            matches.matched = u64::try_from(matched).unwrap_or_default();
            matches.hits.push(hit_from_row(&row)?);
        }
        for matches in &mut found {
            matches.hits.sort_by_key(|hit| hit.index);
        }
        Ok(found)
    }

    /// The hits of `sql` (parameters: the scope, then `args`), which returns the columns of a
    /// hit and `matched`, the count of every match.
    async fn matches(&self, sql: &str, args: &[i64]) -> Result<Matches, StoreError> {
        let mut query = sqlx::query(sql)
            .bind(self.scope.organisation)
            .bind(self.scope.from_ms)
            .bind(self.scope.until_ms);
        for arg in args {
            query = query.bind(*arg);
        }
        let rows = self.rows(query).await?;
        let mut matches = Matches::default();
        for row in &rows {
            let matched: i64 = row.try_get("matched")?;
            matches.matched = u64::try_from(matched).unwrap_or_default();
            matches.hits.push(hit_from_row(row)?);
        }
        Ok(matches)
    }

    /// (a) Accesses to a person with protected identity: accesses marked so, and accesses to
    /// the persons of any entry of the period marked so. In steps whose plans do not depend on
    /// estimates: the period's marked rows, their persons and the accesses to those persons
    /// (both by index, a few hundred at a time).
    pub async fn protected_identity(&self) -> Result<Matches, StoreError> {
        let marked_sql = format!(
            "SELECT a.idx, a.occurred_at, a.actor_user_id, a.disclosure_id, a.action, \
             CASE WHEN {ACCESS} THEN 1 ELSE 0 END AS access \
             FROM audit_accesses a WHERE {PERIOD} AND a.protected_identity = 1"
        );
        let rows = self
            .rows(
                sqlx::query(&marked_sql)
                    .bind(self.scope.organisation)
                    .bind(self.scope.from_ms)
                    .bind(self.scope.until_ms),
            )
            .await?;
        let mut found: BTreeMap<i64, Hit> = BTreeMap::new();
        let mut marked = Vec::with_capacity(rows.len());
        for row in &rows {
            let hit = hit_from_row(row)?;
            marked.push(hit.index);
            let access: i32 = row.try_get("access")?;
            if access == 1 {
                found.insert(hit.index, hit);
            }
        }
        let mut persons: BTreeSet<String> = BTreeSet::new();
        for chunk in marked.chunks(CHUNK) {
            let sql = format!(
                "SELECT DISTINCT person_ref FROM audit_entry_persons WHERE idx IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for index in chunk {
                query = query.bind(*index);
            }
            for row in query.fetch_all(self.database.pool()).await? {
                persons.insert(row.try_get("person_ref")?);
            }
        }
        let persons: Vec<String> = persons.into_iter().collect();
        for chunk in persons.chunks(CHUNK) {
            let sql = format!(
                "SELECT a.idx, a.occurred_at, a.actor_user_id, a.disclosure_id, a.action \
                 FROM audit_access_persons p JOIN audit_accesses a ON a.idx = p.idx \
                 WHERE p.person_ref IN ({}) AND p.organisation = $1 AND p.occurred_at >= $2 \
                 AND p.occurred_at < $3",
                placeholders(4, chunk.len())
            );
            let mut query = sqlx::query(&sql)
                .bind(self.scope.organisation)
                .bind(self.scope.from_ms)
                .bind(self.scope.until_ms);
            for person in chunk {
                query = query.bind(person.as_str());
            }
            for row in query.fetch_all(self.database.pool()).await? {
                let hit = hit_from_row(&row)?;
                found.insert(hit.index, hit);
            }
        }
        Ok(Matches {
            matched: found.len() as u64,
            hits: found.into_values().take(self.limit as usize).collect(),
        })
    }

    /// (b) Accesses of one case by a user with no relation to it: not its drafter, submitter
    /// or decision maker (no relating change of the case by them in the log), not an officer
    /// of the receiving inbox (the notification service serves a delivery only to those, so
    /// its reads are related), not a compliance officer. Each pair of case and user is looked
    /// up once, however often the user read the case: the count is of accesses, the hits are
    /// each pair's first access.
    pub async fn no_relation(&self) -> Result<Matches, StoreError> {
        // The relation's lookup stays a probe of `audit_entries_by_relation` per pair (OFFSET 0
        // keeps PostgreSQL from turning it into a join over the whole log). Only the first
        // `limit` pairs are joined back to their rows (`top`): a join of every pair let
        // PostgreSQL merge along the whole index of accesses, 1.2 s on a 10 M-entry log.
        let sql = format!(
            "WITH pairs AS MATERIALIZED (SELECT a.disclosure_id, a.actor_user_id, \
             COUNT(*) AS accesses, MIN(a.idx) AS idx FROM audit_accesses a \
             WHERE {PERIOD} AND {} AND a.disclosure_id <> '' \
             AND a.action NOT LIKE 'notification.%' AND a.compliance_actor = 0 \
             GROUP BY a.disclosure_id, a.actor_user_id), \
             m AS MATERIALIZED (SELECT p.idx, p.accesses FROM pairs p WHERE NOT EXISTS \
             (SELECT 1 FROM audit_entries c WHERE c.disclosure_id = p.disclosure_id \
             AND c.actor_user_id = p.actor_user_id AND c.action IN {RELATING_ACTIONS} \
             LIMIT 1 OFFSET 0)), \
             top AS MATERIALIZED (SELECT m.idx FROM m ORDER BY m.idx LIMIT {}) \
             SELECT a.idx, a.occurred_at, a.actor_user_id, a.disclosure_id, a.action, \
             CAST((SELECT SUM(accesses) FROM m) AS BIGINT) AS matched \
             FROM top JOIN audit_accesses a ON a.idx = top.idx ORDER BY a.idx",
            case_access(),
            self.limit
        );
        self.matches(&sql, &[]).await
    }

    /// (c) Accesses outside every window of `windows` (the working hours), (e) reveals of
    /// protected details and (f) compliance reads of the log, in one scan of the period.
    pub async fn outside_revealed_compliance(
        &self,
        windows: &[(i64, i64)],
    ) -> Result<(Matches, Matches, Matches), StoreError> {
        let args: Vec<i64> = windows
            .iter()
            .flat_map(|(start, end)| [*start, *end])
            .collect();
        let outside = if windows.is_empty() {
            "1 = 1".to_owned()
        } else if args.is_sorted() {
            // The windows' bounds in order: an instant is inside a window when an odd number
            // of bounds are at or before it. A search tree of comparisons finds that number's
            // parity in about log2(bounds) steps, where a test of every window took one per
            // window for each of a month's million accesses.
            format!("{} = 0", parity_tree(4, 0, args.len()))
        } else {
            let inside: Vec<String> = (0..windows.len())
                .map(|i| {
                    format!(
                        "(a.occurred_at >= ${} AND a.occurred_at < ${})",
                        4 + 2 * i,
                        5 + 2 * i
                    )
                })
                .collect();
            format!("NOT ({})", inside.join(" OR "))
        };
        let revealed = format!(
            "a.access = {} AND a.action = 'disclosure.protected_revealed'",
            AccessKind::ProtectedRevealed.code()
        );
        let compliance = format!("a.access = {}", AccessKind::ComplianceRead.code());
        let mut found = self
            .matching(&[outside, revealed, compliance], &args)
            .await?
            .into_iter();
        let mut next = || found.next().unwrap_or_default();
        Ok((next(), next(), next()))
    }

    /// (d) Users who accessed at least `persons` distinct persons within one window of
    /// `window_ms`: windows aligned to the period's start, and again shifted by half a window
    /// (so a burst across a boundary is still found); overlapping finds of one user are one.
    /// A user's distinct persons in a window are their accesses whose `prev_at` (their last
    /// access of the same person) is before the window's start, so each window is a count.
    pub async fn bursts(&self, persons: u32, window_ms: i64) -> Result<Vec<Burst>, StoreError> {
        let origins = [self.scope.from_ms, self.scope.from_ms - window_ms / 2];
        let mut candidates = Vec::new();
        match self.database.backend() {
            // Both alignments in one scan of the period (one hash table each).
            Backend::Postgres => {
                let sql = format!(
                    "SELECT actor_user_id, persons, first_index, first_at, last_at FROM \
                     (SELECT g.*, ROW_NUMBER() OVER (PARTITION BY alignment \
                     ORDER BY first_index) AS n FROM (SELECT p.actor_user_id, \
                     GROUPING(p.w1) AS alignment, COALESCE(p.w1, p.w2) AS w, \
                     COUNT(*) AS persons, MIN(p.idx) AS first_index, \
                     MIN(p.occurred_at) AS first_at, MAX(p.occurred_at) AS last_at \
                     FROM (SELECT actor_user_id, idx, occurred_at, \
                     CASE WHEN prev_at IS NULL OR prev_at < $4 + ((occurred_at - $4) / $6) * $6 \
                     THEN (occurred_at - $4) / $6 END AS w1, \
                     CASE WHEN prev_at IS NULL OR prev_at < $5 + ((occurred_at - $5) / $6) * $6 \
                     THEN (occurred_at - $5) / $6 END AS w2 \
                     FROM audit_access_persons WHERE organisation = $1 AND occurred_at >= $2 \
                     AND occurred_at < $3 AND actor_user_id <> '') p \
                     GROUP BY GROUPING SETS ((p.actor_user_id, p.w1), (p.actor_user_id, p.w2)) \
                     HAVING COUNT(*) >= $7) g WHERE g.w IS NOT NULL) r \
                     WHERE n <= {} ORDER BY alignment, first_index",
                    self.limit
                );
                let query = sqlx::query(&sql)
                    .bind(self.scope.organisation)
                    .bind(self.scope.from_ms)
                    .bind(self.scope.until_ms)
                    .bind(origins[0])
                    .bind(origins[1])
                    .bind(window_ms)
                    .bind(i64::from(persons));
                for row in self.rows(query).await? {
                    candidates.push(burst_from_row(&row)?);
                }
            }
            Backend::Sqlite => {
                for origin in origins {
                    let sql = format!(
                        "SELECT p.actor_user_id AS actor_user_id, COUNT(*) AS persons, \
                         MIN(p.idx) AS first_index, MIN(p.occurred_at) AS first_at, \
                         MAX(p.occurred_at) AS last_at FROM audit_access_persons p \
                         WHERE p.organisation = $1 AND p.occurred_at >= $2 \
                         AND p.occurred_at < $3 AND p.actor_user_id <> '' \
                         AND (p.prev_at IS NULL OR p.prev_at < $4 + ((p.occurred_at - $4) / $5) * $5) \
                         GROUP BY p.actor_user_id, (p.occurred_at - $4) / $5 \
                         HAVING COUNT(*) >= $6 ORDER BY first_index LIMIT {}",
                        self.limit
                    );
                    let query = sqlx::query(&sql)
                        .bind(self.scope.organisation)
                        .bind(self.scope.from_ms)
                        .bind(self.scope.until_ms)
                        .bind(origin)
                        .bind(window_ms)
                        .bind(i64::from(persons));
                    for row in self.rows(query).await? {
                        candidates.push(burst_from_row(&row)?);
                    }
                }
            }
        }
        // The aligned windows' finds first, then the shifted ones that overlap none of them.
        let mut found: Vec<Burst> = Vec::new();
        for burst in candidates {
            let overlaps = found.iter().any(|kept| {
                kept.actor_user_id == burst.actor_user_id
                    && kept.first_at <= burst.last_at
                    && burst.first_at <= kept.last_at
            });
            if !overlaps {
                found.push(burst);
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
        for chunk in indices.chunks(CHUNK) {
            let sql = format!(
                "SELECT idx, entry FROM audit_entries WHERE idx IN ({})",
                placeholders(1, chunk.len())
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::parity_tree;
    use tryggdel_storage::{Database, Migrations};

    /// The search tree says "inside" exactly where a test of every window does, at each
    /// bound, on either side of it, and between windows that touch or are empty.
    #[tokio::test]
    async fn the_parity_tree_finds_the_instants_inside_the_windows() {
        let directory = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", directory.path().join("t.db").display());
        let migrations = Migrations {
            sqlite: &[],
            postgres: &[],
        };
        let database = Database::connect(&url, "t", &migrations).await.unwrap();
        let cases: [&[(i64, i64)]; 5] = [
            &[(10, 20)],
            &[(10, 20), (30, 40)],
            &[(10, 20), (20, 30), (45, 45), (50, 60)],
            &[
                (0, 5),
                (7, 8),
                (9, 13),
                (21, 22),
                (30, 31),
                (33, 40),
                (41, 50),
            ],
            &[(5, 6), (6, 7), (7, 8)],
        ];
        for windows in cases {
            let bounds: Vec<i64> = windows.iter().flat_map(|(s, e)| [*s, *e]).collect();
            assert!(bounds.is_sorted());
            // $1 is the instant; the bounds from $2 on.
            let sql = format!(
                "SELECT {} AS inside FROM (SELECT $1 AS occurred_at) a",
                parity_tree(2, 0, bounds.len())
            );
            for instant in -1..=62 {
                let mut query = sqlx::query_scalar::<_, i64>(&sql).bind(instant);
                for bound in &bounds {
                    query = query.bind(*bound);
                }
                let inside = query.fetch_one(database.pool()).await.unwrap();
                let expected = windows.iter().any(|(s, e)| *s <= instant && instant < *e);
                assert_eq!(inside == 1, expected, "{windows:?} at {instant}");
            }
        }
    }
}
