//! The audit event of a disclosure to the police, as every service that takes part in one
//! records it: the disclosure as the object, the disclosing organisation as the data
//! controller, the police region as the recipient, and the one purpose such a disclosure has.
//! The disclosure service (drafting, approval, hand-over) and the notification service
//! (delivery, acknowledgement, escalation) build their outbox events' audit events here, so
//! the audit log describes a disclosure the same way whoever reports on it.

use std::collections::BTreeMap;

use tryggdel_proto::audit::v1::{Actor, AuditEvent, ObjectRef, Outcome};

/// Why a disclosure to the police is made, as the audit log records it.
pub const POLICE_DISCLOSURE_PURPOSE: &str = "disclosure to the police to prevent crime";

/// What an audit event about a disclosure to the police says, whichever service records it.
#[derive(Clone, Copy, Debug)]
pub struct PoliceDisclosureEvent<'a> {
    /// The event's id, the audit log's idempotency key.
    pub event_id: &'a str,
    /// What happened, e.g. `disclosure.approved`.
    pub action: &'a str,
    pub occurred_at_unix_ms: i64,
    pub disclosure_id: &'a str,
    /// The disclosing organisation (the data controller).
    pub organisation: &'a str,
    /// The inbox the disclosure goes to (the recipient): a police region, or another
    /// law-enforcement authority.
    pub police_region: &'a str,
    pub legal_basis_id: &'a str,
    /// The legal-basis registry version the disclosure was assessed under.
    pub registry_version: &'a str,
    /// The trace of the work that caused the event.
    pub trace_id: &'a str,
}

impl PoliceDisclosureEvent<'_> {
    /// The audit event: done by `actor` (None for what a service does on its own), with
    /// `details`, successfully and about no person in particular. A caller whose event
    /// records a refusal, or concerns persons, sets those fields on the result.
    pub fn audit_event(
        &self,
        actor: Option<Actor>,
        details: BTreeMap<String, String>,
    ) -> AuditEvent {
        AuditEvent {
            event_id: self.event_id.to_owned(),
            action: self.action.to_owned(),
            occurred_at_unix_ms: self.occurred_at_unix_ms,
            actor,
            objects: vec![ObjectRef {
                kind: "disclosure".into(),
                id: self.disclosure_id.to_owned(),
            }],
            disclosure_id: self.disclosure_id.to_owned(),
            organisation: self.organisation.to_owned(),
            legal_basis_id: self.legal_basis_id.to_owned(),
            registry_version: self.registry_version.to_owned(),
            purpose: POLICE_DISCLOSURE_PURPOSE.into(),
            recipient: recipient(self.police_region),
            outcome: Outcome::Success as i32,
            outcome_detail: String::new(),
            person_refs: Vec::new(),
            trace_id: self.trace_id.to_owned(),
            details: details.into_iter().collect(),
        }
    }
}

/// The recipient as the audit log names it: `polisen/<region>` for a police region, the
/// authority's code for another law-enforcement authority's inbox.
fn recipient(inbox: &str) -> String {
    match tryggdel_domain::Inbox::parse(inbox) {
        Ok(tryggdel_domain::Inbox::Authority(authority)) => {
            authority.recipient().as_str().to_owned()
        }
        _ => format!("polisen/{inbox}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_names_the_disclosure_its_controller_and_its_recipient() {
        let event = PoliceDisclosureEvent {
            event_id: "event-1",
            action: "disclosure.approved",
            occurred_at_unix_ms: 1_001,
            disclosure_id: "disclosure-1",
            organisation: "bollnas-kommun",
            police_region: "mitt",
            legal_basis_id: "OSL-10-18c",
            registry_version: "sha256:ab",
            trace_id: "0af7651916cd43dd8448eb211c80319c",
        }
        .audit_event(None, [("state".to_owned(), "approved".to_owned())].into());
        assert_eq!(
            (event.event_id.as_str(), event.action.as_str()),
            ("event-1", "disclosure.approved")
        );
        assert_eq!(event.occurred_at_unix_ms, 1_001);
        assert_eq!(event.actor, None);
        assert_eq!(
            event.objects,
            [ObjectRef {
                kind: "disclosure".into(),
                id: "disclosure-1".into(),
            }]
        );
        assert_eq!(event.disclosure_id, "disclosure-1");
        assert_eq!(event.organisation, "bollnas-kommun");
        assert_eq!(event.legal_basis_id, "OSL-10-18c");
        assert_eq!(event.registry_version, "sha256:ab");
        assert_eq!(event.purpose, POLICE_DISCLOSURE_PURPOSE);
        assert_eq!(event.recipient, "polisen/mitt");
        assert_eq!(event.outcome, Outcome::Success as i32);
        assert!(event.outcome_detail.is_empty() && event.person_refs.is_empty());
        assert_eq!(event.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(event.details["state"], "approved");
    }
}
