//! An audit entry: the event a service reported, validated, plus what the log adds (when it was
//! recorded, which service reported it), serialised once into the exact bytes the leaf hash
//! covers. Those bytes are stored and served as they are; nothing re-serialises them.
//!
//! Two formats, both verified the same way (the leaf hash covers the stored bytes):
//! - `tryggdel.audit.entry/1`: everything in the leaf.
//! - `tryggdel.audit.entry/2` (written from now on): the leaf keeps every non-personal field;
//!   personal data (the person references, the outcome detail, and every detail whose key is
//!   not in [`NON_PERSONAL_DETAILS`]) is split into openings, one per person (its reference)
//!   and one holding the free text of the disclosure (or of the entry, when it names no
//!   disclosure). The leaf lists `{"key": <key id>, "commitment": <hex>}` for each, the
//!   commitment being `sha256(salt || data)` with a random 32-byte salt and `data` the
//!   opening's canonical JSON. Openings are stored encrypted under their key (see
//!   `store::personal`); clearing destroys keys, so a commitment whose opening is gone is a
//!   cleared part, not a changed entry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tryggdel_domain::PersonRef;
use tryggdel_merkle::Hash;
use tryggdel_proto::audit::v1::{AuditEvent, Outcome};
use tryggdel_service_kit::{ServiceError, rfc3339};

use crate::review::access::AccessRow;
use crate::store::{NewEntry, SealedOpening};

/// The format tag at the start of every entry written now.
pub const ENTRY_FORMAT: &str = "tryggdel.audit.entry/2";
/// The format of entries written before personal data left the leaf.
pub const ENTRY_FORMAT_V1: &str = "tryggdel.audit.entry/1";

/// Detail keys whose values are not personal data (identifiers, times, versions, hashes,
/// counts, flags) and so stay in the leaf of a format-2 entry. Every other detail (reasons,
/// judgements, questions, notes, names, references a person could be found by) goes to an
/// opening: a detail is personal unless it is listed here.
pub const NON_PERSONAL_DETAILS: &[&str] = &[
    "access_entries",
    "acknowledged_at",
    "as_of",
    "compliance_read",
    "data_items",
    "entry_index",
    "finding",
    "findings",
    "from",
    "many_persons",
    "no_relation",
    "outside_hours",
    "protected_revealed",
    "sample",
    "action",
    "actor_user_id",
    "catalogue_version",
    "clearing_id",
    "client_id",
    "content_erased",
    "count",
    "crime_id",
    "criteria_version",
    "deadline_unix_ms",
    "decision_id",
    "decision_sha256",
    "delegation_id",
    "delivery_trace_id",
    "disclosure_id",
    "disclosure_ids_cleared",
    "escalation_id",
    "expected_version",
    "expires_at_unix_ms",
    "follow_up_id",
    "hold_id",
    "issuer",
    "key_ids",
    "keys_destroyed",
    "legal_bases",
    "legal_basis_id",
    "legal_ground",
    "next_escalation_at_unix_ms",
    "occurred_from_unix_ms",
    "occurred_until_unix_ms",
    "openings_deleted",
    "organisation",
    "outcome",
    "part",
    "parts",
    "payload_sha256",
    "period_from",
    "period_until",
    "persons_cleared",
    "person_index_rows_deleted",
    "police_region",
    "protected_identity",
    "question_chars",
    "receipt_key_id",
    "recipient",
    "registry_version",
    "reply_by_unix_ms",
    "round",
    "rule",
    "run_id",
    "sample_size",
    "scope",
    "seed",
    "sequence",
    "traceparent",
    "tree_size",
    "until",
    "untouched_since_unix_ms",
    "urgent",
    "urgent_deadline",
    "valid_from",
    "verifier",
    "version",
    "withdrawn_at_unix_ms",
    "witnessing",
];

/// Whether a detail stays in the leaf (see [`NON_PERSONAL_DETAILS`]).
pub fn is_non_personal_detail(key: &str) -> bool {
    NON_PERSONAL_DETAILS.contains(&key)
}

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

/// The entry as stored: format tag, recording time, then the body, and (format 2) the
/// commitments to its openings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRecord {
    pub format: String,
    pub recorded_at: String,
    pub recorded_at_unix_ms: i64,
    #[serde(flatten)]
    pub body: EntryBody,
    /// Format 2: one commitment per opening; absent in format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openings: Option<Vec<Commitment>>,
}

/// A format-2 leaf's commitment to one opening.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitment {
    /// The random id of the key the opening is stored under (never a person reference).
    pub key: String,
    /// `sha256(salt || data)`, lowercase hex.
    pub commitment: String,
}

/// The personal data of one opening; serialised (compact JSON, fields in this order, empty
/// ones left out) it is the `data` a commitment covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpeningData {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub person_refs: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub outcome_detail: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// An opening in the clear: the key it belongs to, its salt and its canonical data.
#[derive(Clone, PartialEq, Eq)]
pub struct Opening {
    pub key: String,
    pub salt: [u8; 32],
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Opening {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Opening")
            .field("key", &self.key)
            .field("data_len", &self.data.len())
            .finish()
    }
}

impl Opening {
    /// `sha256(salt || data)` as lowercase hex.
    pub fn commitment(&self) -> String {
        commitment_of(&self.salt, &self.data)
    }

    /// The opening's data, parsed.
    pub fn parse(&self) -> Result<OpeningData, serde_json::Error> {
        serde_json::from_slice(&self.data)
    }
}

/// `sha256(salt || data)` as lowercase hex.
pub fn commitment_of(salt: &[u8], data: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(data);
    hex::encode(hasher.finalize())
}

/// Which key an opening is stored under: a person's, a disclosure's, or an entry's own.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyScope {
    /// A person, by their person reference.
    Person(String),
    /// A disclosure, by its id: the free text of its entries.
    Disclosure(String),
    /// One entry, by its event id: the free text of an entry that names no disclosure.
    Entry(String),
}

impl KeyScope {
    /// The scope's stored name.
    pub fn kind(&self) -> &'static str {
        match self {
            KeyScope::Person(_) => "person",
            KeyScope::Disclosure(_) => "disclosure",
            KeyScope::Entry(_) => "entry",
        }
    }

    /// What the scope is of: a person reference, a disclosure id or an event id.
    pub fn reference(&self) -> &str {
        match self {
            KeyScope::Person(reference)
            | KeyScope::Disclosure(reference)
            | KeyScope::Entry(reference) => reference,
        }
    }

    /// The scope of a stored kind and reference.
    pub fn from_stored(kind: &str, reference: String) -> Option<KeyScope> {
        match kind {
            "person" => Some(KeyScope::Person(reference)),
            "disclosure" => Some(KeyScope::Disclosure(reference)),
            "entry" => Some(KeyScope::Entry(reference)),
            _ => None,
        }
    }
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
        openings: Vec<SealedOpening>,
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
            openings,
            access: AccessRow::of(self),
        }
    }

    /// SHA-256 (hex) of the body's JSON: equal for the same event reported twice.
    pub fn fingerprint(&self) -> Result<String, serde_json::Error> {
        Ok(hex::encode(Sha256::digest(serde_json::to_vec(self)?)))
    }

    /// The format-1 record of this body (everything in the leaf), recorded at
    /// `recorded_at_unix_ms`. Only for tests of logs written before format 2.
    pub fn record_v1(self, recorded_at_unix_ms: i64) -> EntryRecord {
        EntryRecord {
            format: ENTRY_FORMAT_V1.to_owned(),
            recorded_at: rfc3339(recorded_at_unix_ms).unwrap_or_default(),
            recorded_at_unix_ms,
            body: self,
            openings: None,
        }
    }

    /// The key scopes this body's personal data needs: each person, and the disclosure (or
    /// the entry) when it has free text.
    pub fn key_scopes(&self) -> Vec<KeyScope> {
        let mut scopes: Vec<KeyScope> = self
            .person_refs
            .iter()
            .map(|reference| KeyScope::Person(reference.clone()))
            .collect();
        if self.has_free_text() {
            scopes.push(self.free_text_scope());
        }
        scopes
    }

    fn has_free_text(&self) -> bool {
        !self.outcome_detail.is_empty()
            || self.details.keys().any(|key| !is_non_personal_detail(key))
    }

    fn free_text_scope(&self) -> KeyScope {
        if self.disclosure_id.is_empty() {
            KeyScope::Entry(self.event_id.clone())
        } else {
            KeyScope::Disclosure(self.disclosure_id.clone())
        }
    }

    /// The record of this body as a reader sees a format-2 entry with every opening present
    /// (the personal data merged in), recorded at `recorded_at_unix_ms`. For readers' tests;
    /// the log writes [`Self::split_record`].
    pub fn record(self, recorded_at_unix_ms: i64) -> EntryRecord {
        EntryRecord {
            format: ENTRY_FORMAT.to_owned(),
            recorded_at: rfc3339(recorded_at_unix_ms).unwrap_or_default(),
            recorded_at_unix_ms,
            body: self,
            openings: None,
        }
    }

    /// The format-2 record of this body, recorded at `recorded_at_unix_ms`, and its openings
    /// in the clear: `key_of` gives the key id of each of [`Self::key_scopes`]; `salt` makes
    /// each opening's salt (random bytes, in the log).
    pub fn split_record(
        &self,
        recorded_at_unix_ms: i64,
        key_of: impl Fn(&KeyScope) -> Option<String>,
        mut salt: impl FnMut() -> [u8; 32],
    ) -> Result<(EntryRecord, Vec<Opening>), RecordError> {
        let mut leaf = self.clone();
        leaf.person_refs = Vec::new();
        leaf.outcome_detail = String::new();
        leaf.details = self
            .details
            .iter()
            .filter(|(key, _)| is_non_personal_detail(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let mut parts: Vec<(KeyScope, OpeningData)> = self
            .person_refs
            .iter()
            .map(|reference| {
                (
                    KeyScope::Person(reference.clone()),
                    OpeningData {
                        person_refs: vec![reference.clone()],
                        ..OpeningData::default()
                    },
                )
            })
            .collect();
        if self.has_free_text() {
            parts.push((
                self.free_text_scope(),
                OpeningData {
                    person_refs: Vec::new(),
                    outcome_detail: self.outcome_detail.clone(),
                    details: self
                        .details
                        .iter()
                        .filter(|(key, _)| !is_non_personal_detail(key))
                        .map(|(key, value)| (key.clone(), value.clone()))
                        .collect(),
                },
            ));
        }
        let mut commitments = Vec::with_capacity(parts.len());
        let mut openings = Vec::with_capacity(parts.len());
        for (scope, data) in parts {
            let key = key_of(&scope).ok_or(RecordError::NoKey(scope.kind()))?;
            let opening = Opening {
                key: key.clone(),
                salt: salt(),
                data: serde_json::to_vec(&data)?,
            };
            commitments.push(Commitment {
                key,
                commitment: opening.commitment(),
            });
            openings.push(opening);
        }
        let record = EntryRecord {
            format: ENTRY_FORMAT.to_owned(),
            recorded_at: rfc3339(recorded_at_unix_ms).unwrap_or_default(),
            recorded_at_unix_ms,
            body: leaf,
            openings: Some(commitments),
        };
        Ok((record, openings))
    }
}

/// Why a record could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("no {0} key was provided for the entry's personal data")]
    NoKey(&'static str),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// What became of one of an entry's openings when it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpeningState {
    /// Present, and it matches its commitment.
    Present(Opening),
    /// Cleared: its key or its opening no longer exists.
    Cleared { key: String },
    /// Present, but it does not match its commitment (or does not open): changed.
    Tampered { key: String },
}

/// An entry as every reader sees it: the leaf merged with the openings that still exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullEntry {
    pub index: u64,
    /// The exact leaf bytes.
    pub bytes: Vec<u8>,
    pub leaf_hash: Hash,
    /// The leaf with the personal data of its present openings merged in.
    pub record: EntryRecord,
    /// Format 2: each committed opening, in the leaf's order.
    pub openings: Vec<OpeningState>,
}

impl FullEntry {
    /// The openings that exist and match their commitments.
    pub fn present(&self) -> impl Iterator<Item = &Opening> {
        self.openings.iter().filter_map(|state| match state {
            OpeningState::Present(opening) => Some(opening),
            _ => None,
        })
    }

    /// How many committed openings have been cleared.
    pub fn cleared(&self) -> usize {
        self.openings
            .iter()
            .filter(|state| matches!(state, OpeningState::Cleared { .. }))
            .count()
    }

    /// The key ids of openings that do not match their commitments.
    pub fn tampered(&self) -> Vec<&str> {
        self.openings
            .iter()
            .filter_map(|state| match state {
                OpeningState::Tampered { key } => Some(key.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Merges `openings` (already checked) into `record`, the parsed leaf.
pub fn merge(record: &mut EntryRecord, openings: &[OpeningState]) -> Result<(), serde_json::Error> {
    for state in openings {
        if let OpeningState::Present(opening) = state {
            let data = opening.parse()?;
            for reference in data.person_refs {
                if !record.body.person_refs.contains(&reference) {
                    record.body.person_refs.push(reference);
                }
            }
            if !data.outcome_detail.is_empty() {
                record.body.outcome_detail = data.outcome_detail;
            }
            record.body.details.extend(data.details);
        }
    }
    Ok(())
}

impl EntryRecord {
    /// The exact bytes stored and hashed.
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Parses stored leaf bytes of either format. A format-2 record holds no personal data:
    /// readers get it merged through `AuditStore::full_entries`.
    pub fn parse(bytes: &[u8]) -> Result<EntryRecord, serde_json::Error> {
        serde_json::from_slice(bytes)
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
        let bytes = body.record_v1(1_780_000_000_123).to_bytes().unwrap();
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
    fn format_2_keeps_personal_data_out_of_the_leaf_and_commits_to_it() {
        let mut reported = event();
        reported.disclosure_id = "d-1".into();
        reported.outcome_detail = "Anna Andersson vägrade".into();
        reported
            .details
            .insert("reason".into(), "Anna Andersson, Storgatan 1".into());
        reported.details.insert("hold_id".into(), "h-1".into());
        let body = body_from_event("events[0]", &reported, "disclosure").unwrap();
        let scopes = body.key_scopes();
        assert_eq!(
            scopes,
            vec![
                KeyScope::Person(body.person_refs[0].clone()),
                KeyScope::Disclosure("d-1".into())
            ]
        );
        let key_of = |scope: &KeyScope| Some(format!("key-{}", scope.kind()));
        let (record, openings) = body
            .split_record(1_780_000_000_123, key_of, || [3; 32])
            .unwrap();
        let bytes = record.to_bytes().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"format":"tryggdel.audit.entry/2","#),
            "{text}"
        );
        for personal in ["Anna", "Storgatan", "hmac-sha256", "vägrade"] {
            assert!(!text.contains(personal), "{personal} in {text}");
        }
        assert!(text.contains(r#""hold_id":"h-1""#), "{text}");
        assert!(text.contains(r#""payload_sha256""#), "{text}");
        let committed = record.openings.clone().unwrap();
        assert_eq!(committed.len(), 2);
        assert_eq!(committed[0].key, "key-person");
        for (commitment, opening) in committed.iter().zip(&openings) {
            assert_eq!(
                commitment.commitment,
                commitment_of(&[3; 32], &opening.data)
            );
        }
        // Read back and merged, the record is the body reported.
        let mut read = EntryRecord::parse(&bytes).unwrap();
        assert_eq!(read.to_bytes().unwrap(), bytes);
        let states: Vec<OpeningState> = openings
            .iter()
            .cloned()
            .map(OpeningState::Present)
            .collect();
        merge(&mut read, &states).unwrap();
        assert_eq!(read.body, body);
        // Without the person's opening, the reference is gone and the rest stays.
        let mut partial = EntryRecord::parse(&bytes).unwrap();
        merge(
            &mut partial,
            &[
                OpeningState::Cleared {
                    key: "key-person".into(),
                },
                states[1].clone(),
            ],
        )
        .unwrap();
        assert!(partial.body.person_refs.is_empty());
        assert_eq!(partial.body.outcome_detail, "Anna Andersson vägrade");
    }

    #[test]
    fn an_entry_without_a_disclosure_keeps_its_free_text_under_its_own_key() {
        let mut reported = event();
        reported.person_refs.clear();
        reported.details.insert("question".into(), "Vem?".into());
        let body = body_from_event("events[0]", &reported, "console").unwrap();
        assert_eq!(
            body.key_scopes(),
            vec![KeyScope::Entry(body.event_id.clone())]
        );
        let quiet = body_from_event(
            "events[0]",
            &AuditEvent {
                person_refs: Vec::new(),
                ..event()
            },
            "console",
        )
        .unwrap();
        assert!(quiet.key_scopes().is_empty());
        let (record, openings) = quiet.split_record(1, |_| None, || [0; 32]).unwrap();
        assert!(openings.is_empty());
        assert_eq!(record.openings, Some(Vec::new()));
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
        let (record, openings) = body
            .split_record(1_700_000_000_000, |_| Some("k".into()), || [7; 32])
            .unwrap();
        let bytes = record.to_bytes().unwrap();
        assert!(!openings[1].data.contains(&b'\n'));
        assert!(!bytes.contains(&b'\n'), "an entry stays one line");

        let mut too_long = event();
        too_long.details.insert("reason".into(), "x".repeat(4001));
        assert!(body_from_event("events[0]", &too_long, "disclosure").is_err());
        let mut bell = event();
        bell.details.insert("reason".into(), "ring\u{7}".into());
        assert!(body_from_event("events[0]", &bell, "disclosure").is_err());
    }
}
