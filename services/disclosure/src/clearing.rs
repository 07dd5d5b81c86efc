//! Clearing (gallring) of the organisation's disclosures under a clearing decision
//! (RunClearing).
//!
//! Who: the organisation's administrators and compliance officers, for their own organisation
//! only (a supervisor oversees clearing, and does not run it).
//!
//! What: every disclosure of the organisation past drafting and decision whose last entry
//! (its last change, `updated_at`; reads are not entries) is at least the retention's
//! years old on the Swedish date of the run is due. A due disclosure is kept when a
//! hold holds on it that day, when its subject or victim is born on an exempt day of the month,
//! or when some event of it has not yet reached the audit log or the police (the next run
//! takes it). Otherwise its personal data is destroyed in one write: the sealed content and
//! protected details are sealed empty, the approved payload keeps its items with their values
//! cleared, the free-text reason and judgement and the person references are emptied, its outbox rows lose their person
//! references and free text, and a `disclosure.cleared` tombstone event names the decision and
//! its SHA-256 and nothing personal. What statistics count (legal basis, crime category,
//! recipient, region, outcome, times) stays.
//!
//! The persons of the due disclosures who then have no uncleared disclosure left (in any
//! organisation) are found by their keyed references. The audit log is asked first to clear
//! its entries of the due disclosures and of those persons (the persons by identity number,
//! never returned to the caller); only once it has, are the disclosures cleared here, so a
//! failure of the audit log leaves everything for the next run. A dry run plans and reports
//! the same way and changes nothing anywhere.
//!
//! The retention is the decision's `retention_years`, or the organisation's configured one
//! ([`ClearingRetention`], `[disclosure.clearing]`, default 5 years) when that is longer. A
//! disclosure's crime category and recipient stay in the clear columns, so the statistics
//! still count it.

use std::collections::BTreeMap;

use prost::Message as _;
use time::Date;
use tryggdel_auth::Role;
use tryggdel_domain::{
    ClearingDecision, IdentityNumber, PolicePayload, PolicePayloadInput, end_of_swedish_day_unix_ms,
};
use tryggdel_proto::audit::v1::ClearRequest;
use tryggdel_proto::disclosure::v1::{
    ClearedDisclosure as WireCleared, ClearingReport, KeptDisclosure, RunClearingRequest,
};
use tryggdel_service_kit::{Caller, ServiceError, now_unix_ms, today_in_sweden};

use crate::api::DisclosureApi;
use crate::sealing;
use crate::store::{ClearedDisclosure, DisclosureRecord, OutboxPayload, StrippedOutboxRow};

/// The retention when the configuration names none: social-services records are cleared five
/// years after the last entry.
pub const DEFAULT_RETENTION_YEARS: u16 = 5;

/// The longest retention the configuration may name.
const MAX_RETENTION_YEARS: u16 = 100;

/// How many years after its last entry an organisation keeps a disclosure at least
/// (`[disclosure.clearing]`: `retention_years` for every organisation, and per organisation
/// under `organisations`). A clearing decision with a shorter retention clears nothing
/// earlier than this; one with a longer retention waits longer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClearingRetention {
    default_years: u16,
    organisations: BTreeMap<String, u16>,
}

/// A retention the configuration may not name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("retention of {years} years for {scope} is not between 1 and {MAX_RETENTION_YEARS} years")]
pub struct ClearingRetentionError {
    scope: String,
    years: u16,
}

impl Default for ClearingRetention {
    fn default() -> ClearingRetention {
        ClearingRetention {
            default_years: DEFAULT_RETENTION_YEARS,
            organisations: BTreeMap::new(),
        }
    }
}

impl ClearingRetention {
    /// `default_years` for every organisation but those in `organisations` (by code).
    pub fn new(
        default_years: u16,
        organisations: BTreeMap<String, u16>,
    ) -> Result<ClearingRetention, ClearingRetentionError> {
        let valid = |years: u16| (1..=MAX_RETENTION_YEARS).contains(&years);
        if !valid(default_years) {
            return Err(ClearingRetentionError {
                scope: "every organisation".into(),
                years: default_years,
            });
        }
        if let Some((code, years)) = organisations.iter().find(|(_, years)| !valid(**years)) {
            return Err(ClearingRetentionError {
                scope: code.clone(),
                years: *years,
            });
        }
        Ok(ClearingRetention {
            default_years,
            organisations,
        })
    }

    /// The configured retention of `organisation`.
    pub fn years_for(&self, organisation: &str) -> u16 {
        self.organisations
            .get(organisation)
            .copied()
            .unwrap_or(self.default_years)
    }
}

/// What a cleared disclosure's payload holds in place of each value.
pub const CLEARED_VALUE: &str = "[gallrad]";

/// The event recording that a disclosure's personal data was cleared.
pub const CLEARED_EVENT: &str = "disclosure.cleared";

/// Detail keys of outbox events that hold free text (reasons, judgements, comments,
/// weighings): removed from a cleared disclosure's events.
const FREE_TEXT_DETAILS: [&str; 6] = [
    "reason",
    "judgement",
    "close_relative_judgement",
    "comment",
    "weighing",
    "relation_justification",
];

/// Why a due disclosure was kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeptBecause {
    /// A hold holds on it on the day of the run.
    Held,
    /// Its subject or victim is born on an exempt day of the month.
    ExemptBirthDay,
    /// An event of it has not yet reached the audit log or the police.
    AwaitingRelay,
    /// It changed between planning and clearing.
    Changed,
}

/// What a clearing run clears and keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct ClearingPlan {
    /// The decision's retention, or the organisation's configured one when longer.
    pub retention_years: u16,
    pub cutoff_unix_ms: i64,
    /// The disclosures to clear.
    pub due: Vec<DisclosureRecord>,
    /// (disclosure id, last entry, why) of the kept ones.
    pub kept: Vec<(String, i64, KeptBecause)>,
    /// The persons with no uncleared disclosure left once the due ones are cleared, for the
    /// audit log's clearing.
    pub persons: Vec<IdentityNumber>,
}

impl KeptBecause {
    pub fn as_str(self) -> &'static str {
        match self {
            KeptBecause::Held => "held",
            KeptBecause::ExemptBirthDay => "exempt_birth_day",
            KeptBecause::AwaitingRelay => "awaiting_audit_log",
            KeptBecause::Changed => "changed",
        }
    }
}

impl DisclosureApi {
    pub(crate) async fn run_clearing(
        &self,
        caller: &Caller,
        request: RunClearingRequest,
    ) -> Result<ClearingReport, ServiceError> {
        caller.require_any(
            &[Role::Admin, Role::ComplianceOfficer],
            "running a clearing decision",
        )?;
        if caller.is_supervisor() {
            return Err(ServiceError::PermissionDenied(
                "a supervisor does not clear an organisation's disclosures".into(),
            ));
        }
        let decision = ClearingDecision::from_toml(&request.decision_toml)
            .map_err(|error| ServiceError::invalid("decision_toml", error))?;
        let mut plan = self
            .plan_clearing(caller, &decision, today_in_sweden())
            .await?;
        let cleared = if request.dry_run {
            plan.due.clone()
        } else {
            self.clear_in_audit_log(&request.decision_toml, &plan)
                .await?;
            self.clear_planned(caller, &decision, &mut plan).await?
        };
        tracing::info!(
            user = %caller.user(),
            decision_id = %decision.id(),
            cleared = cleared.len(),
            kept = plan.kept.len(),
            persons = plan.persons.len(),
            dry_run = request.dry_run,
            "clearing run"
        );
        Ok(ClearingReport {
            decision_id: decision.id().to_owned(),
            decision_sha256: decision.sha256_hex(),
            dry_run: request.dry_run,
            cutoff_unix_ms: plan.cutoff_unix_ms,
            retention_years: u32::from(plan.retention_years),
            cleared: cleared
                .iter()
                .map(|record| WireCleared {
                    disclosure_id: record.id.clone(),
                    last_entry_unix_ms: record.updated_at,
                })
                .collect(),
            kept: plan
                .kept
                .iter()
                .map(|(id, last, why)| KeptDisclosure {
                    disclosure_id: id.clone(),
                    last_entry_unix_ms: *last,
                    reason: why.as_str().to_owned(),
                })
                .collect(),
            persons_cleared: u32::try_from(plan.persons.len()).unwrap_or(u32::MAX),
            audit_log_cleared: !request.dry_run,
        })
    }

    /// What running `decision` over the caller's organisation on the Swedish date `today`
    /// clears and keeps; changes nothing.
    pub(crate) async fn plan_clearing(
        &self,
        caller: &Caller,
        decision: &ClearingDecision,
        today: Date,
    ) -> Result<ClearingPlan, ServiceError> {
        self.fill_clear_columns().await?;
        let organisation = caller.organisation.code().as_str();
        let years = decision
            .retention_years()
            .max(self.clearing_retention.years_for(organisation));
        let cutoff = cutoff_unix_ms(years, today);
        let candidates = self.store.clearing_candidates(organisation, cutoff).await?;
        let mut plan = ClearingPlan {
            retention_years: years,
            cutoff_unix_ms: cutoff,
            due: Vec::new(),
            kept: Vec::new(),
            persons: Vec::new(),
        };
        // Each person of a due disclosure, with how many due disclosures name them.
        let mut persons: Vec<(String, IdentityNumber, i64)> = Vec::new();
        for record in candidates {
            if !is_due(
                tryggdel_domain::swedish_date(at(record.updated_at)),
                years,
                today,
            ) {
                continue;
            }
            let people = self.people(&record)?;
            let kept = if self.store.active_hold(&record.id, today).await?.is_some() {
                Some(KeptBecause::Held)
            } else if people.iter().any(|(_, number)| decision.exempts(number)) {
                Some(KeptBecause::ExemptBirthDay)
            } else if self.store.awaits_relay(&record.id).await? {
                Some(KeptBecause::AwaitingRelay)
            } else {
                None
            };
            if let Some(why) = kept {
                plan.kept.push((record.id.clone(), record.updated_at, why));
                continue;
            }
            for (reference, number) in people {
                match persons.iter_mut().find(|(known, _, _)| *known == reference) {
                    Some((_, _, count)) => *count += 1,
                    None => persons.push((reference, number, 1)),
                }
            }
            plan.due.push(record);
        }
        for (reference, number, due) in persons {
            // A person is cleared when every uncleared disclosure naming them is due now.
            if self.store.uncleared_disclosures_of(&reference).await? <= due {
                plan.persons.push(number);
            }
        }
        Ok(plan)
    }

    /// Has the audit log clear the entries of the planned disclosures and persons first, so
    /// that a failure there leaves everything to the next run.
    async fn clear_in_audit_log(
        &self,
        decision_toml: &str,
        plan: &ClearingPlan,
    ) -> Result<(), ServiceError> {
        if plan.due.is_empty() && plan.persons.is_empty() {
            return Ok(());
        }
        let request = ClearRequest {
            decision_toml: decision_toml.to_owned(),
            disclosure_ids: plan.due.iter().map(|record| record.id.clone()).collect(),
            identity_numbers: plan
                .persons
                .iter()
                .map(IdentityNumber::to_canonical_string)
                .collect(),
        };
        let response = self.audit.clear(request).await.map_err(|error| {
            tracing::warn!(error = %error, "the audit log did not clear; nothing cleared");
            ServiceError::Unavailable(
                "the audit log could not clear the entries of these disclosures, so nothing \
                 was cleared; retry later"
                    .into(),
            )
        })?;
        tracing::info!(
            disclosures = response.disclosures_cleared,
            persons = response.persons_cleared,
            keys = response.keys_destroyed,
            "the audit log cleared"
        );
        Ok(())
    }

    /// Clears the planned disclosures; one changed since it was planned is kept (its last
    /// entry is new). Returns the cleared ones.
    async fn clear_planned(
        &self,
        caller: &Caller,
        decision: &ClearingDecision,
        plan: &mut ClearingPlan,
    ) -> Result<Vec<DisclosureRecord>, ServiceError> {
        let mut cleared = Vec::new();
        for record in std::mem::take(&mut plan.due) {
            if self.clear_one(caller, decision, &record).await? {
                cleared.push(record);
            } else {
                plan.kept
                    .push((record.id.clone(), record.updated_at, KeptBecause::Changed));
            }
        }
        if !cleared.is_empty() {
            self.store.compact_after_clearing().await?;
            self.signal_outbox();
        }
        Ok(cleared)
    }

    /// The keyed reference and identity number of the disclosure's subject and victim.
    fn people(
        &self,
        record: &DisclosureRecord,
    ) -> Result<Vec<(String, IdentityNumber)>, ServiceError> {
        if record.content_sealed.is_empty() {
            return Ok(Vec::new());
        }
        let content = sealing::open_content(&self.cipher, record)?;
        let mut people = Vec::new();
        for person in [&content.subject, &content.victim].into_iter().flatten() {
            if person.identity_number.is_empty() {
                continue;
            }
            let number = IdentityNumber::parse(&person.identity_number, today_in_sweden())
                .map_err(|_| {
                    ServiceError::internal(anyhow::anyhow!(
                        "disclosure {}: a stored identity number does not parse",
                        record.id
                    ))
                })?;
            let reference = self.person_key.reference(&number).as_str().to_owned();
            people.push((reference, number));
        }
        Ok(people)
    }

    /// The approved payload of `record` with every item's value replaced by
    /// [`CLEARED_VALUE`], sealed: what was disclosed (which items, the basis, the recipient,
    /// the crime, the versions) stays readable, whose data it was does not. Empty when
    /// nothing was approved.
    fn cleared_payload(&self, record: &DisclosureRecord) -> Result<String, ServiceError> {
        let approved = record
            .decision
            .as_ref()
            .is_some_and(|decision| !decision.payload_sealed.is_empty());
        if !approved {
            return Ok(String::new());
        }
        let unreadable = |error: tryggdel_domain::PayloadError| {
            ServiceError::internal(anyhow::anyhow!(
                "disclosure {}: the sealed payload: {error}",
                record.id
            ))
        };
        let bytes = sealing::open_payload(&self.cipher, record)?;
        let payload = PolicePayload::from_canonical_bytes(&bytes).map_err(unreadable)?;
        let cleared = PolicePayload::new(PolicePayloadInput {
            disclosure_id: payload.disclosure_id().to_owned(),
            organisation_code: payload.organisation_code().clone(),
            organisation_name: payload.organisation_name().to_owned(),
            unit: payload.unit().to_owned(),
            inbox: payload.inbox(),
            legal_basis: payload.legal_basis().clone(),
            registry_version: payload.registry_version().to_owned(),
            crime: payload.crime().cloned(),
            catalogue_version: payload.catalogue_version().to_owned(),
            urgent: payload.urgent(),
            items: payload
                .data_items()
                .into_iter()
                .map(|item| (item, CLEARED_VALUE.to_owned()))
                .collect(),
        })
        .map_err(unreadable)?;
        Ok(sealing::seal_payload(&self.cipher, &record.id, &cleared)?)
    }

    /// Destroys the personal data of `record` with its tombstone. False when it changed
    /// since it was read.
    async fn clear_one(
        &self,
        caller: &Caller,
        decision: &ClearingDecision,
        record: &DisclosureRecord,
    ) -> Result<bool, ServiceError> {
        let mut emptied = record.clone();
        sealing::seal_empty(&self.cipher, &mut emptied)?;
        let payload_sealed = self.cleared_payload(record)?;
        if let Some(decided) = emptied.decision.as_mut() {
            decided.payload_sealed.clone_from(&payload_sealed);
            decided.reason.clear();
            decided.judgement.clear();
        }
        emptied.version += 1;
        let tombstone = self.event(
            caller,
            &emptied,
            CLEARED_EVENT,
            &[
                ("decision_id", decision.id().to_owned()),
                ("decision_sha256", decision.sha256_hex()),
                (
                    "kinds",
                    decision
                        .kinds()
                        .map(|kind| kind.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            ],
        )?;
        let stripped = self
            .store
            .outbox_payloads(&record.id)
            .await?
            .into_iter()
            .map(|(seq, payload)| strip(seq, &payload))
            .collect::<Result<Vec<_>, _>>()?;
        let cleared = ClearedDisclosure {
            id: record.id.clone(),
            expected_version: record.version,
            content_sealed: emptied.content_sealed,
            protected_sealed: emptied.protected_sealed,
            payload_sealed,
            cleared_at: now_unix_ms(),
            decision_id: decision.id().to_owned(),
        };
        Ok(self
            .store
            .clear_disclosure(&cleared, &stripped, &tombstone)
            .await?)
    }
}

/// An outbox row's payload without person references, refusal reason or free-text details,
/// with the audit event it now makes.
fn strip(seq: i64, payload: &str) -> Result<StrippedOutboxRow, ServiceError> {
    let mut parsed: OutboxPayload = serde_json::from_str(payload).map_err(|error| {
        ServiceError::internal(anyhow::Error::new(error).context(format!("outbox row {seq}")))
    })?;
    parsed.person_refs.clear();
    if parsed.refusal.is_some() {
        parsed.refusal = Some(String::new());
    }
    parsed
        .details
        .retain(|key, _| !FREE_TEXT_DETAILS.contains(&key.as_str()));
    let audit_event = parsed.audit_event().encode_to_vec();
    let payload = serde_json::to_string(&parsed).map_err(|error| {
        ServiceError::internal(anyhow::Error::new(error).context(format!("outbox row {seq}")))
    })?;
    Ok(StrippedOutboxRow {
        seq,
        payload,
        audit_event,
    })
}

/// Whether a disclosure whose last entry was on `last_entry` is due on `today` after `years`:
/// from the same day `years` later (28 February for 29 February in a common year), as
/// [`ClearingDecision::clearable_from`] counts.
fn is_due(last_entry: Date, years: u16, today: Date) -> bool {
    let year = last_entry.year() + i32::from(years);
    let clearable_from = Date::from_calendar_date(year, last_entry.month(), last_entry.day())
        .or_else(|_| Date::from_calendar_date(year, last_entry.month(), 28))
        .unwrap_or(Date::MAX);
    today >= clearable_from
}

/// Disclosures last changed before this (Unix milliseconds) may be due on `today` after
/// `years`: the end of the Swedish day `years` before, plus a day for 29 February; each
/// candidate is then checked exactly with [`is_due`].
fn cutoff_unix_ms(years: u16, today: Date) -> i64 {
    let years = i32::from(years);
    let back = Date::from_calendar_date(today.year() - years, today.month(), 1)
        .ok()
        .and_then(|first| first.replace_day(today.day()).ok())
        .or_else(|| Date::from_calendar_date(today.year() - years, today.month(), 28).ok())
        .and_then(|day| day.next_day());
    back.and_then(end_of_swedish_day_unix_ms).unwrap_or(0)
}

fn at(unix_ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn decision() -> ClearingDecision {
        ClearingDecision::from_toml(
            "id = \"GB-2026-03\"\ntitle = \"Gallring\"\ndecided_by = \"Socialnämnden\"\n\
             decided_on = 2026-11-30\nretention_years = 5\n\
             kinds = [\"person_references\", \"free_text\", \"disclosure_content\"]\n\
             exempt_birth_days = [5, 15, 25]\n",
        )
        .unwrap()
    }

    #[test]
    fn the_cutoff_lets_through_every_due_day_and_no_later_one() {
        let decision = decision();
        let today = time::macros::date!(2026 - 12 - 03);
        let cutoff = cutoff_unix_ms(5, today);
        // Due: last entry on 3 December 2021 (Swedish day).
        let due = end_of_swedish_day_unix_ms(time::macros::date!(2021 - 12 - 03)).unwrap() - 1;
        assert!(due < cutoff);
        assert!(is_due(tryggdel_domain::swedish_date(at(due)), 5, today));
        assert!(decision.is_due(tryggdel_domain::swedish_date(at(due)), today));
        // Not due: 4 December 2021, filtered by is_due though within the cutoff's margin.
        let next = end_of_swedish_day_unix_ms(time::macros::date!(2021 - 12 - 04)).unwrap() - 1;
        assert!(!is_due(tryggdel_domain::swedish_date(at(next)), 5, today));
        // Far from due: after the cutoff.
        let later = end_of_swedish_day_unix_ms(time::macros::date!(2021 - 12 - 06)).unwrap();
        assert!(later > cutoff);
    }

    #[test]
    fn leap_days_and_configured_retentions() {
        let leap = time::macros::date!(2020 - 02 - 29);
        assert!(!is_due(leap, 5, time::macros::date!(2025 - 02 - 27)));
        assert!(is_due(leap, 5, time::macros::date!(2025 - 02 - 28)));
        let retention =
            ClearingRetention::new(5, BTreeMap::from([("bollnas-kommun".to_owned(), 7)])).unwrap();
        assert_eq!(retention.years_for("bollnas-kommun"), 7);
        assert_eq!(retention.years_for("region-gavleborg"), 5);
        assert!(ClearingRetention::new(0, BTreeMap::new()).is_err());
        assert!(
            ClearingRetention::new(5, BTreeMap::from([("x".to_owned(), 101)]))
                .unwrap_err()
                .to_string()
                .contains("for x")
        );
    }

    #[test]
    fn stripping_removes_persons_and_free_text() {
        let payload = serde_json::json!({
            "event_id": "e1", "event_type": "disclosure.rejected", "occurred_at_unix_ms": 1,
            "disclosure_id": "d1", "organisation": "bollnas-kommun", "police_region": "mitt",
            "actor": {"user_id": "u", "roles": ["decision_maker"], "organisation": "bollnas-kommun", "unit": null},
            "state": "rejected", "version": 3, "legal_basis_id": "OSL-10-18c",
            "registry_version": "1", "urgent": false, "person_refs": ["ref-a", "ref-b"],
            "trace_id": "", "details": {"reason": "Testperson Ett saknar", "delegation_id": "g1"},
            "refusal": "Testperson Ett"
        })
        .to_string();
        let stripped = strip(7, &payload).unwrap();
        assert_eq!(stripped.seq, 7);
        assert!(!stripped.payload.contains("Testperson"));
        assert!(!stripped.payload.contains("ref-a"));
        assert!(stripped.payload.contains("delegation_id"));
        let event =
            tryggdel_proto::audit::v1::AuditEvent::decode(stripped.audit_event.as_slice()).unwrap();
        assert!(event.person_refs.is_empty());
        assert!(event.outcome_detail.is_empty());
    }
}
