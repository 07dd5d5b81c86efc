//! The caseworker's handlers: create a draft (idempotent by the client's request id), change
//! it, and assess a legal basis for a draft or for content not yet saved.
//!
//! Invariant: a retried create answers with the draft the first attempt created, and only if
//! the content is the same.

use prost::Message;
use sha2::{Digest, Sha256};
use tryggdel_auth::Role;
use tryggdel_domain::{Inbox, LifecycleAction, Recipient};
use tryggdel_proto::disclosure::v1::{
    AssessLegalBasisRequest, Assessment as WireAssessment, CreateDraftRequest, Disclosure,
    UpdateDraftRequest, assess_legal_basis_request::Target,
};
use tryggdel_service_kit::{Caller, ServiceError, now_unix_ms, today_in_sweden};

use crate::api::DisclosureApi;
use crate::checks::{self, check_expected_version};
use crate::content;
use crate::events::follow_up_detail;
use crate::policy::{self, READERS};
use crate::sealing;
use crate::store::{DisclosureRecord, InsertOutcome};
use crate::wire::wire_assessment;

impl DisclosureApi {
    pub(crate) async fn create_draft(
        &self,
        caller: &Caller,
        request: CreateDraftRequest,
    ) -> Result<Disclosure, ServiceError> {
        caller.require_any(&[Role::Caseworker], "drafting a disclosure")?;
        policy::drafting_region(caller)?;
        let request_id = checks::client_request_id(&request.client_request_id)?;
        let content = request.content.unwrap_or_default();
        let fingerprint = hex::encode(Sha256::digest(content.encode_to_vec()));
        let organisation = caller.organisation.code().as_str();
        // A retry is found by its request id when the insert collides, so a first request
        // costs no lookup. One that no longer validates (the rules are effective-dated) is
        // looked up before it is refused: what was accepted is answered as it was.
        let draft = match content::validate(&content, today_in_sweden()) {
            Ok(draft) => draft,
            Err(error) => {
                return match self.earlier_draft(caller, request_id).await? {
                    Some(existing) => self.replay(existing, &fingerprint),
                    None => Err(error),
                };
            }
        };
        let inbox = self.drafting_inbox(caller, &draft).await?;
        let mut record = DisclosureRecord::new_draft(
            organisation,
            inbox.as_str(),
            caller.user(),
            request_id,
            &fingerprint,
            now_unix_ms(),
        );
        sealing::seal_draft(&self.cipher, &mut record, &draft)?;
        let details = follow_up_detail(&draft.content);
        let event = self.event(caller, &record, "disclosure.draft_created", &details)?;
        match self.store.insert_draft(&record, &event).await? {
            InsertOutcome::Inserted => {
                self.signal_outbox();
                tracing::info!(disclosure_id = %record.id, organisation = %record.organisation, "draft created");
                self.masked_view(&record)
            }
            InsertOutcome::DuplicateRequest => {
                let existing = self
                    .earlier_draft(caller, request_id)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::internal(anyhow::anyhow!("duplicate request id vanished"))
                    })?;
                self.replay(existing, &fingerprint)
            }
        }
    }

    pub(crate) async fn update_draft(
        &self,
        caller: &Caller,
        request: UpdateDraftRequest,
    ) -> Result<Disclosure, ServiceError> {
        caller.require_any(&[Role::Caseworker], "changing a draft")?;
        let mut record = self.load_visible(caller, &request.disclosure_id).await?;
        policy::require_drafter(caller, &record, "change a draft")?;
        check_expected_version(request.expected_version, &record)?;
        let step = checks::step(&record, LifecycleAction::Update)?;
        let draft = content::validate(&request.content.unwrap_or_default(), today_in_sweden())?;
        let inbox = self.drafting_inbox(caller, &draft).await?;
        inbox.as_str().clone_into(&mut record.police_region);
        sealing::seal_draft(&self.cipher, &mut record, &draft)?;
        record.advance(step, now_unix_ms());
        self.save(
            caller,
            &record,
            request.expected_version,
            "disclosure.draft_updated",
            &[],
        )
        .await
    }

    pub(crate) async fn assess(
        &self,
        caller: &Caller,
        request: AssessLegalBasisRequest,
    ) -> Result<WireAssessment, ServiceError> {
        caller.require_any(&READERS, "assessing a legal basis")?;
        let as_of = checks::as_of(&request.as_of)?;
        let (draft, organisation, decision_delegation) = match request.target {
            Some(Target::DisclosureId(id)) => {
                let record = self.load_visible(caller, &id).await?;
                (
                    self.stored_draft(&record)?,
                    self.organisation_of(&record)?,
                    self.decision_delegation(&record).await?,
                )
            }
            Some(Target::Content(content)) => (
                content::validate(&content, today_in_sweden())?,
                caller.organisation.clone(),
                None,
            ),
            None => {
                return Err(ServiceError::invalid(
                    "target",
                    "give a disclosure_id or the content to assess",
                ));
            }
        };
        let assessment = self.assess_draft(&draft, &organisation, as_of)?;
        Ok(WireAssessment {
            decision_delegation,
            ..wire_assessment(&assessment)
        })
    }

    /// The inbox a caseworker's draft goes to: the requesting officer's when it answers a
    /// request for information (which must be open and to the caseworker's organisation, and
    /// the draft's recipient its authority); otherwise its recipient's (the police: the
    /// region of the organisation's county, also while no recipient is chosen).
    async fn drafting_inbox(
        &self,
        caller: &Caller,
        draft: &content::ValidatedDraft,
    ) -> Result<Inbox, ServiceError> {
        let region = policy::drafting_region(caller)?;
        let request_id = draft.content.answers_information_request_id.as_str();
        if request_id.is_empty() {
            let recipient = draft.recipient.unwrap_or(Recipient::Polismyndigheten);
            return Inbox::for_recipient(recipient, Some(region)).ok_or_else(|| {
                ServiceError::internal(anyhow::anyhow!("no inbox for {recipient} from {region}"))
            });
        }
        let request = self
            .answerable_request(caller.organisation.code().as_str(), request_id)
            .await?;
        if let Some(recipient) = draft
            .recipient
            .filter(|recipient| recipient.as_str() != request.requester_authority)
        {
            return Err(ServiceError::invalid(
                "content.recipient",
                format!(
                    "the draft answers a request from {}, so it goes to them, not to {recipient}",
                    request.requester_authority
                ),
            ));
        }
        Inbox::parse(&request.requester_inbox).map_err(|error| {
            ServiceError::internal(anyhow::Error::new(error).context("a stored request's inbox"))
        })
    }

    /// The draft this caller created with `request_id`, if any.
    async fn earlier_draft(
        &self,
        caller: &Caller,
        request_id: &str,
    ) -> Result<Option<DisclosureRecord>, ServiceError> {
        let organisation = caller.organisation.code().as_str();
        Ok(self
            .store
            .find_by_client_request(organisation, caller.user(), request_id)
            .await?)
    }

    /// The answer to a retried CreateDraft: the draft it created, if the request is the same.
    fn replay(
        &self,
        existing: DisclosureRecord,
        fingerprint: &str,
    ) -> Result<Disclosure, ServiceError> {
        if existing.request_fingerprint != fingerprint {
            return Err(ServiceError::AlreadyExists(
                "client_request_id was already used for a draft with other content".into(),
            ));
        }
        self.masked_view(&existing)
    }
}
