//! Fixtures shared by the integration tests (`mod support`) and the crate's unit tests (from
//! `src/lib.rs`, by path), so both build their police payloads one way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use tryggdel_domain::{
    CrimeId, DataItem, Directory, Inbox, LegalBasisId, LegalRegistry, OrganisationCode,
    PolicePayload, PolicePayloadInput,
};

/// The canonical payload of a disclosure from `organisation` (registered in `directory`) with
/// `risk` as its risk description, as approval binds it.
pub fn police_payload(
    registry: &LegalRegistry,
    directory: &Directory,
    disclosure_id: &str,
    organisation: &str,
    urgent: bool,
    risk: &str,
) -> PolicePayload {
    let code = OrganisationCode::parse(organisation).unwrap();
    let region = directory
        .organisation(&code)
        .unwrap()
        .police_region()
        .unwrap();
    payload_to_inbox(
        registry,
        directory,
        disclosure_id,
        organisation,
        urgent,
        risk,
        Inbox::Police(region),
    )
}

/// [`police_payload`], to `inbox` instead of the organisation's police region.
pub fn payload_to_inbox(
    registry: &LegalRegistry,
    directory: &Directory,
    disclosure_id: &str,
    organisation: &str,
    urgent: bool,
    risk: &str,
    inbox: Inbox,
) -> PolicePayload {
    let code = OrganisationCode::parse(organisation).unwrap();
    let found = directory.organisation(&code).unwrap();
    PolicePayload::new(PolicePayloadInput {
        disclosure_id: disclosure_id.to_owned(),
        organisation_code: code.clone(),
        organisation_name: found.name().to_owned(),
        unit: "Socialtjänsten, vuxenenheten".into(),
        inbox,
        legal_basis: LegalBasisId::parse("OSL-10-18c").unwrap(),
        registry_version: registry.registry_version().to_owned(),
        crime: Some(CrimeId::parse("grov-kvinnofridskrankning").unwrap()),
        catalogue_version: registry.catalogue_version().to_owned(),
        urgent,
        items: BTreeMap::from([
            (DataItem::SubjectName, "Testperson Ett".to_owned()),
            (DataItem::Relation, "cohabitant".to_owned()),
            (DataItem::RiskDescription, risk.to_owned()),
        ]),
    })
    .unwrap()
}
