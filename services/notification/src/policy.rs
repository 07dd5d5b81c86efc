//! Who may do what. Deliver is for allow-listed Tryggdel service certificates; a police
//! officer acts in the region their token names and sees only that region's deliveries; the
//! disclosing organisation reads only its own. A delivery someone may not see does not exist
//! for them (NOT_FOUND, the same answer as for one never made). Pure: no I/O; handlers pass
//! in what the store found.

use tryggdel_auth::Role;
use tryggdel_domain::{Inbox, PoliceRegion};
use tryggdel_service_kit::{Caller, ServiceError, ServiceOnly};

use crate::store::DeliveryRow;

/// Deliver: only services, and of those only the configured senders.
pub const DELIVER: ServiceOnly = ServiceOnly {
    without_service_certificate: "Deliver is for Tryggdel services and needs a service certificate",
    action: "deliver to the police",
};

/// Recall: only services, and of those only the configured senders (who deliver).
pub const RECALL: ServiceOnly = ServiceOnly {
    without_service_certificate: "Recall is for Tryggdel services and needs a service certificate",
    action: "recall from the police",
};

/// The inbox of an officer: role police_officer, an organisation that is a law-enforcement
/// authority, and for Polismyndigheten a known region in the token (its inbox); another
/// authority has one inbox. Anyone else is refused, naming `action`.
pub fn officer_inbox(caller: &Caller, action: &str) -> Result<Inbox, ServiceError> {
    caller.require_any(&[Role::PoliceOfficer], action)?;
    let authority = caller.organisation.authority().ok_or_else(|| {
        ServiceError::PermissionDenied(format!(
            "{action} is for officers of a law-enforcement authority"
        ))
    })?;
    let region = match caller.principal.police_region.as_deref() {
        Some(region) => Some(PoliceRegion::parse(region).map_err(|_| {
            ServiceError::PermissionDenied("the token names an unknown police region".into())
        })?),
        None => None,
    };
    Inbox::for_recipient(authority, region).ok_or_else(|| {
        ServiceError::PermissionDenied(format!("{action} needs a token that names a police region"))
    })
}

/// The disclosing organisation's staff who may read a delivery's status.
pub fn require_status_reader(caller: &Caller) -> Result<(), ServiceError> {
    caller.require_any(
        &[
            Role::Caseworker,
            Role::DecisionMaker,
            Role::ComplianceOfficer,
        ],
        "reading a delivery's status",
    )
}

/// The disclosing organisation's staff who may read the police's follow-up questions.
pub fn require_follow_up_reader(caller: &Caller) -> Result<(), ServiceError> {
    caller.require_any(
        &[Role::Caseworker, Role::DecisionMaker],
        "reading follow-up questions",
    )
}

/// The disclosing organisation's staff who may read escalations.
pub fn require_escalation_reader(caller: &Caller) -> Result<(), ServiceError> {
    caller.require_any(
        &[Role::DecisionMaker, Role::ComplianceOfficer],
        "reading escalations",
    )
}

/// `found` if it went to `region`; otherwise it does not exist.
pub fn delivery_for_region(
    found: Option<DeliveryRow>,
    region: Inbox,
) -> Result<DeliveryRow, ServiceError> {
    match found {
        Some(row) if row.police_region == region => Ok(row),
        _ => Err(ServiceError::NotFound("delivery")),
    }
}

/// `found` if `caller`'s organisation made it; otherwise it does not exist.
pub fn delivery_of_organisation(
    found: Option<DeliveryRow>,
    caller: &Caller,
) -> Result<DeliveryRow, ServiceError> {
    match found {
        Some(row) if &row.organisation == caller.organisation.code() => Ok(row),
        _ => Err(ServiceError::NotFound("delivery")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tonic::{Code, Status};
    use tryggdel_auth::Principal;
    use tryggdel_domain::{
        Organisation, OrganisationCode, OrganisationKind, OtherAuthority, Recipient,
    };

    use super::*;
    use crate::store::NewDelivery;

    fn caller(
        organisation: &str,
        kind: OrganisationKind,
        roles: &[Role],
        region: Option<&str>,
    ) -> Caller {
        let code = OrganisationCode::parse(organisation).unwrap();
        Caller {
            principal: Principal {
                user_id: "anvandare-1".into(),
                organisation: organisation.into(),
                unit: None,
                roles: roles.to_vec(),
                police_region: region.map(str::to_owned),
                display_name: None,
                token_id: "jti-1".into(),
            },
            organisation: Organisation::new(code, "Testorganisation", kind).unwrap(),
            trace_id: String::new(),
            traceparent: String::new(),
        }
    }

    fn officer(region: Option<&str>) -> Caller {
        caller(
            "polisen",
            OrganisationKind::Police,
            &[Role::PoliceOfficer],
            region,
        )
    }

    fn row_of(organisation: &str, region: Inbox) -> DeliveryRow {
        NewDelivery {
            disclosure_id: "0193a1b2-0000-7000-8000-000000000001".into(),
            police_region: region,
            organisation: OrganisationCode::parse(organisation).unwrap(),
            urgent: false,
            payload_sealed: String::new(),
            payload_sha256: "ab".repeat(32),
            approved_by: "beslut".into(),
            approved_at: 1,
            legal_basis_id: "OSL-10-18c".into(),
            registry_version: "v".into(),
            delivered_by: "disclosure".into(),
            trace_id: String::new(),
            delivered_at: 1,
            deadline: 2,
            person_refs: Vec::new(),
        }
        .into_row(1)
    }

    fn refusal<T: std::fmt::Debug>(result: Result<T, ServiceError>) -> (Code, String) {
        let status: Status = result.unwrap_err().into();
        (status.code(), status.message().to_owned())
    }

    #[test]
    fn an_officer_acts_in_the_region_of_their_token() {
        assert_eq!(
            officer_inbox(&officer(Some("mitt")), "listing").unwrap(),
            Inbox::Police(PoliceRegion::Mitt)
        );
        assert_eq!(
            refusal(officer_inbox(&officer(None), "listing")),
            (
                Code::PermissionDenied,
                "listing needs a token that names a police region".into()
            )
        );
        assert_eq!(
            refusal(officer_inbox(&officer(Some("atlantis")), "listing")),
            (
                Code::PermissionDenied,
                "the token names an unknown police region".into()
            )
        );
        let not_police = caller(
            "bollnas-kommun",
            OrganisationKind::Supervisor,
            &[Role::PoliceOfficer],
            Some("mitt"),
        );
        assert_eq!(
            refusal(officer_inbox(&not_police, "listing")),
            (
                Code::PermissionDenied,
                "listing is for officers of a law-enforcement authority".into()
            )
        );
        // Another law-enforcement authority has one inbox, whatever region a token names.
        let prosecutor = caller(
            "aklagarmyndigheten",
            OrganisationKind::LawEnforcement {
                authority: OtherAuthority::new(Recipient::Aklagarmyndigheten).unwrap(),
            },
            &[Role::PoliceOfficer],
            None,
        );
        assert_eq!(
            officer_inbox(&prosecutor, "listing").unwrap().as_str(),
            "aklagarmyndigheten"
        );
        let caseworker = caller(
            "polisen",
            OrganisationKind::Police,
            &[Role::Caseworker],
            Some("mitt"),
        );
        assert_eq!(
            refusal(officer_inbox(&caseworker, "listing")).0,
            Code::PermissionDenied
        );
    }

    #[test]
    fn a_delivery_outside_the_callers_reach_does_not_exist() {
        let row = row_of("bollnas-kommun", Inbox::Police(PoliceRegion::Mitt));
        assert!(delivery_for_region(Some(row.clone()), Inbox::Police(PoliceRegion::Mitt)).is_ok());
        assert_eq!(
            refusal(delivery_for_region(
                Some(row.clone()),
                Inbox::Police(PoliceRegion::Ost)
            ))
            .0,
            Code::NotFound
        );
        assert_eq!(
            refusal(delivery_for_region(None, Inbox::Police(PoliceRegion::Mitt))).0,
            Code::NotFound
        );

        let own = caller(
            "bollnas-kommun",
            OrganisationKind::Supervisor,
            &[Role::Caseworker],
            None,
        );
        let other = caller(
            "jonkoping-kommun",
            OrganisationKind::Supervisor,
            &[Role::Caseworker],
            None,
        );
        assert!(delivery_of_organisation(Some(row.clone()), &own).is_ok());
        assert_eq!(
            refusal(delivery_of_organisation(Some(row), &other)).0,
            Code::NotFound
        );
        assert_eq!(
            refusal(delivery_of_organisation(None, &own)).0,
            Code::NotFound
        );
    }
}
