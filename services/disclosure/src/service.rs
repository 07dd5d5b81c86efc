//! The `DisclosureService` gRPC handlers: authentication, authorisation (deny by default),
//! the lifecycle through the domain's pure state machine, and persistence with the outbox.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost::Message;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use tryggdel_auth::Role;
use tryggdel_domain::{
    DisclosureState, LegalBasisId, LegalRegistry, LifecycleAction, Organisation, OrganisationCode,
    OrganisationKind, PolicePayload, PolicePayloadInput, transition,
};
use tryggdel_proto::common::v1::DisclosureState as WireState;
use tryggdel_proto::disclosure::v1::{
    ApproveRequest, AssessLegalBasisRequest, Assessment as WireAssessment, Condition,
    CreateDraftRequest, Decision, DeliveryRecord, Disclosure, DisclosureSummary, DraftContent,
    GetRequest, ListRequest, ListResponse, ProtectedDetails, RecordReceiptRequest,
    RecordReceiptResponse, RejectRequest, SubmitRequest, UpdateDraftRequest, WithdrawRequest,
    assess_legal_basis_request::Target, disclosure_service_server::DisclosureService,
};
use tryggdel_storage::FieldCipher;

use crate::content::{self, ValidatedDraft};
use crate::delivery::NOTIFICATION_SERVICE;
use crate::store::{
    DeliveryRow, DisclosureRow, DisclosureStore, InsertOutcome, ListFilter, OutboxActor,
    OutboxEvent, OutboxPayload,
};

/// The police's organisation code in the directory.
const POLICE_ORGANISATION: &str = "polisen";
use ed25519_dalek::VerifyingKey;
use tokio::sync::watch;
use tryggdel_domain::{Directory, IdentityNumber, PersonKey, verify_receipt};
use tryggdel_service_kit::{AuditLink, Authenticator, Caller, ServiceError};

const MAX_PAGE_SIZE: u32 = 200;

/// The trace an outbox event belongs to: its id for the audit entry, and the `traceparent`
/// the relays continue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Trace {
    pub trace_id: String,
    pub traceparent: String,
}

impl Trace {
    /// The trace of a user's call.
    pub fn of(caller: &Caller) -> Trace {
        Trace {
            trace_id: caller.trace_id.clone(),
            traceparent: caller.traceparent.clone(),
        }
    }

    /// Work continuing a trace known by its id (an approval's, a receipt's): that id for the
    /// audit entry (the current span's if none is given), and the current span's
    /// `traceparent`. With tracing on, the current span is in that same trace.
    pub fn continuing(trace_id: &str) -> Trace {
        let trace_id = if trace_id.is_empty() {
            tryggdel_service_kit::current_trace_id().unwrap_or_default()
        } else {
            trace_id.to_owned()
        };
        Trace {
            trace_id,
            traceparent: tryggdel_service_kit::current_traceparent().unwrap_or_default(),
        }
    }
}
const DEFAULT_PAGE_SIZE: u32 = 50;

/// The handlers and everything they need.
#[derive(Clone)]
pub struct DisclosureApi {
    store: DisclosureStore,
    registry: Arc<LegalRegistry>,
    authenticator: Authenticator,
    cipher: FieldCipher,
    person_key: PersonKey,
    audit: AuditLink,
    /// The notification service's receipt key: receipts must verify with it.
    receipt_key: VerifyingKey,
    /// Bumped after every committed outbox event, to wake the relays.
    outbox_signal: Arc<watch::Sender<u64>>,
}

fn now_unix_ms() -> i64 {
    let now = OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn today() -> time::Date {
    OffsetDateTime::now_utc().date()
}

fn wire_state(state: DisclosureState) -> WireState {
    match state {
        DisclosureState::Draft => WireState::Draft,
        DisclosureState::Submitted => WireState::Submitted,
        DisclosureState::Approved => WireState::Approved,
        DisclosureState::Delivered => WireState::Delivered,
        DisclosureState::Acknowledged => WireState::Acknowledged,
        DisclosureState::Rejected => WireState::Rejected,
        DisclosureState::Withdrawn => WireState::Withdrawn,
        DisclosureState::Expired => WireState::Expired,
    }
}

pub(crate) fn stored_state(row: &DisclosureRow) -> Result<DisclosureState, ServiceError> {
    DisclosureState::parse(&row.state).map_err(|_| {
        ServiceError::internal(anyhow::anyhow!(
            "disclosure {} has unknown state {:?}",
            row.id,
            row.state
        ))
    })
}

fn parse_disclosure_id(text: &str) -> Result<String, ServiceError> {
    uuid::Uuid::parse_str(text.trim())
        .map(|id| id.to_string())
        .map_err(|_| ServiceError::invalid("disclosure_id", "must be a disclosure id (a UUID)"))
}

fn check_expected_version(expected: i64, row: &DisclosureRow) -> Result<(), ServiceError> {
    if expected < 1 {
        return Err(ServiceError::invalid(
            "expected_version",
            "required: the version you last saw (1 or more)",
        ));
    }
    if expected != row.version {
        return Err(ServiceError::StaleVersion {
            expected,
            current: row.version,
        });
    }
    Ok(())
}

fn reason_text(field: &str, text: &str, required: bool) -> Result<String, ServiceError> {
    let trimmed = text.trim();
    if required && trimmed.is_empty() {
        return Err(ServiceError::invalid(field, "required"));
    }
    let count = trimmed.chars().count();
    if count > content::MAX_TEXT_CHARS {
        return Err(ServiceError::invalid(
            field,
            format!(
                "is {count} characters, at most {} allowed",
                content::MAX_TEXT_CHARS
            ),
        ));
    }
    Ok(trimmed.to_owned())
}

pub(crate) fn apply(
    row: &DisclosureRow,
    action: LifecycleAction,
) -> Result<DisclosureState, ServiceError> {
    let state = stored_state(row)?;
    transition(state, action).map_err(|error| ServiceError::FailedPrecondition(error.to_string()))
}

fn wire_assessment(assessment: &tryggdel_domain::Assessment) -> WireAssessment {
    WireAssessment {
        legal_basis_id: assessment.basis().as_str().to_owned(),
        as_of: content::format_date(assessment.as_of()),
        registry_version: assessment.registry_version().to_owned(),
        catalogue_version: assessment.catalogue_version().to_owned(),
        passed: assessment.passed(),
        conditions: assessment
            .conditions()
            .iter()
            .map(|condition| Condition {
                key: condition.key().to_owned(),
                passed: condition.passed(),
                reason: condition.reason().to_owned(),
            })
            .collect(),
        suggested_bases: assessment
            .suggestions()
            .iter()
            .map(|id| id.as_str().to_owned())
            .collect(),
    }
}

impl DisclosureApi {
    pub fn new(
        store: DisclosureStore,
        registry: Arc<LegalRegistry>,
        authenticator: Authenticator,
        cipher: FieldCipher,
        person_key: PersonKey,
        audit: AuditLink,
        receipt_key: VerifyingKey,
    ) -> DisclosureApi {
        DisclosureApi {
            store,
            registry,
            authenticator,
            cipher,
            person_key,
            audit,
            receipt_key,
            outbox_signal: Arc::new(watch::Sender::new(0)),
        }
    }

    pub fn store(&self) -> &DisclosureStore {
        &self.store
    }

    pub fn audit_link(&self) -> &AuditLink {
        &self.audit
    }

    /// Changes whenever an outbox event is committed.
    pub fn outbox_signal(&self) -> watch::Receiver<u64> {
        self.outbox_signal.subscribe()
    }

    pub(crate) fn signal_outbox(&self) {
        self.outbox_signal
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    pub(crate) fn cipher(&self) -> &FieldCipher {
        &self.cipher
    }

    pub(crate) fn directory(&self) -> &Directory {
        self.authenticator.directory()
    }

    fn authenticate<T>(&self, request: &Request<T>) -> Result<Caller, ServiceError> {
        self.authenticator.user(request)
    }

    /// Whether the caller may see a disclosure at all. Everyone else is told it does not exist.
    fn may_see(caller: &Caller, row: &DisclosureRow) -> bool {
        let same_organisation = caller.organisation.code().as_str() == row.organisation;
        let in_organisation_roles = [
            Role::Caseworker,
            Role::DecisionMaker,
            Role::ComplianceOfficer,
        ];
        let supervisor = caller.is_supervisor();
        (same_organisation && in_organisation_roles.iter().any(|role| caller.has(*role)))
            || supervisor
    }

    async fn load_visible(&self, caller: &Caller, id: &str) -> Result<DisclosureRow, ServiceError> {
        let id = parse_disclosure_id(id)?;
        self.store
            .get(&id)
            .await?
            .filter(|row| Self::may_see(caller, row))
            .ok_or(ServiceError::NotFound("disclosure"))
    }

    fn organisation_of(&self, row: &DisclosureRow) -> Result<Organisation, ServiceError> {
        OrganisationCode::parse(&row.organisation)
            .ok()
            .and_then(|code| self.directory().organisation(&code).cloned())
            .ok_or_else(|| {
                ServiceError::FailedPrecondition(format!(
                    "organisation {} is no longer registered in this deployment",
                    row.organisation
                ))
            })
    }

    fn open_content(&self, row: &DisclosureRow) -> Result<DraftContent, ServiceError> {
        let bytes = self.cipher.open(
            &row.content_sealed,
            &format!("disclosure:{}:content", row.id),
        )?;
        DraftContent::decode(bytes.as_slice())
            .map_err(|error| ServiceError::internal(anyhow::Error::new(error).context("content")))
    }

    fn open_protected(&self, row: &DisclosureRow) -> Result<ProtectedDetails, ServiceError> {
        let bytes = self.cipher.open(
            &row.protected_sealed,
            &format!("disclosure:{}:protected", row.id),
        )?;
        ProtectedDetails::decode(bytes.as_slice())
            .map_err(|error| ServiceError::internal(anyhow::Error::new(error).context("protected")))
    }

    /// The stored draft, parsed again (the stored form is already validated).
    fn stored_draft(&self, row: &DisclosureRow) -> Result<ValidatedDraft, ServiceError> {
        let mut content = self.open_content(row)?;
        content.victim_protected = Some(self.open_protected(row)?);
        content::validate(&content, today())
    }

    fn seal_draft(
        &self,
        row: &mut DisclosureRow,
        draft: &ValidatedDraft,
    ) -> Result<(), ServiceError> {
        row.content_sealed = self.cipher.seal(
            &draft.content.encode_to_vec(),
            &format!("disclosure:{}:content", row.id),
        )?;
        row.protected_sealed = self.cipher.seal(
            &draft.protected.encode_to_vec(),
            &format!("disclosure:{}:protected", row.id),
        )?;
        row.legal_basis_id = draft
            .legal_basis
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        row.urgent = i64::from(draft.content.urgent);
        Ok(())
    }

    /// Keyed hashes of the identity numbers a disclosure concerns (subject and victim).
    fn person_refs(&self, row: &DisclosureRow) -> Result<Vec<String>, ServiceError> {
        let content = self.open_content(row)?;
        let mut references = Vec::new();
        for person in [&content.subject, &content.victim].into_iter().flatten() {
            if person.identity_number.is_empty() {
                continue;
            }
            // Stored numbers were validated on the way in; one that no longer parses is ours.
            let number = IdentityNumber::parse(&person.identity_number, today()).map_err(|_| {
                ServiceError::internal(anyhow::anyhow!(
                    "disclosure {}: a stored identity number does not parse",
                    row.id
                ))
            })?;
            let reference = self.person_key.reference(&number).as_str().to_owned();
            if !references.contains(&reference) {
                references.push(reference);
            }
        }
        Ok(references)
    }

    fn event(
        &self,
        caller: &Caller,
        row: &DisclosureRow,
        event_type: &str,
        details: &[(&str, String)],
    ) -> Result<OutboxEvent, ServiceError> {
        let actor = OutboxActor {
            user_id: caller.principal.user_id.clone(),
            roles: caller.role_names(),
            organisation: caller.organisation.code().as_str().to_owned(),
            unit: caller.principal.unit.clone(),
        };
        self.event_as(actor, &Trace::of(caller), row, event_type, details, None)
    }

    /// An outbox event about `row` by `actor`; `refusal` marks it as recording a refusal.
    pub(crate) fn event_as(
        &self,
        actor: OutboxActor,
        trace: &Trace,
        row: &DisclosureRow,
        event_type: &str,
        details: &[(&str, String)],
        refusal: Option<String>,
    ) -> Result<OutboxEvent, ServiceError> {
        let event_id = uuid::Uuid::now_v7().to_string();
        let occurred_at = now_unix_ms();
        let registry_version = if row.registry_version.is_empty() {
            self.registry.registry_version().to_owned()
        } else {
            row.registry_version.clone()
        };
        let payload = OutboxPayload {
            event_id: event_id.clone(),
            event_type: event_type.to_owned(),
            occurred_at_unix_ms: occurred_at,
            disclosure_id: row.id.clone(),
            organisation: row.organisation.clone(),
            police_region: row.police_region.clone(),
            actor,
            state: row.state.clone(),
            version: row.version,
            legal_basis_id: row.legal_basis_id.clone(),
            registry_version,
            urgent: row.urgent != 0,
            person_refs: self.person_refs(row)?,
            trace_id: trace.trace_id.clone(),
            traceparent: trace.traceparent.clone(),
            refusal,
            details: details
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone()))
                .collect(),
        };
        let payload = serde_json::to_string(&payload)
            .map_err(|error| ServiceError::internal(anyhow::Error::new(error).context("event")))?;
        Ok(OutboxEvent {
            event_id,
            event_type: event_type.to_owned(),
            disclosure_id: row.id.clone(),
            organisation: row.organisation.clone(),
            payload,
            created_at: occurred_at,
        })
    }

    /// Records a read of personal data in the audit log, and returns only once it is durable
    /// there: a read that cannot be audited does not happen.
    async fn audit_read(
        &self,
        caller: &Caller,
        row: &DisclosureRow,
        event_type: &str,
        details: &[(&str, String)],
    ) -> Result<(), ServiceError> {
        let event = self.event(caller, row, event_type, details)?;
        let payload: OutboxPayload = serde_json::from_str(&event.payload)
            .map_err(|error| ServiceError::internal(anyhow::Error::new(error).context("event")))?;
        self.audit
            .append(vec![crate::relay::audit_event(&payload)])
            .await
            .map_err(|error| {
                tracing::warn!(error = %error, disclosure_id = %row.id, "read not audited, refused");
                ServiceError::Unavailable(
                    "the read could not be recorded in the audit log, so nothing is returned; \
                     retry later"
                        .into(),
                )
            })?;
        Ok(())
    }

    fn to_wire(&self, row: &DisclosureRow, reveal: bool) -> Result<Disclosure, ServiceError> {
        let mut content = self.open_content(row)?;
        let protected = self.open_protected(row)?;
        content.victim_protected = Some(if reveal {
            protected
        } else {
            content::masked(&protected)
        });
        let decision = if row.decision_outcome.is_empty() {
            None
        } else {
            let assessment = match &row.assessment {
                Some(bytes) => Some(WireAssessment::decode(bytes.as_slice()).map_err(|error| {
                    ServiceError::internal(anyhow::Error::new(error).context("assessment"))
                })?),
                None => None,
            };
            Some(Decision {
                outcome: row.decision_outcome.clone(),
                decided_by: row.decided_by.clone(),
                decided_at_unix_ms: row.decided_at,
                reason: row.decision_reason.clone(),
                payload_sha256: row.payload_sha256.clone(),
                registry_version: row.registry_version.clone(),
                catalogue_version: row.catalogue_version.clone(),
                assessment,
            })
        };
        Ok(Disclosure {
            id: row.id.clone(),
            version: row.version,
            state: wire_state(stored_state(row)?) as i32,
            organisation: row.organisation.clone(),
            police_region: row.police_region.clone(),
            content: Some(content),
            protected_revealed: reveal,
            drafted_by: row.drafted_by.clone(),
            created_at_unix_ms: row.created_at,
            updated_at_unix_ms: row.updated_at,
            submitted_by: row.submitted_by.clone(),
            submitted_at_unix_ms: row.submitted_at,
            decision,
            delivery: None,
        })
    }

    /// Writes a changed row under the caller's expected version, or reports the conflict.
    async fn save(
        &self,
        row: &DisclosureRow,
        expected_version: i64,
        event: &OutboxEvent,
    ) -> Result<(), ServiceError> {
        if self.store.update(row, expected_version, event).await? {
            self.signal_outbox();
            return Ok(());
        }
        let current = self
            .store
            .get(&row.id)
            .await?
            .map(|stored| stored.version)
            .unwrap_or_default();
        Err(ServiceError::StaleVersion {
            expected: expected_version,
            current,
        })
    }

    fn assess_draft(
        &self,
        draft: &ValidatedDraft,
        organisation: &Organisation,
        as_of: time::Date,
    ) -> Result<tryggdel_domain::Assessment, ServiceError> {
        let basis = draft.legal_basis.as_ref().ok_or_else(|| {
            ServiceError::invalid("content.legal_basis_id", "required for an assessment")
        })?;
        let facts = draft.case_facts(organisation)?;
        tryggdel_domain::assess(&self.registry, basis, &facts, as_of)
            .map_err(|error| ServiceError::invalid("content.legal_basis_id", error))
    }

    /// A decision maker may decide a case of their organisation under a basis they hold the
    /// delegation for, and never a case they drafted.
    fn require_decider(&self, caller: &Caller, row: &DisclosureRow) -> Result<(), ServiceError> {
        caller.require_any(&[Role::DecisionMaker], "deciding a disclosure")?;
        if caller.organisation.code().as_str() != row.organisation {
            return Err(ServiceError::NotFound("disclosure"));
        }
        if caller.user() == row.drafted_by {
            return Err(ServiceError::PermissionDenied(
                "four-eyes rule: the drafter of a disclosure may not decide it".into(),
            ));
        }
        let basis = LegalBasisId::parse(&row.legal_basis_id).map_err(|_| {
            ServiceError::FailedPrecondition("the disclosure names no legal basis".into())
        })?;
        if !self
            .directory()
            .holds_delegation(caller.organisation.code(), caller.user(), &basis)
        {
            return Err(ServiceError::PermissionDenied(format!(
                "you hold no delegation to decide under {basis} in {}",
                row.organisation
            )));
        }
        Ok(())
    }

    fn require_drafter(
        caller: &Caller,
        row: &DisclosureRow,
        action: &str,
    ) -> Result<(), ServiceError> {
        caller.require_any(&[Role::Caseworker], action)?;
        if caller.user() != row.drafted_by {
            return Err(ServiceError::PermissionDenied(format!(
                "only the drafter may {action}"
            )));
        }
        Ok(())
    }

    async fn create_draft(
        &self,
        caller: &Caller,
        request: CreateDraftRequest,
    ) -> Result<Disclosure, ServiceError> {
        caller.require_any(&[Role::Caseworker], "drafting a disclosure")?;
        let police_region = match (
            caller.organisation.secrecy(),
            caller.organisation.police_region(),
        ) {
            (Some(_), Some(region)) => region,
            _ => {
                return Err(ServiceError::PermissionDenied(format!(
                    "organisation {} holds no secrecy a disclosure could break",
                    caller.organisation.code()
                )));
            }
        };
        let request_id = request.client_request_id.trim();
        if !(8..=64).contains(&request_id.len())
            || !request_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ServiceError::invalid(
                "client_request_id",
                "must be 8-64 characters of letters, digits, - and _",
            ));
        }
        let content = request.content.unwrap_or_default();
        let fingerprint = hex::encode(Sha256::digest(content.encode_to_vec()));
        let organisation_code = caller.organisation.code().as_str().to_owned();
        // A retry is found by its request id when the insert collides, so a first request
        // costs no lookup. One that no longer validates (the rules are effective-dated) is
        // looked up before it is refused: what was accepted is answered as it was.
        let draft = match content::validate(&content, today()) {
            Ok(draft) => draft,
            Err(error) => {
                return match self
                    .store
                    .find_by_client_request(&organisation_code, caller.user(), request_id)
                    .await?
                {
                    Some(existing) => self.replay(existing, &fingerprint),
                    None => Err(error),
                };
            }
        };
        let mut row = DisclosureRow::new_draft(
            &organisation_code,
            police_region.as_str(),
            caller.user(),
            request_id,
            &fingerprint,
            now_unix_ms(),
        );
        self.seal_draft(&mut row, &draft)?;
        let event = self.event(
            caller,
            &row,
            "disclosure.draft_created",
            &follow_up_detail(&draft.content),
        )?;
        match self.store.insert_draft(&row, &event).await? {
            InsertOutcome::Inserted => {
                self.signal_outbox();
                tracing::info!(disclosure_id = %row.id, organisation = %row.organisation, "draft created");
                self.to_wire(&row, false)
            }
            InsertOutcome::DuplicateRequest => {
                let existing = self
                    .store
                    .find_by_client_request(&organisation_code, caller.user(), request_id)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::internal(anyhow::anyhow!("duplicate request id vanished"))
                    })?;
                self.replay(existing, &fingerprint)
            }
        }
    }

    /// The answer to a retried CreateDraft: the draft it created, if the request is the same.
    fn replay(
        &self,
        existing: DisclosureRow,
        fingerprint: &str,
    ) -> Result<Disclosure, ServiceError> {
        if existing.request_fingerprint != fingerprint {
            return Err(ServiceError::AlreadyExists(
                "client_request_id was already used for a draft with other content".into(),
            ));
        }
        self.to_wire(&existing, false)
    }

    async fn update_draft(
        &self,
        caller: &Caller,
        request: UpdateDraftRequest,
    ) -> Result<Disclosure, ServiceError> {
        caller.require_any(&[Role::Caseworker], "changing a draft")?;
        let mut row = self.load_visible(caller, &request.disclosure_id).await?;
        Self::require_drafter(caller, &row, "change a draft")?;
        check_expected_version(request.expected_version, &row)?;
        let next = apply(&row, LifecycleAction::Update)?;
        let draft = content::validate(&request.content.unwrap_or_default(), today())?;
        self.seal_draft(&mut row, &draft)?;
        row.state = next.as_str().to_owned();
        row.version += 1;
        row.updated_at = now_unix_ms();
        let event = self.event(caller, &row, "disclosure.draft_updated", &[])?;
        self.save(&row, request.expected_version, &event).await?;
        self.to_wire(&row, false)
    }

    async fn assess(
        &self,
        caller: &Caller,
        request: AssessLegalBasisRequest,
    ) -> Result<WireAssessment, ServiceError> {
        caller.require_any(
            &[
                Role::Caseworker,
                Role::DecisionMaker,
                Role::ComplianceOfficer,
            ],
            "assessing a legal basis",
        )?;
        let as_of = if request.as_of.trim().is_empty() {
            today()
        } else {
            content::parse_date(&request.as_of)
                .map_err(|problem| ServiceError::invalid("as_of", problem))?
        };
        let (draft, organisation) = match request.target {
            Some(Target::DisclosureId(id)) => {
                let row = self.load_visible(caller, &id).await?;
                (self.stored_draft(&row)?, self.organisation_of(&row)?)
            }
            Some(Target::Content(content)) => (
                content::validate(&content, today())?,
                caller.organisation.clone(),
            ),
            None => {
                return Err(ServiceError::invalid(
                    "target",
                    "give a disclosure_id or the content to assess",
                ));
            }
        };
        let assessment = self.assess_draft(&draft, &organisation, as_of)?;
        Ok(wire_assessment(&assessment))
    }

    async fn submit(
        &self,
        caller: &Caller,
        request: SubmitRequest,
    ) -> Result<Disclosure, ServiceError> {
        caller.require_any(&[Role::Caseworker], "submitting a disclosure")?;
        let mut row = self.load_visible(caller, &request.disclosure_id).await?;
        Self::require_drafter(caller, &row, "submit a draft")?;
        check_expected_version(request.expected_version, &row)?;
        let next = apply(&row, LifecycleAction::Submit)?;
        let missing = self.stored_draft(&row)?.missing_for_submission();
        if !missing.is_empty() {
            return Err(ServiceError::FailedPrecondition(format!(
                "the draft is incomplete: missing {}",
                missing.join(", ")
            )));
        }
        let now = now_unix_ms();
        row.state = next.as_str().to_owned();
        row.version += 1;
        row.updated_at = now;
        row.submitted_by = caller.user().to_owned();
        row.submitted_at = now;
        let event = self.event(caller, &row, "disclosure.submitted", &[])?;
        self.save(&row, request.expected_version, &event).await?;
        tracing::info!(disclosure_id = %row.id, "submitted");
        self.to_wire(&row, false)
    }

    async fn approve(
        &self,
        caller: &Caller,
        request: ApproveRequest,
    ) -> Result<Disclosure, ServiceError> {
        caller.require_any(&[Role::DecisionMaker], "approving a disclosure")?;
        let mut row = self.load_visible(caller, &request.disclosure_id).await?;
        self.require_decider(caller, &row)?;
        check_expected_version(request.expected_version, &row)?;
        let comment = reason_text("comment", &request.comment, false)?;
        let next = apply(&row, LifecycleAction::Approve)?;
        let draft = self.stored_draft(&row)?;
        let missing = draft.missing_for_submission();
        if !missing.is_empty() {
            return Err(ServiceError::FailedPrecondition(format!(
                "the disclosure is incomplete: missing {}",
                missing.join(", ")
            )));
        }
        let organisation = self.organisation_of(&row)?;
        let assessment = self.assess_draft(&draft, &organisation, today())?;
        if !assessment.passed() {
            let failures: Vec<String> = assessment
                .conditions()
                .iter()
                .filter(|condition| !condition.passed())
                .map(|condition| format!("{}: {}", condition.key(), condition.reason()))
                .collect();
            let mut message = format!(
                "the legal assessment does not pass: {}",
                failures.join("; ")
            );
            if !assessment.suggestions().is_empty() {
                let names: Vec<&str> = assessment
                    .suggestions()
                    .iter()
                    .map(|id| id.as_str())
                    .collect();
                message.push_str(&format!(" (consider {})", names.join(" or ")));
            }
            return Err(ServiceError::FailedPrecondition(message));
        }
        let police_region = organisation.police_region().ok_or_else(|| {
            ServiceError::FailedPrecondition(format!(
                "organisation {} routes to no police region",
                row.organisation
            ))
        })?;
        let payload = PolicePayload::new(PolicePayloadInput {
            disclosure_id: row.id.clone(),
            organisation_code: organisation.code().clone(),
            organisation_name: organisation.name().to_owned(),
            unit: draft.content.unit.clone(),
            police_region,
            legal_basis: assessment.basis().clone(),
            registry_version: assessment.registry_version().to_owned(),
            crime: draft.crime.clone(),
            catalogue_version: assessment.catalogue_version().to_owned(),
            urgent: draft.content.urgent,
            items: draft.payload_items(),
        })
        .map_err(|error| {
            ServiceError::FailedPrecondition(format!("the police payload: {error}"))
        })?;
        let now = now_unix_ms();
        row.state = next.as_str().to_owned();
        row.version += 1;
        row.updated_at = now;
        row.decision_outcome = "approved".into();
        row.decided_by = caller.user().to_owned();
        row.decided_at = now;
        row.decision_reason = comment;
        row.payload_sha256 = payload.sha256_hex();
        row.payload_sealed = self.cipher.seal(
            &payload.canonical_bytes(),
            &format!("disclosure:{}:payload", row.id),
        )?;
        row.registry_version = assessment.registry_version().to_owned();
        row.catalogue_version = assessment.catalogue_version().to_owned();
        row.assessment = Some(wire_assessment(&assessment).encode_to_vec());
        let event = self.event(
            caller,
            &row,
            "disclosure.approved",
            &[
                ("payload_sha256", row.payload_sha256.clone()),
                ("catalogue_version", row.catalogue_version.clone()),
                (
                    "data_items",
                    draft
                        .data_items
                        .iter()
                        .map(|item| item.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            ],
        )?;
        self.save(&row, request.expected_version, &event).await?;
        tracing::info!(disclosure_id = %row.id, "approved");
        self.to_wire(&row, false)
    }

    async fn reject(
        &self,
        caller: &Caller,
        request: RejectRequest,
    ) -> Result<Disclosure, ServiceError> {
        caller.require_any(&[Role::DecisionMaker], "rejecting a disclosure")?;
        let mut row = self.load_visible(caller, &request.disclosure_id).await?;
        self.require_decider(caller, &row)?;
        let reason = reason_text("reason", &request.reason, true)?;
        check_expected_version(request.expected_version, &row)?;
        let next = apply(&row, LifecycleAction::Reject)?;
        let now = now_unix_ms();
        row.state = next.as_str().to_owned();
        row.version += 1;
        row.updated_at = now;
        row.decision_outcome = "rejected".into();
        row.decided_by = caller.user().to_owned();
        row.decided_at = now;
        row.decision_reason = reason.clone();
        let event = self.event(
            caller,
            &row,
            "disclosure.rejected",
            &[("reason", reason.clone())],
        )?;
        self.save(&row, request.expected_version, &event).await?;
        self.to_wire(&row, false)
    }

    async fn withdraw(
        &self,
        caller: &Caller,
        request: WithdrawRequest,
    ) -> Result<Disclosure, ServiceError> {
        caller.require_any(
            &[Role::Caseworker, Role::DecisionMaker],
            "withdrawing a disclosure",
        )?;
        let mut row = self.load_visible(caller, &request.disclosure_id).await?;
        let is_drafter = caller.has(Role::Caseworker) && caller.user() == row.drafted_by;
        if !is_drafter {
            self.require_decider(caller, &row)?;
        }
        let reason = reason_text("reason", &request.reason, false)?;
        check_expected_version(request.expected_version, &row)?;
        let next = apply(&row, LifecycleAction::Withdraw)?;
        let now = now_unix_ms();
        row.state = next.as_str().to_owned();
        row.version += 1;
        row.updated_at = now;
        row.decision_outcome = "withdrawn".into();
        row.decided_by = caller.user().to_owned();
        row.decided_at = now;
        row.decision_reason = reason.clone();
        let event = self.event(
            caller,
            &row,
            "disclosure.withdrawn",
            &[("reason", reason.clone())],
        )?;
        self.save(&row, request.expected_version, &event).await?;
        self.to_wire(&row, false)
    }

    async fn get(&self, caller: &Caller, request: GetRequest) -> Result<Disclosure, ServiceError> {
        let id = parse_disclosure_id(&request.disclosure_id)?;
        let (row, delivery) = self
            .store
            .get_with_delivery(&id)
            .await?
            .filter(|(row, _)| Self::may_see(caller, row))
            .ok_or(ServiceError::NotFound("disclosure"))?;
        if request.reveal_protected {
            let is_drafter = caller.has(Role::Caseworker) && caller.user() == row.drafted_by;
            let is_decider = self.require_decider(caller, &row).is_ok();
            if !(is_drafter || is_decider) {
                return Err(ServiceError::PermissionDenied(
                    "only the drafter or a decision maker of this case may reveal protected details"
                        .into(),
                ));
            }
            self.audit_read(
                caller,
                &row,
                "disclosure.protected_revealed",
                &[("fields", "address,workplace,school,shelter".into())],
            )
            .await?;
            tracing::info!(disclosure_id = %row.id, user = %caller.user(), "protected details revealed");
        } else if caller.has(Role::ComplianceOfficer) {
            self.audit_read(caller, &row, "disclosure.read", &[])
                .await?;
        }
        let mut disclosure = self.to_wire(&row, request.reveal_protected)?;
        disclosure.delivery = delivery.map(wire_delivery);
        Ok(disclosure)
    }

    /// The police's signed receipt, from the notification service.
    async fn record_receipt(
        &self,
        request: Request<RecordReceiptRequest>,
    ) -> Result<RecordReceiptResponse, ServiceError> {
        let service = Authenticator::service(&request).ok_or_else(|| {
            ServiceError::PermissionDenied(
                "RecordReceipt is for the notification service and needs its certificate".into(),
            )
        })?;
        if service.name != NOTIFICATION_SERVICE {
            return Err(ServiceError::PermissionDenied(format!(
                "service {} may not record receipts",
                service.name
            )));
        }
        let request = request.into_inner();
        // The server span continues the receipt relay's trace (the police acknowledgement's).
        let trace = Trace::continuing(&request.trace_id);
        let id = parse_disclosure_id(&request.disclosure_id)?;
        let statement = verify_receipt(
            &request.statement,
            &request.signature,
            &request.key_id,
            &self.receipt_key,
        )
        .map_err(|error| ServiceError::invalid("signature", error))?;
        if statement.disclosure_id != id {
            return Err(ServiceError::invalid(
                "statement",
                "the receipt is about another disclosure",
            ));
        }
        // A concurrent change (the delivery relay recording the hand-over) moves the version.
        for _ in 0..3 {
            let row = self
                .store
                .get(&id)
                .await?
                .ok_or(ServiceError::NotFound("disclosure"))?;
            if statement.police_region != row.police_region {
                return Err(ServiceError::invalid(
                    "statement",
                    format!(
                        "the receipt is from region {}, the disclosure went to {}",
                        statement.police_region, row.police_region
                    ),
                ));
            }
            if statement.payload_sha256 != row.payload_sha256 {
                return Err(ServiceError::FailedPrecondition(
                    "the receipt is for another payload than the one approved".into(),
                ));
            }
            let state = stored_state(&row)?;
            if state == DisclosureState::Acknowledged {
                return Ok(RecordReceiptResponse {
                    state: WireState::Acknowledged as i32,
                    duplicate: true,
                });
            }
            let mut next = row.clone();
            let mut events = Vec::new();
            if state == DisclosureState::Approved {
                // The receipt overtook the delivery relay's own record of the hand-over.
                next.state = apply(&next, LifecycleAction::Deliver)?.as_str().to_owned();
                next.version += 1;
                events.push(self.event_as(
                    crate::delivery::system_actor(),
                    &trace,
                    &next,
                    "disclosure.delivered",
                    &[("police_region", row.police_region.clone())],
                    None,
                )?);
            }
            next.state = apply(&next, LifecycleAction::Acknowledge)?
                .as_str()
                .to_owned();
            next.version += 1;
            next.updated_at = now_unix_ms();
            events.push(self.event_as(
                OutboxActor {
                    user_id: statement.acknowledged_by.clone(),
                    roles: vec![Role::PoliceOfficer.as_str().to_owned()],
                    organisation: POLICE_ORGANISATION.to_owned(),
                    unit: None,
                },
                &trace,
                &next,
                "disclosure.acknowledged",
                &[
                    ("police_reference", statement.police_reference.clone()),
                    ("acknowledged_at", statement.acknowledged_at.clone()),
                    ("receipt_key_id", request.key_id.clone()),
                ],
                None,
            )?);
            let delivered_at = self
                .store
                .delivery(&id)
                .await?
                .map(|delivery| delivery.delivered_at)
                .unwrap_or(statement.acknowledged_at_unix_ms);
            let delivery = DeliveryRow {
                disclosure_id: id.clone(),
                police_region: row.police_region.clone(),
                delivered_at,
                police_reference: statement.police_reference.clone(),
                acknowledged_by: statement.acknowledged_by.clone(),
                acknowledged_at: statement.acknowledged_at_unix_ms,
                receipt_statement: Some(request.statement.clone()),
                receipt_signature: Some(request.signature.clone()),
                receipt_key_id: request.key_id.clone(),
            };
            if self
                .store
                .record_delivery(&next, row.version, &events, &delivery, None)
                .await?
            {
                self.signal_outbox();
                tracing::info!(disclosure_id = %id, "receipt recorded");
                return Ok(RecordReceiptResponse {
                    state: WireState::Acknowledged as i32,
                    duplicate: false,
                });
            }
        }
        Err(ServiceError::Unavailable(
            "the disclosure kept changing; retry".into(),
        ))
    }

    async fn list(
        &self,
        caller: &Caller,
        request: ListRequest,
    ) -> Result<ListResponse, ServiceError> {
        caller.require_any(
            &[
                Role::Caseworker,
                Role::DecisionMaker,
                Role::ComplianceOfficer,
            ],
            "listing disclosures",
        )?;
        let supervisor = matches!(caller.organisation.kind(), OrganisationKind::Supervisor)
            && caller.has(Role::ComplianceOfficer);
        let state = match WireState::try_from(request.state) {
            Ok(WireState::Unspecified) => None,
            Ok(state) => Some(
                state
                    .as_str_name()
                    .trim_start_matches("DISCLOSURE_STATE_")
                    .to_ascii_lowercase(),
            ),
            Err(_) => return Err(ServiceError::invalid("state", "unknown state")),
        };
        if request.page_size > MAX_PAGE_SIZE {
            return Err(ServiceError::invalid(
                "page_size",
                format!("at most {MAX_PAGE_SIZE}"),
            ));
        }
        if request.created_from_unix_ms < 0 || request.created_until_unix_ms < 0 {
            return Err(ServiceError::invalid(
                "created_from_unix_ms",
                "times must not be negative",
            ));
        }
        let page_size = if request.page_size == 0 {
            DEFAULT_PAGE_SIZE
        } else {
            request.page_size
        };
        let after = if request.page_token.is_empty() {
            None
        } else {
            Some(decode_page_token(&request.page_token)?)
        };
        let rows = self
            .store
            .list(&ListFilter {
                organisation: (!supervisor).then(|| caller.organisation.code().as_str().to_owned()),
                state,
                created_from: request.created_from_unix_ms,
                created_until: request.created_until_unix_ms,
                after,
                limit: i64::from(page_size) + 1,
            })
            .await?;
        let has_more = rows.len() > page_size as usize;
        let page: Vec<&DisclosureRow> = rows.iter().take(page_size as usize).collect();
        let next_page_token = match (has_more, page.last()) {
            (true, Some(last)) => encode_page_token(last.created_at, &last.id),
            _ => String::new(),
        };
        let disclosures = page
            .into_iter()
            .map(|row| {
                Ok(DisclosureSummary {
                    id: row.id.clone(),
                    version: row.version,
                    state: wire_state(stored_state(row)?) as i32,
                    organisation: row.organisation.clone(),
                    legal_basis_id: row.legal_basis_id.clone(),
                    urgent: row.urgent != 0,
                    drafted_by: row.drafted_by.clone(),
                    created_at_unix_ms: row.created_at,
                    updated_at_unix_ms: row.updated_at,
                })
            })
            .collect::<Result<Vec<_>, ServiceError>>()?;
        Ok(ListResponse {
            disclosures,
            next_page_token,
        })
    }
}

fn encode_page_token(created_at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_at}:{id}"))
}

fn decode_page_token(token: &str) -> Result<(i64, String), ServiceError> {
    let invalid = || ServiceError::invalid("page_token", "not a token this service issued");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (time, id) = text.split_once(':').ok_or_else(invalid)?;
    let time = time.parse::<i64>().map_err(|_| invalid())?;
    let id = uuid::Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((time, id.to_string()))
}

/// Runs a handler body with the authenticated caller, mapping errors to statuses once.
macro_rules! handle {
    ($self:ident, $request:ident, $method:ident) => {{
        let caller = $self.authenticate(&$request)?;
        let result = $self.$method(&caller, $request.into_inner()).await;
        match result {
            Ok(reply) => Ok(Response::new(reply)),
            Err(error) => {
                tracing::debug!(user = %caller.user(), error = %error, concat!(stringify!($method), " refused"));
                Err(Status::from(error))
            }
        }
    }};
}

/// Links a draft that answers a police follow-up question to that question in its events.
fn follow_up_detail(content: &DraftContent) -> Vec<(&'static str, String)> {
    if content.answers_follow_up_id.is_empty() {
        Vec::new()
    } else {
        vec![("answers_follow_up_id", content.answers_follow_up_id.clone())]
    }
}

fn wire_delivery(delivery: DeliveryRow) -> DeliveryRecord {
    DeliveryRecord {
        police_region: delivery.police_region,
        delivered_at_unix_ms: delivery.delivered_at,
        police_reference: delivery.police_reference,
        acknowledged_by: delivery.acknowledged_by,
        acknowledged_at_unix_ms: delivery.acknowledged_at,
        receipt_statement: delivery.receipt_statement.unwrap_or_default(),
        receipt_signature: delivery.receipt_signature.unwrap_or_default(),
        receipt_key_id: delivery.receipt_key_id,
    }
}

#[tonic::async_trait]
impl DisclosureService for DisclosureApi {
    async fn record_receipt(
        &self,
        request: Request<RecordReceiptRequest>,
    ) -> Result<Response<RecordReceiptResponse>, Status> {
        DisclosureApi::record_receipt(self, request)
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn create_draft(
        &self,
        request: Request<CreateDraftRequest>,
    ) -> Result<Response<Disclosure>, Status> {
        handle!(self, request, create_draft)
    }

    async fn update_draft(
        &self,
        request: Request<UpdateDraftRequest>,
    ) -> Result<Response<Disclosure>, Status> {
        handle!(self, request, update_draft)
    }

    async fn assess_legal_basis(
        &self,
        request: Request<AssessLegalBasisRequest>,
    ) -> Result<Response<WireAssessment>, Status> {
        handle!(self, request, assess)
    }

    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<Disclosure>, Status> {
        handle!(self, request, submit)
    }

    async fn approve(
        &self,
        request: Request<ApproveRequest>,
    ) -> Result<Response<Disclosure>, Status> {
        handle!(self, request, approve)
    }

    async fn reject(
        &self,
        request: Request<RejectRequest>,
    ) -> Result<Response<Disclosure>, Status> {
        handle!(self, request, reject)
    }

    async fn withdraw(
        &self,
        request: Request<WithdrawRequest>,
    ) -> Result<Response<Disclosure>, Status> {
        handle!(self, request, withdraw)
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<Disclosure>, Status> {
        handle!(self, request, get)
    }

    async fn list(&self, request: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        handle!(self, request, list)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let id = uuid::Uuid::now_v7().to_string();
        let token = encode_page_token(1_700_000_000_000, &id);
        assert_eq!(decode_page_token(&token).unwrap(), (1_700_000_000_000, id));
        assert!(decode_page_token("garbage!").is_err());
        assert!(decode_page_token(&URL_SAFE_NO_PAD.encode("12:not-a-uuid")).is_err());
    }

    #[test]
    fn versions_must_be_given_and_current() {
        let row = DisclosureRow {
            version: 3,
            ..sample_row()
        };
        assert!(matches!(
            check_expected_version(0, &row),
            Err(ServiceError::InvalidArgument { .. })
        ));
        assert!(matches!(
            check_expected_version(2, &row),
            Err(ServiceError::StaleVersion {
                expected: 2,
                current: 3
            })
        ));
        assert!(check_expected_version(3, &row).is_ok());
    }

    fn sample_row() -> DisclosureRow {
        DisclosureRow::new_draft("bollnas-kommun", "mitt", "u", "request-1", "f", 0)
    }
}
