//! Who may do what to a disclosure: deny by default. Pure functions of the caller, the
//! disclosure and the organisation's delegations; the handlers call them before anything is
//! written.
//!
//! Invariants: the drafter never decides their own disclosure (four eyes); a decision needs a
//! delegation for the disclosure's legal basis valid on the Swedish date of the decision, and
//! names it; a caller who may not see a disclosure is told it does not exist; delegations are
//! administered by an admin of the same organisation, never by a supervisor.

use time::Date;
use tryggdel_auth::Role;
use tryggdel_domain::{Delegation, LegalBasisId, PoliceRegion, delegation_on};
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

/// A decision maker may decide a case of their organisation on `date` under a basis one of
/// `delegations` (the organisation's) lets them decide under that day, and never a case they
/// drafted. Returns the delegation the decision relies on.
pub(crate) fn require_decider<'a>(
    delegations: &'a [Delegation],
    date: Date,
    caller: &Caller,
    record: &DisclosureRecord,
) -> Result<&'a Delegation, ServiceError> {
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
    delegation_on(
        delegations,
        caller.organisation.code(),
        caller.user(),
        &basis,
        date,
    )
    .ok_or_else(|| {
        ServiceError::PermissionDenied(format!(
            "you hold no delegation to decide under {basis} in {} on {date}",
            record.organisation
        ))
    })
}

/// The drafter may withdraw their disclosure; anyone else only as its decider on `date`.
pub(crate) fn require_withdrawer(
    delegations: &[Delegation],
    date: Date,
    caller: &Caller,
    record: &DisclosureRecord,
) -> Result<(), ServiceError> {
    if is_drafter(caller, record) {
        return Ok(());
    }
    require_decider(delegations, date, caller, record).map(|_| ())
}

/// Protected details are revealed only to the drafter or a decider of the case on `date`.
pub(crate) fn require_revealer(
    delegations: &[Delegation],
    date: Date,
    caller: &Caller,
    record: &DisclosureRecord,
) -> Result<(), ServiceError> {
    let is_decider = require_decider(delegations, date, caller, record).is_ok();
    if !(is_drafter(caller, record) || is_decider) {
        return Err(ServiceError::PermissionDenied(
            "only the drafter or a decision maker of this case may reveal protected details".into(),
        ));
    }
    Ok(())
}

/// Only an admin of an organisation administers its delegations; a supervisor never does, and
/// only an organisation that holds a secrecy has delegations.
pub(crate) fn require_delegation_admin(caller: &Caller) -> Result<(), ServiceError> {
    caller.require_any(&[Role::Admin], "administering delegations")?;
    if caller.is_supervisor() || caller.organisation.secrecy().is_none() {
        return Err(ServiceError::PermissionDenied(format!(
            "organisation {} has no delegations to administer",
            caller.organisation.code()
        )));
    }
    Ok(())
}

/// Who may list an organisation's delegations: its admins and decision makers.
pub(crate) fn require_delegation_reader(caller: &Caller) -> Result<(), ServiceError> {
    caller.require_any(&[Role::Admin, Role::DecisionMaker], "listing delegations")?;
    if caller.is_supervisor() {
        return Err(ServiceError::PermissionDenied(
            "a supervisor does not list delegations".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use time::macros::date;
    use tryggdel_auth::Principal;
    use tryggdel_domain::{
        DEVELOPMENT_DIRECTORY, Directory, LegalRegistry, OrganisationCode, SEED_DELEGATION_FROM,
    };

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

    fn seeded(directory: &Directory) -> Vec<Delegation> {
        let mut next = 0;
        directory.seed_delegations("directory", 0, || {
            next += 1;
            format!("seed-{next}")
        })
    }

    #[test]
    fn deciding_needs_the_delegation_and_never_the_drafter() {
        let directory = directory();
        let delegations = seeded(&directory);
        let today = date!(2026 - 12 - 03);
        let record = drafted_in_bollnas();
        let decider = caller(
            &directory,
            "bollnas-kommun",
            "beslut-bollnas",
            &[Role::DecisionMaker],
        );
        let relied_on = require_decider(&delegations, today, &decider, &record).unwrap();
        assert_eq!(relied_on.user(), "beslut-bollnas");
        assert!(require_withdrawer(&delegations, today, &decider, &record).is_ok());
        // Not before the delegation holds.
        let before = SEED_DELEGATION_FROM.previous_day().unwrap();
        assert!(matches!(
            require_decider(&delegations, before, &decider, &record),
            Err(ServiceError::PermissionDenied(_))
        ));

        let drafter_deciding = caller(
            &directory,
            "bollnas-kommun",
            "handlaggare-bollnas",
            &[Role::Caseworker, Role::DecisionMaker],
        );
        let refusal = require_decider(&delegations, today, &drafter_deciding, &record).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "four-eyes rule: the drafter of a disclosure may not decide it"
        );
        assert!(require_withdrawer(&delegations, today, &drafter_deciding, &record).is_ok());
        assert!(require_revealer(&delegations, today, &drafter_deciding, &record).is_ok());

        let undelegated = caller(
            &directory,
            "bollnas-kommun",
            "someone-else",
            &[Role::DecisionMaker],
        );
        assert!(matches!(
            require_decider(&delegations, today, &undelegated, &record),
            Err(ServiceError::PermissionDenied(_))
        ));
        assert!(require_revealer(&delegations, today, &undelegated, &record).is_err());

        let elsewhere = caller(
            &directory,
            "jonkoping-kommun",
            "beslut-jonkoping",
            &[Role::DecisionMaker],
        );
        assert!(matches!(
            require_decider(&delegations, today, &elsewhere, &record),
            Err(ServiceError::NotFound("disclosure"))
        ));
    }

    #[test]
    fn only_an_organisations_admin_administers_its_delegations() {
        let directory = directory();
        let admin = caller(&directory, "bollnas-kommun", "admin", &[Role::Admin]);
        assert!(require_delegation_admin(&admin).is_ok());
        let decider = caller(
            &directory,
            "bollnas-kommun",
            "beslut-bollnas",
            &[Role::DecisionMaker],
        );
        assert!(require_delegation_admin(&decider).is_err());
        assert!(require_delegation_reader(&decider).is_ok());
        let supervisor = caller(
            &directory,
            "ivo",
            "x",
            &[Role::Admin, Role::ComplianceOfficer],
        );
        assert!(require_delegation_admin(&supervisor).is_err());
        assert!(require_delegation_reader(&supervisor).is_err());
    }
}
