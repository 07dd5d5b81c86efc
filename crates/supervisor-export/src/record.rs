//! One audit entry as the exports show it: the fields read from the entry's JSON, leniently
//! (an entry of a later format, or one whose personal data was cleared, has some fields
//! missing: they show as empty, never as an error), with its index and leaf hash.

use std::collections::BTreeMap;

use serde::Deserialize;
use tryggdel_merkle::Hash;

/// The entry at one index of a verified export.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditRecord {
    /// The entry's index in the log, from 0.
    pub index: u64,
    /// The leaf hash of the entry's bytes, 64 lowercase hex digits.
    pub leaf_hash_hex: String,
    /// The entry's format tag (`tryggdel.audit.entry/1`), or empty.
    pub format: String,
    /// False when the entry's bytes are not a JSON object: every field below is then empty.
    pub readable: bool,
    /// When the log recorded the entry (RFC 3339, UTC).
    pub recorded_at: String,
    /// When the event happened (RFC 3339, UTC).
    pub occurred_at: String,
    /// The event's id (a UUID).
    pub event_id: String,
    /// The service that reported it.
    pub source: String,
    /// What happened, e.g. `disclosure.read`.
    pub action: String,
    /// `success`, `refused` or `failed`.
    pub outcome: String,
    /// Why it was refused or failed.
    pub outcome_detail: String,
    /// The acting user's id (empty for the system).
    pub actor_user_id: String,
    /// The acting user's roles.
    pub actor_roles: Vec<String>,
    /// The acting user's organisation.
    pub actor_organisation: String,
    /// The acting user's unit.
    pub actor_unit: String,
    /// The organisation the entry belongs to.
    pub organisation: String,
    /// The disclosure concerned, if any.
    pub disclosure_id: String,
    /// The objects acted on, as (kind, id).
    pub objects: Vec<(String, String)>,
    /// The legal basis (registry id).
    pub legal_basis_id: String,
    /// The purpose stated.
    pub purpose: String,
    /// The receiving authority of a disclosure.
    pub recipient: String,
    /// The persons concerned, as keyed references (never identity numbers).
    pub person_refs: Vec<String>,
    /// Further details, by name.
    pub details: BTreeMap<String, String>,
}

/// The entry JSON, every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EntryJson {
    format: String,
    recorded_at: String,
    event_id: String,
    source: String,
    action: String,
    occurred_at: String,
    outcome: String,
    outcome_detail: String,
    actor: ActorJson,
    organisation: String,
    disclosure_id: String,
    objects: Vec<ObjectJson>,
    purpose: PurposeJson,
    recipient: String,
    person_refs: Vec<String>,
    details: BTreeMap<String, serde_json::Value>,
}

/// An opening's data: the personal parts of a format-2 entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OpeningJson {
    person_refs: Vec<String>,
    outcome_detail: String,
    details: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ActorJson {
    user_id: String,
    roles: Vec<String>,
    organisation: String,
    unit: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ObjectJson {
    kind: String,
    id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PurposeJson {
    legal_basis_id: String,
    purpose: String,
}

impl AuditRecord {
    /// Reads the entry at `index` from its exact bytes. Never fails: bytes that are not an
    /// entry object give a record with only its index and leaf hash, `readable` false.
    pub fn parse(index: u64, bytes: &[u8], leaf_hash: Hash) -> Self {
        let leaf_hash_hex = hex::encode(leaf_hash);
        let Ok(json) = serde_json::from_slice::<EntryJson>(bytes) else {
            return Self {
                index,
                leaf_hash_hex,
                ..Self::default()
            };
        };
        Self {
            index,
            leaf_hash_hex,
            format: json.format,
            readable: true,
            recorded_at: json.recorded_at,
            occurred_at: json.occurred_at,
            event_id: json.event_id,
            source: json.source,
            action: json.action,
            outcome: json.outcome,
            outcome_detail: json.outcome_detail,
            actor_user_id: json.actor.user_id,
            actor_roles: json.actor.roles,
            actor_organisation: json.actor.organisation,
            actor_unit: json.actor.unit,
            organisation: json.organisation,
            disclosure_id: json.disclosure_id,
            objects: json
                .objects
                .into_iter()
                .map(|object| (object.kind, object.id))
                .collect(),
            legal_basis_id: json.purpose.legal_basis_id,
            purpose: json.purpose.purpose,
            recipient: json.recipient,
            person_refs: json.person_refs,
            details: json
                .details
                .into_iter()
                .map(|(name, value)| {
                    let text = match value {
                        serde_json::Value::String(text) => text,
                        other => other.to_string(),
                    };
                    (name, text)
                })
                .collect(),
        }
    }

    /// As [`Self::parse`], with the personal data of the entry's openings (format
    /// `tryggdel.audit.entry/2`, exported beside it and checked by the verifier) merged in:
    /// person references, the outcome detail and free-text details. Cleared parts stay empty.
    pub fn parse_with_openings(
        index: u64,
        bytes: &[u8],
        leaf_hash: Hash,
        openings: &[tryggdel_audit_verify::ExportOpening],
    ) -> Self {
        let mut record = Self::parse(index, bytes, leaf_hash);
        if !record.readable {
            return record;
        }
        for opening in openings {
            let Ok(data) = serde_json::from_slice::<OpeningJson>(&opening.data) else {
                continue;
            };
            for reference in data.person_refs {
                if !record.person_refs.contains(&reference) {
                    record.person_refs.push(reference);
                }
            }
            if !data.outcome_detail.is_empty() {
                record.outcome_detail = data.outcome_detail;
            }
            record.details.extend(data.details);
        }
        record
    }

    /// Who acted, for a table cell: `user (organisation/unit)`, or the reporting service.
    pub fn actor_label(&self) -> String {
        if self.actor_user_id.is_empty() {
            return if self.source.is_empty() {
                String::new()
            } else {
                format!("system ({})", self.source)
            };
        }
        match (self.actor_organisation.as_str(), self.actor_unit.as_str()) {
            ("", "") => self.actor_user_id.clone(),
            (organisation, "") => format!("{} ({organisation})", self.actor_user_id),
            (organisation, unit) => format!("{} ({organisation}/{unit})", self.actor_user_id),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn openings_are_merged_into_a_format_2_record() {
        let leaf = br#"{"format":"tryggdel.audit.entry/2","action":"disclosure.approved","person_refs":[],"outcome_detail":"","details":{"hold_id":"h"},"openings":[{"key":"k1","commitment":"00"},{"key":"k2","commitment":"00"}]}"#;
        let openings = [tryggdel_audit_verify::ExportOpening {
            key: "k1".into(),
            salt: vec![0; 32],
            data: r#"{"person_refs":["hmac-sha256:ab"],"details":{"reason":"skäl"}}"#
                .as_bytes()
                .to_vec(),
        }];
        let record = AuditRecord::parse_with_openings(7, leaf, [0; 32], &openings);
        assert_eq!(record.format, "tryggdel.audit.entry/2");
        assert_eq!(record.person_refs, ["hmac-sha256:ab"]);
        assert_eq!(record.details["reason"], "skäl");
        assert_eq!(record.details["hold_id"], "h");
        let cleared = AuditRecord::parse_with_openings(7, leaf, [0; 32], &[]);
        assert!(cleared.person_refs.is_empty());
    }

    #[test]
    fn missing_fields_are_empty_and_unreadable_bytes_keep_their_index() {
        let record = AuditRecord::parse(3, br#"{"action":"disclosure.read"}"#, [1; 32]);
        assert!(record.readable);
        assert_eq!(record.action, "disclosure.read");
        assert_eq!(record.recipient, "");
        assert_eq!(record.index, 3);

        let record = AuditRecord::parse(4, b"\xff not json", [2; 32]);
        assert!(!record.readable);
        assert_eq!(record.index, 4);
        assert_eq!(record.leaf_hash_hex, "02".repeat(32));
        assert_eq!(record.action, "");
    }

    #[test]
    fn the_actor_label_names_user_organisation_and_unit_or_the_system() {
        let mut record = AuditRecord {
            actor_user_id: "anna".into(),
            actor_organisation: "region-a".into(),
            actor_unit: "psykiatri".into(),
            ..AuditRecord::default()
        };
        assert_eq!(record.actor_label(), "anna (region-a/psykiatri)");
        record.actor_user_id.clear();
        record.source = "disclosure".into();
        assert_eq!(record.actor_label(), "system (disclosure)");
    }
}
