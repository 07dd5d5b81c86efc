//! Who may do what to a disclosure: deny by default. Pure functions of the caller, the
//! disclosure and the directory; the handlers call them before anything is read or written.
//!
//! Invariants: the drafter never decides their own disclosure (four eyes); a decision needs the
//! delegation for the disclosure's legal basis; a caller who may not see a disclosure is told
//! it does not exist.

use tryggdel_auth::Role;
use tryggdel_domain::{Directory, LegalBasisId, PoliceRegion};
use tryggdel_service_kit::{Caller, ServiceError, ServiceOnly};

use crate::store::DisclosureRecord;

/// The service certificate name that may record receipts.
pub(crate) const NOTIFICATION_SERVICE: &str = "notification";

/// RecordReceipt is for the notification service only.
pub(crate) const RECORDS_RECEIPTS: ServiceOnly = ServiceOnly {
    without_service_certificate: "RecordReceipt is for the notification service and needs its certificate",
    action: "record receipts",
};

/// The roles that work with disclosures inside an organisation (and read them).
pub(crate) const READERS: [Role; 3] = [
    Role::Caseworker,
    Role::DecisionMaker,
    Role::ComplianceOfficer,
];

/// Whether the caller may see a disclosure at all. Everyone else is told it does not exist.
pub(crate) fn may_see(caller: &Caller, record: &DisclosureRecord) -> bool {
    let same_organisation = caller.organisation.code().as_str() == record.organisation;
    (same_organisation && READERS.iter().any(|role| caller.has(*role))) || caller.is_supervisor()
}

/// Whether the caller sees disclosures of every organisation in a list (a supervisor).
pub(crate) fn lists_every_organisation(caller: &Caller) -> bool {
    caller.is_supervisor()
}

/// The police region a caseworker's drafts go to: only an organisation that holds a secrecy a
/// disclosure could break, and routes to a region, drafts disclosures.
pub(crate) fn drafting_region(caller: &Caller) -> Result<PoliceRegion, ServiceError> {
    match (
        caller.organisation.secrecy(),
        caller.organisation.police_region(),
    ) {
        (Some(_), Some(region)) => Ok(region),
        _ => Err(ServiceError::PermissionDenied(format!(
            "organisation {} holds no secrecy a disclosure could break",
            caller.organisation.code()
        ))),
    }
}

/// Whether the caller is a caseworker who drafted the disclosure.
pub(crate) fn is_drafter(caller: &Caller, record: &DisclosureRecord) -> bool {
    caller.has(Role::Caseworker) && caller.user() == record.drafted_by
}

/// Only the drafter (a caseworker) may `action` (change or submit a draft).
pub(crate) fn require_drafter(
    caller: &Caller,
    record: &DisclosureRecord,
    action: &str,
) -> Result<(), ServiceError> {
    caller.require_any(&[Role::Caseworker], action)?;
    if caller.user() != record.drafted_by {
        return Err(ServiceError::PermissionDenied(format!(
            "only the drafter may {action}"
        )));
    }
    Ok(())
}

/// A decision maker may decide a case of their organisation under a basis they hold the
/// delegation for, and never a case they drafted.
pub(crate) fn require_decider(
    directory: &Directory,
    caller: &Caller,
    record: &DisclosureRecord,
) -> Result<(), ServiceError> {
    caller.require_any(&[Role::DecisionMaker], "deciding a disclosure")?;
    if caller.organisation.code().as_str() != record.organisation {
        return Err(ServiceError::NotFound("disclosure"));
    }
    if caller.user() == record.drafted_by {
        return Err(ServiceError::PermissionDenied(
            "four-eyes rule: the drafter of a disclosure may not decide it".into(),
        ));
    }
    let basis = LegalBasisId::parse(&record.legal_basis_id).map_err(|_| {
        ServiceError::FailedPrecondition("the disclosure names no legal basis".into())
    })?;
    if !directory.holds_delegation(caller.organisation.code(), caller.user(), &basis) {
        return Err(ServiceError::PermissionDenied(format!(
            "you hold no delegation to decide under {basis} in {}",
            record.organisation
        )));
    }
    Ok(())
}

/// The drafter may withdraw their disclosure; anyone else only as its decider.
pub(crate) fn require_withdrawer(
    directory: &Directory,
    caller: &Caller,
    record: &DisclosureRecord,
) -> Result<(), ServiceError> {
    if is_drafter(caller, record) {
        return Ok(());
    }
    require_decider(directory, caller, record)
}

/// Protected details are revealed only to the drafter or a decider of the case.
pub(crate) fn require_revealer(
    directory: &Directory,
    caller: &Caller,
    record: &DisclosureRecord,
) -> Result<(), ServiceError> {
    let is_decider = require_decider(directory, caller, record).is_ok();
    if !(is_drafter(caller, record) || is_decider) {
        return Err(ServiceError::PermissionDenied(
            "only the drafter or a decision maker of this case may reveal protected details".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tryggdel_auth::Principal;
    use tryggdel_domain::{DEVELOPMENT_DIRECTORY, LegalRegistry, OrganisationCode};

    use super::*;

    fn directory() -> Directory {
        Directory::from_toml(DEVELOPMENT_DIRECTORY, &LegalRegistry::embedded().unwrap()).unwrap()
    }

    fn caller(directory: &Directory, organisation: &str, user: &str, roles: &[Role]) -> Caller {
        let code = OrganisationCode::parse(organisation).unwrap();
        Caller {
            principal: Principal {
                user_id: user.into(),
                organisation: organisation.into(),
                unit: None,
                roles: roles.to_vec(),
                police_region: None,
                display_name: None,
                token_id: "token".into(),
            },
            organisation: directory.organisation(&code).unwrap().clone(),
            trace_id: String::new(),
            traceparent: String::new(),
        }
    }

    fn drafted_in_bollnas() -> DisclosureRecord {
        let mut record = DisclosureRecord::new_draft(
            "bollnas-kommun",
            "mitt",
            "handlaggare-bollnas",
            "request-1",
            "f",
            0,
        );
        record.legal_basis_id = "OSL-10-18c".into();
        record
    }

    #[test]
    fn other_organisations_do_not_see_a_disclosure_and_supervisors_do() {
        let directory = directory();
        let record = drafted_in_bollnas();
        let own = caller(&directory, "bollnas-kommun", "x", &[Role::Caseworker]);
        let other = caller(&directory, "jonkoping-kommun", "x", &[Role::Caseworker]);
        let supervisor = caller(&directory, "ivo", "x", &[Role::ComplianceOfficer]);
        assert!(may_see(&own, &record));
        assert!(!may_see(&other, &record));
        assert!(may_see(&supervisor, &record));
        assert!(lists_every_organisation(&supervisor));
        assert!(!lists_every_organisation(&own));
    }

    #[test]
    fn deciding_needs_the_delegation_and_never_the_drafter() {
        let directory = directory();
        let record = drafted_in_bollnas();
        let decider = caller(
            &directory,
            "bollnas-kommun",
            "beslut-bollnas",
            &[Role::DecisionMaker],
        );
        assert!(require_decider(&directory, &decider, &record).is_ok());
        assert!(require_withdrawer(&directory, &decider, &record).is_ok());

        let drafter_deciding = caller(
            &directory,
            "bollnas-kommun",
            "handlaggare-bollnas",
            &[Role::Caseworker, Role::DecisionMaker],
        );
        let refusal = require_decider(&directory, &drafter_deciding, &record).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "four-eyes rule: the drafter of a disclosure may not decide it"
        );
        assert!(require_withdrawer(&directory, &drafter_deciding, &record).is_ok());
        assert!(require_revealer(&directory, &drafter_deciding, &record).is_ok());

        let undelegated = caller(
            &directory,
            "bollnas-kommun",
            "someone-else",
            &[Role::DecisionMaker],
        );
        assert!(matches!(
            require_decider(&directory, &undelegated, &record),
            Err(ServiceError::PermissionDenied(_))
        ));
        assert!(require_revealer(&directory, &undelegated, &record).is_err());

        let elsewhere = caller(
            &directory,
            "jonkoping-kommun",
            "beslut-jonkoping",
            &[Role::DecisionMaker],
        );
        assert!(matches!(
            require_decider(&directory, &elsewhere, &record),
            Err(ServiceError::NotFound("disclosure"))
        ));
    }
}
