//! FHIR R4: a Bundle (type `collection`) of AuditEvent resources following IHE Basic Audit Log
//! Patterns (BALP), written as a stream: the Bundle's opening, one entry per log entry, the
//! closing. The Bundle's identifier names the checkpoint and its signature carries the signed
//! note; every AuditEvent names its log index.
//!
//! BALP profiles used, by the entry's action:
//!
//! | action | profile | type / subtype | action code |
//! |---|---|---|---|
//! | `….delivered` (data handed to the recipient) | `IHE.BasicAudit.PrivacyDisclosure.Source` | DCM 110106 Export / ISO 21089 `disclose` | R |
//! | `….read`, `…_read`, `…_revealed` | `IHE.BasicAudit.PatientRead` (with persons) or `IHE.BasicAudit.Read` | `rest` / `read` | R |
//! | `….listed`, `…_listed`, `….queried`, `….streamed` | `IHE.BasicAudit.PatientQuery` (with persons) or `IHE.BasicAudit.Query` | `rest` / `search-type` | E |
//! | anything else | none claimed | `urn:tryggdel:audit-action` / the action | E |
//!
//! Persons appear only as keyed references, in `entity.what.identifier`.

use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::ExportError;
use crate::record::AuditRecord;
use crate::verified::CheckpointInfo;

/// Base of the BALP profile URLs.
pub const BALP: &str = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/";
/// The identifier system of an entry's index in the log (the value is `<origin>#<index>`'s
/// index; the system names the origin).
pub const LOG_INDEX_SYSTEM: &str = "urn:tryggdel:audit-log-index";
/// The identifier system of keyed person references.
pub const PERSON_REF_SYSTEM: &str = "urn:tryggdel:person-ref";
/// The identifier system of the Bundle naming the checkpoint.
pub const CHECKPOINT_SYSTEM: &str = "urn:tryggdel:audit-checkpoint";

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
const LIFECYCLE: &str = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const SECURITY_ROLE: &str = "http://terminology.hl7.org/CodeSystem/extra-security-role-type";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";

/// Which BALP pattern an entry follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BalpKind {
    /// Personal data handed to a recipient (PrivacyDisclosure at the source).
    PrivacyDisclosure,
    /// A read of one record.
    Read,
    /// A list, search or stream of records.
    Query,
    /// Any other event (a draft, a decision, a receipt): no BALP profile is claimed.
    Other,
}

impl BalpKind {
    /// The pattern an action follows, by its last dot-separated part.
    pub fn of_action(action: &str) -> Self {
        let last = action.rsplit('.').next().unwrap_or(action);
        if last == "delivered" {
            Self::PrivacyDisclosure
        } else if last == "read" || last.ends_with("_read") || last.ends_with("_revealed") {
            Self::Read
        } else if matches!(last, "listed" | "queried" | "streamed" | "searched")
            || last.ends_with("_listed")
        {
            Self::Query
        } else {
            Self::Other
        }
    }
}

/// Writes the Bundle: [`FhirExport::start`], [`FhirExport::record`] per entry,
/// [`FhirExport::finish`].
pub(crate) struct FhirExport<W: Write> {
    out: W,
    checkpoint: CheckpointInfo,
    generated_at: String,
    first: bool,
}

impl<W: Write> FhirExport<W> {
    pub(crate) fn start(
        mut out: W,
        checkpoint: &CheckpointInfo,
        generated_at: &str,
    ) -> Result<Self, ExportError> {
        let opening = json!({
            "resourceType": "Bundle",
            "meta": {
                "tag": [{
                    "system": CHECKPOINT_SYSTEM,
                    "code": checkpoint.root_hash_hex,
                    "display": format!(
                        "signed checkpoint of {} entries of {}, root {}",
                        checkpoint.tree_size, checkpoint.origin, checkpoint.root_hash_hex
                    ),
                }],
            },
            "identifier": {
                "system": format!("{CHECKPOINT_SYSTEM}:{}", checkpoint.origin),
                "value": format!("{}:{}", checkpoint.tree_size, checkpoint.root_hash_hex),
            },
            "type": "collection",
            "timestamp": generated_at,
        });
        // The object without its closing brace, then the entries.
        let text = serde_json::to_string(&opening).map_err(json_error)?;
        let open = text.strip_suffix('}').unwrap_or(&text);
        write!(out, "{open},\"entry\":[").map_err(|e| ExportError::write("FHIR", e))?;
        Ok(Self {
            out,
            checkpoint: checkpoint.clone(),
            generated_at: generated_at.to_owned(),
            first: true,
        })
    }

    pub(crate) fn record(&mut self, record: &AuditRecord) -> Result<(), ExportError> {
        let entry = bundle_entry(record, &self.checkpoint, &self.generated_at);
        if !self.first {
            self.out
                .write_all(b",")
                .map_err(|e| ExportError::write("FHIR", e))?;
        }
        self.first = false;
        self.out
            .write_all(b"\n")
            .map_err(|e| ExportError::write("FHIR", e))?;
        serde_json::to_writer(&mut self.out, &entry).map_err(json_error)
    }

    pub(crate) fn finish(mut self) -> Result<W, ExportError> {
        // The signed note itself, as the Bundle's signature (R4 Signature: type, when, who,
        // sigFormat, data).
        let signature = json!({
            "type": [{
                "system": "urn:iso-astm:E1762-95:2013",
                "code": "1.2.840.10065.1.12.1.5",
                "display": "Verification Signature",
            }],
            "when": self.generated_at,
            "who": {
                "identifier": {
                    "system": "urn:tryggdel:audit-log",
                    "value": self.checkpoint.verified_with,
                },
                "display": format!("the audit log {}", self.checkpoint.origin),
            },
            "sigFormat": "text/plain",
            "data": STANDARD.encode(self.checkpoint.note.as_bytes()),
        });
        let signature = serde_json::to_string(&signature).map_err(json_error)?;
        write!(self.out, "\n],\"signature\":{signature}}}\n")
            .and_then(|()| self.out.flush())
            .map_err(|e| ExportError::write("FHIR", e))?;
        Ok(self.out)
    }
}

/// The Bundle entry of one log entry; `converted_at` stands in for `recorded` (required) in
/// an entry that states no time.
pub fn bundle_entry(
    record: &AuditRecord,
    checkpoint: &CheckpointInfo,
    converted_at: &str,
) -> Value {
    let resource = audit_event(record, checkpoint, converted_at);
    match uuid_of(&record.event_id) {
        Some(uuid) => json!({ "fullUrl": format!("urn:uuid:{uuid}"), "resource": resource }),
        None => json!({ "resource": resource }),
    }
}

/// The AuditEvent of one log entry; `converted_at` stands in for `recorded` (required) in an
/// entry that states no time.
pub fn audit_event(record: &AuditRecord, checkpoint: &CheckpointInfo, converted_at: &str) -> Value {
    let kind = BalpKind::of_action(&record.action);
    let has_persons = !record.person_refs.is_empty();
    let (profile, type_coding, subtype, action) = match kind {
        BalpKind::PrivacyDisclosure => (
            Some("IHE.BasicAudit.PrivacyDisclosure.Source"),
            coding(DCM, "110106", "Export"),
            vec![coding(
                LIFECYCLE,
                "disclose",
                "Disclose Record Lifecycle Event",
            )],
            "R",
        ),
        BalpKind::Read => (
            Some(if has_persons {
                "IHE.BasicAudit.PatientRead"
            } else {
                "IHE.BasicAudit.Read"
            }),
            coding(AUDIT_EVENT_TYPE, "rest", "Restful Operation"),
            vec![coding(RESTFUL_INTERACTION, "read", "read")],
            "R",
        ),
        BalpKind::Query => (
            Some(if has_persons {
                "IHE.BasicAudit.PatientQuery"
            } else {
                "IHE.BasicAudit.Query"
            }),
            coding(AUDIT_EVENT_TYPE, "rest", "Restful Operation"),
            vec![coding(RESTFUL_INTERACTION, "search-type", "search type")],
            "E",
        ),
        BalpKind::Other => {
            // FHIR allows no empty code: an entry without an action (not an entry object, or
            // of a format this reader does not know) is named as such.
            let code = if record.action.is_empty() {
                "unknown"
            } else {
                &record.action
            };
            (
                None,
                coding("urn:tryggdel:audit-action", code, code),
                Vec::new(),
                "E",
            )
        }
    };

    let mut event = serde_json::Map::new();
    event.insert("resourceType".into(), json!("AuditEvent"));
    event.insert("id".into(), json!(format!("log-entry-{}", record.index)));
    if let Some(profile) = profile {
        event.insert(
            "meta".into(),
            json!({ "profile": [format!("{BALP}{profile}")] }),
        );
    }
    event.insert("type".into(), type_coding);
    if !subtype.is_empty() {
        event.insert("subtype".into(), Value::Array(subtype));
    }
    event.insert("action".into(), json!(action));
    if !record.occurred_at.is_empty() {
        event.insert(
            "period".into(),
            json!({ "start": record.occurred_at, "end": record.occurred_at }),
        );
    }
    // `recorded` is required: the log's recording time, else the event's own time, else (an
    // entry that states neither) the conversion's time, said so in `outcomeDesc`.
    let recorded = [&record.recorded_at, &record.occurred_at]
        .into_iter()
        .find(|time| !time.is_empty());
    event.insert(
        "recorded".into(),
        json!(recorded.map_or(converted_at, String::as_str)),
    );
    if recorded.is_none() {
        event.insert(
            "outcomeDesc".into(),
            json!("the entry states no time: recorded is the time of the conversion"),
        );
    }
    if let Some(code) = outcome_code(&record.outcome) {
        event.insert("outcome".into(), json!(code));
    }
    if !record.outcome_detail.is_empty() {
        event.insert("outcomeDesc".into(), json!(record.outcome_detail));
    }
    if !record.legal_basis_id.is_empty() {
        let mut concept = json!({
            "coding": [{ "system": "urn:tryggdel:legal-basis", "code": record.legal_basis_id }],
        });
        if !record.purpose.is_empty() {
            concept["text"] = json!(record.purpose);
        }
        event.insert("purposeOfEvent".into(), json!([concept]));
    }
    event.insert("agent".into(), Value::Array(agents(record, kind)));
    event.insert(
        "source".into(),
        json!({
            "site": if record.source.is_empty() { "tryggdel" } else { &record.source },
            "observer": {
                "identifier": { "system": "urn:tryggdel:audit-log", "value": checkpoint.origin },
                "display": format!("the audit log {}", checkpoint.origin),
            },
            "type": [coding(SOURCE_TYPE, "4", "Application Server")],
        }),
    );
    event.insert(
        "entity".into(),
        Value::Array(entities(record, kind, checkpoint)),
    );
    Value::Object(event)
}

fn agents(record: &AuditRecord, kind: BalpKind) -> Vec<Value> {
    let mut agents = Vec::new();
    if record.actor_user_id.is_empty() {
        let name = if record.source.is_empty() {
            "tryggdel"
        } else {
            &record.source
        };
        agents.push(json!({
            "type": { "coding": [coding(DCM, "110150", "Application")] },
            "who": { "identifier": { "system": "urn:tryggdel:service", "value": name } },
            "requestor": true,
        }));
    } else {
        let mut user = json!({
            "type": { "coding": [coding(SECURITY_ROLE, "humanuser", "human user")] },
            "who": {
                "identifier": {
                    "system": format!("urn:tryggdel:user:{}", record.actor_organisation),
                    "value": record.actor_user_id,
                },
            },
            "requestor": true,
        });
        let roles: Vec<Value> = record
            .actor_roles
            .iter()
            .filter(|role| !role.is_empty())
            .map(|role| json!({ "coding": [{ "system": "urn:tryggdel:role", "code": role }] }))
            .collect();
        if !roles.is_empty() {
            user["role"] = Value::Array(roles);
        }
        if !record.actor_unit.is_empty() {
            user["name"] = json!(format!("{} ({})", record.actor_user_id, record.actor_unit));
        }
        agents.push(user);
    }
    let custodian = if record.organisation.is_empty() {
        &record.actor_organisation
    } else {
        &record.organisation
    };
    if !custodian.is_empty() {
        agents.push(json!({
            "type": { "coding": [coding(PARTICIPATION, "CST", "custodian")] },
            "who": { "identifier": { "system": "urn:tryggdel:organisation", "value": custodian } },
            "requestor": false,
        }));
    }
    if kind == BalpKind::PrivacyDisclosure && !record.recipient.is_empty() {
        agents.push(json!({
            "type": { "coding": [coding(PARTICIPATION, "IRCP", "information recipient")] },
            "who": {
                "identifier": { "system": "urn:tryggdel:organisation", "value": record.recipient },
            },
            "requestor": false,
        }));
    }
    agents
}

fn entities(record: &AuditRecord, kind: BalpKind, checkpoint: &CheckpointInfo) -> Vec<Value> {
    let mut entities = Vec::new();
    // The log entry itself: its index, leaf hash and the checkpoint it verified under.
    let mut details = vec![
        json!({ "type": "log-index", "valueString": record.index.to_string() }),
        json!({ "type": "leaf-hash", "valueString": record.leaf_hash_hex }),
        json!({
            "type": "checkpoint",
            "valueString": format!(
                "{} {} {}",
                checkpoint.origin, checkpoint.tree_size, checkpoint.root_hash_hex
            ),
        }),
    ];
    if !record.event_id.is_empty() {
        details.push(json!({ "type": "event-id", "valueString": record.event_id }));
    }
    if !record.action.is_empty() {
        details.push(json!({ "type": "action", "valueString": record.action }));
    }
    for (name, value) in &record.details {
        if !value.is_empty() {
            details.push(json!({ "type": format!("detail:{name}"), "valueString": value }));
        }
    }
    entities.push(json!({
        "what": {
            "identifier": {
                "system": format!("{LOG_INDEX_SYSTEM}:{}", checkpoint.origin),
                "value": record.index.to_string(),
            },
        },
        "type": coding(ENTITY_TYPE, "2", "System Object"),
        "role": coding(OBJECT_ROLE, "13", "Security Resource"),
        "name": format!("audit log entry {}", record.index),
        "detail": details,
    }));
    for person in record
        .person_refs
        .iter()
        .filter(|person| !person.is_empty())
    {
        entities.push(json!({
            "what": { "identifier": { "system": PERSON_REF_SYSTEM, "value": person } },
            "type": coding(ENTITY_TYPE, "1", "Person"),
            "role": coding(OBJECT_ROLE, "1", "Patient"),
        }));
    }
    let mut objects: Vec<(String, String)> = record.objects.clone();
    if !record.disclosure_id.is_empty()
        && !objects
            .iter()
            .any(|(_, id)| id.as_str() == record.disclosure_id)
    {
        objects.push(("disclosure".to_owned(), record.disclosure_id.clone()));
    }
    for (kind_of_object, id) in objects.iter().filter(|(_, id)| !id.is_empty()) {
        let kind_of_object = if kind_of_object.is_empty() {
            "object"
        } else {
            kind_of_object
        };
        entities.push(json!({
            "what": {
                "identifier": { "system": format!("urn:tryggdel:{kind_of_object}"), "value": id },
            },
            "type": coding(ENTITY_TYPE, "2", "System Object"),
            "role": coding(OBJECT_ROLE, "4", "Domain Resource"),
        }));
    }
    if kind == BalpKind::Query {
        // BALP's query entity: what was asked, base64.
        let query = json!({ "action": record.action, "details": record.details });
        entities.push(json!({
            "type": coding(ENTITY_TYPE, "2", "System Object"),
            "role": coding(OBJECT_ROLE, "24", "Query"),
            "query": STANDARD.encode(query.to_string().as_bytes()),
        }));
    }
    entities
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

/// R4 AuditEvent.outcome: 0 success, 4 minor failure (refused), 8 serious failure.
fn outcome_code(outcome: &str) -> Option<&'static str> {
    match outcome {
        "success" => Some("0"),
        "refused" => Some("4"),
        "failed" => Some("8"),
        _ => None,
    }
}

/// The event id when it is a UUID (lowercase hex with hyphens), for `urn:uuid:`.
fn uuid_of(event_id: &str) -> Option<&str> {
    let groups: Vec<&str> = event_id.split('-').collect();
    let lengths_ok = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len);
    let hex_ok = groups.iter().all(|group| {
        group
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    (lengths_ok && hex_ok).then_some(event_id)
}

fn json_error(error: serde_json::Error) -> ExportError {
    ExportError::write("FHIR", std::io::Error::other(error))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn actions_map_to_balp_patterns() {
        assert_eq!(
            BalpKind::of_action("disclosure.delivered"),
            BalpKind::PrivacyDisclosure
        );
        assert_eq!(
            BalpKind::of_action("notification.delivered"),
            BalpKind::PrivacyDisclosure
        );
        assert_eq!(BalpKind::of_action("disclosure.read"), BalpKind::Read);
        assert_eq!(
            BalpKind::of_action("disclosure.protected_revealed"),
            BalpKind::Read
        );
        assert_eq!(BalpKind::of_action("disclosure.listed"), BalpKind::Query);
        assert_eq!(BalpKind::of_action("audit.queried"), BalpKind::Query);
        assert_eq!(BalpKind::of_action("disclosure.approved"), BalpKind::Other);
        assert_eq!(
            BalpKind::of_action("disclosure.delivery_refused"),
            BalpKind::Other
        );
        assert_eq!(BalpKind::of_action(""), BalpKind::Other);
    }

    #[test]
    fn only_uuids_become_urn_uuid() {
        let id = "0190a3b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(uuid_of(id), Some(id));
        assert_eq!(uuid_of("0190A3B2-7C4D-7E5F-8A9B-0C1D2E3F4A5B"), None);
        assert_eq!(uuid_of("not-a-uuid"), None);
        assert_eq!(uuid_of(""), None);
    }
}
