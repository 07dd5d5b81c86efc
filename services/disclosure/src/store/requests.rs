//! Persistence of requests for information: rows of `information_requests` become
//! [`RequestRecord`]s as they are read (a row that does not parse is an error). Every change is
//! one conditional write with its outbox event: a new request is an insert (a repeated client
//! request id collides), a refusal and an answer move an *open* request on, an escalation
//! happens once per due time. Nothing is ever deleted.

use sqlx::Row;
use tryggdel_storage::{AnyQuery, Arguments, Change, Companion, Written, placeholders, write};

use super::{DisclosureRecord, DisclosureStore, OutboxEvent, Versioned, wrote_nothing};

/// The columns of `information_requests`, in [`RequestRecord`]'s binding order.
const COLUMNS: &str = "id, version, state, organisation, requested_by, requester_organisation, \
    requester_authority, requester_inbox, client_request_id, request_fingerprint, subject_ref, \
    content_sealed, urgent, reply_by, created_at, updated_at, answered_by_disclosure_id, \
    answered_at, refused_by, refused_at, refusal_sealed, escalations, last_escalated_at, \
    next_escalation_at";

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestState {
    Open,
    Answered,
    Refused,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Open => "open",
            RequestState::Answered => "answered",
            RequestState::Refused => "refused",
        }
    }

    pub fn parse(text: &str) -> Option<RequestState> {
        [
            RequestState::Open,
            RequestState::Answered,
            RequestState::Refused,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// One request for information. What may be personal data is only in the sealed fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub id: String,
    pub version: i64,
    pub state: RequestState,
    /// The organisation asked.
    pub organisation: String,
    pub requested_by: String,
    pub requester_organisation: String,
    /// The requesting authority's recipient code.
    pub requester_authority: String,
    /// The inbox an answer goes to (a police region or the authority).
    pub requester_inbox: String,
    pub client_request_id: String,
    pub request_fingerprint: String,
    /// The keyed reference of the person asked about ('' when none).
    pub subject_ref: String,
    pub content_sealed: String,
    pub urgent: bool,
    pub reply_by: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub answered_by_disclosure_id: String,
    pub answered_at: i64,
    pub refused_by: String,
    pub refused_at: i64,
    pub refusal_sealed: String,
    pub escalations: i64,
    pub last_escalated_at: i64,
    /// When the deadline escalates next (0 once the request is answered or refused).
    pub next_escalation_at: i64,
}

/// What inserting a request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestInsert {
    Inserted,
    /// The officer already sent a request with this client request id.
    Duplicate,
}

/// Which requests a list shows, and where its page starts.
#[derive(Clone, Debug)]
pub struct RequestFilter {
    pub scope: RequestScope,
    pub state: Option<RequestState>,
    /// The (urgent, reply by, id) the page continues after.
    pub after: Option<(bool, i64, String)>,
    pub limit: i64,
}

/// Whose requests a list shows.
#[derive(Clone, Debug)]
pub enum RequestScope {
    /// Those asked of an organisation.
    AskedOf(String),
    /// Those an organisation's officers sent for one inbox.
    AskedBy { organisation: String, inbox: String },
}

/// A refusal of an open request at `expected_version`.
pub struct Refusal<'a> {
    pub id: &'a str,
    pub expected_version: i64,
    pub refused_by: &'a str,
    pub refused_at: i64,
    pub refusal_sealed: &'a str,
}

/// The answer of request `request_id` by the approval of `disclosure_id` at `at`.
pub struct Answer<'a> {
    pub request_id: &'a str,
    pub disclosure_id: &'a str,
    pub at: i64,
}

/// An escalation of an open request due at `due` (as read), the next one at `next`.
struct Escalation<'a> {
    id: &'a str,
    at: i64,
    due: i64,
    next: i64,
}

const REFUSE_STATEMENT: &str = "UPDATE information_requests SET state = 'refused', \
     version = version + 1, updated_at = $1, refused_by = $2, refused_at = $1, \
     refusal_sealed = $3, next_escalation_at = 0 \
     WHERE id = $4 AND version = $5 AND state = 'open'";

/// Answers an open request; written together with the approval that answers it.
const ANSWER_STATEMENT: &str = "UPDATE information_requests SET state = 'answered', \
     version = version + 1, updated_at = $1, answered_by_disclosure_id = $2, answered_at = $1, \
     next_escalation_at = 0 WHERE id = $3 AND state = 'open'";

const ESCALATE_STATEMENT: &str = "UPDATE information_requests SET \
     escalations = escalations + 1, last_escalated_at = $1, next_escalation_at = $2 \
     WHERE id = $3 AND state = 'open' AND next_escalation_at = $4";

impl DisclosureStore {
    /// Stores a new request with `event`, unless its client request id was used before.
    pub async fn insert_request(
        &self,
        record: &RequestRecord,
        event: &OutboxEvent,
    ) -> Result<RequestInsert, sqlx::Error> {
        static STATEMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "INSERT INTO information_requests ({COLUMNS}) VALUES ({})",
                placeholders(1, COLUMNS.split(',').count())
            )
        });
        let change = Change::new(STATEMENT.as_str(), record, std::slice::from_ref(&event));
        match write(&self.database, &change).await? {
            Written::All => Ok(RequestInsert::Inserted),
            Written::Duplicate => Ok(RequestInsert::Duplicate),
            Written::Nothing => Err(wrote_nothing(format!(
                "inserting information request {}",
                record.id
            ))),
        }
    }

    /// The request `id`, if it exists.
    pub async fn request(&self, id: &str) -> Result<Option<RequestRecord>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM information_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.database.pool())
        .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// The request `requested_by` of `organisation` sent with `client_request_id`, if any.
    pub async fn request_by_client_id(
        &self,
        organisation: &str,
        requested_by: &str,
        client_request_id: &str,
    ) -> Result<Option<RequestRecord>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM information_requests WHERE requester_organisation = $1 \
             AND requested_by = $2 AND client_request_id = $3"
        ))
        .bind(organisation)
        .bind(requested_by)
        .bind(client_request_id)
        .fetch_optional(self.database.pool())
        .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// One page of requests: urgent first, then the nearest deadline.
    pub async fn requests(
        &self,
        filter: &RequestFilter,
    ) -> Result<Vec<RequestRecord>, sqlx::Error> {
        let (scope, first, second) = match &filter.scope {
            RequestScope::AskedOf(organisation) => {
                ("organisation = $1 AND $2 = ''", organisation.as_str(), "")
            }
            RequestScope::AskedBy {
                organisation,
                inbox,
            } => (
                "requester_organisation = $1 AND requester_inbox = $2",
                organisation.as_str(),
                inbox.as_str(),
            ),
        };
        let state = match filter.state {
            Some(_) => "state = $3",
            None => "$3 = ''",
        };
        // Before the first row: an urgency above any row's.
        let (after_urgent, after_time, after_id) = match &filter.after {
            Some((urgent, time, id)) => (i64::from(*urgent), *time, id.clone()),
            None => (2, i64::MIN, String::new()),
        };
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM information_requests WHERE {scope} AND {state} \
             AND (urgent < $4 OR (urgent = $4 AND (reply_by > $5 \
                  OR (reply_by = $5 AND id > $6)))) \
             ORDER BY urgent DESC, reply_by ASC, id ASC LIMIT $7"
        ))
        .bind(first)
        .bind(second)
        .bind(filter.state.map_or("", RequestState::as_str))
        .bind(after_urgent)
        .bind(after_time)
        .bind(after_id)
        .bind(filter.limit)
        .fetch_all(self.database.pool())
        .await?;
        rows.iter().map(request_from_row).collect()
    }

    /// Refuses an open request still at its expected version, with `event`. False (nothing
    /// written) when it moved on meanwhile.
    pub async fn refuse_request(
        &self,
        refusal: &Refusal<'_>,
        event: &OutboxEvent,
    ) -> Result<bool, sqlx::Error> {
        let change = Change::new(REFUSE_STATEMENT, refusal, std::slice::from_ref(&event));
        match write(&self.database, &change).await? {
            Written::All => Ok(true),
            Written::Nothing => Ok(false),
            Written::Duplicate => Err(wrote_nothing(format!(
                "refusing information request {} collided with a unique key",
                refusal.id
            ))),
        }
    }

    /// Writes the approval `row` under `expected_version` with its events and, in the same
    /// write, answers the open request it names. False (nothing written) when the disclosure's
    /// version moved on; a request no longer open stays as it is.
    pub async fn update_answering(
        &self,
        row: &DisclosureRecord,
        expected_version: i64,
        events: &[&OutboxEvent],
        answer: &Answer<'_>,
    ) -> Result<bool, sqlx::Error> {
        let versioned = Versioned {
            record: row,
            expected_version,
        };
        let companions = [Companion::Update {
            statement: ANSWER_STATEMENT,
            arguments: answer,
        }];
        let change = Change {
            statement: super::UPDATE_STATEMENT.as_str(),
            arguments: &versioned,
            companions: &companions,
            events,
        };
        super::updated(&row.id, write(&self.database, &change).await?)
    }

    /// Open requests whose next escalation is due at `now`, the most overdue first.
    pub async fn requests_due(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<RequestRecord>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM information_requests \
             WHERE state = 'open' AND next_escalation_at > 0 AND next_escalation_at <= $1 \
             ORDER BY next_escalation_at, id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(self.database.pool())
        .await?;
        rows.iter().map(request_from_row).collect()
    }

    /// Records one escalation of `record` at `at` (the next at `next`) with `event`, unless
    /// another instance escalated it first or it was answered or refused meanwhile.
    pub async fn escalate_request(
        &self,
        record: &RequestRecord,
        at: i64,
        next: i64,
        event: &OutboxEvent,
    ) -> Result<bool, sqlx::Error> {
        let escalation = Escalation {
            id: &record.id,
            at,
            due: record.next_escalation_at,
            next,
        };
        let change = Change::new(
            ESCALATE_STATEMENT,
            &escalation,
            std::slice::from_ref(&event),
        );
        match write(&self.database, &change).await? {
            Written::All => Ok(true),
            Written::Nothing => Ok(false),
            Written::Duplicate => Err(wrote_nothing(format!(
                "escalating information request {} collided with a unique key",
                record.id
            ))),
        }
    }
}

impl Arguments for RequestRecord {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.id.as_str())
            .bind(self.version)
            .bind(self.state.as_str())
            .bind(self.organisation.as_str())
            .bind(self.requested_by.as_str())
            .bind(self.requester_organisation.as_str())
            .bind(self.requester_authority.as_str())
            .bind(self.requester_inbox.as_str())
            .bind(self.client_request_id.as_str())
            .bind(self.request_fingerprint.as_str())
            .bind(self.subject_ref.as_str())
            .bind(self.content_sealed.as_str())
            .bind(i64::from(self.urgent))
            .bind(self.reply_by)
            .bind(self.created_at)
            .bind(self.updated_at)
            .bind(self.answered_by_disclosure_id.as_str())
            .bind(self.answered_at)
            .bind(self.refused_by.as_str())
            .bind(self.refused_at)
            .bind(self.refusal_sealed.as_str())
            .bind(self.escalations)
            .bind(self.last_escalated_at)
            .bind(self.next_escalation_at)
    }
}

impl Arguments for Refusal<'_> {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.refused_at)
            .bind(self.refused_by)
            .bind(self.refusal_sealed)
            .bind(self.id)
            .bind(self.expected_version)
    }
}

impl Arguments for Answer<'_> {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.at)
            .bind(self.disclosure_id)
            .bind(self.request_id)
    }
}

impl Arguments for Escalation<'_> {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(self.at)
            .bind(self.next)
            .bind(self.id)
            .bind(self.due)
    }
}

fn request_from_row(row: &sqlx::any::AnyRow) -> Result<RequestRecord, sqlx::Error> {
    let state: String = row.try_get("state")?;
    let state = RequestState::parse(&state).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: "state".into(),
        source: format!("unknown information request state {state:?}").into(),
    })?;
    let urgent: i64 = row.try_get("urgent")?;
    Ok(RequestRecord {
        id: row.try_get("id")?,
        version: row.try_get("version")?,
        state,
        organisation: row.try_get("organisation")?,
        requested_by: row.try_get("requested_by")?,
        requester_organisation: row.try_get("requester_organisation")?,
        requester_authority: row.try_get("requester_authority")?,
        requester_inbox: row.try_get("requester_inbox")?,
        client_request_id: row.try_get("client_request_id")?,
        request_fingerprint: row.try_get("request_fingerprint")?,
        subject_ref: row.try_get("subject_ref")?,
        content_sealed: row.try_get("content_sealed")?,
        urgent: urgent != 0,
        reply_by: row.try_get("reply_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        answered_by_disclosure_id: row.try_get("answered_by_disclosure_id")?,
        answered_at: row.try_get("answered_at")?,
        refused_by: row.try_get("refused_by")?,
        refused_at: row.try_get("refused_at")?,
        refusal_sealed: row.try_get("refusal_sealed")?,
        escalations: row.try_get("escalations")?,
        last_escalated_at: row.try_get("last_escalated_at")?,
        next_escalation_at: row.try_get("next_escalation_at")?,
    })
}
