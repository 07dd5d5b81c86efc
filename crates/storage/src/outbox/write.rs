//! [`write`]: a change to a service's tables and the outbox events that report it, stored
//! together or not at all. This is the one place that knows how on each backend:
//!
//! - PostgreSQL, with at most one event: one statement, `WITH written AS (<change> RETURNING
//!   1), <companions and the event, each conditioned on written> SELECT COUNT(*) FROM
//!   written`: one round trip, committed whole.
//! - Otherwise (SQLite, or several events, whose order in the outbox one statement would not
//!   fix): a transaction that stops and rolls back when the change matched no row.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use sqlx::Row as _;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use super::{OutboxEvent, placeholders};
use crate::{Backend, Database, is_unique_violation};

/// A query on the `Any` driver, as [`Arguments`] bind it.
pub type AnyQuery<'q> = Query<'q, sqlx::Any, AnyArguments<'q>>;

/// The values of a statement's placeholders, bound in order.
pub trait Arguments: Sync {
    /// Binds the values after what `query` binds already.
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q>;
}

impl Arguments for OutboxEvent {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        OutboxEvent::bind(self, query)
    }
}

/// Another statement of a [`Change`], written only when the change's own statement wrote its
/// row. Its placeholders are numbered from `$1`, like a statement of its own.
#[derive(Clone, Copy)]
pub enum Companion<'a> {
    /// `INSERT INTO <into> VALUES (<count placeholders>) <tail>`; `into` is the table and its
    /// column list, `tail` (no placeholders) e.g. an `ON CONFLICT` clause.
    Insert {
        into: &'static str,
        count: usize,
        tail: &'static str,
        arguments: &'a dyn Arguments,
    },
    /// An `UPDATE` that ends in its `WHERE` clause.
    Update {
        statement: &'static str,
        arguments: &'a dyn Arguments,
    },
}

impl Companion<'_> {
    fn arguments(&self) -> &dyn Arguments {
        match self {
            Companion::Insert { arguments, .. } | Companion::Update { arguments, .. } => *arguments,
        }
    }

    /// The statement on its own, in a transaction.
    fn alone(&self) -> String {
        match self {
            Companion::Insert {
                into, count, tail, ..
            } => format!(
                "INSERT INTO {into} VALUES ({}) {tail}",
                placeholders(1, *count)
            ),
            Companion::Update { statement, .. } => (*statement).to_owned(),
        }
    }

    /// The statement as a data-modifying CTE of one statement, its placeholders after the
    /// `bound` ones before it, acting only if `written` holds a row. Returns it with its
    /// number of placeholders.
    fn conditioned(&self, bound: usize) -> (String, usize) {
        match self {
            Companion::Insert {
                into, count, tail, ..
            } => (
                format!(
                    "INSERT INTO {into} SELECT {} FROM written {tail}",
                    placeholders(bound + 1, *count)
                ),
                *count,
            ),
            Companion::Update { statement, .. } => (
                format!(
                    "{} AND EXISTS (SELECT 1 FROM written)",
                    shift_placeholders(statement, bound)
                ),
                highest_placeholder(statement),
            ),
        }
    }

    /// What identifies the statement's text (its static strings, by address).
    fn key(&self, key: &mut Vec<usize>) {
        match self {
            Companion::Insert {
                into, count, tail, ..
            } => key.extend([1, into.as_ptr() as usize, *count, tail.as_ptr() as usize]),
            Companion::Update { statement, .. } => key.extend([2, statement.as_ptr() as usize]),
        }
    }
}

/// A change to one row (an INSERT, or an UPDATE matching at most one row under its guard,
/// e.g. an expected version), with what is written only together with it.
#[derive(Clone, Copy)]
pub struct Change<'a> {
    /// The INSERT or UPDATE, with `$1…` placeholders and no `RETURNING`.
    pub statement: &'static str,
    pub arguments: &'a dyn Arguments,
    /// Further statements, in order.
    pub companions: &'a [Companion<'a>],
    /// The outbox events reporting the change, in order.
    pub events: &'a [&'a OutboxEvent],
}

impl<'a> Change<'a> {
    /// A change and its events, with no further statements.
    pub fn new(
        statement: &'static str,
        arguments: &'a dyn Arguments,
        events: &'a [&'a OutboxEvent],
    ) -> Change<'a> {
        Change {
            statement,
            arguments,
            companions: &[],
            events,
        }
    }
}

/// What [`write`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The change, its companions and its events.
    All,
    /// Nothing: the change matched no row (e.g. the version moved on).
    Nothing,
    /// Nothing: the change collided with a unique key (e.g. a repeated request).
    Duplicate,
}

/// Writes `change` with its companions and events, all or nothing.
pub async fn write(database: &Database, change: &Change<'_>) -> Result<Written, sqlx::Error> {
    if database.backend() == Backend::Postgres && change.events.len() <= 1 {
        let statement = one_statement(change);
        let mut query = change.arguments.bind(sqlx::query(&statement));
        for companion in change.companions {
            query = companion.arguments().bind(query);
        }
        for event in change.events {
            query = event.bind(query);
        }
        // The connection first: a failure to get one is known to have written nothing, while
        // a connection lost once the statement is sent leaves its outcome unknown.
        let mut connection = database.pool().acquire().await?;
        return match query.fetch_one(&mut *connection).await {
            Ok(row) => Ok(match row.try_get::<i64, _>(0)? {
                0 => Written::Nothing,
                _ => Written::All,
            }),
            Err(error) if is_unique_violation(&error) => Ok(Written::Duplicate),
            Err(error) => Err(crate::commit_outcome_unknown(error)),
        };
    }
    let mut transaction = database.pool().begin().await?;
    let written = write_in(&mut transaction, change).await?;
    match written {
        Written::All => crate::commit(transaction).await?,
        Written::Nothing | Written::Duplicate => transaction.rollback().await?,
    }
    Ok(written)
}

/// Writes `change` in `transaction`, for a change that needs more in the same transaction
/// (e.g. a value its events carry, read or counted first). Unless this returns
/// [`Written::All`], the caller rolls the transaction back.
pub async fn write_in(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    change: &Change<'_>,
) -> Result<Written, sqlx::Error> {
    let result = change
        .arguments
        .bind(sqlx::query(change.statement))
        .execute(&mut **transaction)
        .await;
    match result {
        Ok(result) if result.rows_affected() == 0 => return Ok(Written::Nothing),
        Ok(_) => {}
        Err(error) if is_unique_violation(&error) => return Ok(Written::Duplicate),
        Err(error) => return Err(error),
    }
    for companion in change.companions {
        companion
            .arguments()
            .bind(sqlx::query(&companion.alone()))
            .execute(&mut **transaction)
            .await?;
    }
    for event in change.events {
        event.insert(transaction).await?;
    }
    Ok(Written::All)
}

/// The PostgreSQL statement of `change`, built once per shape.
fn one_statement(change: &Change<'_>) -> Arc<str> {
    static STATEMENTS: LazyLock<Mutex<HashMap<Vec<usize>, Arc<str>>>> =
        LazyLock::new(Mutex::default);
    let mut key = vec![change.statement.as_ptr() as usize, change.events.len()];
    for companion in change.companions {
        companion.key(&mut key);
    }
    // A poisoned cache only means another thread panicked while building a string.
    let mut statements = STATEMENTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    statements
        .entry(key)
        .or_insert_with(|| Arc::from(build_one_statement(change)))
        .clone()
}

fn build_one_statement(change: &Change<'_>) -> String {
    let mut bound = highest_placeholder(change.statement);
    let mut parts = vec![format!("written AS ({} RETURNING 1)", change.statement)];
    for (index, companion) in change.companions.iter().enumerate() {
        let (statement, count) = companion.conditioned(bound);
        parts.push(format!("companion{index} AS ({statement})"));
        bound += count;
    }
    for (index, _) in change.events.iter().enumerate() {
        parts.push(format!(
            "event{index} AS (INSERT INTO outbox ({}) SELECT {} FROM written)",
            OutboxEvent::COLUMNS,
            placeholders(bound + 1, OutboxEvent::COLUMN_COUNT)
        ));
        bound += OutboxEvent::COLUMN_COUNT;
    }
    format!("WITH {} SELECT COUNT(*) FROM written", parts.join(", "))
}

/// The highest `$n` in `sql`.
fn highest_placeholder(sql: &str) -> usize {
    placeholder_numbers(sql)
        .map(|(_, number)| number)
        .max()
        .unwrap_or(0)
}

/// `sql` with every `$n` raised to `$(n + by)`.
fn shift_placeholders(sql: &str, by: usize) -> String {
    let mut shifted = String::with_capacity(sql.len() + 8);
    let mut copied = 0;
    for (range, number) in placeholder_numbers(sql) {
        shifted.push_str(&sql[copied..range.start]);
        shifted.push_str(&format!("${}", number + by));
        copied = range.end;
    }
    shifted.push_str(&sql[copied..]);
    shifted
}

/// Each `$n` of `sql`, with where it stands.
fn placeholder_numbers(sql: &str) -> impl Iterator<Item = (std::ops::Range<usize>, usize)> + '_ {
    sql.match_indices('$').filter_map(move |(start, _)| {
        let digits = sql[start + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let end = start + 1 + digits;
        sql[start + 1..end]
            .parse()
            .ok()
            .map(|number| (start..end, number))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::tests::{database, event, pending_at_audit};
    use super::*;

    struct Row(&'static str, i64);

    impl Arguments for Row {
        fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
            query.bind(self.0).bind(self.1)
        }
    }

    struct Note(&'static str, &'static str);

    impl Arguments for Note {
        fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
            query.bind(self.0).bind(self.1)
        }
    }

    const INSERT: &str = "INSERT INTO rows (id, version) VALUES ($1, $2)";
    const UPDATE: &str = "UPDATE rows SET version = version + 1 WHERE id = $1 AND version = $2";
    const NOTE: &str = "notes (id, note)";
    const RENOTE: &str = "UPDATE notes SET note = $2 WHERE id = $1";

    #[test]
    fn placeholders_are_found_and_shifted() {
        assert_eq!(highest_placeholder(UPDATE), 2);
        assert_eq!(highest_placeholder("SELECT 1"), 0);
        assert_eq!(
            shift_placeholders("a = $1 AND b = $12, $", 3),
            "a = $4 AND b = $15, $"
        );
    }

    #[test]
    fn the_postgres_statement_numbers_each_part_after_the_last() {
        let (row, note) = (Row("r", 1), Note("n", "x"));
        let event = event(1);
        let companions = [
            Companion::Insert {
                into: NOTE,
                count: 2,
                tail: "ON CONFLICT (id) DO NOTHING",
                arguments: &note,
            },
            Companion::Update {
                statement: RENOTE,
                arguments: &note,
            },
        ];
        let change = Change {
            statement: UPDATE,
            arguments: &row,
            companions: &companions,
            events: &[&event],
        };
        assert_eq!(
            build_one_statement(&change),
            "WITH written AS (UPDATE rows SET version = version + 1 WHERE id = $1 AND version = \
             $2 RETURNING 1), companion0 AS (INSERT INTO notes (id, note) SELECT $3, $4 FROM \
             written ON CONFLICT (id) DO NOTHING), companion1 AS (UPDATE notes SET note = $6 \
             WHERE id = $5 AND EXISTS (SELECT 1 FROM written)), event0 AS (INSERT INTO outbox \
             (event_id, event_type, disclosure_id, organisation, payload, created_at, \
             audit_event, traceparent) SELECT $7, $8, $9, $10, $11, $12, $13, $14 FROM written) \
             SELECT COUNT(*) FROM written"
        );
        // Built once per shape.
        assert!(Arc::ptr_eq(
            &one_statement(&change),
            &one_statement(&change)
        ));
    }

    #[tokio::test]
    async fn a_change_is_written_with_its_companions_and_events_or_not_at_all() {
        let directory = tempfile::tempdir().unwrap();
        let database = database(&directory).await;
        let (first, second, third) = (event(1), event(2), event(3));
        let row = Row("r", 1);
        let inserted = write(&database, &Change::new(INSERT, &row, &[&first])).await;
        assert_eq!(inserted.unwrap(), Written::All);
        // The same row again collides, and its event is not written.
        let repeated = write(&database, &Change::new(INSERT, &row, &[&second])).await;
        assert_eq!(repeated.unwrap(), Written::Duplicate);
        let note = Note("n", "x");
        let companions = [Companion::Insert {
            into: NOTE,
            count: 2,
            tail: "",
            arguments: &note,
        }];
        let (both, one) = ([&second, &third], [&first]);
        let update = |events| Change {
            statement: UPDATE,
            arguments: &row,
            companions: &companions,
            events,
        };
        // Version 1 matches once; the second time nothing is written, not even the companion.
        let written = write(&database, &update(&both)).await;
        assert_eq!(written.unwrap(), Written::All);
        let stale = write(&database, &update(&one)).await;
        assert_eq!(stale.unwrap(), Written::Nothing);
        let notes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes")
            .fetch_one(database.pool())
            .await
            .unwrap();
        assert_eq!(notes, 1);
        let events: Vec<OutboxEvent> = pending_at_audit(&database)
            .await
            .into_iter()
            .map(|pending| pending.event)
            .collect();
        assert_eq!(events, [first, second, third]);
    }

    #[tokio::test]
    async fn a_full_disk_is_an_outage_and_nothing_of_the_change_is_written() {
        let directory = tempfile::tempdir().unwrap();
        let database = database(&directory).await;
        // The pool's one connection may not grow the file: as a full disk, SQLITE_FULL.
        let (pages,): (i64,) = sqlx::query_as("PRAGMA page_count")
            .fetch_one(database.pool())
            .await
            .unwrap();
        sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
            .execute(database.pool())
            .await
            .unwrap();
        let mut large = event(1);
        large.payload = format!("\"{}\"", "x".repeat(256 * 1024));
        let row = Row("r", 1);
        let error = write(&database, &Change::new(INSERT, &row, &[&large]))
            .await
            .expect_err("no room for the change");
        assert_eq!(
            crate::outage(&error),
            Some(crate::Outage::DiskFull),
            "{error}"
        );
        assert!(crate::Outage::DiskFull.message().contains("disk is full"));
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rows")
            .fetch_one(database.pool())
            .await
            .unwrap();
        assert_eq!(rows, 0, "the change is written whole or not at all");
        assert!(pending_at_audit(&database).await.is_empty());
    }
}
