//! What goes to the police, and the hash the approval binds.
//!
//! A [`PolicePayload`] holds exactly the data items the caseworker chose under minimisation.
//! Its canonical bytes are compact JSON with fields in declaration order and items sorted by
//! name, so the same payload always hashes the same. Approving binds the SHA-256 of these
//! bytes; any change afterwards gives another hash and voids the approval.
//!
//! `Debug` prints item names only, never their values (they are personal data).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::inbox::Inbox;
use crate::organisation::OrganisationCode;
use crate::registry::{CrimeId, LegalBasisId};
use crate::text_form::string_enum;

const MAXIMUM_DISCLOSURE_ID_LENGTH: usize = 128;

/// Errors from building or reading a payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("unknown data item {0:?}")]
    UnknownDataItem(String),
    #[error("{0} must not be blank")]
    BlankField(&'static str),
    #[error("disclosure_id must be at most 128 characters without control characters")]
    InvalidDisclosureId,
    #[error("{0} must be 'sha256:' followed by 64 lowercase hex digits")]
    InvalidVersion(&'static str),
    #[error("payload must contain at least one data item")]
    NoItems,
    #[error("data item {0} has a blank value")]
    BlankItemValue(DataItem),
    #[error("payload bytes are not valid payload json: {0}")]
    Malformed(String),
    #[error("payload bytes are not in canonical form")]
    NotCanonical,
}

string_enum! {
    /// A data item the caseworker may choose to disclose.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum DataItem {
        SubjectIdentityNumber => "subject_identity_number",
        SubjectName => "subject_name",
        VictimIdentityNumber => "victim_identity_number",
        VictimName => "victim_name",
        /// Protected (domain.md §6): only with the decision maker's explicit approval of the item.
        VictimAddress => "victim_address",
        /// Protected (domain.md §6): only with the decision maker's explicit approval of the item.
        VictimWorkplace => "victim_workplace",
        Relation => "relation",
        RiskDescription => "risk_description",
        CrimeCategory => "crime_category",
        CaseReference => "case_reference",
        ContactPerson => "contact_person",
    }
    unknown: PayloadError::UnknownDataItem;
}

/// Everything needed to build a [`PolicePayload`]; validated by [`PolicePayload::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicePayloadInput {
    pub disclosure_id: String,
    pub organisation_code: OrganisationCode,
    pub organisation_name: String,
    pub unit: String,
    /// Where it goes: a police region, or another law-enforcement authority's inbox.
    pub inbox: Inbox,
    pub legal_basis: LegalBasisId,
    pub registry_version: String,
    pub crime: Option<CrimeId>,
    pub catalogue_version: String,
    pub urgent: bool,
    pub items: BTreeMap<DataItem, String>,
}

/// The notification delivered to the police. Serialises as its fields, in the canonical order
/// declared below.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PolicePayload {
    fields: PayloadFields,
}

/// A payload's fields as they are serialised and read back: field order here is the canonical
/// order, and items are keyed by [`DataItem::as_str`]. Checked by [`PolicePayload::validated`]
/// before a [`PolicePayload`] holds them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadFields {
    disclosure_id: String,
    organisation_code: OrganisationCode,
    organisation_name: String,
    unit: String,
    /// Serialised under its first name, `police_region`, so the canonical bytes (and hashes)
    /// of payloads to the police are what they always were.
    #[serde(rename = "police_region")]
    inbox: Inbox,
    legal_basis: LegalBasisId,
    registry_version: String,
    crime: Option<CrimeId>,
    catalogue_version: String,
    urgent: bool,
    items: BTreeMap<String, String>,
}

impl DataItem {
    /// Protected personal data (domain.md §6): encrypted at rest, masked by default, and sent
    /// only when the decision maker approved that item for that disclosure.
    pub fn is_protected(self) -> bool {
        matches!(self, DataItem::VictimAddress | DataItem::VictimWorkplace)
    }
}

impl PolicePayload {
    /// Validates the input: non-blank ids and names, well-formed versions, at least one item,
    /// no blank item values.
    pub fn new(input: PolicePayloadInput) -> Result<PolicePayload, PayloadError> {
        let items = input
            .items
            .into_iter()
            .map(|(item, value)| (item.as_str().to_owned(), value))
            .collect();
        PolicePayload::validated(PayloadFields {
            disclosure_id: input.disclosure_id,
            organisation_code: input.organisation_code,
            organisation_name: input.organisation_name,
            unit: input.unit,
            inbox: input.inbox,
            legal_basis: input.legal_basis,
            registry_version: input.registry_version,
            crime: input.crime,
            catalogue_version: input.catalogue_version,
            urgent: input.urgent,
            items,
        })
    }

    /// Reads a payload from its canonical bytes, refusing anything that is not exactly the
    /// canonical form (so the hash of the received bytes is the hash of the payload).
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<PolicePayload, PayloadError> {
        let fields: PayloadFields = serde_json::from_slice(bytes)
            .map_err(|error| PayloadError::Malformed(error.to_string()))?;
        let payload = PolicePayload::validated(fields)?;
        if payload.canonical_bytes() == bytes {
            Ok(payload)
        } else {
            Err(PayloadError::NotCanonical)
        }
    }

    /// Compact JSON of the payload: fields in declaration order, items sorted by name.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serialising plain strings, booleans and a string map to a Vec cannot fail; fall
        // back to an empty vector rather than panic.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Lowercase hex SHA-256 of [`PolicePayload::canonical_bytes`]: what an approval binds.
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_bytes()))
    }

    pub fn disclosure_id(&self) -> &str {
        &self.fields.disclosure_id
    }

    pub fn organisation_code(&self) -> &OrganisationCode {
        &self.fields.organisation_code
    }

    pub fn organisation_name(&self) -> &str {
        &self.fields.organisation_name
    }

    pub fn unit(&self) -> &str {
        &self.fields.unit
    }

    /// The inbox the payload goes to.
    pub fn inbox(&self) -> Inbox {
        self.fields.inbox
    }

    pub fn legal_basis(&self) -> &LegalBasisId {
        &self.fields.legal_basis
    }

    pub fn registry_version(&self) -> &str {
        &self.fields.registry_version
    }

    pub fn crime(&self) -> Option<&CrimeId> {
        self.fields.crime.as_ref()
    }

    pub fn catalogue_version(&self) -> &str {
        &self.fields.catalogue_version
    }

    pub fn urgent(&self) -> bool {
        self.fields.urgent
    }

    /// The chosen items and their values, keyed by [`DataItem::as_str`].
    pub fn items(&self) -> &BTreeMap<String, String> {
        &self.fields.items
    }

    /// The value of one item, if chosen.
    pub fn item(&self, item: DataItem) -> Option<&str> {
        self.fields.items.get(item.as_str()).map(String::as_str)
    }

    /// The chosen items, in canonical order.
    pub fn data_items(&self) -> Vec<DataItem> {
        self.fields
            .items
            .keys()
            .filter_map(|name| DataItem::parse(name).ok())
            .collect()
    }

    /// The protected items in the payload; each needs the decision maker's explicit approval.
    pub fn protected_items(&self) -> Vec<DataItem> {
        self.data_items()
            .into_iter()
            .filter(|item| item.is_protected())
            .collect()
    }

    /// The one check of every payload, built or read: known item names first, then non-blank
    /// ids and names, well-formed versions, at least one item, no blank item values (the first
    /// in [`DataItem`] order is named).
    fn validated(fields: PayloadFields) -> Result<PolicePayload, PayloadError> {
        let items = fields
            .items
            .iter()
            .map(|(name, value)| DataItem::parse(name).map(|item| (item, value)))
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        if fields.disclosure_id.trim().is_empty() {
            return Err(PayloadError::BlankField("disclosure_id"));
        }
        if fields.disclosure_id.chars().count() > MAXIMUM_DISCLOSURE_ID_LENGTH
            || fields.disclosure_id.chars().any(char::is_control)
        {
            return Err(PayloadError::InvalidDisclosureId);
        }
        if fields.organisation_name.trim().is_empty() {
            return Err(PayloadError::BlankField("organisation_name"));
        }
        if fields.unit.trim().is_empty() {
            return Err(PayloadError::BlankField("unit"));
        }
        if !is_content_version(&fields.registry_version) {
            return Err(PayloadError::InvalidVersion("registry_version"));
        }
        if !is_content_version(&fields.catalogue_version) {
            return Err(PayloadError::InvalidVersion("catalogue_version"));
        }
        if items.is_empty() {
            return Err(PayloadError::NoItems);
        }
        if let Some((item, _)) = items.iter().find(|(_, value)| value.trim().is_empty()) {
            return Err(PayloadError::BlankItemValue(*item));
        }
        Ok(PolicePayload { fields })
    }
}

impl fmt::Debug for PolicePayload {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PolicePayload")
            .field("disclosure_id", &self.fields.disclosure_id)
            .field("organisation_code", &self.fields.organisation_code)
            .field("unit", &self.fields.unit)
            .field("inbox", &self.fields.inbox)
            .field("legal_basis", &self.fields.legal_basis)
            .field("crime", &self.fields.crime)
            .field("urgent", &self.fields.urgent)
            .field("items", &self.fields.items.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn is_content_version(version: &str) -> bool {
    version.strip_prefix("sha256:").is_some_and(|digest| {
        digest.len() == 64
            && digest
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::inbox::OtherAuthority;
    use crate::organisation::{PoliceRegion, Recipient};
    use proptest::prelude::*;

    const VERSION_A: &str =
        "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    const VERSION_B: &str =
        "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn input() -> PolicePayloadInput {
        PolicePayloadInput {
            disclosure_id: "0190d4a2-0000-7000-8000-000000000001".to_owned(),
            organisation_code: OrganisationCode::parse("bollnas-kommun").unwrap(),
            organisation_name: "Bollnäs kommun".to_owned(),
            unit: "Individ- och familjeomsorgen".to_owned(),
            inbox: Inbox::Police(PoliceRegion::Mitt),
            legal_basis: LegalBasisId::parse("OSL-10-18c").unwrap(),
            registry_version: VERSION_A.to_owned(),
            crime: Some(CrimeId::parse("grov-kvinnofridskrankning").unwrap()),
            catalogue_version: VERSION_A.to_owned(),
            urgent: false,
            items: BTreeMap::from([
                (DataItem::SubjectName, "Testperson Ett".to_owned()),
                (DataItem::RiskDescription, "Upprepade hot".to_owned()),
                (DataItem::VictimAddress, "Testgatan 1".to_owned()),
            ]),
        }
    }

    type InputChange = Box<dyn Fn(&mut PolicePayloadInput)>;

    fn hash_of(input: PolicePayloadInput) -> String {
        PolicePayload::new(input).unwrap().sha256_hex()
    }

    #[test]
    fn hash_is_stable_across_constructions_and_item_insertion_order() {
        let first = hash_of(input());
        let mut reordered = input();
        reordered.items = BTreeMap::new();
        reordered
            .items
            .insert(DataItem::VictimAddress, "Testgatan 1".to_owned());
        reordered
            .items
            .insert(DataItem::RiskDescription, "Upprepade hot".to_owned());
        reordered
            .items
            .insert(DataItem::SubjectName, "Testperson Ett".to_owned());
        assert_eq!(first, hash_of(reordered));
        assert_eq!(first, hash_of(input()));
        assert_eq!(first.len(), 64);
    }

    #[test]
    fn canonical_bytes_have_fields_in_declaration_order() {
        let payload = PolicePayload::new(input()).unwrap();
        let text = String::from_utf8(payload.canonical_bytes()).unwrap();
        let positions: Vec<usize> = [
            "\"disclosure_id\"",
            "\"organisation_code\"",
            "\"organisation_name\"",
            "\"unit\"",
            "\"police_region\"",
            "\"legal_basis\"",
            "\"registry_version\"",
            "\"crime\"",
            "\"catalogue_version\"",
            "\"urgent\"",
            "\"items\"",
        ]
        .iter()
        .map(|field| text.find(field).unwrap())
        .collect();
        assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{text}");
        assert!(text.contains("\"police_region\":\"mitt\""), "{text}");
        // Another authority's inbox under the same key; it reads back the same.
        let prosecutors = PolicePayload::new(PolicePayloadInput {
            inbox: Inbox::Authority(OtherAuthority::new(Recipient::Aklagarmyndigheten).unwrap()),
            ..input()
        })
        .unwrap();
        let prosecutors_bytes = prosecutors.canonical_bytes();
        let prosecutors_text = String::from_utf8(prosecutors_bytes.clone()).unwrap();
        assert!(
            prosecutors_text.contains("\"police_region\":\"aklagarmyndigheten\""),
            "{prosecutors_text}"
        );
        assert_eq!(
            PolicePayload::from_canonical_bytes(&prosecutors_bytes).unwrap(),
            prosecutors
        );
        assert_eq!(
            hex::encode(Sha256::digest(text.as_bytes())),
            payload.sha256_hex()
        );
    }

    #[test]
    fn hash_changes_when_any_field_or_item_changes() {
        let original = hash_of(input());
        let changes: Vec<(&str, InputChange)> = vec![
            (
                "disclosure_id",
                Box::new(|input| input.disclosure_id.push('2')),
            ),
            (
                "organisation_code",
                Box::new(|input| {
                    input.organisation_code = OrganisationCode::parse("ovanaker-kommun").unwrap()
                }),
            ),
            (
                "organisation_name",
                Box::new(|input| input.organisation_name.push('s')),
            ),
            (
                "unit",
                Box::new(|input| input.unit = "Vuxenenheten".to_owned()),
            ),
            (
                "police_region",
                Box::new(|input| input.inbox = Inbox::Police(PoliceRegion::Nord)),
            ),
            (
                "legal_basis",
                Box::new(|input| input.legal_basis = LegalBasisId::parse("OSL-10-21").unwrap()),
            ),
            (
                "registry_version",
                Box::new(|input| input.registry_version = VERSION_B.to_owned()),
            ),
            (
                "crime",
                Box::new(|input| input.crime = Some(CrimeId::parse("mord").unwrap())),
            ),
            ("crime none", Box::new(|input| input.crime = None)),
            (
                "catalogue_version",
                Box::new(|input| input.catalogue_version = VERSION_B.to_owned()),
            ),
            ("urgent", Box::new(|input| input.urgent = true)),
            (
                "item value",
                Box::new(|input| {
                    input
                        .items
                        .insert(DataItem::SubjectName, "Testperson Två".to_owned());
                }),
            ),
            (
                "item added",
                Box::new(|input| {
                    input
                        .items
                        .insert(DataItem::CaseReference, "IFO-2024-17".to_owned());
                }),
            ),
            (
                "item removed",
                Box::new(|input| {
                    input.items.remove(&DataItem::VictimAddress);
                }),
            ),
            (
                "item renamed",
                Box::new(|input| {
                    let value = input.items.remove(&DataItem::VictimAddress).unwrap();
                    input.items.insert(DataItem::VictimWorkplace, value);
                }),
            ),
        ];
        for (name, change) in changes {
            let mut changed = input();
            change(&mut changed);
            assert_ne!(hash_of(changed), original, "{name}");
        }
    }

    #[test]
    fn invalid_inputs_are_refused() {
        let cases: Vec<(InputChange, PayloadError)> = vec![
            (
                Box::new(|input| input.disclosure_id = "  ".to_owned()),
                PayloadError::BlankField("disclosure_id"),
            ),
            (
                Box::new(|input| input.unit = String::new()),
                PayloadError::BlankField("unit"),
            ),
            (
                Box::new(|input| input.registry_version = "sha256:ABC".to_owned()),
                PayloadError::InvalidVersion("registry_version"),
            ),
            (Box::new(|input| input.items.clear()), PayloadError::NoItems),
            (
                Box::new(|input| {
                    input.items.insert(DataItem::CaseReference, " ".to_owned());
                }),
                PayloadError::BlankItemValue(DataItem::CaseReference),
            ),
        ];
        for (change, expected) in cases {
            let mut changed = input();
            change(&mut changed);
            let message = expected.to_string();
            assert_eq!(PolicePayload::new(changed), Err(expected), "{message}");
        }
    }

    #[test]
    fn protected_items_are_reported() {
        let payload = PolicePayload::new(input()).unwrap();
        assert_eq!(payload.protected_items(), [DataItem::VictimAddress]);
        let protected: Vec<DataItem> = DataItem::ALL
            .into_iter()
            .filter(|item| item.is_protected())
            .collect();
        assert_eq!(
            protected,
            [DataItem::VictimAddress, DataItem::VictimWorkplace]
        );
        assert_eq!(payload.item(DataItem::VictimAddress), Some("Testgatan 1"));
        assert_eq!(payload.item(DataItem::VictimName), None);
    }

    #[test]
    fn debug_does_not_print_item_values() {
        let payload = PolicePayload::new(input()).unwrap();
        let debug = format!("{payload:?}");
        assert!(!debug.contains("Testgatan"), "{debug}");
        assert!(!debug.contains("Testperson"), "{debug}");
        assert!(debug.contains("victim_address"), "{debug}");
    }

    #[test]
    fn canonical_bytes_round_trip_and_non_canonical_bytes_are_refused() {
        let payload = PolicePayload::new(input()).unwrap();
        let bytes = payload.canonical_bytes();
        assert_eq!(
            PolicePayload::from_canonical_bytes(&bytes),
            Ok(payload.clone())
        );

        let pretty = serde_json::to_vec_pretty(&payload).unwrap();
        assert_eq!(
            PolicePayload::from_canonical_bytes(&pretty),
            Err(PayloadError::NotCanonical)
        );
        let text = String::from_utf8(bytes).unwrap();
        let unknown_item = text.replace("\"subject_name\"", "\"shoe_size\"");
        assert!(matches!(
            PolicePayload::from_canonical_bytes(unknown_item.as_bytes()),
            Err(PayloadError::UnknownDataItem(_))
        ));
        assert!(matches!(
            PolicePayload::from_canonical_bytes(b"{}"),
            Err(PayloadError::Malformed(_))
        ));
    }

    #[test]
    fn data_item_names_round_trip() {
        for item in DataItem::ALL {
            assert_eq!(DataItem::parse(item.as_str()), Ok(item));
        }
        assert!(DataItem::parse("VictimAddress").is_err());
    }

    proptest! {
        #[test]
        fn any_item_value_change_changes_the_hash(
            value in "\\PC{1,40}",
            other in "\\PC{1,40}",
            item_index in 0usize..11,
        ) {
            prop_assume!(value != other && !value.trim().is_empty() && !other.trim().is_empty());
            let item = DataItem::ALL[item_index];
            let mut first = input();
            first.items.insert(item, value);
            let mut second = input();
            second.items.insert(item, other);
            prop_assert_ne!(hash_of(first.clone()), hash_of(second));
            let payload = PolicePayload::new(first).unwrap();
            prop_assert_eq!(
                PolicePayload::from_canonical_bytes(&payload.canonical_bytes()),
                Ok(payload)
            );
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = PolicePayload::from_canonical_bytes(&bytes);
        }
    }
}
