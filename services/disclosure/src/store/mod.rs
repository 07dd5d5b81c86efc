//! Persistence of disclosures and their outbox. Every state change is one write (see
//! [`tryggdel_storage::write`]) that updates the row under its version and appends its outbox
//! event, all or nothing. Rows become typed records ([`DisclosureRecord`]) as they are read.

mod clearing;
mod delegations;
mod delivery;
mod holds;
mod payload;
mod record;
mod requests;
mod statistics;

use std::sync::LazyLock;

use sqlx::Row;
use tryggdel_domain::DisclosureState;
use tryggdel_service_kit::AuditDestination;
pub use tryggdel_storage::OutboxEvent;
use tryggdel_storage::{
    AnyQuery, Arguments, Change, Companion, Database, Migrations, OutboxDestination, Written,
    placeholders, write,
};

pub use self::clearing::{ClearedDisclosure, StrippedOutboxRow};
pub use self::delegations::{GrantOutcome, stored_date};
pub use self::delivery::DeliveryRow;
use self::delivery::{DELIVERY_COLUMN_COUNT, DELIVERY_COLUMNS, DELIVERY_UPSERT_TAIL};
pub use self::holds::{Hold, HoldEnd, PlaceOutcome};
pub use self::payload::{
    DELEGATION_EVENT_PREFIX, OutboxActor, OutboxPayload, fill_in_audit_events,
};
use self::record::COLUMNS;
pub use self::record::{Decision, DecisionOutcome, DisclosureRecord, RecordError, Step};
pub use self::requests::{
    Answer, Refusal, RequestFilter, RequestInsert, RequestRecord, RequestScope, RequestState,
};
pub use self::statistics::{
    ClearColumns, Dimension, FILL_BATCH, Span, SpanFigures, StatisticsGroup, StatisticsQuery,
};

/// The disclosure service's migrations on both backends.
pub const MIGRATIONS: Migrations = tryggdel_storage::migrations!([
    "0001_disclosures.sql",
    "0002_outbox_relay.sql",
    "0003_deliveries.sql",
    "0004_outbox_by_disclosure.sql",
    "0005_outbox_audit_event.sql",
    "0006_outbox_without_audit_event.sql",
    "0007_decision_queue.sql",
    "0008_decision_judgement.sql",
    "0009_expiry.sql",
    "0010_delegations.sql",
    "0011_outbox_recall_relay.sql",
    "0012_information_requests.sql",
    "0013_holds.sql",
    "0014_statistics_and_clearing.sql",
]);

/// Approvals go to the notification service (the police's hand-over relay).
pub const TO_POLICE: OutboxDestination =
    OutboxDestination::only("delivery_relayed_at", "disclosure.approved");

/// Recalls (withdrawals after delivery) go to the notification service (the recall relay).
pub const TO_POLICE_RECALL: OutboxDestination =
    OutboxDestination::only("recall_relayed_at", "disclosure.recalled");

/// A row's update under the version it was read at: the record's columns, then the version.
struct Versioned<'a> {
    record: &'a DisclosureRecord,
    expected_version: i64,
}

/// An expiry warning recorded at `at` on a row still at `expected_version` and not warned
/// since it was read (`warned_before`), bound by [`WARNING_STATEMENT`].
struct Warning<'a> {
    id: &'a str,
    at: i64,
    expected_version: i64,
    warned_before: i64,
}

/// The hand-over of the approval event `seq`, settled at `at` (for the delivery relay).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settle {
    /// The approval event's outbox sequence.
    pub seq: i64,
    pub at: i64,
}

/// What inserting a new draft did.
#[derive(Debug)]
pub enum InsertOutcome {
    Inserted,
    /// Another draft with the same (organisation, drafter, client request id) exists.
    DuplicateRequest,
}

/// Filters for [`DisclosureStore::list`].
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// None: every organisation (supervisors only).
    pub organisation: Option<String>,
    pub state: Option<DisclosureState>,
    pub created_from: i64,
    pub created_until: i64,
    pub order: ListOrder,
    pub limit: i64,
}

/// The organisation and state conditions of a list, on `$1` and `$2`. Written out only when
/// they filter, so that the planner sees a plain equality and uses the indexes (an
/// `$1 = '' OR organisation = $1` hides them); an unused parameter is still bound.
fn scope(filter: &ListFilter) -> &'static str {
    match (filter.organisation.is_some(), filter.state.is_some()) {
        (true, true) => "organisation = $1 AND state = $2",
        (true, false) => "organisation = $1 AND $2 = ''",
        (false, true) => "$1 = '' AND state = $2",
        (false, false) => "$1 = '' AND $2 = ''",
    }
}

/// The order of a list, with its keyset cursor: the rows strictly after the position.
#[derive(Clone, Debug)]
pub enum ListOrder {
    /// By (created_at, id), descending.
    NewestFirst { after: Option<(i64, String)> },
    /// By urgent descending, then (submitted_at, id) ascending.
    DecisionQueue { after: Option<(bool, i64, String)> },
}

impl Default for ListOrder {
    fn default() -> ListOrder {
        ListOrder::NewestFirst { after: None }
    }
}

/// The service's tables: disclosures, their delivery records and their outbox.
#[derive(Clone, Debug)]
pub struct DisclosureStore {
    database: Database,
}

impl DisclosureStore {
    /// The store on `database` (already migrated).
    pub fn new(database: Database) -> DisclosureStore {
        DisclosureStore { database }
    }

    /// The database underneath, for relays and clean-up.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Inserts a new draft with its creation event, unless the drafter already used its
    /// client request id.
    pub async fn insert_draft(
        &self,
        row: &DisclosureRecord,
        event: &OutboxEvent,
    ) -> Result<InsertOutcome, sqlx::Error> {
        let change = Change::new(INSERT_STATEMENT.as_str(), row, std::slice::from_ref(&event));
        match write(&self.database, &change).await? {
            Written::All => Ok(InsertOutcome::Inserted),
            Written::Duplicate => Ok(InsertOutcome::DuplicateRequest),
            Written::Nothing => Err(wrote_nothing(format!("inserting disclosure {}", row.id))),
        }
    }

    /// The draft `drafted_by` of `organisation` created with `client_request_id`, if any.
    pub async fn find_by_client_request(
        &self,
        organisation: &str,
        drafted_by: &str,
        client_request_id: &str,
    ) -> Result<Option<DisclosureRecord>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM disclosures \
             WHERE organisation = $1 AND drafted_by = $2 AND client_request_id = $3"
        ))
        .bind(organisation)
        .bind(drafted_by)
        .bind(client_request_id)
        .fetch_optional(self.database.pool())
        .await
    }

    /// The disclosure `id`, if it exists.
    pub async fn get(&self, id: &str) -> Result<Option<DisclosureRecord>, sqlx::Error> {
        self.optional_by_key(
            &format!("SELECT {COLUMNS} FROM disclosures WHERE id = $1"),
            id,
        )
        .await
    }

    /// Writes `row` if the stored version is still `expected_version`, with `event`, all or
    /// nothing. Returns false (and writes nothing) when the version moved on.
    pub async fn update(
        &self,
        row: &DisclosureRecord,
        expected_version: i64,
        event: &OutboxEvent,
    ) -> Result<bool, sqlx::Error> {
        let versioned = Versioned {
            record: row,
            expected_version,
        };
        let change = Change::new(
            UPDATE_STATEMENT.as_str(),
            &versioned,
            std::slice::from_ref(&event),
        );
        updated(&row.id, write(&self.database, &change).await?)
    }

    /// Settles the approval `seq` the notification service refused for good, with `event`
    /// recording the refusal, all or nothing.
    pub async fn settle_delivery(
        &self,
        seq: i64,
        event: &OutboxEvent,
        at: i64,
    ) -> Result<(), sqlx::Error> {
        let settle = Settle { seq, at };
        let change = Change::new(SETTLE_STATEMENT, &settle, std::slice::from_ref(&event));
        match write(&self.database, &change).await? {
            Written::All => Ok(()),
            Written::Nothing | Written::Duplicate => Err(wrote_nothing(format!(
                "settling approval {seq}, which is not in the outbox"
            ))),
        }
    }

    /// Moves `row` on under `expected_version` with `events`, writes its delivery record, and,
    /// for the delivery relay, settles the approval it delivers — all or nothing. Returns
    /// false (and writes nothing) when the version moved on.
    pub async fn record_delivery(
        &self,
        row: &DisclosureRecord,
        expected_version: i64,
        events: &[OutboxEvent],
        delivery: &DeliveryRow,
        settles: Option<Settle>,
    ) -> Result<bool, sqlx::Error> {
        let versioned = Versioned {
            record: row,
            expected_version,
        };
        let mut companions = vec![Companion::Insert {
            into: DELIVERY_INTO.as_str(),
            count: DELIVERY_COLUMN_COUNT,
            tail: DELIVERY_UPSERT_TAIL,
            arguments: delivery,
        }];
        if let Some(settle) = &settles {
            companions.push(Companion::Update {
                statement: SETTLE_STATEMENT,
                arguments: settle,
            });
        }
        let events: Vec<&OutboxEvent> = events.iter().collect();
        let change = Change {
            statement: UPDATE_STATEMENT.as_str(),
            arguments: &versioned,
            companions: &companions,
            events: &events,
        };
        updated(&row.id, write(&self.database, &change).await?)
    }

    /// Drafts and submitted disclosures untouched since before `untouched_since` whose author
    /// has not been warned since their last change, the longest untouched first, at most
    /// `limit`.
    pub async fn due_for_expiry_warning(
        &self,
        untouched_since: i64,
        limit: i64,
    ) -> Result<Vec<DisclosureRecord>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM disclosures \
             WHERE state IN ($1, $2) AND updated_at <= $3 AND expiry_warned_at < updated_at \
             ORDER BY updated_at, id LIMIT $4"
        ))
        .bind(DisclosureState::Draft.as_str())
        .bind(DisclosureState::Submitted.as_str())
        .bind(untouched_since)
        .bind(limit)
        .fetch_all(self.database.pool())
        .await
    }

    /// Drafts and submitted disclosures untouched since before `untouched_since` whose author
    /// was warned since their last change and no later than `warned_by`, the longest
    /// untouched first, at most `limit`.
    pub async fn due_for_expiry(
        &self,
        untouched_since: i64,
        warned_by: i64,
        limit: i64,
    ) -> Result<Vec<DisclosureRecord>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM disclosures \
             WHERE state IN ($1, $2) AND updated_at <= $3 \
             AND expiry_warned_at >= updated_at AND expiry_warned_at <= $4 \
             ORDER BY updated_at, id LIMIT $5"
        ))
        .bind(DisclosureState::Draft.as_str())
        .bind(DisclosureState::Submitted.as_str())
        .bind(untouched_since)
        .bind(warned_by)
        .bind(limit)
        .fetch_all(self.database.pool())
        .await
    }

    /// Records that the author of `row` was warned at `at`, with `event`, if the row is still
    /// at its version and not warned since it was read; all or nothing. The version and
    /// `updated_at` stay as they are: a warning is no change to the disclosure (an edit in
    /// flight still saves, and the time it expires is not moved). Returns false (and writes
    /// nothing) when the row moved on or another instance warned first.
    pub async fn record_expiry_warning(
        &self,
        row: &DisclosureRecord,
        at: i64,
        event: &OutboxEvent,
    ) -> Result<bool, sqlx::Error> {
        let warning = Warning {
            id: &row.id,
            at,
            expected_version: row.version,
            warned_before: row.expiry_warned_at,
        };
        let change = Change::new(WARNING_STATEMENT, &warning, std::slice::from_ref(&event));
        updated(&row.id, write(&self.database, &change).await?)
    }

    /// The delivery record of a disclosure, if it was delivered.
    pub async fn delivery(&self, disclosure_id: &str) -> Result<Option<DeliveryRow>, sqlx::Error> {
        self.optional_by_key(
            &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE disclosure_id = $1"),
            disclosure_id,
        )
        .await
    }

    /// A disclosure and its delivery record, if it has one, in one query.
    pub async fn get_with_delivery(
        &self,
        id: &str,
    ) -> Result<Option<(DisclosureRecord, Option<DeliveryRow>)>, sqlx::Error> {
        static STATEMENT: LazyLock<String> = LazyLock::new(|| {
            let disclosure: Vec<String> = COLUMNS
                .split(',')
                .map(|column| format!("disclosures.{}", column.trim()))
                .collect();
            let delivery: Vec<String> = DELIVERY_COLUMNS
                .split(',')
                .map(|column| format!("deliveries.{0} AS delivery_{0}", column.trim()))
                .collect();
            format!(
                "SELECT {}, {} FROM disclosures \
                 LEFT JOIN deliveries ON deliveries.disclosure_id = disclosures.id \
                 WHERE disclosures.id = $1",
                disclosure.join(", "),
                delivery.join(", ")
            )
        });
        let row = sqlx::query(STATEMENT.as_str())
            .bind(id)
            .fetch_optional(self.database.read_pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let delivered: Option<String> = row.try_get("delivery_disclosure_id")?;
        let delivery = match delivered {
            Some(_) => Some(DeliveryRow::from_prefixed(&row, "delivery_")?),
            None => None,
        };
        Ok(Some((sqlx::FromRow::from_row(&row)?, delivery)))
    }

    /// Disclosures matching `filter`, newest first, one page of them.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<DisclosureRecord>, sqlx::Error> {
        let until = if filter.created_until > 0 {
            filter.created_until
        } else {
            i64::MAX
        };
        let (after_time, after_id) = match &filter.order {
            ListOrder::NewestFirst { after } => after.clone().unwrap_or((i64::MAX, String::new())),
            ListOrder::DecisionQueue { after } => {
                return self.decision_queue(filter, until, after.clone()).await;
            }
        };
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM disclosures WHERE {} \
             AND created_at >= $3 AND created_at < $4 \
             AND (created_at, id) < ($5, $6) \
             ORDER BY created_at DESC, id DESC LIMIT $7",
            scope(filter)
        ))
        .bind(filter.organisation.clone().unwrap_or_default())
        .bind(filter.state.map_or("", DisclosureState::as_str))
        .bind(filter.created_from)
        .bind(until)
        .bind(after_time)
        .bind(after_id)
        .bind(filter.limit)
        .fetch_all(self.database.read_pool())
        .await
    }

    /// A page of the decision queue: urgent first, then the earliest submitted.
    async fn decision_queue(
        &self,
        filter: &ListFilter,
        until: i64,
        after: Option<(bool, i64, String)>,
    ) -> Result<Vec<DisclosureRecord>, sqlx::Error> {
        // Before the first row: an urgency above any row's.
        let (after_urgent, after_time, after_id) = match after {
            Some((urgent, time, id)) => (i64::from(urgent), time, id),
            None => (2, i64::MIN, String::new()),
        };
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM disclosures WHERE {} \
             AND created_at >= $3 AND created_at < $4 \
             AND (urgent < $5 OR (urgent = $5 AND (submitted_at > $6 \
                  OR (submitted_at = $6 AND id > $7)))) \
             ORDER BY urgent DESC, submitted_at ASC, id ASC LIMIT $8",
            scope(filter)
        ))
        .bind(filter.organisation.clone().unwrap_or_default())
        .bind(filter.state.map_or("", DisclosureState::as_str))
        .bind(filter.created_from)
        .bind(until)
        .bind(after_urgent)
        .bind(after_time)
        .bind(after_id)
        .bind(filter.limit)
        .fetch_all(self.database.pool())
        .await
    }

    /// How many events have not reached the audit log yet.
    pub async fn audit_backlog(&self) -> Result<i64, sqlx::Error> {
        AuditDestination::OUTBOX.backlog(&self.database).await
    }

    /// How many approvals have not been handed to the notification service yet.
    pub async fn delivery_backlog(&self) -> Result<i64, sqlx::Error> {
        TO_POLICE.backlog(&self.database).await
    }

    /// How many recalls have not reached the notification service yet.
    pub async fn recall_backlog(&self) -> Result<i64, sqlx::Error> {
        TO_POLICE_RECALL.backlog(&self.database).await
    }

    /// Stores events that change no row (reads of personal data), all or nothing.
    pub async fn record_events(&self, events: &[OutboxEvent]) -> Result<(), sqlx::Error> {
        tryggdel_storage::record_events(&self.database, events).await
    }

    /// Outbox events of one disclosure, oldest first.
    pub async fn events_of(&self, disclosure_id: &str) -> Result<Vec<OutboxEvent>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {} FROM outbox WHERE disclosure_id = $1 ORDER BY seq",
            OutboxEvent::COLUMNS
        ))
        .bind(disclosure_id)
        .fetch_all(self.database.pool())
        .await
    }

    /// The row `statement` selects by the one `key` it binds (`$1`), if there is one.
    async fn optional_by_key<T>(&self, statement: &str, key: &str) -> Result<Option<T>, sqlx::Error>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        sqlx::query_as(statement)
            .bind(key)
            .fetch_optional(self.database.pool())
            .await
    }
}

/// `INSERT INTO disclosures (<COLUMNS>) VALUES ($1, … $26)`, in the record's binding order.
static INSERT_STATEMENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO disclosures ({COLUMNS}) VALUES ({})",
        placeholders(1, COLUMNS.split(',').count())
    )
});

/// `UPDATE disclosures SET <column> = $n, … WHERE id = $1 AND version = $27`, with the
/// placeholders numbered in [`COLUMNS`] order to match the record's binding, then the
/// expected version ([`Versioned`]). Every column but the id is written (the immutable ones
/// with their stored values), so one binding serves insert and update alike.
static UPDATE_STATEMENT: LazyLock<String> = LazyLock::new(|| {
    let assignments: Vec<String> = COLUMNS
        .split(',')
        .map(str::trim)
        .enumerate()
        .skip(1)
        .map(|(index, column)| format!("{column} = ${}", index + 1))
        .collect();
    let version_placeholder = COLUMNS.split(',').count() + 1;
    format!(
        "UPDATE disclosures SET {} WHERE id = $1 AND version = ${version_placeholder}",
        assignments.join(", ")
    )
});

/// `deliveries (<DELIVERY_COLUMNS>)`: where a delivery record is upserted.
static DELIVERY_INTO: LazyLock<String> =
    LazyLock::new(|| format!("deliveries ({DELIVERY_COLUMNS})"));

/// Records an expiry warning, bound by [`Warning`].
const WARNING_STATEMENT: &str = "UPDATE disclosures SET expiry_warned_at = $1 \
     WHERE id = $2 AND version = $3 AND expiry_warned_at = $4";

/// Settles an approval's hand-over, bound by [`Settle`].
const SETTLE_STATEMENT: &str = "UPDATE outbox SET delivery_relayed_at = $1 WHERE seq = $2";

impl Arguments for DisclosureRecord {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        record::bind_record(query, self)
    }
}

impl Arguments for Versioned<'_> {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        record::bind_record(query, self.record).bind(self.expected_version)
    }
}

impl Arguments for Warning<'_> {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.at)
            .bind(self.id)
            .bind(self.expected_version)
            .bind(self.warned_before)
    }
}

impl Arguments for Settle {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query.bind(self.at).bind(self.seq)
    }
}

/// Whether an update under its version was written (false: the version moved on).
fn updated(id: &str, written: Written) -> Result<bool, sqlx::Error> {
    match written {
        Written::All => Ok(true),
        Written::Nothing => Ok(false),
        // An update keeps its unique columns' values, and event ids are never reused.
        Written::Duplicate => Err(wrote_nothing(format!(
            "updating disclosure {id} collided with a unique key"
        ))),
    }
}

/// A write that could not have come out as it did.
fn wrote_nothing(what: String) -> sqlx::Error {
    sqlx::Error::Protocol(format!("{what}: nothing was written"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded() {
        let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        if let Err(problem) = MIGRATIONS.check_embedded(&directory) {
            panic!("{problem}");
        }
    }
}
