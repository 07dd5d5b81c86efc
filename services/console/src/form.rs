//! The draft form as posted: its fields become the services' `DraftContent`, and a
//! `DraftContent` fills the form again. The checklist and data items are named per key
//! (`checklist_<key>`, `justification_<key>`, `item_<item>`, `reason_<item>`), so the form
//! can follow whatever the chosen legal basis asks.

use std::collections::HashMap;

use tryggdel_proto::common::v1::Person;
use tryggdel_proto::disclosure::v1::{
    ChecklistAnswer, ConsentRecord, DraftContent, ProtectedDetails, SelectedItem,
};

use crate::words::DATA_ITEMS;

/// A posted form: every field by name (the last value wins, checkboxes are present or not).
#[derive(Clone, Debug, Default)]
pub struct Posted {
    fields: HashMap<String, String>,
}

impl Posted {
    pub fn new(pairs: Vec<(String, String)>) -> Posted {
        Posted {
            fields: pairs.into_iter().collect(),
        }
    }

    /// The trimmed value of `name`, empty when absent.
    pub fn text(&self, name: &str) -> String {
        self.fields
            .get(name)
            .map(|value| value.trim().to_owned())
            .unwrap_or_default()
    }

    pub fn checked(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    pub fn csrf(&self) -> String {
        self.text("csrf")
    }

    /// `expected_version`, or 0 when missing or not a number (the service refuses 0 and
    /// says why).
    pub fn version(&self) -> i64 {
        self.text("expected_version").parse().unwrap_or(0)
    }

    /// The checklist keys answered in the form, in the order they were posted.
    fn checklist_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .fields
            .keys()
            .filter_map(|name| {
                name.strip_prefix("justification_")
                    .or_else(|| name.strip_prefix("checklist_"))
            })
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// The draft these fields describe.
    pub fn content(&self) -> DraftContent {
        let person = |prefix: &str| {
            let identity_number = self.text(&format!("{prefix}_identity_number"));
            let name = self.text(&format!("{prefix}_name"));
            (!identity_number.is_empty() || !name.is_empty()).then_some(Person {
                identity_number,
                name,
            })
        };
        let protected = ProtectedDetails {
            address: self.text("victim_protected_address"),
            workplace: self.text("victim_protected_workplace"),
            school: self.text("victim_protected_school"),
            shelter: self.text("victim_protected_shelter"),
        };
        let consent = ConsentRecord {
            given_by: self.text("consent_given_by"),
            given_on: self.text("consent_given_on"),
            scope: self.text("consent_scope"),
            how: self.text("consent_how"),
        };
        let has_consent = !(consent.given_by.is_empty()
            && consent.given_on.is_empty()
            && consent.scope.is_empty()
            && consent.how.is_empty());
        let checklist = self
            .checklist_keys()
            .into_iter()
            .map(|key| ChecklistAnswer {
                answer: self.checked(&format!("checklist_{key}")),
                justification: self.text(&format!("justification_{key}")),
                key,
            })
            .collect();
        let data_items = DATA_ITEMS
            .iter()
            .filter(|(item, _, _)| self.checked(&format!("item_{item}")))
            .map(|(item, _, _)| SelectedItem {
                item: (*item).to_owned(),
                reason: self.text(&format!("reason_{item}")),
            })
            .collect();
        let protected_given = !(protected.address.is_empty()
            && protected.workplace.is_empty()
            && protected.school.is_empty()
            && protected.shelter.is_empty());
        DraftContent {
            unit: self.text("unit"),
            case_reference: self.text("case_reference"),
            subject: person("subject"),
            victim: person("victim"),
            relation: self.text("relation"),
            relation_justification: self.text("relation_justification"),
            victim_protection: self.text("victim_protection"),
            victim_protected: protected_given.then_some(protected),
            legal_basis_id: self.text("legal_basis_id"),
            claimed_secrecy: self.text("claimed_secrecy"),
            recipient: self.text("recipient"),
            crime_id: self.text("crime_id"),
            crime_time: self.text("crime_time"),
            risk_description: self.text("risk_description"),
            checklist,
            data_items,
            alternatives_considered: self.text("alternatives_considered"),
            urgent: self.checked("urgent"),
            consent: has_consent.then_some(consent),
            contact_person: self.text("contact_person"),
            answers_follow_up_id: self.text("answers_follow_up_id"),
            answers_information_request_id: self.text("answers_information_request_id"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn posted(pairs: &[(&str, &str)]) -> Posted {
        Posted::new(
            pairs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn fields_become_the_draft_with_checklist_and_items() {
        let form = posted(&[
            ("case_reference", " IFO-2026-17 "),
            ("victim_identity_number", "19820202-2222"),
            ("legal_basis_id", "OSL-10-18c"),
            ("checklist_special_circumstances", "on"),
            ("justification_special_circumstances", "hot om våld"),
            ("justification_not_unsuitable", ""),
            ("item_subject_name", "on"),
            ("reason_subject_name", "identifiering"),
            ("reason_victim_address", "ej vald"),
            ("urgent", "on"),
        ]);
        let content = form.content();
        assert_eq!(content.case_reference, "IFO-2026-17");
        assert_eq!(content.victim.unwrap().identity_number, "19820202-2222");
        assert!(content.subject.is_none());
        assert_eq!(content.checklist.len(), 2);
        let answered = content
            .checklist
            .iter()
            .find(|answer| answer.key == "special_circumstances")
            .unwrap();
        assert!(answered.answer);
        assert_eq!(answered.justification, "hot om våld");
        assert!(
            !content
                .checklist
                .iter()
                .find(|a| a.key == "not_unsuitable")
                .unwrap()
                .answer
        );
        assert_eq!(content.data_items.len(), 1);
        assert_eq!(content.data_items[0].item, "subject_name");
        assert!(content.urgent);
        assert!(content.victim_protected.is_none());
        assert!(content.consent.is_none());
    }

    #[test]
    fn a_missing_or_bad_version_is_zero() {
        assert_eq!(posted(&[]).version(), 0);
        assert_eq!(posted(&[("expected_version", "x")]).version(), 0);
        assert_eq!(posted(&[("expected_version", "3")]).version(), 3);
    }
}
