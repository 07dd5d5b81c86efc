//! Assessing a draft disclosure against a legal basis as the registry stood on a date.
//!
//! [`assess`] is a pure function of the registry, the basis id, the case facts and the date.
//! Every condition of the basis appears in the result as passed, failed or needing the
//! decision maker's judgement, with a reason in English, so a decision maker sees exactly what
//! holds, what does not and what the law leaves to them, and a compliance officer can re-run
//! the assessment for any past decision date. Passing the assessment is never a decision:
//! disclosure under these provisions is a permission that needs an individual judgement
//! (JO 682-2014).
//!
//! A condition the law leaves to judgement is never passed on the caseworker's free text: a
//! victim whose relation is `other` is a närstående only if the decision maker, in their own
//! written reasoning, judges them one ([`ConditionOutcome::NeedsJudgement`]).
//!
//! Reasons never contain personal data: no names, identity numbers or justification text.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::identity::full_years_between;
use crate::organisation::{Recipient, SecrecyProvision};
use crate::registry::{
    CrimeId, CrimeTimeRequirement, LegalBasis, LegalBasisId, LegalRegistry, RegistryError,
    SourceKind,
};
use crate::serde_support::iso_date;
use crate::text_form::string_enum;

/// Errors from parsing assessment input values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssessmentInputError {
    #[error("unknown relation {0:?}")]
    UnknownRelation(String),
    #[error("unknown crime time {0:?}: expected future_risk or committed")]
    UnknownCrimeTime(String),
    #[error("unknown condition outcome {0:?}: expected passed, failed or needs_judgement")]
    UnknownConditionOutcome(String),
}

string_enum! {
    /// Whether the draft concerns a risk of a future crime or a committed one.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum CrimeTime {
        FutureRisk => "future_risk",
        Committed => "committed",
    }
    unknown: AssessmentInputError::UnknownCrimeTime;
}

string_enum! {
    /// The victim's relation to the perpetrator (den enskilde).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Relation {
        Spouse => "spouse",
        Cohabitant => "cohabitant",
        PartnerNotCohabiting => "partner_not_cohabiting",
        FormerPartner => "former_partner",
        Parent => "parent",
        Child => "child",
        Sibling => "sibling",
        OtherRelative => "other_relative",
        /// Not a närstående by its nature: whether the victim is one needs the decision
        /// maker's own written judgement.
        Other => "other",
    }
    unknown: AssessmentInputError::UnknownRelation;
}

/// One answered checklist item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistAnswer {
    pub key: String,
    pub answer: bool,
    pub justification: String,
}

/// A record of consent (samtycke) under 12 kap. 2 § OSL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub given_by: String,
    pub given_at: Date,
    pub scope: String,
    pub how: String,
}

/// The facts of a draft that the assessment needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFacts {
    /// The secrecy the disclosing organisation is actually under, from its kind.
    pub organisation_secrecy: Option<SecrecyProvision>,
    /// The secrecy the draft claims to break.
    pub claimed_secrecy: Option<SecrecyProvision>,
    pub recipient: Recipient,
    pub crime: Option<CrimeId>,
    pub crime_time: CrimeTime,
    pub relation: Relation,
    /// The caseworker's account of why a relation of kind [`Relation::Other`] may be a
    /// närstående: required, and context for the decision maker's judgement, never a pass.
    pub relation_justification: Option<String>,
    pub victim_birth_date: Option<Date>,
    pub subject_birth_date: Option<Date>,
    pub checklist: Vec<ChecklistAnswer>,
    pub consent: Option<ConsentRecord>,
}

string_enum! {
    /// How one condition came out.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ConditionOutcome {
        Passed => "passed",
        Failed => "failed",
        /// Neither passed nor failed: the law leaves it to the decision maker, who must give
        /// their own written judgement before approving.
        NeedsJudgement => "needs_judgement",
    }
    unknown: AssessmentInputError::UnknownConditionOutcome;
}

/// The outcome of one condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionResult {
    key: String,
    outcome: ConditionOutcome,
    reason: String,
}

/// The outcome of assessing a draft against one legal basis on one date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    basis: LegalBasisId,
    #[serde(with = "iso_date")]
    as_of: Date,
    registry_version: String,
    catalogue_version: String,
    conditions: Vec<ConditionResult>,
    suggestions: Vec<LegalBasisId>,
}

impl Relation {
    /// Whether the relation by itself makes the victim a närstående (all but `Other`).
    pub fn is_close_relative(self) -> bool {
        !matches!(self, Relation::Other)
    }
}

impl ConditionResult {
    /// E.g. `basis_in_force`, `minimum_penalty`, `checklist.not_unsuitable`.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn outcome(&self) -> ConditionOutcome {
        self.outcome
    }

    /// Whether the condition passed (false when it failed or needs judgement).
    pub fn passed(&self) -> bool {
        self.outcome == ConditionOutcome::Passed
    }

    /// Whether the condition is the decision maker's to judge.
    pub fn needs_judgement(&self) -> bool {
        self.outcome == ConditionOutcome::NeedsJudgement
    }

    /// Why the condition passed, failed or needs judgement, in English.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl Assessment {
    pub fn basis(&self) -> &LegalBasisId {
        &self.basis
    }

    pub fn as_of(&self) -> Date {
        self.as_of
    }

    /// The legal-bases file version the assessment was made under.
    pub fn registry_version(&self) -> &str {
        &self.registry_version
    }

    /// The crime-catalogue version the assessment was made under.
    pub fn catalogue_version(&self) -> &str {
        &self.catalogue_version
    }

    pub fn conditions(&self) -> &[ConditionResult] {
        &self.conditions
    }

    /// The condition with this key, if the basis has it.
    pub fn condition(&self, key: &str) -> Option<&ConditionResult> {
        self.conditions
            .iter()
            .find(|condition| condition.key == key)
    }

    /// The conditions that failed (not those needing judgement).
    pub fn failed_conditions(&self) -> impl Iterator<Item = &ConditionResult> {
        self.conditions
            .iter()
            .filter(|condition| condition.outcome == ConditionOutcome::Failed)
    }

    /// The conditions that need the decision maker's judgement.
    pub fn conditions_needing_judgement(&self) -> impl Iterator<Item = &ConditionResult> {
        self.conditions
            .iter()
            .filter(|condition| condition.needs_judgement())
    }

    /// Whether some condition needs the decision maker's judgement.
    pub fn needs_judgement(&self) -> bool {
        self.conditions_needing_judgement().next().is_some()
    }

    /// Other bases to consider, e.g. for a committed crime refused under 18 c §.
    pub fn suggestions(&self) -> &[LegalBasisId] {
        &self.suggestions
    }

    /// Whether every condition passed; false while a condition needs judgement. This permits
    /// a disclosure; it never decides one.
    pub fn passed(&self) -> bool {
        !self.conditions.is_empty() && self.conditions.iter().all(ConditionResult::passed)
    }

    /// Whether no condition failed: each passed or needs the decision maker's judgement, so
    /// the assessment passes once they give it.
    pub fn passes_given_judgement(&self) -> bool {
        !self.conditions.is_empty() && self.failed_conditions().next().is_none()
    }

    /// The assessment as the decision maker confirmed it: each condition that needed their
    /// judgement counts as passed on their written reasoning (recorded with the decision, not
    /// here: reasons hold no free text). Only for a decision maker who gave that reasoning.
    #[must_use]
    pub fn with_judgement_confirmed(mut self) -> Assessment {
        for condition in &mut self.conditions {
            if condition.needs_judgement() {
                condition.outcome = ConditionOutcome::Passed;
                condition.reason = judged_reason(&condition.key);
            }
        }
        self
    }
}

/// The reason of a condition the decision maker judged met.
fn judged_reason(key: &str) -> String {
    match key {
        "close_relative" => "relation 'other' is a närstående in the decision maker's judgement, \
             given in their written reasoning recorded with the decision"
            .to_owned(),
        _ => format!(
            "'{key}' is met in the decision maker's judgement, given in their written reasoning \
             recorded with the decision"
        ),
    }
}

/// Assesses `facts` against the basis `basis` as the registry stood on `as_of`.
///
/// An unknown basis id is an error. A known basis not in force on `as_of` gives an assessment
/// whose `basis_in_force` condition fails, evaluated against the nearest version.
pub fn assess(
    registry: &LegalRegistry,
    basis: &LegalBasisId,
    facts: &CaseFacts,
    as_of: Date,
) -> Result<Assessment, RegistryError> {
    let (legal_basis, in_force) = registry.basis_for_assessment(basis, as_of)?;
    let mut conditions = Vec::new();
    let mut suggestions = Vec::new();

    conditions.push(basis_in_force_condition(legal_basis, in_force, as_of));
    conditions.push(recipient_condition(legal_basis, facts));
    conditions.push(source_secrecy_condition(legal_basis, facts));
    conditions.push(claimed_secrecy_condition(facts));
    if let Some(source_kinds) = legal_basis.source_kinds() {
        conditions.push(source_kind_condition(legal_basis, source_kinds, facts));
    }
    let crime_time = crime_time_condition(legal_basis, facts);
    if !crime_time.passed() {
        suggestions.extend(legal_basis.suggest_instead().iter().cloned());
    }
    conditions.push(crime_time);
    if legal_basis.crime_filter().is_some() {
        conditions.extend(crime_conditions(registry, legal_basis, facts, as_of));
    }
    if legal_basis.requires_close_relative() {
        conditions.push(close_relative_condition(facts));
    }
    if let Some(maximum_age) = legal_basis.victim_max_age_exclusive() {
        conditions.push(age_condition(
            "victim_age",
            "victim",
            legal_basis,
            maximum_age,
            facts.victim_birth_date,
            as_of,
        ));
    }
    if let Some(maximum_age) = legal_basis.subject_max_age_exclusive() {
        conditions.push(age_condition(
            "subject_age",
            "subject (den enskilde)",
            legal_basis,
            maximum_age,
            facts.subject_birth_date,
            as_of,
        ));
    }
    if legal_basis.requires_consent_record() {
        conditions.push(consent_condition(facts, as_of));
    }
    for item in legal_basis.checklist() {
        conditions.push(checklist_condition(
            item.key(),
            item.justification_required(),
            facts,
        ));
    }

    Ok(Assessment {
        basis: basis.clone(),
        as_of,
        registry_version: registry.registry_version().to_owned(),
        catalogue_version: registry.catalogue_version().to_owned(),
        conditions,
        suggestions,
    })
}

fn condition(key: &str, passed: bool, reason: String) -> ConditionResult {
    let outcome = if passed {
        ConditionOutcome::Passed
    } else {
        ConditionOutcome::Failed
    };
    ConditionResult {
        key: key.to_owned(),
        outcome,
        reason,
    }
}

fn basis_in_force_condition(basis: &LegalBasis, in_force: bool, as_of: Date) -> ConditionResult {
    let period = match basis.valid_to() {
        Some(valid_to) => format!("from {} to {valid_to}", basis.valid_from()),
        None => format!("from {}", basis.valid_from()),
    };
    let reason = if in_force {
        format!("{} is in force on {as_of} ({period})", basis.id())
    } else {
        format!(
            "{} is not in force on {as_of}; it applies {period}",
            basis.id()
        )
    };
    condition("basis_in_force", in_force, reason)
}

fn recipient_condition(basis: &LegalBasis, facts: &CaseFacts) -> ConditionResult {
    let allowed = join_display(
        basis
            .recipients()
            .iter()
            .map(|recipient| recipient.display_name()),
    );
    let passed = basis.recipients().contains(&facts.recipient);
    let reason = if passed {
        format!(
            "{} is an allowed recipient under {}",
            facts.recipient.display_name(),
            basis.id()
        )
    } else {
        format!(
            "{} allows only {allowed} as recipient; the draft names {}",
            basis.id(),
            facts.recipient.display_name()
        )
    };
    condition("recipient", passed, reason)
}

fn source_secrecy_condition(basis: &LegalBasis, facts: &CaseFacts) -> ConditionResult {
    let Some(secrecy) = facts.organisation_secrecy else {
        return condition(
            "source_secrecy",
            false,
            format!(
                "the organisation is not bound by healthcare (OSL-25-1) or social-services (OSL-26-1) secrecy, so there is no secrecy for {} to break",
                basis.id()
            ),
        );
    };
    if basis.excluded_secrecy().contains(&secrecy) {
        return condition(
            "source_secrecy",
            false,
            format!(
                "{secrecy} is excluded from {}, which never breaks it; the organisation is under {secrecy}",
                basis.id()
            ),
        );
    }
    if basis.breaks().is_empty() {
        let except = if basis.excluded_secrecy().is_empty() {
            String::new()
        } else {
            format!(" except {}", join_display(basis.excluded_secrecy().iter()))
        };
        return condition(
            "source_secrecy",
            true,
            format!(
                "{} may break any secrecy protecting an individual{except}, including {secrecy}",
                basis.id()
            ),
        );
    }
    let breaks = join_display(basis.breaks().iter());
    if basis.breaks().contains(&secrecy) {
        condition(
            "source_secrecy",
            true,
            format!(
                "the organisation is under {secrecy}, which {} breaks",
                basis.id()
            ),
        )
    } else {
        condition(
            "source_secrecy",
            false,
            format!(
                "{} breaks only {breaks}; the organisation is under {secrecy}",
                basis.id()
            ),
        )
    }
}

fn claimed_secrecy_condition(facts: &CaseFacts) -> ConditionResult {
    let (passed, reason) = match (facts.claimed_secrecy, facts.organisation_secrecy) {
        (None, _) => (
            false,
            "the draft does not state which secrecy provision the disclosure breaks".to_owned(),
        ),
        (Some(claimed), None) => (
            false,
            format!("the draft claims {claimed} but the organisation is not bound by it"),
        ),
        (Some(claimed), Some(actual)) if claimed == actual => (
            true,
            format!("the draft claims {claimed}, which is the organisation's secrecy"),
        ),
        (Some(claimed), Some(actual)) => (
            false,
            format!("the draft claims {claimed} but the organisation is under {actual}"),
        ),
    };
    condition("claimed_secrecy", passed, reason)
}

fn source_kind_condition(
    basis: &LegalBasis,
    source_kinds: &[SourceKind],
    facts: &CaseFacts,
) -> ConditionResult {
    let allowed = join_display(source_kinds.iter());
    let (passed, reason) = match facts.organisation_secrecy.map(SourceKind::from_secrecy) {
        Some(kind) if source_kinds.contains(&kind) => (
            true,
            format!(
                "{} applies to {kind}, the organisation's activity",
                basis.id()
            ),
        ),
        Some(kind) => (
            false,
            format!(
                "{} applies only to {allowed}; the organisation is {kind}",
                basis.id()
            ),
        ),
        None => (
            false,
            format!(
                "{} applies only to {allowed}; the organisation is neither",
                basis.id()
            ),
        ),
    };
    condition("source_kind", passed, reason)
}

fn crime_time_condition(basis: &LegalBasis, facts: &CaseFacts) -> ConditionResult {
    let suggestions = join_display(basis.suggest_instead().iter());
    let consider = if suggestions.is_empty() {
        String::new()
    } else {
        format!(": consider {suggestions}")
    };
    let (passed, reason) = match (basis.crime_time(), facts.crime_time) {
        (CrimeTimeRequirement::FutureRisk, CrimeTime::FutureRisk) => (
            true,
            format!("{} covers a risk of a future crime", basis.id()),
        ),
        (CrimeTimeRequirement::FutureRisk, CrimeTime::Committed) => (
            false,
            format!(
                "{} covers only a risk of a future crime; information about a committed crime may be disclosed only under other provisions{consider}",
                basis.id()
            ),
        ),
        (CrimeTimeRequirement::Committed, CrimeTime::Committed) => (
            true,
            format!("{} covers a suspected committed crime", basis.id()),
        ),
        (CrimeTimeRequirement::Committed, CrimeTime::FutureRisk) => (
            false,
            format!(
                "{} covers only a suspected committed crime, not a risk of a future one{consider}",
                basis.id()
            ),
        ),
        (CrimeTimeRequirement::Any, _) => (
            true,
            format!("{} covers both future risk and committed crime", basis.id()),
        ),
        (CrimeTimeRequirement::NotApplicable, _) => (
            true,
            format!(
                "{} does not depend on whether a crime is future or committed",
                basis.id()
            ),
        ),
    };
    condition("crime_time", passed, reason)
}

/// `crime_catalogue` and, when the filter has a minimum, `minimum_penalty`.
fn crime_conditions(
    registry: &LegalRegistry,
    basis: &LegalBasis,
    facts: &CaseFacts,
    as_of: Date,
) -> Vec<ConditionResult> {
    let Some(filter) = basis.crime_filter() else {
        return Vec::new();
    };
    let laws = filter.describe_laws();
    let mut results = Vec::new();
    let crime = match &facts.crime {
        None => {
            results.push(condition(
                "crime_catalogue",
                false,
                format!(
                    "no crime category is recorded; {} requires a crime in {laws}",
                    basis.id()
                ),
            ));
            None
        }
        Some(crime_id) => match registry.crime_as_of(crime_id, as_of) {
            Ok(crime) => {
                let passed = filter.allows_law_of(crime);
                let name = crime.name_sv().to_lowercase();
                let reason = if passed {
                    format!(
                        "{name} ({}) is in {laws}, which {} covers",
                        crime.reference(),
                        basis.id()
                    )
                } else {
                    format!(
                        "{name} ({}) is not in {laws}, which {} requires",
                        crime.reference(),
                        basis.id()
                    )
                };
                results.push(condition("crime_catalogue", passed, reason));
                Some(crime)
            }
            Err(error) => {
                results.push(condition("crime_catalogue", false, error.to_string()));
                None
            }
        },
    };
    if let Some(required_months) = filter.min_penalty_months() {
        let result = match crime {
            None => condition(
                "minimum_penalty",
                false,
                format!(
                    "the minimum penalty cannot be determined without a crime in the catalogue on {as_of}; {} requires at least {required_months} months",
                    basis.id()
                ),
            ),
            Some(crime) => {
                let months = crime.minimum_penalty_months();
                let carried = if months == 0 {
                    "no special minimum penalty".to_owned()
                } else {
                    format!("a minimum of {months} months")
                };
                condition(
                    "minimum_penalty",
                    months >= required_months,
                    format!(
                        "{} carried {carried} on {as_of}; {} requires at least {required_months}",
                        crime.name_sv().to_lowercase(),
                        basis.id()
                    ),
                )
            }
        };
        results.push(result);
    }
    results
}

fn close_relative_condition(facts: &CaseFacts) -> ConditionResult {
    let relation = facts.relation;
    if relation.is_close_relative() {
        return condition(
            "close_relative",
            true,
            format!("relation '{}' is a närstående", relation.as_str()),
        );
    }
    // The caseworker's text is context for the decision maker, never a pass: whatever it
    // says, whether the victim is a närstående is the decision maker's judgement.
    let justified = facts
        .relation_justification
        .as_deref()
        .is_some_and(|justification| !justification.trim().is_empty());
    if justified {
        ConditionResult {
            key: "close_relative".to_owned(),
            outcome: ConditionOutcome::NeedsJudgement,
            reason:
                "relation 'other' is a närstående only if the decision maker judges the victim \
                     to be in a close and trusting relationship with the perpetrator; it needs \
                     their written judgement"
                    .to_owned(),
        }
    } else {
        condition(
            "close_relative",
            false,
            "relation 'other' is not a närstående without a recorded justification".to_owned(),
        )
    }
}

fn age_condition(
    key: &str,
    person: &str,
    basis: &LegalBasis,
    maximum_age_exclusive: u32,
    birth_date: Option<Date>,
    as_of: Date,
) -> ConditionResult {
    match birth_date {
        None => condition(
            key,
            false,
            format!(
                "the {person}'s birth date is not recorded; {} requires the {person} to be under {maximum_age_exclusive}",
                basis.id()
            ),
        ),
        Some(birth_date) => {
            let age = full_years_between(birth_date, as_of);
            let passed = age < maximum_age_exclusive;
            let relation = if passed { "under" } else { "not under" };
            condition(
                key,
                passed,
                format!(
                    "the {person} is {age} on {as_of}, {relation} {maximum_age_exclusive} as {} requires",
                    basis.id()
                ),
            )
        }
    }
}

fn consent_condition(facts: &CaseFacts, as_of: Date) -> ConditionResult {
    let Some(consent) = &facts.consent else {
        return condition(
            "consent_record",
            false,
            "no consent record: who gave consent, when, its scope and how it was given must be recorded".to_owned(),
        );
    };
    let missing: Vec<&str> = [
        ("given_by", consent.given_by.as_str()),
        ("scope", consent.scope.as_str()),
        ("how", consent.how.as_str()),
    ]
    .into_iter()
    .filter(|(_, value)| value.trim().is_empty())
    .map(|(field, _)| field)
    .collect();
    if !missing.is_empty() {
        return condition(
            "consent_record",
            false,
            format!("the consent record is missing {}", missing.join(", ")),
        );
    }
    if consent.given_at > as_of {
        return condition(
            "consent_record",
            false,
            format!(
                "the consent is dated {}, after the assessment date {as_of}",
                consent.given_at
            ),
        );
    }
    condition(
        "consent_record",
        true,
        format!(
            "consent is recorded as given on {} with who, scope and how",
            consent.given_at
        ),
    )
}

fn checklist_condition(
    key: &str,
    justification_required: bool,
    facts: &CaseFacts,
) -> ConditionResult {
    let condition_key = format!("checklist.{key}");
    let answer = facts.checklist.iter().find(|answer| answer.key == key);
    let (passed, reason) = match answer {
        None => (false, format!("checklist item '{key}' is not answered")),
        Some(answer) if !answer.answer => (false, format!("checklist item '{key}' is answered no")),
        Some(answer) if justification_required && answer.justification.trim().is_empty() => (
            false,
            format!("checklist item '{key}' is answered yes but has no written justification"),
        ),
        Some(_) if justification_required => (
            true,
            format!("checklist item '{key}' is answered yes with a written justification"),
        ),
        Some(_) => (true, format!("checklist item '{key}' is answered yes")),
    };
    condition(&condition_key, passed, reason)
}

fn join_display<T: fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items
        .map(|item| item.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::registry::EMBEDDED_CRIMES_TOML;
    use proptest::prelude::*;
    use time::macros::date;

    fn registry() -> LegalRegistry {
        LegalRegistry::embedded().unwrap()
    }

    fn osl_18c() -> LegalBasisId {
        LegalBasisId::parse("OSL-10-18c").unwrap()
    }

    fn answer(key: &str) -> ChecklistAnswer {
        ChecklistAnswer {
            key: key.to_owned(),
            answer: true,
            justification: "Skriftlig motivering finns i akten".to_owned(),
        }
    }

    /// A social-services draft that meets every condition of 18 c § on 2022-06-01.
    fn happy_facts() -> CaseFacts {
        CaseFacts {
            organisation_secrecy: Some(SecrecyProvision::SocialServices26_1),
            claimed_secrecy: Some(SecrecyProvision::SocialServices26_1),
            recipient: Recipient::Polismyndigheten,
            crime: Some(CrimeId::parse("grov-kvinnofridskrankning").unwrap()),
            crime_time: CrimeTime::FutureRisk,
            relation: Relation::Cohabitant,
            relation_justification: None,
            victim_birth_date: Some(date!(1990 - 05 - 05)),
            subject_birth_date: Some(date!(1988 - 02 - 02)),
            checklist: vec![
                answer("special_circumstances"),
                answer("contributes_to_prevention"),
                answer("not_unsuitable"),
            ],
            consent: None,
        }
    }

    fn assess_18c(facts: &CaseFacts, as_of: Date) -> Assessment {
        assess(&registry(), &osl_18c(), facts, as_of).unwrap()
    }

    /// The keys of the conditions `facts` fail under `basis` on `as_of`.
    fn failed_under(basis: &LegalBasisId, facts: &CaseFacts, as_of: Date) -> Vec<String> {
        let assessment = assess(&registry(), basis, facts, as_of).unwrap();
        failed_keys(&assessment)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// The keys of the conditions `facts` fail under 18 c § on 2022-06-01, a date on which
    /// [`happy_facts`] fails none.
    fn failed_18c(facts: &CaseFacts) -> Vec<String> {
        failed_under(&osl_18c(), facts, date!(2022 - 06 - 01))
    }

    /// The reason of the one condition `facts` fail under 18 c § on 2022-06-01, which must be
    /// `key`.
    fn only_failure_18c(facts: &CaseFacts, key: &str) -> String {
        let assessment = assess_18c(facts, date!(2022 - 06 - 01));
        assert_eq!(failed_keys(&assessment), [key]);
        assessment.condition(key).unwrap().reason().to_owned()
    }

    /// The assessment of `facts` under `basis` on 2024-01-01, which must pass every condition.
    fn passing_on_2024_01_01(basis: &LegalBasisId, facts: &CaseFacts) -> Assessment {
        let assessment = assess(&registry(), basis, facts, date!(2024 - 01 - 01)).unwrap();
        assert!(assessment.passed(), "{:?}", failed_keys(&assessment));
        assessment
    }

    /// The keys of the conditions `facts` fail under `basis` on 2024-01-01.
    fn failed_on_2024_01_01(basis: &LegalBasisId, facts: &CaseFacts) -> Vec<String> {
        failed_under(basis, facts, date!(2024 - 01 - 01))
    }

    fn failed_keys(assessment: &Assessment) -> Vec<&str> {
        assessment
            .failed_conditions()
            .map(ConditionResult::key)
            .collect()
    }

    #[test]
    fn happy_path_under_18c_passes_every_condition() {
        let assessment = assess_18c(&happy_facts(), date!(2022 - 06 - 01));
        assert!(assessment.passed(), "{:?}", failed_keys(&assessment));
        let keys: Vec<&str> = assessment
            .conditions()
            .iter()
            .map(ConditionResult::key)
            .collect();
        assert_eq!(
            keys,
            [
                "basis_in_force",
                "recipient",
                "source_secrecy",
                "claimed_secrecy",
                "crime_time",
                "crime_catalogue",
                "minimum_penalty",
                "close_relative",
                "checklist.special_circumstances",
                "checklist.contributes_to_prevention",
                "checklist.not_unsuitable",
            ]
        );
        assert!(assessment.suggestions().is_empty());
        assert_eq!(assessment.registry_version(), registry().registry_version());
        assert_eq!(
            assessment.catalogue_version(),
            registry().catalogue_version()
        );
        assert_eq!(assessment.as_of(), date!(2022 - 06 - 01));
        assert!(
            assessment
                .conditions()
                .iter()
                .all(|condition| !condition.reason().is_empty())
        );
    }

    #[test]
    fn healthcare_source_also_passes() {
        let facts = CaseFacts {
            organisation_secrecy: Some(SecrecyProvision::Healthcare25_1),
            claimed_secrecy: Some(SecrecyProvision::Healthcare25_1),
            ..happy_facts()
        };
        assert!(assess_18c(&facts, date!(2022 - 06 - 01)).passed());
    }

    #[test]
    fn committed_crime_is_refused_with_both_suggestions() {
        let facts = CaseFacts {
            crime_time: CrimeTime::Committed,
            ..happy_facts()
        };
        let assessment = assess_18c(&facts, date!(2022 - 06 - 01));
        assert!(!assessment.passed());
        assert_eq!(failed_keys(&assessment), ["crime_time"]);
        assert_eq!(
            assessment.suggestions(),
            &[
                LegalBasisId::parse("OSL-10-21").unwrap(),
                LegalBasisId::parse("OSL-10-23").unwrap()
            ]
        );
        let reason = assessment.condition("crime_time").unwrap().reason();
        assert!(
            reason.contains("OSL-10-21") && reason.contains("OSL-10-23"),
            "{reason}"
        );
    }

    #[test]
    fn grov_kvinnofridskrankning_failed_in_autumn_2021_and_passes_in_2022() {
        let autumn = assess_18c(&happy_facts(), date!(2021 - 10 - 01));
        assert_eq!(failed_keys(&autumn), ["minimum_penalty"]);
        assert_eq!(
            autumn.condition("minimum_penalty").unwrap().reason(),
            "grov kvinnofridskränkning carried a minimum of 9 months on 2021-10-01; OSL-10-18c requires at least 12"
        );
        let summer = assess_18c(&happy_facts(), date!(2022 - 06 - 01));
        assert!(summer.passed());
    }

    #[test]
    fn olaga_hot_is_refused_for_its_minimum_penalty() {
        let facts = CaseFacts {
            crime: Some(CrimeId::parse("olaga-hot").unwrap()),
            ..happy_facts()
        };
        assert!(only_failure_18c(&facts, "minimum_penalty").contains("no special minimum"));
    }

    #[test]
    fn missing_or_unknown_crime_is_refused() {
        for crime in [None, Some(CrimeId::parse("okant-brott").unwrap())] {
            let facts = CaseFacts {
                crime,
                ..happy_facts()
            };
            assert_eq!(failed_18c(&facts), ["crime_catalogue", "minimum_penalty"]);
        }
    }

    #[test]
    fn crime_outside_the_chapters_is_refused() {
        let facts = CaseFacts {
            crime: Some(CrimeId::parse("konsstympning").unwrap()),
            ..happy_facts()
        };
        let assessment = assess_18c(&facts, date!(2022 - 06 - 01));
        assert!(failed_keys(&assessment).contains(&"crime_catalogue"));
    }

    #[test]
    fn prosecutor_as_recipient_is_refused() {
        let facts = CaseFacts {
            recipient: Recipient::Aklagarmyndigheten,
            ..happy_facts()
        };
        assert!(only_failure_18c(&facts, "recipient").contains("Åklagarmyndigheten"));
    }

    #[test]
    fn healthcare_organisation_claiming_social_services_secrecy_is_refused() {
        let facts = CaseFacts {
            organisation_secrecy: Some(SecrecyProvision::Healthcare25_1),
            claimed_secrecy: Some(SecrecyProvision::SocialServices26_1),
            ..happy_facts()
        };
        assert_eq!(
            only_failure_18c(&facts, "claimed_secrecy"),
            "the draft claims OSL-26-1 but the organisation is under OSL-25-1"
        );
    }

    #[test]
    fn organisation_without_secrecy_is_refused() {
        // Whether the draft claims the usual secrecy or none.
        for claimed_secrecy in [happy_facts().claimed_secrecy, None] {
            let facts = CaseFacts {
                organisation_secrecy: None,
                claimed_secrecy,
                ..happy_facts()
            };
            assert_eq!(failed_18c(&facts), ["source_secrecy", "claimed_secrecy"]);
        }
    }

    #[test]
    fn relation_other_needs_a_justification() {
        let facts = CaseFacts {
            relation: Relation::Other,
            ..happy_facts()
        };
        assert_eq!(
            only_failure_18c(&facts, "close_relative"),
            "relation 'other' is not a närstående without a recorded justification"
        );
        let blank = CaseFacts {
            relation: Relation::Other,
            relation_justification: Some("  \t".to_owned()),
            ..happy_facts()
        };
        assert!(!assess_18c(&blank, date!(2022 - 06 - 01)).passed());
        assert_eq!(failed_18c(&blank), ["close_relative"]);
        // With the caseworker's justification it is still not passed: it needs judgement.
        let justified = CaseFacts {
            relation: Relation::Other,
            relation_justification: Some("Bor tillsammans sedan 2020 som ett par".to_owned()),
            ..happy_facts()
        };
        let assessment = assess_18c(&justified, date!(2022 - 06 - 01));
        assert!(!assessment.passed());
        assert!(assessment.needs_judgement());
    }

    /// Issue 17: a colleague passed 18 c § on the caseworker's free text alone.
    #[test]
    fn a_colleague_with_relation_other_does_not_pass_the_close_relative_condition() {
        let facts = CaseFacts {
            relation: Relation::Other,
            relation_justification: Some("Kollega på arbetsplatsen".to_owned()),
            ..happy_facts()
        };
        let assessment = assess_18c(&facts, date!(2022 - 06 - 01));
        let condition = assessment.condition("close_relative").unwrap();
        assert!(!condition.passed());
        assert!(!assessment.passed());
    }

    #[test]
    fn relation_other_needs_the_decision_makers_judgement_neither_passed_nor_failed() {
        let facts = CaseFacts {
            relation: Relation::Other,
            relation_justification: Some("Kollega på arbetsplatsen".to_owned()),
            ..happy_facts()
        };
        let assessment = assess_18c(&facts, date!(2022 - 06 - 01));
        let condition = assessment.condition("close_relative").unwrap();
        assert_eq!(condition.outcome(), ConditionOutcome::NeedsJudgement);
        assert!(condition.needs_judgement());
        assert!(!condition.passed());
        assert_eq!(
            condition.reason(),
            "relation 'other' is a närstående only if the decision maker judges the victim to be \
             in a close and trusting relationship with the perpetrator; it needs their written \
             judgement"
        );
        // The reason never repeats the caseworker's text.
        assert!(!condition.reason().contains("Kollega"));
        assert!(failed_keys(&assessment).is_empty());
        let needing: Vec<&str> = assessment
            .conditions_needing_judgement()
            .map(ConditionResult::key)
            .collect();
        assert_eq!(needing, ["close_relative"]);
        assert!(assessment.needs_judgement());
        assert!(assessment.passes_given_judgement());

        // Confirmed by the decision maker, it passes, and says on whose judgement.
        let confirmed = assessment.with_judgement_confirmed();
        assert!(confirmed.passed());
        assert!(!confirmed.needs_judgement());
        assert_eq!(
            confirmed.condition("close_relative").unwrap().reason(),
            "relation 'other' is a närstående in the decision maker's judgement, given in their \
             written reasoning recorded with the decision"
        );

        // Judgement cannot rescue a failing condition.
        let committed = CaseFacts {
            crime_time: CrimeTime::Committed,
            ..facts
        };
        let assessment = assess_18c(&committed, date!(2022 - 06 - 01));
        assert!(assessment.needs_judgement());
        assert!(!assessment.passes_given_judgement());
        assert!(!assessment.with_judgement_confirmed().passed());
    }

    #[test]
    fn every_listed_relation_passes_without_judgement() {
        for relation in Relation::ALL {
            if relation == Relation::Other {
                continue;
            }
            let facts = CaseFacts {
                relation,
                ..happy_facts()
            };
            let assessment = assess_18c(&facts, date!(2022 - 06 - 01));
            assert!(assessment.passed(), "{relation}");
            assert!(!assessment.needs_judgement(), "{relation}");
            assert_eq!(
                assessment.condition("close_relative").unwrap().outcome(),
                ConditionOutcome::Passed
            );
            // Confirming changes nothing when nothing needed judgement.
            assert_eq!(assessment.clone().with_judgement_confirmed(), assessment);
        }
    }

    #[test]
    fn condition_outcomes_round_trip_through_their_text() {
        for outcome in ConditionOutcome::ALL {
            assert_eq!(ConditionOutcome::parse(outcome.as_str()), Ok(outcome));
        }
        assert_eq!(ConditionOutcome::NeedsJudgement.as_str(), "needs_judgement");
        assert!(ConditionOutcome::parse("maybe").is_err());
        let facts = CaseFacts {
            relation: Relation::Other,
            relation_justification: Some("Kusin som bor i samma hushåll".to_owned()),
            ..happy_facts()
        };
        let assessment = assess_18c(&facts, date!(2022 - 06 - 01));
        let json = serde_json::to_string(&assessment).unwrap();
        assert!(json.contains("\"outcome\":\"needs_judgement\""), "{json}");
        let back: Assessment = serde_json::from_str(&json).unwrap();
        assert_eq!(back, assessment);
    }

    #[test]
    fn checklist_answers_must_be_yes_with_justification() {
        let mut blank = happy_facts();
        blank.checklist[1].justification = " \n ".to_owned();
        assert_eq!(failed_18c(&blank), ["checklist.contributes_to_prevention"]);

        let mut answered_no = happy_facts();
        answered_no.checklist[2].answer = false;
        assert_eq!(failed_18c(&answered_no), ["checklist.not_unsuitable"]);

        let mut missing = happy_facts();
        missing.checklist.remove(0);
        assert_eq!(failed_18c(&missing), ["checklist.special_circumstances"]);
    }

    #[test]
    fn basis_before_2021_08_01_is_not_in_force() {
        let assessment = assess_18c(&happy_facts(), date!(2021 - 07 - 31));
        assert!(!assessment.passed());
        assert!(failed_keys(&assessment).contains(&"basis_in_force"));
        assert_eq!(
            assessment.condition("basis_in_force").unwrap().reason(),
            "OSL-10-18c is not in force on 2021-07-31; it applies from 2021-08-01"
        );
    }

    #[test]
    fn unknown_basis_is_an_error() {
        let result = assess(
            &registry(),
            &LegalBasisId::parse("OSL-99-9").unwrap(),
            &happy_facts(),
            date!(2022 - 06 - 01),
        );
        assert!(matches!(result, Err(RegistryError::UnknownLegalBasis(_))));
    }

    #[test]
    fn osl_10_21_checks_victim_age_and_allows_the_prosecutor() {
        let basis = LegalBasisId::parse("OSL-10-21").unwrap();
        let facts = CaseFacts {
            recipient: Recipient::Aklagarmyndigheten,
            crime: Some(CrimeId::parse("misshandel").unwrap()),
            crime_time: CrimeTime::Committed,
            relation: Relation::Child,
            victim_birth_date: Some(date!(2012 - 01 - 01)),
            checklist: vec![answer("suspicion_of_crime")],
            ..happy_facts()
        };
        let assessment = passing_on_2024_01_01(&basis, &facts);
        assert!(assessment.condition("victim_age").is_some());

        // An adult victim, and a victim of unknown age.
        for victim_birth_date in [Some(date!(2000 - 01 - 01)), None] {
            let facts = CaseFacts {
                victim_birth_date,
                ..facts.clone()
            };
            assert_eq!(failed_on_2024_01_01(&basis, &facts), ["victim_age"]);
        }
    }

    #[test]
    fn osl_10_18a_is_social_services_only_and_under_21() {
        let basis = LegalBasisId::parse("OSL-10-18a").unwrap();
        let facts = CaseFacts {
            subject_birth_date: Some(date!(2006 - 01 - 01)),
            checklist: vec![answer("needed_to_prevent_crime")],
            ..happy_facts()
        };
        passing_on_2024_01_01(&basis, &facts);

        let healthcare = CaseFacts {
            organisation_secrecy: Some(SecrecyProvision::Healthcare25_1),
            claimed_secrecy: Some(SecrecyProvision::Healthcare25_1),
            ..facts.clone()
        };
        assert_eq!(
            failed_on_2024_01_01(&basis, &healthcare),
            ["source_secrecy", "source_kind"]
        );

        let too_old = CaseFacts {
            subject_birth_date: Some(date!(2000 - 01 - 01)),
            ..facts
        };
        assert_eq!(failed_on_2024_01_01(&basis, &too_old), ["subject_age"]);
    }

    #[test]
    fn osl_12_2_requires_a_complete_consent_record() {
        let basis = LegalBasisId::parse("OSL-12-2").unwrap();
        let consent = ConsentRecord {
            given_by: "Den enskilde".to_owned(),
            given_at: date!(2023 - 12 - 01),
            scope: "Uppgifter om hot till Polismyndigheten".to_owned(),
            how: "Muntligt vid möte, antecknat i akten".to_owned(),
        };
        let facts = CaseFacts {
            crime: None,
            checklist: vec![answer("consent_covers_disclosure")],
            consent: Some(consent.clone()),
            ..happy_facts()
        };
        let assessment = passing_on_2024_01_01(&basis, &facts);

        let reason_text: String = assessment
            .conditions()
            .iter()
            .map(ConditionResult::reason)
            .collect();
        assert!(!reason_text.contains("Den enskilde"));

        let incomplete = CaseFacts {
            consent: Some(ConsentRecord {
                how: " ".to_owned(),
                ..consent.clone()
            }),
            ..facts.clone()
        };
        let assessment = assess(&registry(), &basis, &incomplete, date!(2024 - 01 - 01)).unwrap();
        assert_eq!(
            assessment.condition("consent_record").unwrap().reason(),
            "the consent record is missing how"
        );

        // No consent record, and one dated after the assessment.
        let future = ConsentRecord {
            given_at: date!(2024 - 02 - 01),
            ..consent
        };
        for consent in [None, Some(future)] {
            let facts = CaseFacts {
                consent,
                ..facts.clone()
            };
            assert_eq!(failed_on_2024_01_01(&basis, &facts), ["consent_record"]);
        }
    }

    #[test]
    fn assessment_serialises_with_iso_date_and_round_trips() {
        let assessment = assess_18c(&happy_facts(), date!(2022 - 06 - 01));
        let json = serde_json::to_string(&assessment).unwrap();
        assert!(json.contains("\"as_of\":\"2022-06-01\""), "{json}");
        assert!(json.contains("\"basis\":\"OSL-10-18c\""), "{json}");
        let back: Assessment = serde_json::from_str(&json).unwrap();
        assert_eq!(back, assessment);
    }

    #[test]
    fn relation_round_trips_and_only_other_is_not_close() {
        for relation in Relation::ALL {
            assert_eq!(Relation::parse(relation.as_str()), Ok(relation));
            assert_eq!(relation.is_close_relative(), relation != Relation::Other);
        }
        assert_eq!(
            Relation::PartnerNotCohabiting.as_str(),
            "partner_not_cohabiting"
        );
        assert!(Relation::parse("Spouse").is_err());
        assert_eq!(CrimeTime::parse("committed"), Ok(CrimeTime::Committed));
    }

    fn basis(id: &str) -> LegalBasisId {
        LegalBasisId::parse(id).unwrap()
    }

    #[test]
    fn an_excluded_secrecy_is_refused_whatever_else_the_basis_allows() {
        // A basis that breaks any secrecy except social services'.
        let bases = r#"
[[basis]]
id = "OSL-10-15a"
statute = "s"
title = "t"
valid_from = 2025-12-01
breaks = []
excluded_secrecy = ["OSL-26-1"]
recipients = ["polismyndigheten"]
crime_time = "any"
requires_close_relative = false
requires_consent_record = false
verify = true
"#;
        let registry = LegalRegistry::from_toml(bases, EMBEDDED_CRIMES_TOML).unwrap();
        let facts = CaseFacts {
            recipient: Recipient::Polismyndigheten,
            checklist: Vec::new(),
            ..happy_facts()
        };
        let assessment = assess(
            &registry,
            &basis("OSL-10-15a"),
            &facts,
            date!(2026 - 01 - 01),
        )
        .unwrap();
        assert_eq!(failed_keys(&assessment), ["source_secrecy"]);
        let healthcare = CaseFacts {
            organisation_secrecy: Some(SecrecyProvision::Healthcare25_1),
            claimed_secrecy: Some(SecrecyProvision::Healthcare25_1),
            ..facts
        };
        assert!(
            assess(
                &registry,
                &basis("OSL-10-15a"),
                &healthcare,
                date!(2026 - 01 - 01)
            )
            .unwrap()
            .passed()
        );
    }

    // ---- the 2025 reforms ----------------------------------------------------------------

    /// A social-services case under `checklist_keys`, each answered yes with a justification,
    /// to the prosecutor about a committed crime: nothing 18 c § would allow.
    fn reform_facts(checklist_keys: &[&str]) -> CaseFacts {
        CaseFacts {
            recipient: Recipient::Aklagarmyndigheten,
            crime: Some(CrimeId::parse("misshandel").unwrap()),
            crime_time: CrimeTime::Committed,
            relation: Relation::Other,
            checklist: checklist_keys.iter().map(|key| answer(key)).collect(),
            ..happy_facts()
        }
    }

    /// Each reform basis: its checklist, the first day it is in force.
    const REFORM_BASES: [(&str, &[&str], Date); 3] = [
        (
            "USKBM-2025b",
            &["request_received", "needed_by_recipient", "duty_applies"],
            date!(2025 - 04 - 01),
        ),
        (
            "USKBM-2025e",
            &["significance_for_law_enforcement", "duty_applies"],
            date!(2025 - 04 - 01),
        ),
        (
            "OSL-10-15a",
            &["purpose", "interest_weighing"],
            date!(2025 - 12 - 01),
        ),
    ];

    #[test]
    fn each_reform_basis_passes_from_its_first_day_for_every_law_enforcement_recipient() {
        for (id, keys, first_day) in REFORM_BASES {
            for recipient in Recipient::ALL {
                for crime_time in CrimeTime::ALL {
                    let facts = CaseFacts {
                        recipient,
                        crime_time,
                        ..reform_facts(keys)
                    };
                    let assessment = assess(&registry(), &basis(id), &facts, first_day).unwrap();
                    assert!(
                        assessment.passed(),
                        "{id} {recipient} {crime_time}: {:?}",
                        failed_keys(&assessment)
                    );
                    let expected: Vec<String> = [
                        "basis_in_force",
                        "recipient",
                        "source_secrecy",
                        "claimed_secrecy",
                        "crime_time",
                    ]
                    .into_iter()
                    .map(str::to_owned)
                    .chain(keys.iter().map(|key| format!("checklist.{key}")))
                    .collect();
                    let reported: Vec<&str> = assessment
                        .conditions()
                        .iter()
                        .map(ConditionResult::key)
                        .collect();
                    assert_eq!(reported, expected, "{id}");
                    assert!(assessment.suggestions().is_empty());
                }
            }
            // No crime recorded at all: none of these bases has a crime filter.
            let no_crime = CaseFacts {
                crime: None,
                ..reform_facts(keys)
            };
            assert!(
                assess(&registry(), &basis(id), &no_crime, first_day)
                    .unwrap()
                    .passed(),
                "{id}"
            );
        }
    }

    #[test]
    fn each_reform_basis_is_not_in_force_the_day_before() {
        for (id, keys, first_day) in REFORM_BASES {
            let day_before = first_day.previous_day().unwrap();
            let assessment =
                assess(&registry(), &basis(id), &reform_facts(keys), day_before).unwrap();
            assert!(!assessment.passed(), "{id}");
            assert_eq!(failed_keys(&assessment), ["basis_in_force"], "{id}");
            assert_eq!(
                assessment.condition("basis_in_force").unwrap().reason(),
                format!("{id} is not in force on {day_before}; it applies from {first_day}")
            );
        }
    }

    #[test]
    fn each_reform_basis_refuses_a_secrecy_the_draft_does_not_hold_or_state() {
        for (id, keys, first_day) in REFORM_BASES {
            // The organisation is social services but the draft claims healthcare secrecy.
            let mismatch = CaseFacts {
                claimed_secrecy: Some(SecrecyProvision::Healthcare25_1),
                ..reform_facts(keys)
            };
            assert_eq!(
                failed_under(&basis(id), &mismatch, first_day),
                ["claimed_secrecy"],
                "{id}"
            );
            let unstated = CaseFacts {
                claimed_secrecy: None,
                ..reform_facts(keys)
            };
            assert_eq!(
                failed_under(&basis(id), &unstated, first_day),
                ["claimed_secrecy"],
                "{id}"
            );
            let no_secrecy = CaseFacts {
                organisation_secrecy: None,
                ..reform_facts(keys)
            };
            assert_eq!(
                failed_under(&basis(id), &no_secrecy, first_day),
                ["source_secrecy", "claimed_secrecy"],
                "{id}"
            );
        }
    }

    #[test]
    fn each_reform_basis_refuses_healthcare_secrecy() {
        let healthcare = |keys: &[&str]| CaseFacts {
            organisation_secrecy: Some(SecrecyProvision::Healthcare25_1),
            claimed_secrecy: Some(SecrecyProvision::Healthcare25_1),
            ..reform_facts(keys)
        };
        for (id, keys, first_day) in REFORM_BASES {
            let assessment = assess(&registry(), &basis(id), &healthcare(keys), first_day).unwrap();
            assert_eq!(failed_keys(&assessment), ["source_secrecy"], "{id}");
        }
        // 15 a §: healthcare secrecy is excluded from the provision, and the reason says so.
        let (id, keys, first_day) = REFORM_BASES[2];
        let assessment = assess(&registry(), &basis(id), &healthcare(keys), first_day).unwrap();
        assert_eq!(
            assessment.condition("source_secrecy").unwrap().reason(),
            "OSL-25-1 is excluded from OSL-10-15a, which never breaks it; the organisation is under OSL-25-1"
        );
        let passing = assess(&registry(), &basis(id), &reform_facts(keys), first_day).unwrap();
        assert_eq!(
            passing.condition("source_secrecy").unwrap().reason(),
            "OSL-10-15a may break any secrecy protecting an individual except OSL-25-1, including OSL-26-1"
        );
        // The duty: only social-services secrecy.
        let (id, keys, first_day) = REFORM_BASES[0];
        let assessment = assess(&registry(), &basis(id), &healthcare(keys), first_day).unwrap();
        assert_eq!(
            assessment.condition("source_secrecy").unwrap().reason(),
            "USKBM-2025b breaks only OSL-26-1; the organisation is under OSL-25-1"
        );
    }

    #[test]
    fn each_reform_basis_refuses_every_checklist_item_missing_answered_no_or_unjustified() {
        for (id, keys, first_day) in REFORM_BASES {
            for (index, key) in keys.iter().enumerate() {
                let expected = [format!("checklist.{key}")];

                let mut missing = reform_facts(keys);
                missing.checklist.remove(index);
                assert_eq!(
                    failed_under(&basis(id), &missing, first_day),
                    expected,
                    "{id}"
                );

                let mut answered_no = reform_facts(keys);
                answered_no.checklist[index].answer = false;
                assert_eq!(
                    failed_under(&basis(id), &answered_no, first_day),
                    expected,
                    "{id}"
                );

                let mut unjustified = reform_facts(keys);
                unjustified.checklist[index].justification = " \t ".to_owned();
                let assessment = assess(&registry(), &basis(id), &unjustified, first_day).unwrap();
                assert_eq!(failed_keys(&assessment), expected, "{id}");
                assert_eq!(
                    assessment.condition(&expected[0]).unwrap().reason(),
                    format!(
                        "checklist item '{key}' is answered yes but has no written justification"
                    )
                );
            }
        }
    }

    #[test]
    fn osl_10_15a_refuses_without_the_written_weighing_of_interests() {
        let (id, keys, first_day) = REFORM_BASES[2];
        let mut facts = reform_facts(keys);
        facts
            .checklist
            .retain(|answer| answer.key != "interest_weighing");
        let assessment = assess(&registry(), &basis(id), &facts, first_day).unwrap();
        assert_eq!(failed_keys(&assessment), ["checklist.interest_weighing"]);
        assert_eq!(
            assessment
                .condition("checklist.interest_weighing")
                .unwrap()
                .reason(),
            "checklist item 'interest_weighing' is not answered"
        );
    }

    fn any_secrecy() -> impl Strategy<Value = Option<SecrecyProvision>> {
        prop_oneof![
            Just(None),
            Just(Some(SecrecyProvision::Healthcare25_1)),
            Just(Some(SecrecyProvision::SocialServices26_1)),
        ]
    }

    proptest! {
        /// Whatever the facts, every 18 c § condition is reported, and the assessment passes
        /// only if the organisation's own secrecy is claimed and the recipient is the police.
        #[test]
        fn every_condition_is_always_reported(
            organisation_secrecy in any_secrecy(),
            claimed_secrecy in any_secrecy(),
            recipient_index in 0usize..Recipient::ALL.len(),
            relation_index in 0usize..9,
            committed in any::<bool>(),
            year in 2019i32..2026,
        ) {
            let facts = CaseFacts {
                organisation_secrecy,
                claimed_secrecy,
                recipient: Recipient::ALL[recipient_index],
                relation: Relation::ALL[relation_index],
                crime_time: if committed { CrimeTime::Committed } else { CrimeTime::FutureRisk },
                ..happy_facts()
            };
            let as_of = Date::from_calendar_date(year, time::Month::June, 1).unwrap();
            let assessment = assess_18c(&facts, as_of);
            prop_assert_eq!(assessment.conditions().len(), 11);
            if assessment.passed() {
                prop_assert!(organisation_secrecy.is_some());
                prop_assert_eq!(claimed_secrecy, organisation_secrecy);
                prop_assert_eq!(facts.recipient, Recipient::Polismyndigheten);
                prop_assert!(!committed);
                prop_assert!(year >= 2022);
            }
        }

        /// Whatever the caseworker writes, relation `other` never passes the close-relative
        /// condition: with a justification it needs judgement, without one it fails.
        #[test]
        fn relation_other_never_passes_on_free_text(justification in "\\PC{0,80}") {
            let facts = CaseFacts {
                relation: Relation::Other,
                relation_justification: Some(justification.clone()),
                ..happy_facts()
            };
            let assessment = assess_18c(&facts, date!(2022 - 06 - 01));
            let condition = assessment.condition("close_relative").unwrap();
            prop_assert!(!condition.passed());
            prop_assert!(!assessment.passed());
            let expected = if justification.trim().is_empty() {
                ConditionOutcome::Failed
            } else {
                ConditionOutcome::NeedsJudgement
            };
            prop_assert_eq!(condition.outcome(), expected);
        }

        /// Whatever the facts, a reform basis passes only for social-services secrecy claimed
        /// as the organisation's own, from the day it came into force.
        #[test]
        fn a_reform_basis_passes_only_for_social_services_secrecy_in_force(
            basis_index in 0usize..REFORM_BASES.len(),
            organisation_secrecy in any_secrecy(),
            claimed_secrecy in any_secrecy(),
            recipient_index in 0usize..Recipient::ALL.len(),
            days_from_start in -400i64..400,
        ) {
            let (id, keys, first_day) = REFORM_BASES[basis_index];
            let facts = CaseFacts {
                organisation_secrecy,
                claimed_secrecy,
                recipient: Recipient::ALL[recipient_index],
                ..reform_facts(keys)
            };
            let as_of = first_day + time::Duration::days(days_from_start);
            let assessment = assess(&registry(), &basis(id), &facts, as_of).unwrap();
            prop_assert_eq!(assessment.conditions().len(), 5 + keys.len());
            prop_assert_eq!(
                assessment.passed(),
                organisation_secrecy == Some(SecrecyProvision::SocialServices26_1)
                    && claimed_secrecy == organisation_secrecy
                    && as_of >= first_day
            );
        }
    }
}
