//! A draft as a JSON file: the fields of `DraftContent` by their proto names, so a caseworker
//! (or a script) can write one, and `tryggdel disclosure template` prints a complete example.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tryggdel_proto::common::v1::Person;
use tryggdel_proto::disclosure::v1::{
    ChecklistAnswer, ConsentRecord, DraftContent, ProtectedDetails, SelectedItem,
};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersonFile {
    pub identity_number: String,
    pub name: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtectedFile {
    pub address: String,
    pub workplace: String,
    pub school: String,
    pub shelter: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecklistFile {
    pub key: String,
    pub answer: bool,
    pub justification: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ItemFile {
    pub item: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsentFile {
    pub given_by: String,
    pub given_on: String,
    pub scope: String,
    pub how: String,
}

/// The draft file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DraftFile {
    pub unit: String,
    pub case_reference: String,
    pub subject: Option<PersonFile>,
    pub victim: Option<PersonFile>,
    pub relation: String,
    pub relation_justification: String,
    pub victim_protection: String,
    pub victim_protected: Option<ProtectedFile>,
    pub legal_basis_id: String,
    pub claimed_secrecy: String,
    pub recipient: String,
    pub crime_id: String,
    pub crime_time: String,
    pub risk_description: String,
    pub checklist: Vec<ChecklistFile>,
    pub data_items: Vec<ItemFile>,
    pub alternatives_considered: String,
    pub urgent: bool,
    pub consent: Option<ConsentFile>,
    pub contact_person: String,
    pub answers_follow_up_id: String,
    /// The request for information this draft answers (its id), if any.
    pub answers_information_request_id: String,
}

impl DraftFile {
    /// Reads a draft file, naming the file and the problem.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<DraftFile> {
        serde_json::from_str(text).with_context(|| format!("{origin} is not a draft file"))
    }

    pub fn into_content(self) -> DraftContent {
        let person = |person: PersonFile| Person {
            identity_number: person.identity_number,
            name: person.name,
        };
        DraftContent {
            unit: self.unit,
            case_reference: self.case_reference,
            subject: self.subject.map(person),
            victim: self.victim.map(person),
            relation: self.relation,
            relation_justification: self.relation_justification,
            victim_protection: self.victim_protection,
            victim_protected: self.victim_protected.map(|protected| ProtectedDetails {
                address: protected.address,
                workplace: protected.workplace,
                school: protected.school,
                shelter: protected.shelter,
            }),
            legal_basis_id: self.legal_basis_id,
            claimed_secrecy: self.claimed_secrecy,
            recipient: self.recipient,
            crime_id: self.crime_id,
            crime_time: self.crime_time,
            risk_description: self.risk_description,
            checklist: self
                .checklist
                .into_iter()
                .map(|answer| ChecklistAnswer {
                    key: answer.key,
                    answer: answer.answer,
                    justification: answer.justification,
                })
                .collect(),
            data_items: self
                .data_items
                .into_iter()
                .map(|item| SelectedItem {
                    item: item.item,
                    reason: item.reason,
                })
                .collect(),
            alternatives_considered: self.alternatives_considered,
            urgent: self.urgent,
            consent: self.consent.map(|consent| ConsentRecord {
                given_by: consent.given_by,
                given_on: consent.given_on,
                scope: consent.scope,
                how: consent.how,
            }),
            contact_person: self.contact_person,
            answers_follow_up_id: self.answers_follow_up_id,
            answers_information_request_id: self.answers_information_request_id,
        }
    }

    /// The Trygghetens hus case: Bollnäs social services fear that a man will kill his
    /// cohabitant. Identity numbers are generated valid test numbers.
    pub fn example() -> DraftFile {
        let number = |year: i32, month: time::Month, day: u8, birth: u16| {
            time::Date::from_calendar_date(year, month, day)
                .map(|date| tryggdel_domain::testing::personnummer_from(date, birth))
                .unwrap_or_default()
        };
        let answer = |key: &str, justification: &str| ChecklistFile {
            key: key.into(),
            answer: true,
            justification: justification.into(),
        };
        DraftFile {
            unit: "Socialtjänsten, vuxenenheten".into(),
            case_reference: "BOL-2026-0042".into(),
            subject: Some(PersonFile {
                identity_number: number(1985, time::Month::March, 14, 123),
                name: "Testperson Ett".into(),
            }),
            victim: Some(PersonFile {
                identity_number: number(1987, time::Month::August, 2, 246),
                name: "Testperson Två".into(),
            }),
            relation: "cohabitant".into(),
            victim_protection: "threat_21_3".into(),
            victim_protected: Some(ProtectedFile {
                address: "Skyddad väg 1, 821 00 Bollnäs".into(),
                ..ProtectedFile::default()
            }),
            legal_basis_id: "OSL-10-18c".into(),
            claimed_secrecy: "OSL-26-1".into(),
            recipient: "polismyndigheten".into(),
            crime_id: "mord".into(),
            crime_time: "future_risk".into(),
            risk_description: "Han har upprepat hotat att döda henne om hon lämnar honom; \
                               han har tillgång till vapen."
                .into(),
            checklist: vec![
                answer(
                    "special_circumstances",
                    "Upprepade, konkreta dödshot senaste veckan; tillgång till vapen; \
                     riskbedömning SARA:SV visar hög risk.",
                ),
                answer(
                    "contributes_to_prevention",
                    "Polisen kan ge personskydd och ingripa mot vapeninnehavet.",
                ),
                answer(
                    "not_unsuitable",
                    "Den närstående har själv bett om skydd; pågående insatser skadas inte.",
                ),
            ],
            data_items: vec![
                ItemFile {
                    item: "subject_name".into(),
                    reason: "identifiering av den som hotar".into(),
                },
                ItemFile {
                    item: "subject_identity_number".into(),
                    reason: "identifiering av den som hotar".into(),
                },
            ],
            alternatives_considered: "Samtal och skyddat boende räcker inte mot ett akut dödshot."
                .into(),
            urgent: true,
            contact_person: "Handläggare Bollnäs, 0278-250 00".into(),
            ..DraftFile::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_example_round_trips_and_unknown_fields_are_named() {
        let text = serde_json::to_string_pretty(&DraftFile::example()).unwrap();
        let parsed = DraftFile::parse(&text, "example.json").unwrap();
        let content = parsed.into_content();
        assert_eq!(content.legal_basis_id, "OSL-10-18c");
        assert_eq!(content.checklist.len(), 3);
        let error = format!(
            "{:#}",
            DraftFile::parse(r#"{"legal_basis":"x"}"#, "draft.json").unwrap_err()
        );
        assert!(
            error.contains("draft.json") && error.contains("legal_basis"),
            "{error}"
        );
    }
}
