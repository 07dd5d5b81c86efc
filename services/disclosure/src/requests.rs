//! Requests for information from law-enforcement authorities (begäran om uppgifter, domain.md
//! §9): an officer asks an organisation about whom, what, why, under which legal ground, how
//! urgently and by when; the organisation answers with a disclosure that names the request
//! (assessed and approved like any other, and delivered to the requesting officer's inbox) or
//! refuses it with its reason and the weighing of interests behind it; an open request past
//! its deadline escalates, and again every escalation interval until it is answered or
//! refused.
//!
//! Invariants: only an officer of a law-enforcement authority sends a request, and only to an
//! organisation that holds a secrecy (a municipality or a healthcare provider); the requesting
//! authority's officers (the police: of the same region) and the organisation's staff see it,
//! everyone else is told it does not exist; a request is answered or refused once, each under
//! the version it was read at, with its outbox event in the same write; the approval that
//! answers a request answers it in the same write; what may be personal data (the person, what
//! is sought, why, the ground, the refusal's reason and weighing) is sealed, and the audit log
//! gets only keyed references of identity numbers.

use std::time::Duration;

use prost::Message as _;
use sha2::{Digest, Sha256};
use tracing::Instrument as _;
use tryggdel_auth::Role;
use tryggdel_domain::{IdentityNumber, Inbox, OrganisationCode, PoliceRegion};
use tryggdel_proto::common::v1::Person;
use tryggdel_proto::disclosure::v1::{
    Disclosure, GetInformationRequestRequest, InformationRequest, InformationRequestState,
    ListInformationRequestsRequest, ListInformationRequestsResponse,
    RefuseInformationRequestRequest, RequestInformationRequest,
};
use tryggdel_service_kit::{
    Caller, Periodic, ServiceError, decode_page_token, encode_page_token, invalid_page_token,
    millis, now_unix_ms, today_in_sweden,
};

use crate::api::DisclosureApi;
use crate::checks;
use crate::events::{Trace, outbox_event, system_actor, user_actor};
use crate::policy::READERS;
use crate::store::{
    Answer, DisclosureRecord, OutboxActor, OutboxPayload, Refusal, RequestFilter, RequestInsert,
    RequestRecord, RequestScope, RequestState,
};

/// The event of a request's arrival.
pub const EVENT_RECEIVED: &str = "information_request.received";
/// The event of a refusal.
pub const EVENT_REFUSED: &str = "information_request.refused";
/// The event of the approval that answers a request.
pub const EVENT_ANSWERED: &str = "information_request.answered";
/// The event of a deadline passed with the request still open.
pub const EVENT_OVERDUE: &str = "information_request.overdue";
/// The event of a read of one request (it names a person).
pub const EVENT_READ: &str = "information_request.read";
/// The event of a read of a page of requests.
pub const EVENT_LISTED: &str = "information_request.listed";

/// Longest free text of a request (what is sought, why, the refusal's reason and weighing).
const MAX_REQUEST_TEXT_CHARS: usize = 4000;
/// Longest legal ground and subject name.
const MAX_REQUEST_LINE_CHARS: usize = 500;
/// A reply deadline lies at most this far ahead.
const MAX_REPLY_WINDOW: Duration = Duration::from_secs(366 * 24 * 60 * 60);
/// Rows a deadline round escalates at most.
const ESCALATION_BATCH: i64 = 500;
/// Default and largest page of a list.
const DEFAULT_PAGE_SIZE: i64 = 50;
const MAX_PAGE_SIZE: i64 = 200;

/// How often an open request past its deadline escalates again, and how often that is
/// checked; only built valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestDeadlines {
    urgent_repeat: Duration,
    ordinary_repeat: Duration,
    check_interval: Duration,
}

/// Deadline settings that cannot work.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("request deadline intervals must be longer than zero")]
pub struct RequestDeadlinesError;

impl RequestDeadlines {
    pub fn new(
        urgent_repeat: Duration,
        ordinary_repeat: Duration,
        check_interval: Duration,
    ) -> Result<RequestDeadlines, RequestDeadlinesError> {
        if [urgent_repeat, ordinary_repeat, check_interval]
            .iter()
            .any(Duration::is_zero)
        {
            return Err(RequestDeadlinesError);
        }
        Ok(RequestDeadlines {
            urgent_repeat,
            ordinary_repeat,
            check_interval,
        })
    }

    pub fn check_interval(&self) -> Duration {
        self.check_interval
    }

    fn repeat(&self, urgent: bool) -> Duration {
        if urgent {
            self.urgent_repeat
        } else {
            self.ordinary_repeat
        }
    }
}

impl Default for RequestDeadlines {
    /// An urgent request escalates again every hour, an ordinary one every day; checked every
    /// minute.
    fn default() -> RequestDeadlines {
        RequestDeadlines {
            urgent_repeat: Duration::from_secs(60 * 60),
            ordinary_repeat: Duration::from_secs(24 * 60 * 60),
            check_interval: Duration::from_secs(60),
        }
    }
}

/// What a request asks, sealed in the row.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct RequestContent {
    subject_identity_number: String,
    subject_name: String,
    information_sought: String,
    purpose: String,
    legal_ground: String,
}

/// Why a request was refused, sealed in the row.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct RefusalContent {
    reason: String,
    weighing: String,
}

/// A request as it was sent, checked once.
struct ValidRequest {
    organisation: OrganisationCode,
    subject: Option<IdentityNumber>,
    content: RequestContent,
    urgent: bool,
    reply_by: i64,
}

impl DisclosureApi {
    pub(crate) async fn request_information(
        &self,
        caller: &Caller,
        request: RequestInformationRequest,
    ) -> Result<InformationRequest, ServiceError> {
        let inbox = requester_inbox(caller, "requesting information")?;
        let client_request_id = checks::client_request_id(&request.client_request_id)?;
        let fingerprint = hex::encode(Sha256::digest(request.encode_to_vec()));
        let valid = self.validate_request(&request, now_unix_ms())?;
        let now = now_unix_ms();
        let id = uuid::Uuid::now_v7().to_string();
        let subject_ref = valid
            .subject
            .as_ref()
            .map(|number| self.person_key.reference(number).as_str().to_owned())
            .unwrap_or_default();
        let record = RequestRecord {
            id: id.clone(),
            version: 1,
            state: RequestState::Open,
            organisation: valid.organisation.as_str().to_owned(),
            requested_by: caller.user().to_owned(),
            requester_organisation: caller.organisation.code().as_str().to_owned(),
            requester_authority: inbox.recipient().as_str().to_owned(),
            requester_inbox: inbox.as_str().to_owned(),
            client_request_id: client_request_id.to_owned(),
            request_fingerprint: fingerprint.clone(),
            subject_ref,
            content_sealed: self.seal_json(&valid.content, &id, "content")?,
            urgent: valid.urgent,
            reply_by: valid.reply_by,
            created_at: now,
            updated_at: now,
            answered_by_disclosure_id: String::new(),
            answered_at: 0,
            refused_by: String::new(),
            refused_at: 0,
            refusal_sealed: String::new(),
            escalations: 0,
            last_escalated_at: 0,
            next_escalation_at: valid.reply_by,
        };
        let event = request_payload(
            user_actor(caller),
            &Trace::of(caller),
            &record,
            EVENT_RECEIVED,
            &[("requested_by", record.requested_by.clone())],
            self.registry.registry_version(),
        );
        match self
            .store
            .insert_request(&record, &outbox_event(event)?)
            .await?
        {
            RequestInsert::Inserted => {
                self.signal_outbox();
                tracing::info!(information_request_id = %record.id, organisation = %record.organisation, requester_inbox = %record.requester_inbox, "request for information received");
                self.request_view(&record)
            }
            RequestInsert::Duplicate => {
                let existing = self
                    .store
                    .request_by_client_id(
                        caller.organisation.code().as_str(),
                        caller.user(),
                        client_request_id,
                    )
                    .await?
                    .ok_or_else(|| {
                        ServiceError::internal(anyhow::anyhow!(
                            "a request's duplicate client request id vanished"
                        ))
                    })?;
                if existing.request_fingerprint != fingerprint {
                    return Err(ServiceError::AlreadyExists(
                        "client_request_id was already used for a request with other content"
                            .into(),
                    ));
                }
                self.request_view(&existing)
            }
        }
    }

    pub(crate) async fn get_information_request(
        &self,
        caller: &Caller,
        request: GetInformationRequestRequest,
    ) -> Result<InformationRequest, ServiceError> {
        let record = self
            .visible_request(caller, &request.information_request_id)
            .await?;
        let view = self.request_view(&record)?;
        self.log_request_access(caller, &[&record]).await?;
        Ok(view)
    }

    /// Records that the caller read `records` (a request names a person), durably in the
    /// outbox before anything is returned; refused while the audit log does not answer.
    async fn log_request_access(
        &self,
        caller: &Caller,
        records: &[&RequestRecord],
    ) -> Result<(), ServiceError> {
        self.require_audit_log().await?;
        let mut events = Vec::new();
        for chunk in records.chunks(crate::events::MAX_OBJECTS_PER_EVENT) {
            if let Some(payload) = self.request_access_payload(caller, chunk) {
                events.push(outbox_event(payload)?);
            }
        }
        // Not signalled: the relay takes reads with its next batch.
        self.store.record_events(&events).await?;
        Ok(())
    }

    /// The access event's payload of a read of `records` (None for no records).
    fn request_access_payload(
        &self,
        caller: &Caller,
        records: &[&RequestRecord],
    ) -> Option<OutboxPayload> {
        let first = records.first()?;
        Some(match records {
            [record] => request_payload(
                user_actor(caller),
                &Trace::of(caller),
                record,
                EVENT_READ,
                &[],
                self.registry.registry_version(),
            ),
            many => {
                let mut person_refs: Vec<String> = Vec::new();
                for record in many {
                    if !record.subject_ref.is_empty() && !person_refs.contains(&record.subject_ref)
                    {
                        person_refs.push(record.subject_ref.clone());
                    }
                }
                let ids: Vec<&str> = many.iter().map(|record| record.id.as_str()).collect();
                let mut payload = request_payload(
                    user_actor(caller),
                    &Trace::of(caller),
                    first,
                    EVENT_LISTED,
                    &[],
                    self.registry.registry_version(),
                );
                payload.disclosure_id = String::new();
                payload.police_region = String::new();
                payload.state = String::new();
                payload.person_refs = person_refs;
                payload.details = [
                    ("information_request_ids".to_owned(), ids.join(",")),
                    ("count".to_owned(), ids.len().to_string()),
                ]
                .into_iter()
                .collect();
                payload
            }
        })
    }

    pub(crate) async fn list_information_requests(
        &self,
        caller: &Caller,
        request: ListInformationRequestsRequest,
    ) -> Result<ListInformationRequestsResponse, ServiceError> {
        let scope = if caller.has(Role::PoliceOfficer) && caller.organisation.authority().is_some()
        {
            let inbox = requester_inbox(caller, "listing requests for information")?;
            RequestScope::AskedBy {
                organisation: caller.organisation.code().as_str().to_owned(),
                inbox: inbox.as_str().to_owned(),
            }
        } else {
            caller.require_any(&READERS, "listing requests for information")?;
            RequestScope::AskedOf(caller.organisation.code().as_str().to_owned())
        };
        let state = match InformationRequestState::try_from(request.state) {
            Ok(InformationRequestState::Unspecified) => None,
            Ok(InformationRequestState::Open) => Some(RequestState::Open),
            Ok(InformationRequestState::Answered) => Some(RequestState::Answered),
            Ok(InformationRequestState::Refused) => Some(RequestState::Refused),
            Err(_) => return Err(ServiceError::invalid("state", "unknown state")),
        };
        let limit = match i64::from(request.page_size) {
            0 => DEFAULT_PAGE_SIZE,
            size if (1..=MAX_PAGE_SIZE).contains(&size) => size,
            _ => {
                return Err(ServiceError::invalid(
                    "page_size",
                    format!("must be between 1 and {MAX_PAGE_SIZE}"),
                ));
            }
        };
        let after = match request.page_token.trim() {
            "" => None,
            token => Some(queue_position(token)?),
        };
        let records = self
            .store
            .requests(&RequestFilter {
                scope,
                state,
                after,
                limit: limit + 1,
            })
            .await?;
        let more = records.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        let page: Vec<&RequestRecord> = records
            .iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        let next_page_token = match (more, page.last()) {
            (true, Some(last)) => encode_page_token(&format!(
                "r:{}:{}:{}",
                u8::from(last.urgent),
                last.reply_by,
                last.id
            )),
            _ => String::new(),
        };
        let requests = page
            .iter()
            .map(|record| self.request_view(record))
            .collect::<Result<_, _>>()?;
        self.log_request_access(caller, &page).await?;
        Ok(ListInformationRequestsResponse {
            requests,
            next_page_token,
        })
    }

    pub(crate) async fn refuse_information_request(
        &self,
        caller: &Caller,
        request: RefuseInformationRequestRequest,
    ) -> Result<InformationRequest, ServiceError> {
        caller.require_any(
            &[Role::Caseworker, Role::DecisionMaker],
            "refusing a request for information",
        )?;
        let record = self
            .visible_request(caller, &request.information_request_id)
            .await?;
        if record.organisation != caller.organisation.code().as_str() {
            return Err(ServiceError::PermissionDenied(
                "only the organisation asked may refuse a request for information".into(),
            ));
        }
        let reason = request_text("reason", &request.reason, MAX_REQUEST_TEXT_CHARS)?;
        let weighing = request_text("weighing", &request.weighing, MAX_REQUEST_TEXT_CHARS)?;
        if request.expected_version != record.version {
            return Err(ServiceError::StaleVersion {
                expected: request.expected_version,
                current: record.version,
            });
        }
        require_open(&record)?;
        let now = now_unix_ms();
        let refusal_sealed = self.seal_json(
            &RefusalContent {
                reason: reason.clone(),
                weighing: weighing.clone(),
            },
            &record.id,
            "refusal",
        )?;
        let refused = RequestRecord {
            version: record.version + 1,
            state: RequestState::Refused,
            updated_at: now,
            refused_by: caller.user().to_owned(),
            refused_at: now,
            refusal_sealed: refusal_sealed.clone(),
            next_escalation_at: 0,
            ..record.clone()
        };
        let event = request_payload(
            user_actor(caller),
            &Trace::of(caller),
            &refused,
            EVENT_REFUSED,
            &[("reason", reason), ("weighing", weighing)],
            self.registry.registry_version(),
        );
        let written = self
            .store
            .refuse_request(
                &Refusal {
                    id: &record.id,
                    expected_version: record.version,
                    refused_by: caller.user(),
                    refused_at: now,
                    refusal_sealed: &refusal_sealed,
                },
                &outbox_event(event)?,
            )
            .await?;
        if !written {
            let current = self.store.request(&record.id).await?;
            return Err(match current {
                Some(current) if current.state != RequestState::Open => not_open(&current),
                current => ServiceError::StaleVersion {
                    expected: request.expected_version,
                    current: current.map_or(0, |current| current.version),
                },
            });
        }
        self.signal_outbox();
        tracing::info!(information_request_id = %record.id, "request for information refused");
        self.request_view(&refused)
    }

    /// The open request a draft of `caller`'s organisation answers, or why it cannot.
    pub(crate) async fn answerable_request(
        &self,
        caller_organisation: &str,
        id: &str,
    ) -> Result<RequestRecord, ServiceError> {
        let field = "content.answers_information_request_id";
        let record = self
            .store
            .request(id)
            .await?
            .filter(|record| record.organisation == caller_organisation)
            .ok_or_else(|| {
                ServiceError::invalid(
                    field,
                    "no request for information to this organisation has that id",
                )
            })?;
        require_open(&record)?;
        Ok(record)
    }

    /// Writes the approval `record` under `expected_version` with its `disclosure.approved`
    /// event (`details`) and, in the same write, answers `request` (open when read), with its
    /// `information_request.answered` event; or reports the conflict.
    pub(crate) async fn save_answering(
        &self,
        caller: &Caller,
        record: &DisclosureRecord,
        expected_version: i64,
        details: &[(&str, String)],
        request: &RequestRecord,
    ) -> Result<Disclosure, ServiceError> {
        let approved = self.event(caller, record, "disclosure.approved", details)?;
        let at = record.updated_at;
        let answered = self.answered_event(
            user_actor(caller),
            &Trace::of(caller),
            request,
            &record.id,
            at,
        )?;
        let answer = Answer {
            request_id: &request.id,
            disclosure_id: &record.id,
            at,
        };
        if self
            .store
            .update_answering(record, expected_version, &[&approved, &answered], &answer)
            .await?
        {
            self.signal_outbox();
            tracing::info!(information_request_id = %request.id, disclosure_id = %record.id, "request for information answered");
            return self.masked_view(record);
        }
        let current = self
            .store
            .get(&record.id)
            .await?
            .map(|stored| stored.version)
            .unwrap_or_default();
        Err(ServiceError::StaleVersion {
            expected: expected_version,
            current,
        })
    }

    /// The outbox event recording that the approval of `disclosure_id` answers `request`.
    pub(crate) fn answered_event(
        &self,
        actor: OutboxActor,
        trace: &Trace,
        request: &RequestRecord,
        disclosure_id: &str,
        at: i64,
    ) -> Result<tryggdel_storage::OutboxEvent, ServiceError> {
        let answered = RequestRecord {
            version: request.version + 1,
            state: RequestState::Answered,
            updated_at: at,
            answered_by_disclosure_id: disclosure_id.to_owned(),
            answered_at: at,
            next_escalation_at: 0,
            ..request.clone()
        };
        outbox_event(request_payload(
            actor,
            trace,
            &answered,
            EVENT_ANSWERED,
            &[("answered_by_disclosure_id", disclosure_id.to_owned())],
            self.registry.registry_version(),
        ))
    }

    /// One round of deadline escalation at `now`: every open request whose next escalation
    /// is due escalates once (an `information_request.overdue` event, the next one set a
    /// repeat later). Returns how many escalated.
    pub async fn escalate_overdue_requests(&self, now: i64) -> Result<usize, ServiceError> {
        let due = self.store.requests_due(now, ESCALATION_BATCH).await?;
        let mut escalated = 0;
        for record in due {
            let span = tracing::info_span!(
                parent: None,
                "information_request.deadline",
                otel.name = "escalate request deadline",
                information_request_id = %record.id,
            );
            if self.escalate_one(&record, now).instrument(span).await? {
                escalated += 1;
            }
        }
        if escalated > 0 {
            self.signal_outbox();
        }
        Ok(escalated)
    }

    async fn escalate_one(&self, record: &RequestRecord, now: i64) -> Result<bool, ServiceError> {
        let next = now.saturating_add(millis(self.request_deadlines.repeat(record.urgent)));
        let escalated = RequestRecord {
            escalations: record.escalations + 1,
            last_escalated_at: now,
            next_escalation_at: next,
            ..record.clone()
        };
        let event = request_payload(
            system_actor(),
            &Trace::continuing(""),
            &escalated,
            EVENT_OVERDUE,
            &[
                ("escalation", escalated.escalations.to_string()),
                (
                    "overdue_by_ms",
                    now.saturating_sub(record.reply_by).to_string(),
                ),
            ],
            self.registry.registry_version(),
        );
        let written = self
            .store
            .escalate_request(record, now, next, &outbox_event(event)?)
            .await?;
        if written {
            tracing::warn!(
                information_request_id = %record.id,
                organisation = %record.organisation,
                urgent = record.urgent,
                escalation = escalated.escalations,
                "request for information past its deadline and still open"
            );
        }
        Ok(written)
    }

    /// The request `id` names, if the caller may see it; NOT_FOUND otherwise.
    async fn visible_request(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<RequestRecord, ServiceError> {
        let id = uuid::Uuid::parse_str(id.trim())
            .map_err(|_| ServiceError::invalid("information_request_id", "must be a UUID"))?
            .to_string();
        let record = self
            .store
            .request(&id)
            .await?
            .ok_or(ServiceError::NotFound("information request"))?;
        let asked = record.organisation == caller.organisation.code().as_str()
            && READERS.iter().any(|role| caller.has(*role));
        let asking = caller.has(Role::PoliceOfficer)
            && record.requester_organisation == caller.organisation.code().as_str()
            && requester_inbox(caller, "reading a request for information")
                .is_ok_and(|inbox| inbox.as_str() == record.requester_inbox);
        if asked || asking || caller.is_supervisor() {
            Ok(record)
        } else {
            Err(ServiceError::NotFound("information request"))
        }
    }

    fn validate_request(
        &self,
        request: &RequestInformationRequest,
        now: i64,
    ) -> Result<ValidRequest, ServiceError> {
        let organisation = OrganisationCode::parse(request.organisation.trim())
            .map_err(|error| ServiceError::invalid("organisation", error))?;
        let asked = self
            .directory()
            .organisation(&organisation)
            .ok_or_else(|| {
                ServiceError::invalid(
                    "organisation",
                    format!("{organisation} is not registered in this deployment"),
                )
            })?;
        if asked.secrecy().is_none() {
            return Err(ServiceError::invalid(
                "organisation",
                format!(
                    "{organisation} is not a municipality or healthcare provider; information is requested from those"
                ),
            ));
        }
        let number = request.subject_identity_number.trim();
        let subject = if number.is_empty() {
            None
        } else {
            Some(
                IdentityNumber::parse(number, today_in_sweden())
                    .map_err(|error| ServiceError::invalid("subject_identity_number", error))?,
            )
        };
        let subject_name = checks::optional_line(
            "subject_name",
            &request.subject_name,
            MAX_REQUEST_LINE_CHARS,
        )?;
        if subject.is_none() && !subject_name.is_empty() {
            return Err(ServiceError::invalid(
                "subject_identity_number",
                "required when the request names a person",
            ));
        }
        let content = RequestContent {
            subject_identity_number: subject
                .as_ref()
                .map(IdentityNumber::to_canonical_string)
                .unwrap_or_default(),
            subject_name,
            information_sought: request_text(
                "information_sought",
                &request.information_sought,
                MAX_REQUEST_TEXT_CHARS,
            )?,
            purpose: request_text("purpose", &request.purpose, MAX_REQUEST_TEXT_CHARS)?,
            legal_ground: request_text(
                "legal_ground",
                &request.legal_ground,
                MAX_REQUEST_LINE_CHARS,
            )?,
        };
        let reply_by = reply_by(&request.reply_by, now)?;
        Ok(ValidRequest {
            organisation,
            subject,
            content,
            urgent: request.urgent,
            reply_by,
        })
    }

    /// A request as a client sees it.
    fn request_view(&self, record: &RequestRecord) -> Result<InformationRequest, ServiceError> {
        let content: RequestContent =
            self.open_json(&record.content_sealed, &record.id, "content")?;
        let refusal: RefusalContent = if record.refusal_sealed.is_empty() {
            RefusalContent::default()
        } else {
            self.open_json(&record.refusal_sealed, &record.id, "refusal")?
        };
        let subject = (!content.subject_identity_number.is_empty()).then(|| Person {
            identity_number: content.subject_identity_number.clone(),
            name: content.subject_name.clone(),
        });
        Ok(InformationRequest {
            id: record.id.clone(),
            version: record.version,
            state: match record.state {
                RequestState::Open => InformationRequestState::Open,
                RequestState::Answered => InformationRequestState::Answered,
                RequestState::Refused => InformationRequestState::Refused,
            } as i32,
            organisation: record.organisation.clone(),
            requested_by: record.requested_by.clone(),
            requester_organisation: record.requester_organisation.clone(),
            requester_authority: record.requester_authority.clone(),
            requester_inbox: record.requester_inbox.clone(),
            subject,
            information_sought: content.information_sought,
            purpose: content.purpose,
            legal_ground: content.legal_ground,
            urgent: record.urgent,
            reply_by_unix_ms: record.reply_by,
            created_at_unix_ms: record.created_at,
            updated_at_unix_ms: record.updated_at,
            answered_by_disclosure_id: record.answered_by_disclosure_id.clone(),
            answered_at_unix_ms: record.answered_at,
            refused_by: record.refused_by.clone(),
            refused_at_unix_ms: record.refused_at,
            refusal_reason: refusal.reason,
            refusal_weighing: refusal.weighing,
            escalations: record.escalations,
            last_escalated_at_unix_ms: record.last_escalated_at,
        })
    }

    fn seal_json<T: serde::Serialize>(
        &self,
        value: &T,
        id: &str,
        part: &str,
    ) -> Result<String, ServiceError> {
        let bytes = zeroize::Zeroizing::new(serde_json::to_vec(value).map_err(|error| {
            ServiceError::internal(anyhow::Error::new(error).context(part.to_owned()))
        })?);
        Ok(self.cipher.seal(&bytes, &sealing_context(id, part))?)
    }

    fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        sealed: &str,
        id: &str,
        part: &str,
    ) -> Result<T, ServiceError> {
        let bytes = self.cipher.open(sealed, &sealing_context(id, part))?;
        serde_json::from_slice(&bytes).map_err(|error| {
            ServiceError::internal(anyhow::Error::new(error).context(part.to_owned()))
        })
    }
}

/// Starts the deadline checker: a round every check interval until it stops.
pub fn start_request_deadline_checker(api: DisclosureApi) -> Periodic {
    Periodic::start(
        api.request_deadlines.check_interval(),
        move || {
            let api = api.clone();
            async move { api.escalate_overdue_requests(now_unix_ms()).await.map(drop) }
        },
        |error| {
            let status = tonic::Status::from(error);
            tracing::warn!(
                reason = status.message(),
                "request deadline check failed; retrying at the next interval"
            );
        },
    )
}

/// The inbox of an officer of a law-enforcement authority: the police officer's region (named
/// in their token), or the other authority's inbox. Anyone else is refused, naming `action`.
pub(crate) fn requester_inbox(caller: &Caller, action: &str) -> Result<Inbox, ServiceError> {
    caller.require_any(&[Role::PoliceOfficer], action)?;
    let authority = caller.organisation.authority().ok_or_else(|| {
        ServiceError::PermissionDenied(format!(
            "{action} is for officers of a law-enforcement authority"
        ))
    })?;
    let region = match caller.principal.police_region.as_deref() {
        Some(region) => Some(PoliceRegion::parse(region).map_err(|_| {
            ServiceError::PermissionDenied("the token names an unknown police region".into())
        })?),
        None => None,
    };
    Inbox::for_recipient(authority, region).ok_or_else(|| {
        ServiceError::PermissionDenied(format!("{action} needs a token that names a police region"))
    })
}

/// The payload of an event about `record`: the request's id where a disclosure's would be,
/// the requester's inbox as its recipient, and the person asked about as a keyed reference.
fn request_payload(
    actor: OutboxActor,
    trace: &Trace,
    record: &RequestRecord,
    event_type: &str,
    details: &[(&str, String)],
    registry_version: &str,
) -> OutboxPayload {
    let mut all = vec![
        (
            "requester_organisation",
            record.requester_organisation.clone(),
        ),
        ("requester_authority", record.requester_authority.clone()),
        ("reply_by_unix_ms", record.reply_by.to_string()),
    ];
    all.extend(details.iter().map(|(key, value)| (*key, value.clone())));
    OutboxPayload {
        event_id: uuid::Uuid::now_v7().to_string(),
        event_type: event_type.to_owned(),
        occurred_at_unix_ms: now_unix_ms(),
        disclosure_id: record.id.clone(),
        organisation: record.organisation.clone(),
        police_region: record.requester_inbox.clone(),
        actor,
        state: record.state.as_str().to_owned(),
        version: record.version,
        legal_basis_id: String::new(),
        registry_version: registry_version.to_owned(),
        urgent: record.urgent,
        person_refs: if record.subject_ref.is_empty() {
            Vec::new()
        } else {
            vec![record.subject_ref.clone()]
        },
        trace_id: trace.trace_id.clone(),
        traceparent: trace.traceparent.clone(),
        refusal: None,
        details: all
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    }
}

fn require_open(record: &RequestRecord) -> Result<(), ServiceError> {
    if record.state == RequestState::Open {
        Ok(())
    } else {
        Err(not_open(record))
    }
}

fn not_open(record: &RequestRecord) -> ServiceError {
    ServiceError::FailedPrecondition(format!(
        "the request for information {} is already {}",
        record.id,
        record.state.as_str()
    ))
}

/// A required free text: trimmed, at most `max` characters.
fn request_text(field: &str, text: &str, max: usize) -> Result<String, ServiceError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ServiceError::invalid(field, "required"));
    }
    tryggdel_service_kit::bounded_text(field, trimmed, max)?;
    tryggdel_service_kit::no_control_characters(field, trimmed, true)?;
    Ok(trimmed.to_owned())
}

/// The reply deadline: the end of a Swedish calendar day (`YYYY-MM-DD`) or an RFC 3339 time,
/// after `now` and at most a year ahead.
fn reply_by(text: &str, now: i64) -> Result<i64, ServiceError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ServiceError::invalid("reply_by", "required"));
    }
    let at = if let Ok(date) = crate::content::parse_date(text) {
        tryggdel_domain::end_of_swedish_day_unix_ms(date)
            .ok_or_else(|| ServiceError::invalid("reply_by", "the date is out of range"))?
    } else {
        let time =
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    ServiceError::invalid(
                        "reply_by",
                        "must be a date (YYYY-MM-DD) or an RFC 3339 time",
                    )
                })?;
        i64::try_from(time.unix_timestamp_nanos() / 1_000_000)
            .map_err(|_| ServiceError::invalid("reply_by", "the time is out of range"))?
    };
    if at <= now {
        return Err(ServiceError::invalid("reply_by", "must lie in the future"));
    }
    if at > now.saturating_add(millis(MAX_REPLY_WINDOW)) {
        return Err(ServiceError::invalid(
            "reply_by",
            "must lie within a year from now",
        ));
    }
    Ok(at)
}

/// Where a request list continues, from a token this service issued.
fn queue_position(token: &str) -> Result<(bool, i64, String), ServiceError> {
    let text = decode_page_token(token)?;
    let mut parts = text.splitn(4, ':');
    let (Some("r"), Some(urgent), Some(time), Some(id)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid_page_token());
    };
    let urgent = match urgent {
        "0" => false,
        "1" => true,
        _ => return Err(invalid_page_token()),
    };
    let time = time.parse::<i64>().map_err(|_| invalid_page_token())?;
    let id = uuid::Uuid::parse_str(id).map_err(|_| invalid_page_token())?;
    Ok((urgent, time, id.to_string()))
}

fn sealing_context(id: &str, part: &str) -> String {
    format!("information_request:{id}:{part}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 60 * 60 * 1000;

    #[test]
    fn a_reply_deadline_is_a_future_day_or_time_within_a_year() {
        let now = 1_800_000_000_000;
        assert!(reply_by("", now).is_err());
        assert!(reply_by("tomorrow", now).is_err());
        assert!(reply_by("2020-01-01", now).is_err(), "in the past");
        let at = reply_by("2027-01-20T12:00:00Z", now).unwrap();
        assert_eq!(at, 1_800_446_400_000);
        assert!(
            reply_by("2029-01-20T12:00:00Z", now).is_err(),
            "more than a year ahead"
        );
        // A date means the end of that day in Sweden (CET in January: 23:00 UTC).
        let end = reply_by("2027-01-20", now).unwrap();
        assert_eq!(end, 1_800_486_000_000 - 1);
        assert!(end - at < DAY);
    }

    #[test]
    fn deadline_intervals_must_be_longer_than_zero() {
        let hour = Duration::from_secs(3600);
        assert!(RequestDeadlines::new(hour, hour, hour).is_ok());
        assert_eq!(
            RequestDeadlines::new(Duration::ZERO, hour, hour),
            Err(RequestDeadlinesError)
        );
        assert_eq!(RequestDeadlines::default().repeat(true), hour);
        assert_eq!(RequestDeadlines::default().repeat(false), 24 * hour);
    }

    #[test]
    fn a_page_token_of_another_list_is_refused() {
        let token = encode_page_token("q:1:5:0190a1b2-0000-7000-8000-000000000000");
        assert!(queue_position(&token).is_err());
        let token = encode_page_token("r:1:5:0190a1b2-0000-7000-8000-000000000000");
        assert_eq!(
            queue_position(&token).unwrap(),
            (true, 5, "0190a1b2-0000-7000-8000-000000000000".to_owned())
        );
    }
}
