//! Clearing (gallring) in the audit log: the `Clear` RPC.
//!
//! A clearing names a decision (TOML, [`ClearingDecision`]), disclosures and persons. For a
//! disclosure it destroys the disclosure's key (the free text of its entries); for a person
//! their key (their reference in every format-2 entry), the keys of their entries that name no
//! disclosure, and their rows of the person index. The leaves stay as they are, so every
//! checkpoint, proof and export still verifies: a commitment whose opening is gone is a
//! cleared part.
//!
//! Invariants:
//! - Who may clear: a Tryggdel service on the append allow-list (the disclosure service's
//!   clearing run), or a compliance officer, only for disclosures and persons all of whose
//!   entries are their own organisation's.
//! - Everything is checked before anything is destroyed: the decision must cover the kinds
//!   asked for (persons: `person_references`; disclosures: `free_text`), no disclosure may
//!   have an active hold (from the log's `disclosure.hold_*` entries, today in
//!   Europe/Stockholm), and no person may be born on one of the decision's exempt days. One
//!   refusal refuses the whole request.
//! - The `audit.cleared` tombstone (decision id and SHA-256, the key ids, the disclosure ids,
//!   counts; nothing personal) is appended before the keys are destroyed: a clearing that
//!   fails halfway is retried, and no key is ever gone without a tombstone naming it.

use std::collections::{BTreeMap, BTreeSet};

use time::Date;
use time::macros::format_description;
use tonic::Request;
use tryggdel_auth::Role;
use tryggdel_domain::{ClearingDataKind, ClearingDecision, IdentityNumber};
use tryggdel_proto::audit::v1::{Actor, AuditEvent, ClearRequest, ClearResponse, Outcome};
use tryggdel_service_kit::{Authenticator, ServiceError, now_unix_ms, today_in_sweden};

use crate::entry::{EntryRecord, KeyScope, body_from_event};
use crate::service::{AuditApi, SOURCE, append_error};
use crate::store::{AuditStore, QueryFilter};

/// The most disclosures plus persons one request clears.
pub const MAX_CLEARED_PER_REQUEST: usize = 1000;
/// Ids per tombstone detail (each under the log's 4000-character detail limit).
const IDS_PER_TOMBSTONE: usize = 100;
const READ_BATCH: u32 = 1000;

/// Who asked.
enum Clearer {
    Service(String),
    Officer {
        user: String,
        organisation: String,
        roles: Vec<String>,
        trace_id: String,
    },
}

/// `Clear`: see the module's documentation.
pub(crate) async fn clear(
    api: &AuditApi,
    request: Request<ClearRequest>,
) -> Result<ClearResponse, ServiceError> {
    let clearer = match Authenticator::service_in_own_name(&request) {
        Some(service) if api.may_append(&service.name) => Clearer::Service(service.name),
        Some(service) => {
            return Err(ServiceError::PermissionDenied(format!(
                "service {} may not clear the audit log",
                service.name
            )));
        }
        None => {
            let caller = api.authenticator().user(&request).await?;
            caller.require_any(&[Role::ComplianceOfficer], "clearing the audit log")?;
            Clearer::Officer {
                user: caller.user().to_owned(),
                organisation: caller.organisation.code().as_str().to_owned(),
                roles: caller.role_names(),
                trace_id: caller.trace_id.clone(),
            }
        }
    };
    let request = request.into_inner();
    let decision = ClearingDecision::from_toml(&request.decision_toml)
        .map_err(|error| ServiceError::invalid("decision_toml", error))?;
    if request.disclosure_ids.is_empty() && request.identity_numbers.is_empty() {
        return Err(ServiceError::invalid(
            "disclosure_ids",
            "name at least one disclosure or person to clear",
        ));
    }
    if request.disclosure_ids.len() + request.identity_numbers.len() > MAX_CLEARED_PER_REQUEST {
        return Err(ServiceError::invalid(
            "disclosure_ids",
            format!("at most {MAX_CLEARED_PER_REQUEST} disclosures and persons per request"),
        ));
    }
    if !request.disclosure_ids.is_empty() && !decision.covers(ClearingDataKind::FreeText) {
        return Err(ServiceError::invalid(
            "disclosure_ids",
            "the decision does not cover free_text, which is what the log keeps of a disclosure",
        ));
    }
    if !request.identity_numbers.is_empty() && !decision.covers(ClearingDataKind::PersonReferences)
    {
        return Err(ServiceError::invalid(
            "identity_numbers",
            "the decision does not cover person_references",
        ));
    }
    let today = today_in_sweden();
    let mut disclosures = BTreeSet::new();
    for (i, id) in request.disclosure_ids.iter().enumerate() {
        let id = id.trim();
        if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
            return Err(ServiceError::invalid(
                format!("disclosure_ids[{i}]"),
                "must be a disclosure id",
            ));
        }
        disclosures.insert(id.to_owned());
    }
    let mut persons = BTreeSet::new();
    for (i, number) in request.identity_numbers.iter().enumerate() {
        let field = format!("identity_numbers[{i}]");
        let number = IdentityNumber::parse(number, today)
            .map_err(|error| ServiceError::invalid(field.clone(), error))?;
        if decision.exempts(&number) {
            return Err(ServiceError::FailedPrecondition(format!(
                "{field} is born on a day the decision {} exempts from clearing (kept for \
                 research); nothing was cleared",
                decision.id()
            )));
        }
        persons.insert(api.person_key().reference(&number).as_str().to_owned());
    }

    let store = api.log().store();
    let below = api.log().durable_size();
    for id in &disclosures {
        let entries = read_all(
            store,
            QueryFilter {
                disclosure_id: id.clone(),
                ..QueryFilter::default()
            },
            below,
        )
        .await?;
        if let Clearer::Officer { organisation, .. } = &clearer {
            require_own(&entries, organisation, &format!("disclosure {id}"))?;
        }
        if let Some(until) = active_hold(&entries, today) {
            return Err(ServiceError::FailedPrecondition(format!(
                "disclosure {id} has an active hold (until {until}); nothing was cleared"
            )));
        }
    }
    let mut scopes: Vec<KeyScope> = disclosures
        .iter()
        .map(|id| KeyScope::Disclosure(id.clone()))
        .collect();
    for (i, person) in persons.iter().enumerate() {
        if let Clearer::Officer { organisation, .. } = &clearer {
            let entries = read_all(
                store,
                QueryFilter {
                    person_ref: person.clone(),
                    ..QueryFilter::default()
                },
                below,
            )
            .await?;
            require_own(&entries, organisation, &format!("person {}", i + 1))?;
        }
        scopes.push(KeyScope::Person(person.clone()));
        if decision.covers(ClearingDataKind::FreeText) {
            for event_id in store.entries_without_disclosure_of(person).await? {
                scopes.push(KeyScope::Entry(event_id));
            }
        }
    }
    let key_ids = store.key_ids(&scopes).await?;
    let person_refs: Vec<String> = persons.iter().cloned().collect();

    let clearing_id = uuid::Uuid::now_v7().hyphenated().to_string();
    let tombstones = tombstones(
        &clearer,
        &decision,
        &clearing_id,
        &key_ids,
        &disclosures.iter().cloned().collect::<Vec<_>>(),
        persons.len(),
    )?;
    let appended = api.log().append(tombstones).await.map_err(append_error)?;
    let destroyed = store.destroy_personal(&key_ids, &person_refs).await?;
    tracing::info!(
        decision = decision.id(),
        clearing_id,
        disclosures = disclosures.len(),
        persons = persons.len(),
        keys = destroyed.keys,
        openings = destroyed.openings,
        person_index_rows = destroyed.person_index_rows,
        "cleared personal data from the audit log"
    );
    let count = |value: u64| u32::try_from(value).unwrap_or(u32::MAX);
    Ok(ClearResponse {
        decision_id: decision.id().to_owned(),
        decision_sha256: decision.sha256_hex(),
        disclosures_cleared: count(disclosures.len() as u64),
        persons_cleared: count(persons.len() as u64),
        keys_destroyed: count(destroyed.keys),
        openings_deleted: count(destroyed.openings),
        person_index_rows_deleted: count(destroyed.person_index_rows),
        tombstone_indices: appended.iter().map(|entry| entry.index).collect(),
    })
}

/// Every entry `filter` matches below `below`, parsed from the leaf (the fields a clearing
/// checks, holds and organisations, are never personal).
async fn read_all(
    store: &AuditStore,
    mut filter: QueryFilter,
    below: u64,
) -> Result<Vec<EntryRecord>, ServiceError> {
    filter.limit = READ_BATCH;
    let mut records = Vec::new();
    loop {
        let entries = store.query(&filter, below).await?;
        let full = store.full_entries(entries).await?;
        let last = full.last().map(|entry| entry.index);
        let count = full.len();
        records.extend(full.into_iter().map(|entry| entry.record));
        match last {
            Some(last) if count == READ_BATCH as usize => filter.after_index = Some(last),
            _ => return Ok(records),
        }
    }
}

fn require_own(
    entries: &[EntryRecord],
    organisation: &str,
    what: &str,
) -> Result<(), ServiceError> {
    if entries
        .iter()
        .any(|record| record.body.organisation != organisation)
    {
        return Err(ServiceError::PermissionDenied(format!(
            "{what} has entries of other organisations: a compliance officer of {organisation} \
             may clear only their own organisation's entries"
        )));
    }
    Ok(())
}

/// The last day of the latest hold on a disclosure that holds on `today`, from its
/// `disclosure.hold_placed` / `_extended` / `_ended` entries in log order. A hold whose end
/// date cannot be read holds (refusing a clearing is the safe mistake).
pub(crate) fn active_hold(entries: &[EntryRecord], today: Date) -> Option<String> {
    let mut holds: BTreeMap<String, String> = BTreeMap::new();
    for record in entries {
        let hold_id = record
            .body
            .details
            .get("hold_id")
            .cloned()
            .unwrap_or_default();
        let until = record
            .body
            .details
            .get("until")
            .cloned()
            .unwrap_or_default();
        match record.body.action.as_str() {
            "disclosure.hold_placed" | "disclosure.hold_extended" => {
                holds.insert(hold_id, until);
            }
            "disclosure.hold_ended" => {
                holds.remove(&hold_id);
            }
            _ => {}
        }
    }
    let format = format_description!("[year]-[month]-[day]");
    holds
        .into_values()
        .filter(|until| match Date::parse(until, format) {
            Ok(last_day) => today <= last_day,
            Err(_) => true,
        })
        .max()
}

/// The tombstone entries of a clearing: one, or more when the ids do not fit one entry's
/// details; each names the decision and the clearing, and its share of the ids.
fn tombstones(
    clearer: &Clearer,
    decision: &ClearingDecision,
    clearing_id: &str,
    key_ids: &[String],
    disclosure_ids: &[String],
    persons: usize,
) -> Result<Vec<crate::entry::EntryBody>, ServiceError> {
    let key_parts: Vec<&[String]> = key_ids.chunks(IDS_PER_TOMBSTONE).collect();
    let disclosure_parts: Vec<&[String]> = disclosure_ids.chunks(IDS_PER_TOMBSTONE).collect();
    let parts = key_parts.len().max(disclosure_parts.len()).max(1);
    let (actor, organisation, trace_id) = match clearer {
        Clearer::Service(name) => (
            Actor {
                user_id: format!("service:{name}"),
                ..Actor::default()
            },
            String::new(),
            String::new(),
        ),
        Clearer::Officer {
            user,
            organisation,
            roles,
            trace_id,
        } => (
            Actor {
                user_id: user.clone(),
                roles: roles.clone(),
                organisation: organisation.clone(),
                unit: String::new(),
            },
            organisation.clone(),
            trace_id.clone(),
        ),
    };
    let now = now_unix_ms();
    (0..parts)
        .map(|part| {
            let mut details: BTreeMap<String, String> = [
                ("decision_id", decision.id().to_owned()),
                ("decision_sha256", decision.sha256_hex()),
                ("clearing_id", clearing_id.to_owned()),
                ("part", (part + 1).to_string()),
                ("parts", parts.to_string()),
                ("keys_destroyed", key_ids.len().to_string()),
                ("persons_cleared", persons.to_string()),
            ]
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect();
            if let Some(keys) = key_parts.get(part) {
                details.insert("key_ids".into(), keys.join(","));
            }
            if let Some(ids) = disclosure_parts.get(part) {
                details.insert("disclosure_ids_cleared".into(), ids.join(","));
            }
            let event = AuditEvent {
                event_id: uuid::Uuid::now_v7().to_string(),
                action: "audit.cleared".into(),
                occurred_at_unix_ms: now,
                actor: Some(actor.clone()),
                organisation: organisation.clone(),
                purpose: "clearing".into(),
                outcome: Outcome::Success as i32,
                trace_id: trace_id.clone(),
                details: details.into_iter().collect(),
                ..AuditEvent::default()
            };
            body_from_event("event", &event, SOURCE)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use time::macros::date;

    use super::*;
    use crate::entry::{EntryActor, EntryBody, EntryPurpose};

    fn hold(action: &str, hold_id: &str, until: &str) -> EntryRecord {
        EntryBody {
            event_id: String::new(),
            source: "disclosure".into(),
            action: action.into(),
            occurred_at: String::new(),
            occurred_at_unix_ms: 1,
            outcome: "success".into(),
            outcome_detail: String::new(),
            actor: EntryActor {
                user_id: String::new(),
                roles: Vec::new(),
                organisation: String::new(),
                unit: String::new(),
            },
            organisation: "bollnas-kommun".into(),
            disclosure_id: "d-1".into(),
            objects: Vec::new(),
            purpose: EntryPurpose {
                legal_basis_id: String::new(),
                registry_version: String::new(),
                purpose: String::new(),
            },
            recipient: String::new(),
            person_refs: Vec::new(),
            trace_id: String::new(),
            details: [("hold_id", hold_id), ("until", until)]
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
        }
        .record_v1(1)
    }

    #[test]
    fn holds_hold_until_their_last_day_unless_ended() {
        let today = date!(2026 - 12 - 03);
        assert_eq!(active_hold(&[], today), None);
        let placed = hold("disclosure.hold_placed", "h1", "2026-12-03");
        assert_eq!(
            active_hold(std::slice::from_ref(&placed), today),
            Some("2026-12-03".into())
        );
        assert_eq!(
            active_hold(std::slice::from_ref(&placed), date!(2026 - 12 - 04)),
            None
        );
        let extended = hold("disclosure.hold_extended", "h1", "2027-01-10");
        assert_eq!(
            active_hold(&[placed.clone(), extended.clone()], date!(2026 - 12 - 20)),
            Some("2027-01-10".into())
        );
        let ended = hold("disclosure.hold_ended", "h1", "");
        assert_eq!(active_hold(&[placed.clone(), extended, ended], today), None);
        let unreadable = hold("disclosure.hold_placed", "h2", "soon");
        assert!(active_hold(&[unreadable], today).is_some());
    }
}
