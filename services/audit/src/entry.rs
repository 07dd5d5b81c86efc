//! An audit entry: the event a service reported, validated, plus what the log adds (when it was
//! recorded, which service reported it), serialised once into the exact bytes the leaf hash
//! covers. Those bytes are stored and served as they are; nothing re-serialises them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tryggdel_domain::PersonRef;
use tryggdel_merkle::Hash;
use tryggdel_proto::audit::v1::{AuditEvent, Outcome};
use tryggdel_service_kit::{ServiceError, rfc3339};

use crate::store::NewEntry;

/// The format tag at the start of every entry.
pub const ENTRY_FORMAT: &str = "tryggdel.audit.entry/1";

const MAX_TEXT: usize = 256;
/// The longest detail value: at least the longest free text a service accepts from a user (a
/// rejection or withdrawal reason, 4000 characters), so that nothing a service accepted can
/// ever be refused here and stall its relay.
const MAX_DETAIL_TEXT: usize = 4000;
const MAX_LIST: usize = 32;

/// Who acted (FHIR AuditEvent.agent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryActor {
    pub user_id: String,
    pub roles: Vec<String>,
    pub organisation: String,
    pub unit: String,
}

/// What was acted on (FHIR AuditEvent.entity).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryObject {
    pub kind: String,
    pub id: String,
}

/// Why (FHIR AuditEvent.purposeOfEvent / BALP's authorisation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryPurpose {
    pub legal_basis_id: String,
    pub registry_version: String,
    pub purpose: String,
}

/// Everything of an entry except when the log recorded it: its fingerprint decides whether a
/// repeated event id is the same event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryBody {
    pub event_id: String,
    pub source: String,
    pub action: String,
    pub occurred_at: String,
    pub occurred_at_unix_ms: i64,
    pub outcome: String,
    pub outcome_detail: String,
    pub actor: EntryActor,
    pub organisation: String,
    pub disclosure_id: String,
    pub objects: Vec<EntryObject>,
    pub purpose: EntryPurpose,
    pub recipient: String,
    pub person_refs: Vec<String>,
    pub trace_id: String,
    pub details: BTreeMap<String, String>,
}

/// The entry as stored: format tag, recording time, then the body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRecord {
    pub format: String,
    pub recorded_at: String,
    pub recorded_at_unix_ms: i64,
    #[serde(flatten)]
    pub body: EntryBody,
}

impl EntryBody {
    /// The stored row of this entry at `index`: its exact `bytes`, their `leaf_hash`, the
    /// body's `fingerprint` and when the log recorded it, with the columns queries filter on.
    pub fn new_entry(
        &self,
        index: u64,
        fingerprint: String,
        bytes: Vec<u8>,
        leaf_hash: Hash,
        recorded_at: i64,
    ) -> NewEntry {
        NewEntry {
            index,
            event_id: self.event_id.clone(),
            fingerprint,
            bytes,
            leaf_hash,
            recorded_at,
            occurred_at: self.occurred_at_unix_ms,
            organisation: self.organisation.clone(),
            actor_organisation: self.actor.organisation.clone(),
            actor_user_id: self.actor.user_id.clone(),
            action: self.action.clone(),
            legal_basis_id: self.purpose.legal_basis_id.clone(),
            disclosure_id: self.disclosure_id.clone(),
            person_refs: self.person_refs.clone(),
        }
    }

    /// SHA-256 (hex) of the body's JSON: equal for the same event reported twice.
    pub fn fingerprint(&self) -> Result<String, serde_json::Error> {
        Ok(hex::encode(Sha256::digest(serde_json::to_vec(self)?)))
    }

    /// The record as the log stores it, recorded at `recorded_at_unix_ms`.
    pub fn record(self, recorded_at_unix_ms: i64) -> EntryRecord {
        EntryRecord {
            format: ENTRY_FORMAT.to_owned(),
            recorded_at: rfc3339(recorded_at_unix_ms).unwrap_or_default(),
            recorded_at_unix_ms,
            body: self,
        }
    }
}

impl EntryRecord {
    /// The exact bytes stored and hashed.
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

fn text(field: &str, value: &str, max: usize) -> Result<String, ServiceError> {
    tryggdel_service_kit::bounded_text(field, value, max)?;
    tryggdel_service_kit::no_control_characters(field, value, false)?;
    Ok(value.to_owned())
}

/// Text a person wrote (a reason, a judgement): line breaks and tabs kept, other control
/// characters refused. The entry's JSON escapes them, so an entry is still one line.
fn free_text(field: &str, value: &str, max: usize) -> Result<String, ServiceError> {
    tryggdel_service_kit::bounded_text(field, value, max)?;
    tryggdel_service_kit::no_control_characters(field, value, true)?;
    Ok(value.to_owned())
}

fn identifier(field: &str, value: &str) -> Result<String, ServiceError> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.' || b == b'-'
        });
    if !valid {
        return Err(ServiceError::invalid(
            field,
            "must be 1-64 characters of a-z, 0-9, '.', '_' or '-'",
        ));
    }
    Ok(value.to_owned())
}

/// Validates `event` (reported by service `source`) into an entry body. `field` prefixes the
/// names of invalid fields, e.g. `events[2]`.
pub fn body_from_event(
    field: &str,
    event: &AuditEvent,
    source: &str,
) -> Result<EntryBody, ServiceError> {
    let at = |name: &str| format!("{field}.{name}");
    let event_id = uuid::Uuid::parse_str(&event.event_id)
        .map_err(|_| ServiceError::invalid(at("event_id"), "must be a UUID"))?
        .hyphenated()
        .to_string();
    let action = identifier(&at("action"), &event.action)?;
    if event.occurred_at_unix_ms <= 0 {
        return Err(ServiceError::invalid(
            at("occurred_at_unix_ms"),
            "must be a positive unix time in milliseconds",
        ));
    }
    // RFC 3339 UTC with milliseconds; the unix milliseconds are kept beside it.
    let occurred_at = rfc3339(event.occurred_at_unix_ms).unwrap_or_default();
    if occurred_at.is_empty() {
        return Err(ServiceError::invalid(
            at("occurred_at_unix_ms"),
            "is out of range",
        ));
    }
    let outcome = match Outcome::try_from(event.outcome) {
        Ok(Outcome::Success) => "success",
        Ok(Outcome::Refused) => "refused",
        Ok(Outcome::Failed) => "failed",
        Ok(Outcome::Unspecified) | Err(_) => {
            return Err(ServiceError::invalid(
                at("outcome"),
                "must be SUCCESS, REFUSED or FAILED",
            ));
        }
    };
    let actor = match &event.actor {
        Some(actor) => {
            if actor.roles.len() > MAX_LIST {
                return Err(ServiceError::invalid(
                    at("actor.roles"),
                    format!("at most {MAX_LIST}"),
                ));
            }
            EntryActor {
                user_id: text(&at("actor.user_id"), &actor.user_id, MAX_TEXT)?,
                roles: actor
                    .roles
                    .iter()
                    .enumerate()
                    .map(|(i, role)| identifier(&at(&format!("actor.roles[{i}]")), role))
                    .collect::<Result<_, _>>()?,
                organisation: text(&at("actor.organisation"), &actor.organisation, MAX_TEXT)?,
                unit: text(&at("actor.unit"), &actor.unit, MAX_TEXT)?,
            }
        }
        None => EntryActor {
            user_id: String::new(),
            roles: Vec::new(),
            organisation: String::new(),
            unit: String::new(),
        },
    };
    if event.objects.len() > MAX_LIST {
        return Err(ServiceError::invalid(
            at("objects"),
            format!("at most {MAX_LIST}"),
        ));
    }
    let objects = event
        .objects
        .iter()
        .enumerate()
        .map(|(i, object)| {
            Ok(EntryObject {
                kind: identifier(&at(&format!("objects[{i}].kind")), &object.kind)?,
                id: text(&at(&format!("objects[{i}].id")), &object.id, MAX_TEXT)?,
            })
        })
        .collect::<Result<_, ServiceError>>()?;
    if event.person_refs.len() > MAX_LIST {
        return Err(ServiceError::invalid(
            at("person_refs"),
            format!("at most {MAX_LIST}"),
        ));
    }
    let mut person_refs = Vec::with_capacity(event.person_refs.len());
    for (i, reference) in event.person_refs.iter().enumerate() {
        let parsed = PersonRef::parse(reference)
            .map_err(|error| ServiceError::invalid(at(&format!("person_refs[{i}]")), error))?;
        if !person_refs.contains(&parsed.as_str().to_owned()) {
            person_refs.push(parsed.as_str().to_owned());
        }
    }
    let trace_id = &event.trace_id;
    if !(trace_id.is_empty()
        || (trace_id.len() == 32
            && trace_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))))
    {
        return Err(ServiceError::invalid(
            at("trace_id"),
            "must be empty or 32 lowercase hex digits",
        ));
    }
    if event.details.len() > MAX_LIST {
        return Err(ServiceError::invalid(
            at("details"),
            format!("at most {MAX_LIST} entries"),
        ));
    }
    let mut details = BTreeMap::new();
    for (key, value) in &event.details {
        let key = identifier(&at("details"), key)?;
        let value = free_text(&at(&format!("details.{key}")), value, MAX_DETAIL_TEXT)?;
        details.insert(key, value);
    }
    Ok(EntryBody {
        event_id,
        source: source.to_owned(),
        action,
        occurred_at,
        occurred_at_unix_ms: event.occurred_at_unix_ms,
        outcome: outcome.to_owned(),
        outcome_detail: text(
            &at("outcome_detail"),
            &event.outcome_detail,
            MAX_DETAIL_TEXT,
        )?,
        actor,
        organisation: text(&at("organisation"), &event.organisation, MAX_TEXT)?,
        disclosure_id: text(&at("disclosure_id"), &event.disclosure_id, MAX_TEXT)?,
        objects,
        purpose: EntryPurpose {
            legal_basis_id: text(&at("legal_basis_id"), &event.legal_basis_id, MAX_TEXT)?,
            registry_version: text(&at("registry_version"), &event.registry_version, MAX_TEXT)?,
            purpose: text(&at("purpose"), &event.purpose, MAX_TEXT)?,
        },
        recipient: text(&at("recipient"), &event.recipient, MAX_TEXT)?,
        person_refs,
        trace_id: trace_id.clone(),
        details,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tryggdel_proto::audit::v1::Actor;

    use super::*;

    pub(crate) fn event() -> AuditEvent {
        AuditEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            action: "disclosure.approved".into(),
            occurred_at_unix_ms: 1_780_000_000_000,
            actor: Some(Actor {
                user_id: "beslut-bollnas".into(),
                roles: vec!["decision_maker".into()],
                organisation: "bollnas-kommun".into(),
                unit: "IFO".into(),
            }),
            outcome: Outcome::Success as i32,
            person_refs: vec![format!("hmac-sha256:{}", "ab".repeat(32))],
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            details: [("payload_sha256".to_owned(), "00".repeat(32))].into(),
            ..AuditEvent::default()
        }
    }

    #[test]
    fn the_same_event_has_the_same_fingerprint_and_any_change_another() {
        let a = body_from_event("events[0]", &event(), "disclosure").unwrap();
        let b = body_from_event("events[0]", &AuditEvent { ..event() }, "disclosure").unwrap();
        assert_ne!(a.event_id, b.event_id);
        let same = body_from_event(
            "events[0]",
            &AuditEvent {
                event_id: a.event_id.clone(),
                ..event()
            },
            "disclosure",
        )
        .unwrap();
        assert_eq!(a.fingerprint().unwrap(), same.fingerprint().unwrap());
        let other_source = body_from_event(
            "events[0]",
            &AuditEvent {
                event_id: a.event_id.clone(),
                ..event()
            },
            "notification",
        )
        .unwrap();
        assert_ne!(
            a.fingerprint().unwrap(),
            other_source.fingerprint().unwrap()
        );
    }

    #[test]
    fn records_are_json_with_the_format_first_and_times_readable() {
        let body = body_from_event("events[0]", &event(), "disclosure").unwrap();
        let bytes = body.record(1_780_000_000_123).to_bytes().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"format":"tryggdel.audit.entry/1","recorded_at":"2026-"#),
            "{text}"
        );
        assert!(text.contains(r#""occurred_at":"2026-05-28T"#), "{text}");
        let parsed: EntryRecord = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(parsed.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn invalid_fields_are_named() {
        let cases: Vec<(AuditEvent, &str)> = vec![
            (
                AuditEvent {
                    event_id: "x".into(),
                    ..event()
                },
                "events[1].event_id",
            ),
            (
                AuditEvent {
                    action: "Approved!".into(),
                    ..event()
                },
                "events[1].action",
            ),
            (
                AuditEvent {
                    occurred_at_unix_ms: 0,
                    ..event()
                },
                "events[1].occurred_at_unix_ms",
            ),
            (
                AuditEvent {
                    outcome: 0,
                    ..event()
                },
                "events[1].outcome",
            ),
            (
                AuditEvent {
                    person_refs: vec!["19850314-1234".into()],
                    ..event()
                },
                "events[1].person_refs[0]",
            ),
            (
                AuditEvent {
                    trace_id: "abc".into(),
                    ..event()
                },
                "events[1].trace_id",
            ),
            (
                AuditEvent {
                    recipient: "x".repeat(300),
                    ..event()
                },
                "events[1].recipient",
            ),
        ];
        for (bad, field) in cases {
            match body_from_event("events[1]", &bad, "disclosure") {
                Err(ServiceError::InvalidArgument { field: named, .. }) => {
                    assert_eq!(named, field)
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn details_hold_what_a_person_wrote_on_several_lines_and_as_long_as_a_reason_may_be() {
        let mut written = event();
        let reason = format!("Rad ett.\nRad två\tmed tabb.\r\n{}", "x".repeat(3900));
        written.details.insert("reason".into(), reason.clone());
        let body = body_from_event("events[0]", &written, "disclosure").unwrap();
        assert_eq!(body.details.get("reason"), Some(&reason));
        let bytes = body.record(1_700_000_000_000).to_bytes().unwrap();
        assert!(!bytes.contains(&b'\n'), "an entry stays one line");

        let mut too_long = event();
        too_long.details.insert("reason".into(), "x".repeat(4001));
        assert!(body_from_event("events[0]", &too_long, "disclosure").is_err());
        let mut bell = event();
        bell.details.insert("reason".into(), "ring\u{7}".into());
        assert!(body_from_event("events[0]", &bell, "disclosure").is_err());
    }
}
