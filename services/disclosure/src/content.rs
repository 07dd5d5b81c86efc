//! Parsing a draft's content from the wire into domain types, with bounds on every field.
//!
//! Drafts may be incomplete; what must hold for submission is checked separately
//! ([`ValidatedDraft::missing_for_submission`]). Every error names the field it is about.

use std::collections::{BTreeMap, BTreeSet};

use time::Date;
use tryggdel_domain::{
    CaseFacts, ChecklistAnswer, ConsentRecord, CrimeId, CrimeTime, DataItem, IdentityNumber,
    LegalBasisId, Organisation, Recipient, Relation, SecrecyProvision,
};
use tryggdel_proto::common::v1::Person;
use tryggdel_proto::disclosure::v1::{DraftContent, ProtectedDetails};

use tryggdel_service_kit::ServiceError;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_REFERENCE_CHARS: usize = 100;
pub const MAX_TEXT_CHARS: usize = 4000;
pub const MAX_PROTECTED_CHARS: usize = 500;
pub const MAX_LIST_ITEMS: usize = 32;
pub const MASK: &str = "***";

const VICTIM_PROTECTIONS: &[&str] = &[
    "none",
    "sekretessmarkering",
    "skyddad_folkbokforing",
    "threat_21_3",
];

/// A draft whose every present field parsed.
#[derive(Clone, Debug)]
pub struct ValidatedDraft {
    /// The content as stored: identity numbers normalised, protected details removed.
    pub content: DraftContent,
    pub protected: ProtectedDetails,
    pub subject_identity: Option<IdentityNumber>,
    pub victim_identity: Option<IdentityNumber>,
    pub relation: Option<Relation>,
    pub legal_basis: Option<LegalBasisId>,
    pub claimed_secrecy: Option<SecrecyProvision>,
    pub recipient: Option<Recipient>,
    pub crime: Option<CrimeId>,
    pub crime_time: Option<CrimeTime>,
    pub data_items: Vec<DataItem>,
    pub consent: Option<ConsentRecord>,
}

fn bounded(field: &str, value: &str, max_chars: usize) -> Result<(), ServiceError> {
    tryggdel_service_kit::bounded_text(field, value, max_chars)?;
    tryggdel_service_kit::no_control_characters(field, value, true)
}

/// A list `field` of `len` items is refused when it has more than [`MAX_LIST_ITEMS`].
fn at_most_list_items(field: &str, len: usize) -> Result<(), ServiceError> {
    if len > MAX_LIST_ITEMS {
        return Err(ServiceError::invalid(
            field,
            format!("has {len} items, at most {MAX_LIST_ITEMS} allowed"),
        ));
    }
    Ok(())
}

fn optional<T, E: std::fmt::Display>(
    field: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, ServiceError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    parse(value.trim())
        .map(Some)
        .map_err(|error| ServiceError::invalid(field, error))
}

fn person(
    field: &str,
    person: Option<&Person>,
    today: Date,
) -> Result<(Person, Option<IdentityNumber>), ServiceError> {
    let Some(person) = person else {
        return Ok((Person::default(), None));
    };
    bounded(&format!("{field}.name"), &person.name, MAX_NAME_CHARS)?;
    bounded(
        &format!("{field}.identity_number"),
        &person.identity_number,
        MAX_REFERENCE_CHARS,
    )?;
    let identity = optional(
        &format!("{field}.identity_number"),
        &person.identity_number,
        |text| IdentityNumber::parse(text, today),
    )?;
    Ok((
        Person {
            identity_number: identity
                .as_ref()
                .map(IdentityNumber::to_canonical_string)
                .unwrap_or_default(),
            name: person.name.trim().to_owned(),
        },
        identity,
    ))
}

/// Parses `content`; `today` decides the century of 10-digit identity numbers.
pub fn validate(content: &DraftContent, today: Date) -> Result<ValidatedDraft, ServiceError> {
    let field = |name: &str| format!("content.{name}");
    bounded(&field("unit"), &content.unit, MAX_NAME_CHARS)?;
    bounded(
        &field("case_reference"),
        &content.case_reference,
        MAX_REFERENCE_CHARS,
    )?;
    bounded(
        &field("contact_person"),
        &content.contact_person,
        MAX_NAME_CHARS,
    )?;
    for (name, value) in [
        ("relation_justification", &content.relation_justification),
        ("risk_description", &content.risk_description),
        ("alternatives_considered", &content.alternatives_considered),
    ] {
        bounded(&field(name), value, MAX_TEXT_CHARS)?;
    }
    if !content.answers_follow_up_id.is_empty()
        && uuid::Uuid::parse_str(&content.answers_follow_up_id).is_err()
    {
        return Err(ServiceError::invalid(
            field("answers_follow_up_id"),
            "must be a follow-up question's id (a UUID)",
        ));
    }
    if !content.answers_information_request_id.is_empty()
        && uuid::Uuid::parse_str(&content.answers_information_request_id).is_err()
    {
        return Err(ServiceError::invalid(
            field("answers_information_request_id"),
            "must be a request for information's id (a UUID)",
        ));
    }
    for (name, value) in [
        ("relation", &content.relation),
        ("victim_protection", &content.victim_protection),
        ("legal_basis_id", &content.legal_basis_id),
        ("claimed_secrecy", &content.claimed_secrecy),
        ("recipient", &content.recipient),
        ("crime_id", &content.crime_id),
        ("crime_time", &content.crime_time),
    ] {
        bounded(&field(name), value, MAX_REFERENCE_CHARS)?;
    }
    let (subject, subject_identity) = person(&field("subject"), content.subject.as_ref(), today)?;
    let (victim, victim_identity) = person(&field("victim"), content.victim.as_ref(), today)?;
    let relation = optional(&field("relation"), &content.relation, Relation::parse)?;
    if !content.victim_protection.is_empty()
        && !VICTIM_PROTECTIONS.contains(&content.victim_protection.as_str())
    {
        return Err(ServiceError::invalid(
            field("victim_protection"),
            format!("must be one of {}", VICTIM_PROTECTIONS.join(", ")),
        ));
    }
    let protected = content.victim_protected.clone().unwrap_or_default();
    for (name, value) in [
        ("address", &protected.address),
        ("workplace", &protected.workplace),
        ("school", &protected.school),
        ("shelter", &protected.shelter),
    ] {
        bounded(
            &format!("content.victim_protected.{name}"),
            value,
            MAX_PROTECTED_CHARS,
        )?;
    }
    let legal_basis = optional(&field("legal_basis_id"), &content.legal_basis_id, |text| {
        LegalBasisId::parse(text)
    })?;
    let claimed_secrecy = optional(
        &field("claimed_secrecy"),
        &content.claimed_secrecy,
        SecrecyProvision::parse,
    )?;
    let recipient = optional(&field("recipient"), &content.recipient, Recipient::parse)?;
    let crime = optional(&field("crime_id"), &content.crime_id, CrimeId::parse)?;
    let crime_time = optional(
        &field("crime_time"),
        &content.crime_time,
        |text| match text {
            "future_risk" => Ok(CrimeTime::FutureRisk),
            "committed" => Ok(CrimeTime::Committed),
            _ => Err("must be future_risk or committed"),
        },
    )?;
    at_most_list_items(&field("checklist"), content.checklist.len())?;
    let mut keys = BTreeSet::new();
    for (index, answer) in content.checklist.iter().enumerate() {
        let item = format!("content.checklist[{index}]");
        bounded(&format!("{item}.key"), &answer.key, MAX_REFERENCE_CHARS)?;
        bounded(
            &format!("{item}.justification"),
            &answer.justification,
            MAX_TEXT_CHARS,
        )?;
        if answer.key.trim().is_empty() {
            return Err(ServiceError::invalid(
                format!("{item}.key"),
                "must not be empty",
            ));
        }
        if !keys.insert(answer.key.trim()) {
            return Err(ServiceError::invalid(
                format!("{item}.key"),
                format!("{:?} is answered twice", answer.key.trim()),
            ));
        }
    }
    at_most_list_items(&field("data_items"), content.data_items.len())?;
    let mut data_items = Vec::new();
    for (index, selected) in content.data_items.iter().enumerate() {
        let item = format!("content.data_items[{index}]");
        bounded(&format!("{item}.reason"), &selected.reason, MAX_TEXT_CHARS)?;
        let data_item = DataItem::parse(selected.item.trim())
            .map_err(|error| ServiceError::invalid(format!("{item}.item"), error))?;
        if data_items.contains(&data_item) {
            return Err(ServiceError::invalid(
                format!("{item}.item"),
                format!("{} is chosen twice", data_item.as_str()),
            ));
        }
        data_items.push(data_item);
    }
    let consent = match &content.consent {
        Some(record) if !record.given_by.trim().is_empty() || !record.given_on.is_empty() => {
            for (name, value) in [
                ("given_by", &record.given_by),
                ("scope", &record.scope),
                ("how", &record.how),
            ] {
                bounded(&format!("content.consent.{name}"), value, MAX_TEXT_CHARS)?;
            }
            let given_at = parse_date(&record.given_on)
                .map_err(|problem| ServiceError::invalid("content.consent.given_on", problem))?;
            Some(ConsentRecord {
                given_by: record.given_by.trim().to_owned(),
                given_at,
                scope: record.scope.trim().to_owned(),
                how: record.how.trim().to_owned(),
            })
        }
        _ => None,
    };
    let mut stored = content.clone();
    stored.subject = Some(subject);
    stored.victim = Some(victim);
    stored.victim_protected = None;
    Ok(ValidatedDraft {
        content: stored,
        protected,
        subject_identity,
        victim_identity,
        relation,
        legal_basis,
        claimed_secrecy,
        recipient,
        crime,
        crime_time,
        data_items,
        consent,
    })
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), format).map_err(|_| format!("{text:?} is not a date (YYYY-MM-DD)"))
}

pub fn format_date(date: Date) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    date.format(format).unwrap_or_default()
}

impl ValidatedDraft {
    /// The fields a draft must have before it can be submitted, by name.
    pub fn missing_for_submission(&self) -> Vec<String> {
        let mut missing = Vec::new();
        let mut require = |present: bool, name: &str| {
            if !present {
                missing.push(format!("content.{name}"));
            }
        };
        let subject = self.content.subject.clone().unwrap_or_default();
        let victim = self.content.victim.clone().unwrap_or_default();
        require(!self.content.unit.trim().is_empty(), "unit");
        require(
            !self.content.case_reference.trim().is_empty(),
            "case_reference",
        );
        require(self.subject_identity.is_some(), "subject.identity_number");
        require(!subject.name.is_empty(), "subject.name");
        require(self.victim_identity.is_some(), "victim.identity_number");
        require(!victim.name.is_empty(), "victim.name");
        require(self.relation.is_some(), "relation");
        require(
            !self.content.victim_protection.is_empty(),
            "victim_protection",
        );
        require(self.legal_basis.is_some(), "legal_basis_id");
        require(self.claimed_secrecy.is_some(), "claimed_secrecy");
        require(self.recipient.is_some(), "recipient");
        require(self.crime_time.is_some(), "crime_time");
        require(
            !self.content.risk_description.trim().is_empty(),
            "risk_description",
        );
        require(!self.data_items.is_empty(), "data_items");
        for (index, selected) in self.content.data_items.iter().enumerate() {
            require(
                !selected.reason.trim().is_empty(),
                &format!("data_items[{index}].reason"),
            );
        }
        for item in &self.data_items {
            if self
                .item_value(*item)
                .is_none_or(|value| value.trim().is_empty())
            {
                missing.push(format!(
                    "a value for the chosen data item {}",
                    item.as_str()
                ));
            }
        }
        missing
    }

    /// The facts the legal assessment needs, or the field that is missing for it.
    pub fn case_facts(&self, organisation: &Organisation) -> Result<CaseFacts, ServiceError> {
        let recipient = self.recipient.ok_or_else(|| {
            ServiceError::invalid("content.recipient", "required for an assessment")
        })?;
        let crime_time = self.crime_time.ok_or_else(|| {
            ServiceError::invalid("content.crime_time", "required for an assessment")
        })?;
        let relation = self.relation.ok_or_else(|| {
            ServiceError::invalid("content.relation", "required for an assessment")
        })?;
        let justification = self.content.relation_justification.trim();
        Ok(CaseFacts {
            organisation_secrecy: organisation.secrecy(),
            claimed_secrecy: self.claimed_secrecy,
            recipient,
            crime: self.crime.clone(),
            crime_time,
            relation,
            relation_justification: (!justification.is_empty()).then(|| justification.to_owned()),
            victim_birth_date: self
                .victim_identity
                .as_ref()
                .map(IdentityNumber::birth_date),
            subject_birth_date: self
                .subject_identity
                .as_ref()
                .map(IdentityNumber::birth_date),
            checklist: self
                .content
                .checklist
                .iter()
                .map(|answer| ChecklistAnswer {
                    key: answer.key.trim().to_owned(),
                    answer: answer.answer,
                    justification: answer.justification.clone(),
                })
                .collect(),
            consent: self.consent.clone(),
        })
    }

    /// The value that goes to the police for a chosen data item.
    pub fn item_value(&self, item: DataItem) -> Option<String> {
        let subject = self.content.subject.as_ref();
        let victim = self.content.victim.as_ref();
        let text = |value: &str| (!value.trim().is_empty()).then(|| value.trim().to_owned());
        match item {
            DataItem::SubjectIdentityNumber => subject.and_then(|p| text(&p.identity_number)),
            DataItem::SubjectName => subject.and_then(|p| text(&p.name)),
            DataItem::VictimIdentityNumber => victim.and_then(|p| text(&p.identity_number)),
            DataItem::VictimName => victim.and_then(|p| text(&p.name)),
            DataItem::VictimAddress => text(&self.protected.address),
            DataItem::VictimWorkplace => text(&self.protected.workplace),
            DataItem::Relation => self.relation.map(|relation| relation.as_str().to_owned()),
            DataItem::RiskDescription => text(&self.content.risk_description),
            DataItem::CrimeCategory => self.crime.as_ref().map(|crime| crime.as_str().to_owned()),
            DataItem::CaseReference => text(&self.content.case_reference),
            DataItem::ContactPerson => text(&self.content.contact_person),
        }
    }

    /// The chosen items and their values, as they go to the police.
    pub fn payload_items(&self) -> BTreeMap<DataItem, String> {
        self.data_items
            .iter()
            .filter_map(|item| self.item_value(*item).map(|value| (*item, value)))
            .collect()
    }
}

/// The protected details with every non-empty field replaced by a mask.
pub fn masked(protected: &ProtectedDetails) -> ProtectedDetails {
    let mask = |value: &str| {
        if value.is_empty() {
            String::new()
        } else {
            MASK.to_owned()
        }
    };
    ProtectedDetails {
        address: mask(&protected.address),
        workplace: mask(&protected.workplace),
        school: mask(&protected.school),
        shelter: mask(&protected.shelter),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tryggdel_proto::disclosure::v1::SelectedItem;

    fn today() -> Date {
        time::macros::date!(2026 - 11 - 22)
    }

    #[test]
    fn identity_numbers_are_normalised_and_invalid_ones_named() {
        let content = DraftContent {
            subject: Some(Person {
                identity_number: "640823-3234".into(),
                name: " Anders ".into(),
            }),
            ..Default::default()
        };
        let draft = validate(&content, today()).unwrap();
        assert_eq!(
            draft.content.subject.unwrap().identity_number,
            "19640823-3234"
        );
        let content = DraftContent {
            victim: Some(Person {
                identity_number: "640823-3235".into(),
                name: String::new(),
            }),
            ..Default::default()
        };
        let error = validate(&content, today()).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("content.victim.identity_number:"),
            "{error}"
        );
    }

    #[test]
    fn bounds_and_enumerations_are_enforced() {
        let content = DraftContent {
            risk_description: "x".repeat(MAX_TEXT_CHARS + 1),
            ..Default::default()
        };
        let error = validate(&content, today()).unwrap_err();
        assert!(error.to_string().starts_with("content.risk_description:"));
        let content = DraftContent {
            data_items: vec![
                SelectedItem {
                    item: "victim_name".into(),
                    reason: "a".into(),
                };
                2
            ],
            ..Default::default()
        };
        let error = validate(&content, today()).unwrap_err();
        assert!(error.to_string().contains("chosen twice"), "{error}");
        let content = DraftContent {
            victim_protection: "hidden".into(),
            ..Default::default()
        };
        assert!(validate(&content, today()).is_err());
    }

    #[test]
    fn protected_details_are_split_off_and_masked() {
        let content = DraftContent {
            victim_protected: Some(ProtectedDetails {
                address: "Storgatan 1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let draft = validate(&content, today()).unwrap();
        assert!(draft.content.victim_protected.is_none());
        assert_eq!(draft.protected.address, "Storgatan 1");
        let mask = masked(&draft.protected);
        assert_eq!(mask.address, MASK);
        assert_eq!(mask.workplace, "");
    }

    #[test]
    fn an_empty_draft_lists_what_is_missing() {
        let draft = validate(&DraftContent::default(), today()).unwrap();
        let missing = draft.missing_for_submission();
        assert!(missing.contains(&"content.subject.identity_number".to_owned()));
        assert!(missing.contains(&"content.legal_basis_id".to_owned()));
    }
}
