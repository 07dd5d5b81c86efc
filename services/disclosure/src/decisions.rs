//! The handlers that move a disclosure towards the police or end it: submit (the drafter),
//! approve and reject (a decision maker with the delegation, never the drafter), withdraw
//! (the drafter or a decider; once the police have it, a recall, which needs a reason).
//!
//! Invariant: an approval binds the exact payload the police will get — its canonical bytes
//! are sealed and their hash recorded with the decision — and only a passing legal assessment
//! is approved. A condition the law leaves to the decision maker (whether a victim of relation
//! `other` is a närstående) passes only on their own written judgement, which is stored with
//! the decision and audited; a judgement nothing asked for is refused.

use prost::Message;
use tryggdel_auth::Role;
use tryggdel_domain::{
    Assessment, DataItem, DisclosureState as DomainState, Inbox, LifecycleAction, Organisation,
    PolicePayload, PolicePayloadInput,
};
use tryggdel_proto::disclosure::v1::{
    ApproveRequest, Disclosure, PayloadItem, PayloadPreview, RejectRequest, SubmitRequest,
    WithdrawRequest,
};
use tryggdel_service_kit::{Caller, ServiceError, now_unix_ms, today_in_sweden};

use crate::api::DisclosureApi;
use crate::checks::{self, check_expected_version};
use crate::content::ValidatedDraft;
use crate::events::approval_details;
use crate::policy;
use crate::sealing;
use crate::store::{Decision, DecisionOutcome, DisclosureRecord, Step};
use crate::wire::wire_assessment;

impl DisclosureApi {
    pub(crate) async fn submit(
        &self,
        caller: &Caller,
        request: SubmitRequest,
    ) -> Result<Disclosure, ServiceError> {
        caller.require_any(&[Role::Caseworker], "submitting a disclosure")?;
        let mut record = self.load_visible(caller, &request.disclosure_id).await?;
        policy::require_drafter(caller, &record, "submit a draft")?;
        check_expected_version(request.expected_version, &record)?;
        let step = checks::step(&record, LifecycleAction::Submit)?;
        require_complete(&self.stored_draft(&record)?, "the draft")?;
        let now = now_unix_ms();
        record.advance(step, now);
        caller.user().clone_into(&mut record.submitted_by);
        record.submitted_at = now;
        let view = self
            .save(
                caller,
                &record,
                request.expected_version,
                "disclosure.submitted",
                &[],
            )
            .await?;
        tracing::info!(disclosure_id = %record.id, "submitted");
        Ok(view)
    }

    pub(crate) async fn approve(
        &self,
        caller: &Caller,
        request: ApproveRequest,
    ) -> Result<Disclosure, ServiceError> {
        caller.require_any(&[Role::DecisionMaker], "approving a disclosure")?;
        let mut record = self.load_visible(caller, &request.disclosure_id).await?;
        let delegations = self.delegations_for(&record).await?;
        let delegation = policy::require_decider(&delegations, today_in_sweden(), caller, &record)?;
        check_expected_version(request.expected_version, &record)?;
        let comment = checks::optional_text("comment", &request.comment)?;
        let judgement = checks::optional_line(
            JUDGEMENT_FIELD,
            &request.close_relative_judgement,
            MAX_JUDGEMENT_CHARS,
        )?;
        let step = checks::step(&record, LifecycleAction::Approve)?;
        let draft = self.stored_draft(&record)?;
        require_complete(&draft, "the disclosure")?;
        let organisation = self.organisation_of(&record)?;
        let assessment = self.assess_draft(&draft, &organisation, today_in_sweden())?;
        let assessment = judged(assessment, &judgement)?;
        require_passed(&assessment)?;
        let payload = police_payload(&record, &organisation, &draft, &assessment)?;
        let now = now_unix_ms();
        record.advance(step, now);
        record.decision = Some(Decision {
            outcome: DecisionOutcome::Approved,
            decided_by: caller.user().to_owned(),
            decided_at: now,
            reason: comment,
            payload_sha256: payload.sha256_hex(),
            payload_sealed: sealing::seal_payload(&self.cipher, &record.id, &payload)?,
            registry_version: assessment.registry_version().to_owned(),
            catalogue_version: assessment.catalogue_version().to_owned(),
            assessment: Some(wire_assessment(&assessment).encode_to_vec()),
            judgement,
            delegation_id: delegation.id().to_owned(),
        });
        let mut details = approval_details(&record, &draft);
        let answers = draft.content.answers_information_request_id.as_str();
        let view = if answers.is_empty() {
            self.save(
                caller,
                &record,
                request.expected_version,
                "disclosure.approved",
                &details,
            )
            .await?
        } else {
            let answered = self
                .answerable_request(&record.organisation, answers)
                .await?;
            details.push(("answers_information_request_id", answered.id.clone()));
            self.save_answering(
                caller,
                &record,
                request.expected_version,
                &details,
                &answered,
            )
            .await?
        };
        tracing::info!(disclosure_id = %record.id, "approved");
        Ok(view)
    }

    pub(crate) async fn reject(
        &self,
        caller: &Caller,
        request: RejectRequest,
    ) -> Result<Disclosure, ServiceError> {
        caller.require_any(&[Role::DecisionMaker], "rejecting a disclosure")?;
        let record = self.load_visible(caller, &request.disclosure_id).await?;
        let delegations = self.delegations_for(&record).await?;
        let delegation = policy::require_decider(&delegations, today_in_sweden(), caller, &record)?;
        let reason = checks::required_text("reason", &request.reason)?;
        check_expected_version(request.expected_version, &record)?;
        let step = checks::step(&record, LifecycleAction::Reject)?;
        let concluded = Concluded {
            step,
            outcome: DecisionOutcome::Rejected,
            event_type: "disclosure.rejected",
            reason,
            expected_version: request.expected_version,
            delegation_id: delegation.id().to_owned(),
        };
        self.conclude(caller, record, concluded).await
    }

    pub(crate) async fn withdraw(
        &self,
        caller: &Caller,
        request: WithdrawRequest,
    ) -> Result<Disclosure, ServiceError> {
        caller.require_any(
            &[Role::Caseworker, Role::DecisionMaker],
            "withdrawing a disclosure",
        )?;
        let record = self.load_visible(caller, &request.disclosure_id).await?;
        let delegations = self.delegations_for(&record).await?;
        policy::require_withdrawer(&delegations, today_in_sweden(), caller, &record)?;
        let recalls = record.state.withdrawal_recalls();
        let reason = if recalls {
            checks::required_text("reason", &request.reason)?
        } else {
            checks::optional_text("reason", &request.reason)?
        };
        check_expected_version(request.expected_version, &record)?;
        let step = checks::step(&record, LifecycleAction::Withdraw)?;
        if recalls {
            return self
                .recall(caller, record, step, reason, request.expected_version)
                .await;
        }
        let concluded = Concluded {
            step,
            outcome: DecisionOutcome::Withdrawn,
            event_type: "disclosure.withdrawn",
            reason,
            expected_version: request.expected_version,
            delegation_id: String::new(),
        };
        self.conclude(caller, record, concluded).await
    }

    /// Withdraws `record`, which the police already have, as a recall: the approval and the
    /// delivery stay on record as they were, and the withdrawal (who, when, why, from which
    /// state) is the `disclosure.recalled` event, which the audit log and the police get.
    async fn recall(
        &self,
        caller: &Caller,
        mut record: DisclosureRecord,
        step: Step,
        reason: String,
        expected_version: i64,
    ) -> Result<Disclosure, ServiceError> {
        let recalled_from = record.state.as_str().to_owned();
        let now = now_unix_ms();
        record.advance(step, now);
        let details = [
            ("reason", reason),
            ("recalled_from", recalled_from),
            ("withdrawn_at_unix_ms", now.to_string()),
        ];
        let view = self
            .save(
                caller,
                &record,
                expected_version,
                "disclosure.recalled",
                &details,
            )
            .await?;
        tracing::info!(disclosure_id = %record.id, "recalled from the police");
        Ok(view)
    }

    /// Ends `record` as `concluded` says, by the caller, and saves it with its event.
    async fn conclude(
        &self,
        caller: &Caller,
        mut record: DisclosureRecord,
        concluded: Concluded,
    ) -> Result<Disclosure, ServiceError> {
        let now = now_unix_ms();
        record.advance(concluded.step, now);
        let reason = concluded.reason;
        record.conclude(concluded.outcome, caller.user(), now, reason.clone());
        let mut details = vec![("reason", reason)];
        if let Some(decision) = record.decision.as_mut()
            && !concluded.delegation_id.is_empty()
        {
            decision.delegation_id.clone_from(&concluded.delegation_id);
            details.push(("delegation_id", concluded.delegation_id));
        }
        self.save(
            caller,
            &record,
            concluded.expected_version,
            concluded.event_type,
            &details,
        )
        .await
    }
}

/// A rejection or withdrawal, checked and ready to record.
struct Concluded {
    step: Step,
    outcome: DecisionOutcome,
    event_type: &'static str,
    reason: String,
    expected_version: i64,
    /// The delegation a rejection relied on; empty for a withdrawal, which keeps what an
    /// approval recorded.
    delegation_id: String,
}

/// A disclosure goes on only when nothing required is missing from `what`.
fn require_complete(draft: &ValidatedDraft, what: &str) -> Result<(), ServiceError> {
    let missing = draft.missing_for_submission();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ServiceError::FailedPrecondition(format!(
        "{what} is incomplete: missing {}",
        missing.join(", ")
    )))
}

/// The approval field holding the decision maker's written judgement.
const JUDGEMENT_FIELD: &str = "close_relative_judgement";

/// The longest judgement: it goes into the approval's audit entry, whose details hold at most
/// this many characters, on one line.
const MAX_JUDGEMENT_CHARS: usize = 2000;

/// The assessment as the decision maker's `judgement` (trimmed, possibly empty) leaves it:
/// confirmed where it needed their judgement and they gave it. A judgement is refused when
/// nothing needs one, and required when something does and nothing else fails (a failing
/// condition is refused for itself).
fn judged(assessment: Assessment, judgement: &str) -> Result<Assessment, ServiceError> {
    if !assessment.needs_judgement() {
        if judgement.is_empty() {
            return Ok(assessment);
        }
        return Err(ServiceError::invalid(
            JUDGEMENT_FIELD,
            "no condition of the assessment needs your judgement, so none is recorded; \
             approve without it",
        ));
    }
    if !judgement.is_empty() {
        return Ok(assessment.with_judgement_confirmed());
    }
    if !assessment.passes_given_judgement() {
        return Ok(assessment);
    }
    Err(ServiceError::FailedPrecondition(format!(
        "{JUDGEMENT_FIELD}: the victim's relation 'other' needs your judgement whether they are a \
         närstående; approve with your written reasoning"
    )))
}

/// Only a passing assessment is approved; the refusal names each condition that failed or
/// still needs judgement, and the bases that might fit instead.
fn require_passed(assessment: &Assessment) -> Result<(), ServiceError> {
    if assessment.passed() {
        return Ok(());
    }
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
    Err(ServiceError::FailedPrecondition(message))
}

impl DisclosureApi {
    /// What the police get (once approved) or would get if approved now (submitted, with an
    /// assessment today that passes, or passes once the decision maker gives the judgement it
    /// needs), item by item with its hash; protected items masked unless `revealed`. None for
    /// a draft, an incomplete or failing submission, or an ended case.
    pub(crate) fn payload_preview(
        &self,
        record: &DisclosureRecord,
        revealed: bool,
    ) -> Result<Option<PayloadPreview>, ServiceError> {
        let payload = match record.state {
            DomainState::Approved | DomainState::Delivered | DomainState::Acknowledged => {
                let bytes = sealing::open_payload(&self.cipher, record)?;
                PolicePayload::from_canonical_bytes(&bytes).map_err(|error| {
                    ServiceError::internal(anyhow::anyhow!("the sealed payload: {error}"))
                })?
            }
            DomainState::Submitted => {
                let draft = self.stored_draft(record)?;
                if !draft.missing_for_submission().is_empty() {
                    return Ok(None);
                }
                let organisation = self.organisation_of(record)?;
                let assessment = self.assess_draft(&draft, &organisation, today_in_sweden())?;
                if !assessment.passes_given_judgement() {
                    return Ok(None);
                }
                police_payload(record, &organisation, &draft, &assessment)?
            }
            _ => return Ok(None),
        };
        let items = payload
            .items()
            .iter()
            .map(|(item, value)| {
                let protected = DataItem::parse(item).is_ok_and(DataItem::is_protected);
                let masked = protected && !revealed;
                PayloadItem {
                    item: item.clone(),
                    value: if masked { String::new() } else { value.clone() },
                    protected,
                    masked,
                }
            })
            .collect();
        Ok(Some(PayloadPreview {
            sha256: payload.sha256_hex(),
            items,
        }))
    }
}

/// The payload the police will get for an approval of `record`.
fn police_payload(
    record: &DisclosureRecord,
    organisation: &Organisation,
    draft: &ValidatedDraft,
    assessment: &Assessment,
) -> Result<PolicePayload, ServiceError> {
    // The inbox decided when the draft was last saved (its recipient's, or the asking
    // officer's for an answer to a request): the approval binds it with the rest.
    let inbox = Inbox::parse(&record.police_region).map_err(|error| {
        ServiceError::internal(anyhow::Error::new(error).context("a stored disclosure's inbox"))
    })?;
    PolicePayload::new(PolicePayloadInput {
        disclosure_id: record.id.clone(),
        organisation_code: organisation.code().clone(),
        organisation_name: organisation.name().to_owned(),
        unit: draft.content.unit.clone(),
        inbox,
        legal_basis: assessment.basis().clone(),
        registry_version: assessment.registry_version().to_owned(),
        crime: draft.crime.clone(),
        catalogue_version: assessment.catalogue_version().to_owned(),
        urgent: draft.content.urgent,
        items: draft.payload_items(),
    })
    .map_err(|error| ServiceError::FailedPrecondition(format!("the police payload: {error}")))
}
