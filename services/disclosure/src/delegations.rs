//! Delegations, administered: an admin of an organisation grants a delegation (a user, legal
//! bases, from a date, optionally to one) and revokes it (sets its end); admins and decision
//! makers list them. Each change is stored with its outbox event (`delegation.granted`,
//! `delegation.revoked`), so it is in the audit log. A new deployment's delegations are seeded
//! from the directory file ([`seed_delegations`]).
//!
//! Invariants: a delegation is never deleted and never ends before it starts; only an admin of
//! the same organisation changes one (a supervisor never); a decision names the delegation it
//! relied on, and reading the decision shows that delegation as stored.

use std::collections::BTreeSet;

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use time::Date;
use tryggdel_domain::{
    Delegation, DelegationInput, Directory, LegalBasisId, LegalRegistry, OrganisationCode,
};
use tryggdel_proto::disclosure::v1::{
    Delegation as WireDelegation, GrantDelegationRequest, ListDelegationsRequest,
    ListDelegationsResponse, RevokeDelegationRequest,
};
use tryggdel_service_kit::{Caller, ServiceError, now_unix_ms, today_in_sweden};

use crate::api::DisclosureApi;
use crate::checks;
use crate::content;
use crate::events::{Trace, outbox_event, system_actor, user_actor};
use crate::policy;
use crate::store::{
    DisclosureRecord, DisclosureStore, GrantOutcome, OutboxActor, OutboxPayload, stored_date,
};
use crate::wire::wire_delegation;

/// Who granted the delegations seeded from the directory file.
pub const SEEDED_BY: &str = "directory";

impl DisclosureApi {
    pub(crate) async fn grant_delegation(
        &self,
        caller: &Caller,
        request: GrantDelegationRequest,
    ) -> Result<WireDelegation, ServiceError> {
        policy::require_delegation_admin(caller)?;
        let user = checks::required_text("user", &request.user)?;
        let legal_bases = known_bases(&self.registry, &request.legal_bases)?;
        let valid_from = date_or_today("valid_from", &request.valid_from)?;
        let valid_to = optional_date("valid_to", &request.valid_to)?;
        let delegation = Delegation::new(DelegationInput {
            id: uuid::Uuid::now_v7().to_string(),
            organisation: caller.organisation.code().clone(),
            user,
            legal_bases,
            valid_from,
            valid_to,
            granted_by: caller.user().to_owned(),
            granted_at_unix_ms: now_unix_ms(),
        })
        .map_err(|error| ServiceError::invalid("valid_to", error))?;
        let event = self.delegation_event(
            user_actor(caller),
            &Trace::of(caller),
            &delegation,
            "delegation.granted",
        )?;
        match self.store.insert_delegation(&delegation, &event).await? {
            GrantOutcome::Granted => {}
            GrantOutcome::Exists => {
                return Err(ServiceError::internal(anyhow::anyhow!(
                    "a new delegation's id {} is taken",
                    delegation.id()
                )));
            }
        }
        self.signal_outbox();
        tracing::info!(delegation_id = %delegation.id(), "delegation granted");
        Ok(wire_delegation(&delegation))
    }

    pub(crate) async fn revoke_delegation(
        &self,
        caller: &Caller,
        request: RevokeDelegationRequest,
    ) -> Result<WireDelegation, ServiceError> {
        policy::require_delegation_admin(caller)?;
        let stored = self
            .store
            .delegation(request.delegation_id.trim())
            .await?
            .filter(|delegation| delegation.organisation() == caller.organisation.code())
            .ok_or(ServiceError::NotFound("delegation"))?;
        let valid_to = date_or_today("valid_to", &request.valid_to)?;
        if let Some(current) = stored.valid_to().filter(|current| *current < valid_to) {
            return Err(ServiceError::FailedPrecondition(format!(
                "delegation {} already ends on {}; a revocation only ends it sooner",
                stored.id(),
                content::format_date(current)
            )));
        }
        let revoked = stored
            .ending_on(valid_to)
            .map_err(|error| ServiceError::invalid("valid_to", error))?;
        let event = self.delegation_event(
            user_actor(caller),
            &Trace::of(caller),
            &revoked,
            "delegation.revoked",
        )?;
        let written = self
            .store
            .revoke_delegation(
                &revoked,
                stored.valid_to(),
                caller.user(),
                now_unix_ms(),
                &event,
            )
            .await?;
        if !written {
            return Err(ServiceError::FailedPrecondition(format!(
                "delegation {} was changed meanwhile; list it and try again",
                stored.id()
            )));
        }
        self.signal_outbox();
        tracing::info!(delegation_id = %revoked.id(), "delegation revoked");
        Ok(wire_delegation(&revoked))
    }

    pub(crate) async fn list_delegations(
        &self,
        caller: &Caller,
        request: ListDelegationsRequest,
    ) -> Result<ListDelegationsResponse, ServiceError> {
        policy::require_delegation_reader(caller)?;
        let own = caller.organisation.code();
        let asked = request.organisation.trim();
        if !(asked.is_empty() || asked == own.as_str()) {
            return Err(ServiceError::PermissionDenied(format!(
                "you may list only the delegations of {own}"
            )));
        }
        let as_of = optional_date("as_of", &request.as_of)?;
        let delegations = self
            .store
            .delegations_of(own)
            .await?
            .iter()
            .filter(|delegation| as_of.is_none_or(|date| delegation.is_valid_on(date)))
            .map(wire_delegation)
            .collect();
        Ok(ListDelegationsResponse { delegations })
    }

    /// Every delegation of the organisation `record` is from, for deciding on it.
    pub(crate) async fn delegations_for(
        &self,
        record: &DisclosureRecord,
    ) -> Result<Vec<Delegation>, ServiceError> {
        let Ok(organisation) = OrganisationCode::parse(&record.organisation) else {
            return Ok(Vec::new());
        };
        Ok(self.store.delegations_of(&organisation).await?)
    }

    /// The delegation the decision on `record` relied on, as stored, if it names one.
    pub(crate) async fn decision_delegation(
        &self,
        record: &DisclosureRecord,
    ) -> Result<Option<WireDelegation>, ServiceError> {
        let Some(id) = record
            .decision
            .as_ref()
            .map(|decision| decision.delegation_id.as_str())
            .filter(|id| !id.is_empty())
        else {
            return Ok(None);
        };
        Ok(self
            .store
            .delegation(id)
            .await?
            .as_ref()
            .map(wire_delegation))
    }

    /// The outbox event of a change to `delegation` by `actor`: about the delegation (its id
    /// where a disclosure's would be), the change in its details.
    fn delegation_event(
        &self,
        actor: OutboxActor,
        trace: &Trace,
        delegation: &Delegation,
        event_type: &str,
    ) -> Result<tryggdel_storage::OutboxEvent, ServiceError> {
        delegation_payload(
            actor,
            trace,
            delegation,
            event_type,
            self.registry.registry_version(),
        )
        .and_then(outbox_event)
    }
}

/// The directory file's delegations, stored with a `delegation.seeded` event each when no
/// delegation was ever stored (a new deployment). Their ids are derived from the organisation
/// and user, so instances starting together store each once. Returns how many it stored.
pub async fn seed_delegations(
    store: &DisclosureStore,
    directory: &Directory,
    registry: &LegalRegistry,
) -> anyhow::Result<usize> {
    if !store.has_no_delegations().await? {
        return Ok(0);
    }
    let now = now_unix_ms();
    let mut seeded = 0;
    for delegation in directory.seed_delegations(SEEDED_BY, now, String::new) {
        let delegation = Delegation::new(DelegationInput {
            id: seed_id(delegation.organisation(), delegation.user()),
            organisation: delegation.organisation().clone(),
            user: delegation.user().to_owned(),
            legal_bases: delegation.legal_bases().clone(),
            valid_from: delegation.valid_from(),
            valid_to: delegation.valid_to(),
            granted_by: SEEDED_BY.to_owned(),
            granted_at_unix_ms: now,
        })
        .context("a seeded delegation")?;
        let payload = delegation_payload(
            system_actor(),
            &Trace::continuing(""),
            &delegation,
            "delegation.seeded",
            registry.registry_version(),
        )
        .map_err(|error| anyhow::anyhow!("the seeded delegation's event: {error}"))?;
        let event = payload
            .to_event()
            .context("the seeded delegation's event")?;
        if store.insert_delegation(&delegation, &event).await? == GrantOutcome::Granted {
            seeded += 1;
        }
    }
    Ok(seeded)
}

/// The id of the seeded delegation of `user` in `organisation`.
fn seed_id(organisation: &OrganisationCode, user: &str) -> String {
    let digest = Sha256::digest(format!("{}\n{user}", organisation.as_str()).as_bytes());
    format!("seed-{}", &hex::encode(digest)[..32])
}

/// What an event about `delegation` says.
fn delegation_payload(
    actor: OutboxActor,
    trace: &Trace,
    delegation: &Delegation,
    event_type: &str,
    registry_version: &str,
) -> Result<OutboxPayload, ServiceError> {
    let bases: Vec<&str> = delegation
        .legal_bases()
        .iter()
        .map(LegalBasisId::as_str)
        .collect();
    let details = [
        ("delegation_id", delegation.id().to_owned()),
        ("user", delegation.user().to_owned()),
        ("legal_bases", bases.join(",")),
        ("valid_from", stored_date(delegation.valid_from())),
        (
            "valid_to",
            delegation.valid_to().map(stored_date).unwrap_or_default(),
        ),
        ("granted_by", delegation.granted_by().to_owned()),
    ];
    Ok(OutboxPayload {
        event_id: uuid::Uuid::now_v7().to_string(),
        event_type: event_type.to_owned(),
        occurred_at_unix_ms: now_unix_ms(),
        disclosure_id: delegation.id().to_owned(),
        organisation: delegation.organisation().as_str().to_owned(),
        police_region: String::new(),
        actor,
        state: String::new(),
        version: 0,
        legal_basis_id: String::new(),
        registry_version: registry_version.to_owned(),
        urgent: false,
        person_refs: Vec::new(),
        trace_id: trace.trace_id.clone(),
        traceparent: trace.traceparent.clone(),
        refusal: None,
        details: details
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    })
}

/// The legal bases named, each one the registry knows; at least one.
fn known_bases(
    registry: &LegalRegistry,
    names: &[String],
) -> Result<BTreeSet<LegalBasisId>, ServiceError> {
    let mut bases = BTreeSet::new();
    for (index, name) in names.iter().enumerate() {
        let field = format!("legal_bases[{index}]");
        let id = LegalBasisId::parse(name.trim())
            .map_err(|error| ServiceError::invalid(field.clone(), error))?;
        if registry.basis_versions(&id).is_empty() {
            return Err(ServiceError::invalid(
                field,
                format!("{id} is not in the legal-basis registry"),
            ));
        }
        bases.insert(id);
    }
    if bases.is_empty() {
        return Err(ServiceError::invalid(
            "legal_bases",
            "name at least one legal basis",
        ));
    }
    Ok(bases)
}

/// A `YYYY-MM-DD` date in `field`, or today's Swedish date when it is empty.
fn date_or_today(field: &str, text: &str) -> Result<Date, ServiceError> {
    Ok(optional_date(field, text)?.unwrap_or_else(today_in_sweden))
}

/// A `YYYY-MM-DD` date in `field`, or None when it is empty.
fn optional_date(field: &str, text: &str) -> Result<Option<Date>, ServiceError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    content::parse_date(text)
        .map(Some)
        .map_err(|problem| ServiceError::invalid(field, problem))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_id_depends_on_organisation_and_user_only() {
        let bollnas = OrganisationCode::parse("bollnas-kommun").unwrap();
        let jonkoping = OrganisationCode::parse("jonkoping-kommun").unwrap();
        assert_eq!(seed_id(&bollnas, "a"), seed_id(&bollnas, "a"));
        assert_ne!(seed_id(&bollnas, "a"), seed_id(&bollnas, "b"));
        assert_ne!(seed_id(&bollnas, "a"), seed_id(&jonkoping, "a"));
        assert!(seed_id(&bollnas, "a").starts_with("seed-"));
    }

    #[test]
    fn dates_are_checked_and_default_to_today() {
        assert_eq!(date_or_today("valid_from", " ").unwrap(), today_in_sweden());
        assert_eq!(optional_date("valid_to", "").unwrap(), None);
        let error = optional_date("valid_to", "2026-13-01").unwrap_err();
        assert!(error.to_string().starts_with("valid_to: "), "{error}");
    }

    #[test]
    fn bases_must_be_known_and_at_least_one() {
        let registry = LegalRegistry::embedded().unwrap();
        assert!(known_bases(&registry, &[]).is_err());
        assert!(known_bases(&registry, &["OSL-10-18c".into()]).is_ok());
        let error = known_bases(&registry, &["OSL-10-18c".into(), "OSL-99-1".into()]).unwrap_err();
        assert!(error.to_string().starts_with("legal_bases[1]: "), "{error}");
    }
}
