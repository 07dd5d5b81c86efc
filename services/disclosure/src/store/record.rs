//! A disclosure as the service works with it: a row of `disclosures` parsed once at the store's
//! edge into a typed [`DisclosureRecord`] (its state the domain's enum, its flag a `bool`, its
//! decision an `Option`). A row that does not parse is an error, never a default.

use sqlx::Row;
use tryggdel_domain::{DisclosureState, LifecycleAction, TransitionError, transition};

/// The columns of `disclosures`, in [`bind_record`]'s order.
pub(super) const COLUMNS: &str = "id, organisation, police_region, state, version, urgent, \
    legal_basis_id, drafted_by, client_request_id, request_fingerprint, content_sealed, \
    protected_sealed, created_at, updated_at, submitted_by, submitted_at, decision_outcome, \
    decided_by, decided_at, decision_reason, payload_sha256, payload_sealed, registry_version, \
    catalogue_version, assessment, decision_judgement, expiry_warned_at, decision_delegation_id";

/// One disclosure. Personal data only in the sealed fields.
#[derive(Clone, Debug, PartialEq)]
pub struct DisclosureRecord {
    pub id: String,
    pub organisation: String,
    pub police_region: String,
    pub state: DisclosureState,
    pub version: i64,
    pub urgent: bool,
    pub legal_basis_id: String,
    pub drafted_by: String,
    pub client_request_id: String,
    pub request_fingerprint: String,
    pub content_sealed: String,
    pub protected_sealed: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub submitted_by: String,
    pub submitted_at: i64,
    /// None until the disclosure is approved, rejected or withdrawn.
    pub decision: Option<Decision>,
    /// When its author was last warned that it expires untouched (0: never); a warning
    /// older than `updated_at` no longer counts.
    pub expiry_warned_at: i64,
}

/// How a disclosure was decided (a withdrawal counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecisionOutcome {
    Approved,
    Rejected,
    Withdrawn,
}

/// A decision on a disclosure. What an approval bound (the payload, its hash, the versions and
/// the assessment) is empty for the other outcomes, and kept by a later withdrawal.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub outcome: DecisionOutcome,
    pub decided_by: String,
    pub decided_at: i64,
    pub reason: String,
    pub payload_sha256: String,
    pub payload_sealed: String,
    pub registry_version: String,
    pub catalogue_version: String,
    /// The encoded wire `Assessment` the approval passed.
    pub assessment: Option<Vec<u8>>,
    /// The decision maker's written judgement the approval rests on (whether a victim of
    /// relation `other` is a närstående); empty when the assessment needed none.
    pub judgement: String,
    /// The id of the delegation an approval or rejection relied on (empty when none did: a
    /// withdrawal by the drafter, or a decision from before delegations were stored).
    pub delegation_id: String,
}

/// A lifecycle step the domain's state machine allowed from a record's state; only
/// [`DisclosureRecord::step`] makes one, and [`DisclosureRecord::advance`] takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    to: DisclosureState,
}

/// A stored row the service cannot read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("disclosure {id} has unknown state {state:?}")]
    UnknownState { id: String, state: String },
    #[error("disclosure {id} has unknown decision outcome {outcome:?}")]
    UnknownDecision { id: String, outcome: String },
}

/// A row of `disclosures` exactly as stored.
#[derive(Clone, Debug, PartialEq)]
struct StoredDisclosure {
    id: String,
    organisation: String,
    police_region: String,
    state: String,
    version: i64,
    urgent: i64,
    legal_basis_id: String,
    drafted_by: String,
    client_request_id: String,
    request_fingerprint: String,
    content_sealed: String,
    protected_sealed: String,
    created_at: i64,
    updated_at: i64,
    submitted_by: String,
    submitted_at: i64,
    decision_outcome: String,
    decided_by: String,
    decided_at: i64,
    decision_reason: String,
    payload_sha256: String,
    payload_sealed: String,
    registry_version: String,
    catalogue_version: String,
    assessment: Option<Vec<u8>>,
    decision_judgement: String,
    expiry_warned_at: i64,
    decision_delegation_id: String,
}

impl DecisionOutcome {
    /// The stored and wire name: `approved`, `rejected`, `withdrawn`.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionOutcome::Approved => "approved",
            DecisionOutcome::Rejected => "rejected",
            DecisionOutcome::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(text: &str) -> Option<DecisionOutcome> {
        [
            DecisionOutcome::Approved,
            DecisionOutcome::Rejected,
            DecisionOutcome::Withdrawn,
        ]
        .into_iter()
        .find(|outcome| outcome.as_str() == text)
    }
}

impl Decision {
    /// A decision that bound nothing (a rejection, or a withdrawal before approval).
    pub fn unbound(outcome: DecisionOutcome, decided_by: &str, decided_at: i64) -> Decision {
        Decision {
            outcome,
            decided_by: decided_by.to_owned(),
            decided_at,
            reason: String::new(),
            payload_sha256: String::new(),
            payload_sealed: String::new(),
            registry_version: String::new(),
            catalogue_version: String::new(),
            assessment: None,
            judgement: String::new(),
            delegation_id: String::new(),
        }
    }
}

impl DisclosureRecord {
    /// A new draft at version 1: nothing submitted or decided, content not yet sealed.
    pub fn new_draft(
        organisation: &str,
        police_region: &str,
        drafted_by: &str,
        client_request_id: &str,
        request_fingerprint: &str,
        now: i64,
    ) -> DisclosureRecord {
        DisclosureRecord {
            id: uuid::Uuid::now_v7().to_string(),
            organisation: organisation.to_owned(),
            police_region: police_region.to_owned(),
            state: DisclosureState::Draft,
            version: 1,
            urgent: false,
            legal_basis_id: String::new(),
            drafted_by: drafted_by.to_owned(),
            client_request_id: client_request_id.to_owned(),
            request_fingerprint: request_fingerprint.to_owned(),
            content_sealed: String::new(),
            protected_sealed: String::new(),
            created_at: now,
            updated_at: now,
            submitted_by: String::new(),
            submitted_at: 0,
            decision: None,
            expiry_warned_at: 0,
        }
    }

    /// The step `action` takes from this record's state, if the state machine allows it.
    pub fn step(&self, action: LifecycleAction) -> Result<Step, TransitionError> {
        transition(self.state, action).map(|to| Step { to })
    }

    /// Moves the record on by `step`: its new state, the next version, updated at `now`.
    pub fn advance(&mut self, step: Step, now: i64) {
        self.state = step.to;
        self.version += 1;
        self.updated_at = now;
    }

    /// Records a decision by `decided_by` at `decided_at`, keeping what an earlier approval
    /// bound (a withdrawal after approval still names the payload that was approved).
    pub fn conclude(
        &mut self,
        outcome: DecisionOutcome,
        decided_by: &str,
        decided_at: i64,
        reason: String,
    ) {
        let decision = self
            .decision
            .get_or_insert_with(|| Decision::unbound(outcome, decided_by, decided_at));
        decision.outcome = outcome;
        decided_by.clone_into(&mut decision.decided_by);
        decision.decided_at = decided_at;
        decision.reason = reason;
    }

    /// The hex SHA-256 of the approved payload (empty before approval).
    pub fn payload_sha256(&self) -> &str {
        self.decision
            .as_ref()
            .map_or("", |decision| decision.payload_sha256.as_str())
    }

    /// The registry version the approval assessed under (empty before approval).
    pub fn registry_version(&self) -> &str {
        self.decision
            .as_ref()
            .map_or("", |decision| decision.registry_version.as_str())
    }
}

impl TryFrom<StoredDisclosure> for DisclosureRecord {
    type Error = RecordError;

    fn try_from(row: StoredDisclosure) -> Result<DisclosureRecord, RecordError> {
        let Ok(state) = DisclosureState::parse(&row.state) else {
            return Err(RecordError::UnknownState {
                id: row.id,
                state: row.state,
            });
        };
        let decision = if row.decision_outcome.is_empty() {
            None
        } else {
            let Some(outcome) = DecisionOutcome::parse(&row.decision_outcome) else {
                return Err(RecordError::UnknownDecision {
                    id: row.id,
                    outcome: row.decision_outcome,
                });
            };
            Some(Decision {
                outcome,
                decided_by: row.decided_by,
                decided_at: row.decided_at,
                reason: row.decision_reason,
                payload_sha256: row.payload_sha256,
                payload_sealed: row.payload_sealed,
                registry_version: row.registry_version,
                catalogue_version: row.catalogue_version,
                assessment: row.assessment,
                judgement: row.decision_judgement,
                delegation_id: row.decision_delegation_id,
            })
        };
        Ok(DisclosureRecord {
            id: row.id,
            organisation: row.organisation,
            police_region: row.police_region,
            state,
            version: row.version,
            urgent: row.urgent != 0,
            legal_basis_id: row.legal_basis_id,
            drafted_by: row.drafted_by,
            client_request_id: row.client_request_id,
            request_fingerprint: row.request_fingerprint,
            content_sealed: row.content_sealed,
            protected_sealed: row.protected_sealed,
            created_at: row.created_at,
            updated_at: row.updated_at,
            submitted_by: row.submitted_by,
            submitted_at: row.submitted_at,
            decision,
            expiry_warned_at: row.expiry_warned_at,
        })
    }
}

impl sqlx::FromRow<'_, sqlx::any::AnyRow> for StoredDisclosure {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            organisation: row.try_get("organisation")?,
            police_region: row.try_get("police_region")?,
            state: row.try_get("state")?,
            version: row.try_get("version")?,
            urgent: row.try_get("urgent")?,
            legal_basis_id: row.try_get("legal_basis_id")?,
            drafted_by: row.try_get("drafted_by")?,
            client_request_id: row.try_get("client_request_id")?,
            request_fingerprint: row.try_get("request_fingerprint")?,
            content_sealed: row.try_get("content_sealed")?,
            protected_sealed: row.try_get("protected_sealed")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            submitted_by: row.try_get("submitted_by")?,
            submitted_at: row.try_get("submitted_at")?,
            decision_outcome: row.try_get("decision_outcome")?,
            decided_by: row.try_get("decided_by")?,
            decided_at: row.try_get("decided_at")?,
            decision_reason: row.try_get("decision_reason")?,
            payload_sha256: row.try_get("payload_sha256")?,
            payload_sealed: row.try_get("payload_sealed")?,
            registry_version: row.try_get("registry_version")?,
            catalogue_version: row.try_get("catalogue_version")?,
            assessment: row.try_get("assessment")?,
            decision_judgement: row.try_get("decision_judgement")?,
            expiry_warned_at: row.try_get("expiry_warned_at")?,
            decision_delegation_id: row.try_get("decision_delegation_id")?,
        })
    }
}

/// A row is parsed into a record as it is read; one that does not parse is a decoding error
/// naming the disclosure and what was wrong.
impl sqlx::FromRow<'_, sqlx::any::AnyRow> for DisclosureRecord {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        let stored = StoredDisclosure::from_row(row)?;
        DisclosureRecord::try_from(stored).map_err(|error| sqlx::Error::Decode(Box::new(error)))
    }
}

/// Binds every column of `record` in [`COLUMNS`] order.
pub(super) fn bind_record<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    record: &'q DisclosureRecord,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let decision = record.decision.as_ref();
    let text = |field: fn(&'q Decision) -> &'q str| decision.map_or("", field);
    query
        .bind(&record.id)
        .bind(&record.organisation)
        .bind(&record.police_region)
        .bind(record.state.as_str())
        .bind(record.version)
        .bind(i64::from(record.urgent))
        .bind(&record.legal_basis_id)
        .bind(&record.drafted_by)
        .bind(&record.client_request_id)
        .bind(&record.request_fingerprint)
        .bind(&record.content_sealed)
        .bind(&record.protected_sealed)
        .bind(record.created_at)
        .bind(record.updated_at)
        .bind(&record.submitted_by)
        .bind(record.submitted_at)
        .bind(decision.map_or("", |decision| decision.outcome.as_str()))
        .bind(text(|decision| &decision.decided_by))
        .bind(decision.map_or(0, |decision| decision.decided_at))
        .bind(text(|decision| &decision.reason))
        .bind(text(|decision| &decision.payload_sha256))
        .bind(text(|decision| &decision.payload_sealed))
        .bind(text(|decision| &decision.registry_version))
        .bind(text(|decision| &decision.catalogue_version))
        .bind(decision.and_then(|decision| decision.assessment.clone()))
        .bind(text(|decision| &decision.judgement))
        .bind(record.expiry_warned_at)
        .bind(text(|decision| &decision.delegation_id))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn stored() -> StoredDisclosure {
        StoredDisclosure {
            id: "0190a5b2-0000-7000-8000-000000000001".into(),
            organisation: "bollnas-kommun".into(),
            police_region: "mitt".into(),
            state: "withdrawn".into(),
            version: 5,
            urgent: 1,
            legal_basis_id: "osl-10-2".into(),
            drafted_by: "handlaggare".into(),
            client_request_id: "request-1".into(),
            request_fingerprint: "f".into(),
            content_sealed: "sealed-content".into(),
            protected_sealed: "sealed-protected".into(),
            created_at: 10,
            updated_at: 20,
            submitted_by: "handlaggare".into(),
            submitted_at: 15,
            decision_outcome: "withdrawn".into(),
            decided_by: "beslutsfattare".into(),
            decided_at: 20,
            decision_reason: "no longer needed".into(),
            payload_sha256: "ab".into(),
            payload_sealed: "sealed-payload".into(),
            registry_version: "2026-01".into(),
            catalogue_version: "2026-02".into(),
            assessment: Some(vec![1, 2, 3]),
            decision_judgement: "sambo sedan tio år".into(),
            expiry_warned_at: 18,
            decision_delegation_id: "0190a5b2-0000-7000-8000-0000000000d1".into(),
        }
    }

    #[test]
    fn a_row_becomes_a_typed_record() {
        let record = DisclosureRecord::try_from(stored()).unwrap();
        assert_eq!(record.state, DisclosureState::Withdrawn);
        assert!(record.urgent);
        let decision = record.decision.as_ref().unwrap();
        assert_eq!(decision.outcome, DecisionOutcome::Withdrawn);
        assert_eq!(decision.assessment.as_deref(), Some(&[1, 2, 3][..]));
        assert_eq!(decision.judgement, "sambo sedan tio år");
        assert_eq!(
            decision.delegation_id,
            "0190a5b2-0000-7000-8000-0000000000d1"
        );
        assert_eq!(record.payload_sha256(), "ab");
        assert_eq!(record.registry_version(), "2026-01");

        let undecided = DisclosureRecord::try_from(StoredDisclosure {
            decision_outcome: String::new(),
            urgent: 0,
            ..stored()
        })
        .unwrap();
        assert!(undecided.decision.is_none());
        assert!(!undecided.urgent);
        assert_eq!(undecided.payload_sha256(), "");
    }

    #[test]
    fn unknown_names_in_a_row_are_errors_naming_the_disclosure() {
        let error = DisclosureRecord::try_from(StoredDisclosure {
            state: "lost".into(),
            ..stored()
        })
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "disclosure 0190a5b2-0000-7000-8000-000000000001 has unknown state \"lost\""
        );
        let error = DisclosureRecord::try_from(StoredDisclosure {
            decision_outcome: "maybe".into(),
            ..stored()
        })
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("unknown decision outcome \"maybe\"")
        );
    }

    #[test]
    fn a_step_moves_state_version_and_time_together() {
        let mut record = DisclosureRecord::new_draft("bollnas-kommun", "mitt", "u", "r", "f", 1);
        let step = record.step(LifecycleAction::Submit).unwrap();
        record.advance(step, 7);
        assert_eq!(
            (record.state, record.version, record.updated_at),
            (DisclosureState::Submitted, 2, 7)
        );
        assert!(record.step(LifecycleAction::Deliver).is_err());
    }

    #[test]
    fn a_withdrawal_after_approval_keeps_what_the_approval_bound() {
        let mut record = DisclosureRecord::try_from(StoredDisclosure {
            state: "approved".into(),
            decision_outcome: "approved".into(),
            ..stored()
        })
        .unwrap();
        record.conclude(DecisionOutcome::Withdrawn, "chef", 30, "moot".into());
        let decision = record.decision.as_ref().unwrap();
        assert_eq!(decision.outcome, DecisionOutcome::Withdrawn);
        assert_eq!(
            (decision.decided_by.as_str(), decision.decided_at),
            ("chef", 30)
        );
        assert_eq!(decision.reason, "moot");
        assert_eq!(decision.payload_sealed, "sealed-payload");
        assert_eq!(decision.judgement, "sambo sedan tio år");

        let mut draft = DisclosureRecord::new_draft("bollnas-kommun", "mitt", "u", "r", "f", 1);
        draft.conclude(DecisionOutcome::Rejected, "chef", 30, "no".into());
        let decision = draft.decision.unwrap();
        assert_eq!(decision.outcome, DecisionOutcome::Rejected);
        assert_eq!(decision.payload_sha256, "");
        assert_eq!(decision.reason, "no");
    }
}
