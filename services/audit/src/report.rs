//! Subject reports (registerutdrag): what the log holds about one person, for a compliance
//! officer to hand to them. The person's entries are found through the person index by the
//! keyed hash of their identity number, scoped as Query is (an organisation's officer sees that
//! organisation's part, a supervisor's all of it or one organisation's part). From them: every
//! disclosure about the person, summarised from all of that disclosure's entries, and every
//! access. A disclosure with a hold that holds on the report's date is left out, with every
//! entry naming it (as its disclosure or as an object): the log learns holds only from the
//! disclosure service's `disclosure.hold_placed|hold_extended|hold_ended` entries, and a hold
//! ends on its last day by itself. Every report is itself an entry (`audit.subject_report`, the
//! person as a keyed reference) before anything is returned.
//!
//! Entries are read in one place, [`read_entries`], so that a change of the stored entry
//! format changes one function.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use time::Date;
use tonic::{Request, Response, Status};
use tryggdel_auth::Role;
use tryggdel_domain::IdentityNumber;
use tryggdel_proto::audit::v1::subject_report_service_server::{
    SubjectReportService, SubjectReportServiceServer,
};
use tryggdel_proto::audit::v1::{
    Actor, AuditEvent, GetSubjectReportRequest, Outcome, ReportedAccess, ReportedDisclosure,
    SubjectReport,
};
use tryggdel_service_kit::{Caller, ServiceError, now_unix_ms, respond, rfc3339, today_in_sweden};

use crate::entry::{EntryRecord, body_from_event};
use crate::service::{AuditApi, SOURCE, append_error};
use crate::store::QueryFilter;

/// The action of a report's own entry.
pub const SUBJECT_REPORT: &str = "audit.subject_report";
/// The actions by which the disclosure service tells the log about holds.
const HOLD_PLACED: &str = "disclosure.hold_placed";
const HOLD_EXTENDED: &str = "disclosure.hold_extended";
const HOLD_ENDED: &str = "disclosure.hold_ended";
/// How many entries a report reads from the store at a time.
const READ_BATCH: u32 = 500;

/// The date a report is made for (holds are evaluated on it): today in Sweden, or a test's.
pub type Clock = Arc<dyn Fn() -> Date + Send + Sync>;

/// How subject reports are made (`[report]` in the configuration).
#[derive(Clone)]
pub struct ReportSettings {
    /// The organisations whose staff are named (by user id) in reports; the others' accesses
    /// show organisation and unit only.
    pub named_organisations: BTreeSet<String>,
    /// The report's date.
    pub clock: Clock,
}

impl Default for ReportSettings {
    fn default() -> ReportSettings {
        ReportSettings {
            named_organisations: BTreeSet::new(),
            clock: Arc::new(today_in_sweden),
        }
    }
}

impl std::fmt::Debug for ReportSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportSettings")
            .field("named_organisations", &self.named_organisations)
            .finish_non_exhaustive()
    }
}

/// The `SubjectReportService` of `api`, reporting as `settings` say.
pub fn server(api: AuditApi) -> SubjectReportServiceServer<SubjectReports> {
    SubjectReportServiceServer::new(SubjectReports { api })
}

/// The subject report handler.
#[derive(Clone)]
pub struct SubjectReports {
    api: AuditApi,
}

#[tonic::async_trait]
impl SubjectReportService for SubjectReports {
    async fn get_subject_report(
        &self,
        request: Request<GetSubjectReportRequest>,
    ) -> Result<Response<SubjectReport>, Status> {
        respond(self.report(request).await)
    }
}

impl SubjectReports {
    async fn report(
        &self,
        request: Request<GetSubjectReportRequest>,
    ) -> Result<SubjectReport, ServiceError> {
        let caller = self.api.authenticator().user(&request).await?;
        caller.require_any(&[Role::ComplianceOfficer], "making a subject report")?;
        let request = request.into_inner();
        let own = caller.organisation.code().as_str().to_owned();
        let organisation = request.organisation.trim().to_owned();
        let scope = if caller.is_supervisor() {
            organisation
        } else if organisation.is_empty() || organisation == own {
            own
        } else {
            return Err(ServiceError::PermissionDenied(format!(
                "a compliance officer of {own} may report only {own}'s part of the log"
            )));
        };
        let settings = self.api.report_settings();
        let as_of = (settings.clock)();
        let number = IdentityNumber::parse(request.person_identity_number.trim(), as_of)
            .map_err(|error| ServiceError::invalid("person_identity_number", error))?;
        let person_ref = self.api.person_key().reference(&number).as_str().to_owned();
        let as_of_text = date_text(as_of);
        let (report_id, report_index) = self
            .record_report(&caller, &scope, &as_of_text, &person_ref)
            .await?;
        let person_entries = self
            .read_entries(
                QueryFilter {
                    organisation: scope.clone(),
                    person_ref,
                    ..filter()
                },
                report_index,
            )
            .await?;
        let mut about = BTreeMap::new();
        for record in &person_entries {
            if !record.body.disclosure_id.is_empty()
                && !about.contains_key(&record.body.disclosure_id)
            {
                // Every entry of the disclosure, whoever's part: a hold placed by the receiving
                // authority withholds it from the disclosing organisation's report too.
                let entries = self
                    .read_entries(
                        QueryFilter {
                            disclosure_id: record.body.disclosure_id.clone(),
                            ..filter()
                        },
                        report_index,
                    )
                    .await?;
                about.insert(record.body.disclosure_id.clone(), entries);
            }
        }
        let content = assemble(
            &person_entries,
            &about,
            &Scope {
                organisation: &scope,
                as_of,
                named: &settings.named_organisations,
            },
        );
        let json = serde_json::to_vec_pretty(&ReportDocument {
            format: "tryggdel.subject_report/1",
            report_id: &report_id,
            report_index,
            as_of: &as_of_text,
            generated_at: rfc3339(now_unix_ms()).unwrap_or_default(),
            organisation: &scope,
            disclosures: &content.disclosures,
            accesses: &content.accesses,
        })
        .map_err(ServiceError::internal)?;
        tracing::info!(
            disclosures = content.disclosures.len(),
            accesses = content.accesses.len(),
            withheld = content.withheld,
            "subject report made"
        );
        Ok(SubjectReport {
            report_id,
            report_index,
            as_of: as_of_text,
            generated_at_unix_ms: now_unix_ms(),
            organisation: scope,
            disclosures: content.disclosures.iter().map(wire_disclosure).collect(),
            accesses: content.accesses.iter().map(wire_access).collect(),
            json,
        })
    }

    /// Appends the report's own entry (who made it, in whose part of the log, for which day,
    /// the person as a keyed reference) and returns its event id and index; nothing is reported
    /// unless this is durable.
    async fn record_report(
        &self,
        caller: &Caller,
        scope: &str,
        as_of: &str,
        person_ref: &str,
    ) -> Result<(String, u64), ServiceError> {
        let event_id = uuid::Uuid::now_v7().to_string();
        let mut details = BTreeMap::from([("as_of".to_owned(), as_of.to_owned())]);
        if !scope.is_empty() {
            details.insert("organisation".to_owned(), scope.to_owned());
        }
        let event = AuditEvent {
            event_id: event_id.clone(),
            action: SUBJECT_REPORT.to_owned(),
            occurred_at_unix_ms: now_unix_ms(),
            actor: Some(Actor {
                user_id: caller.user().to_owned(),
                roles: caller.role_names(),
                organisation: caller.organisation.code().as_str().to_owned(),
                unit: caller.principal.unit.clone().unwrap_or_default(),
            }),
            organisation: caller.organisation.code().as_str().to_owned(),
            purpose: "subject access request".into(),
            outcome: Outcome::Success as i32,
            person_refs: vec![person_ref.to_owned()],
            trace_id: caller.trace_id.clone(),
            details: details.into_iter().collect(),
            ..AuditEvent::default()
        };
        let body = body_from_event("event", &event, SOURCE)?;
        let appended = self
            .api
            .log()
            .append(vec![body])
            .await
            .map_err(append_error)?;
        let index = appended
            .first()
            .map(|entry| entry.index)
            .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("append answered nothing")))?;
        Ok((event_id, index))
    }

    /// Every entry below index `below` that `filter` matches, parsed, in index order; refused
    /// if one of them is quarantined. The one place a report reads entries.
    async fn read_entries(
        &self,
        mut filter: QueryFilter,
        below: u64,
    ) -> Result<Vec<EntryRecord>, ServiceError> {
        let mut records = Vec::new();
        loop {
            let entries = self.api.log().store().query(&filter, below).await?;
            self.api
                .integrity()
                .refuse_any_quarantined(&entries)
                .await?;
            // The one reader of entries: the leaf with its personal data merged in.
            let entries = self.api.log().store().full_entries(entries).await?;
            crate::service::refuse_tampered(&entries)?;
            records.extend(entries.iter().map(|entry| entry.record.clone()));
            match entries.last() {
                Some(last) if entries.len() == READ_BATCH as usize => {
                    filter.after_index = Some(last.index);
                }
                _ => return Ok(records),
            }
        }
    }
}

/// A query of everything, a batch at a time.
fn filter() -> QueryFilter {
    QueryFilter {
        occurred_from: 0,
        occurred_until: 0,
        organisation: String::new(),
        actor_user_id: String::new(),
        action: String::new(),
        legal_basis_id: String::new(),
        disclosure_id: String::new(),
        person_ref: String::new(),
        after_index: None,
        limit: READ_BATCH,
    }
}

/// What a report is made for: whose part of the log, on which day, naming whose staff.
struct Scope<'a> {
    /// Empty: every organisation.
    organisation: &'a str,
    as_of: Date,
    named: &'a BTreeSet<String>,
}

impl Scope<'_> {
    fn covers(&self, record: &EntryRecord) -> bool {
        self.organisation.is_empty()
            || record.body.organisation == self.organisation
            || record.body.actor.organisation == self.organisation
    }
}

/// A disclosure as the report tells it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DisclosureLine {
    pub disclosure_id: String,
    pub organisation: String,
    pub last_action: String,
    pub approved_at: String,
    #[serde(skip)]
    pub approved_at_unix_ms: i64,
    pub recipient: String,
    pub legal_basis_id: String,
    pub registry_version: String,
    pub purpose: String,
    pub data_items: Vec<String>,
    pub delivered_at: String,
    #[serde(skip)]
    pub delivered_at_unix_ms: i64,
    pub acknowledged_at: String,
    #[serde(skip)]
    pub acknowledged_at_unix_ms: i64,
}

/// An access as the report tells it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AccessLine {
    pub occurred_at: String,
    #[serde(skip)]
    pub occurred_at_unix_ms: i64,
    pub action: String,
    pub organisation: String,
    pub unit: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    pub disclosure_ids: Vec<String>,
}

/// A report's content.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReportContent {
    pub disclosures: Vec<DisclosureLine>,
    pub accesses: Vec<AccessLine>,
    /// How many disclosures were left out for a hold (logged, never reported).
    pub withheld: usize,
}

/// The JSON document of a report.
#[derive(Serialize)]
struct ReportDocument<'a> {
    format: &'static str,
    report_id: &'a str,
    report_index: u64,
    as_of: &'a str,
    generated_at: String,
    organisation: &'a str,
    disclosures: &'a [DisclosureLine],
    accesses: &'a [AccessLine],
}

/// The report of `person_entries` (the person's entries in the scope) and `about` (every entry
/// of each disclosure they name, by disclosure id): the disclosures without a hold that holds
/// on the scope's date, and the accesses that name none of the held ones.
fn assemble(
    person_entries: &[EntryRecord],
    about: &BTreeMap<String, Vec<EntryRecord>>,
    scope: &Scope<'_>,
) -> ReportContent {
    let held: BTreeSet<&str> = about
        .iter()
        .filter(|(_, entries)| is_held(entries, scope.as_of))
        .map(|(id, _)| id.as_str())
        .collect();
    let mut disclosures: Vec<DisclosureLine> = about
        .iter()
        .filter(|(id, _)| !held.contains(id.as_str()))
        .filter_map(|(id, entries)| {
            let visible: Vec<&EntryRecord> = entries
                .iter()
                .filter(|record| scope.covers(record))
                .collect();
            (!visible.is_empty()).then(|| disclosure_line(id, &visible))
        })
        .collect();
    disclosures.sort_by_key(|line| {
        about
            .get(&line.disclosure_id)
            .and_then(|entries| entries.first())
            .map(|first| first.recorded_at_unix_ms)
            .unwrap_or_default()
    });
    let accesses = person_entries
        .iter()
        .filter(|record| !names_any(record, &held))
        .map(|record| access_line(record, about, scope.named))
        .collect();
    ReportContent {
        disclosures,
        accesses,
        withheld: held.len(),
    }
}

/// Whether a hold, as the disclosure's `entries` tell its placing, extensions and end, holds
/// on `day`: not ended, and `day` not after its last day.
fn is_held(entries: &[EntryRecord], day: Date) -> bool {
    // hold id -> (last day, ended)
    let mut holds: BTreeMap<&str, (Option<Date>, bool)> = BTreeMap::new();
    for record in entries {
        let body = &record.body;
        let Some(hold_id) = body.details.get("hold_id") else {
            continue;
        };
        let until = body.details.get("until").and_then(|text| parse_date(text));
        let hold = holds.entry(hold_id.as_str()).or_insert((None, false));
        match body.action.as_str() {
            HOLD_PLACED | HOLD_EXTENDED if until.is_some() => hold.0 = until,
            HOLD_ENDED => hold.1 = true,
            _ => {}
        }
    }
    holds
        .values()
        .any(|(until, ended)| !ended && until.is_some_and(|until| day <= until))
}

/// Whether `record` names one of `held` as its disclosure or as an object.
fn names_any(record: &EntryRecord, held: &BTreeSet<&str>) -> bool {
    held.contains(record.body.disclosure_id.as_str())
        || record
            .body
            .objects
            .iter()
            .any(|object| held.contains(object.id.as_str()))
}

/// A disclosure's line from its entries in the scope (at least one), in log order.
fn disclosure_line(id: &str, entries: &[&EntryRecord]) -> DisclosureLine {
    let mut line = DisclosureLine {
        disclosure_id: id.to_owned(),
        ..DisclosureLine::default()
    };
    for record in entries {
        let body = &record.body;
        if line.organisation.is_empty() {
            line.organisation.clone_from(&body.organisation);
        }
        line.last_action.clone_from(&body.action);
        let at = body.occurred_at_unix_ms;
        if body.outcome != "success" {
            continue;
        }
        if body.action.ends_with(".approved") {
            line.approved_at_unix_ms = at;
            line.recipient.clone_from(&body.recipient);
            line.legal_basis_id.clone_from(&body.purpose.legal_basis_id);
            line.registry_version
                .clone_from(&body.purpose.registry_version);
            line.purpose.clone_from(&body.purpose.purpose);
            line.data_items = body
                .details
                .get("data_items")
                .map(|items| {
                    items
                        .split(',')
                        .filter(|item| !item.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
        } else if body.action.ends_with(".delivered") && line.delivered_at_unix_ms == 0 {
            line.delivered_at_unix_ms = at;
        } else if body.action.ends_with(".acknowledged") && line.acknowledged_at_unix_ms == 0 {
            line.acknowledged_at_unix_ms = at;
        }
        if line.recipient.is_empty() {
            line.recipient.clone_from(&body.recipient);
        }
    }
    line.approved_at = time_text(line.approved_at_unix_ms);
    line.delivered_at = time_text(line.delivered_at_unix_ms);
    line.acknowledged_at = time_text(line.acknowledged_at_unix_ms);
    line
}

/// An access's line: the person's disclosures it concerned, its actor named only where the
/// actor's organisation has its staff named.
fn access_line(
    record: &EntryRecord,
    about: &BTreeMap<String, Vec<EntryRecord>>,
    named: &BTreeSet<String>,
) -> AccessLine {
    let body = &record.body;
    let mut disclosure_ids = Vec::new();
    let ids = std::iter::once(body.disclosure_id.as_str())
        .chain(body.objects.iter().map(|object| object.id.as_str()));
    for id in ids {
        if about.contains_key(id) && !disclosure_ids.iter().any(|known: &String| known == id) {
            disclosure_ids.push(id.to_owned());
        }
    }
    AccessLine {
        occurred_at: time_text(body.occurred_at_unix_ms),
        occurred_at_unix_ms: body.occurred_at_unix_ms,
        action: body.action.clone(),
        organisation: body.actor.organisation.clone(),
        unit: body.actor.unit.clone(),
        user_id: if named.contains(&body.actor.organisation) {
            body.actor.user_id.clone()
        } else {
            String::new()
        },
        disclosure_ids,
    }
}

fn wire_disclosure(line: &DisclosureLine) -> ReportedDisclosure {
    ReportedDisclosure {
        disclosure_id: line.disclosure_id.clone(),
        organisation: line.organisation.clone(),
        last_action: line.last_action.clone(),
        approved_at_unix_ms: line.approved_at_unix_ms,
        recipient: line.recipient.clone(),
        legal_basis_id: line.legal_basis_id.clone(),
        registry_version: line.registry_version.clone(),
        purpose: line.purpose.clone(),
        data_items: line.data_items.clone(),
        delivered_at_unix_ms: line.delivered_at_unix_ms,
        acknowledged_at_unix_ms: line.acknowledged_at_unix_ms,
    }
}

fn wire_access(line: &AccessLine) -> ReportedAccess {
    ReportedAccess {
        occurred_at_unix_ms: line.occurred_at_unix_ms,
        action: line.action.clone(),
        organisation: line.organisation.clone(),
        unit: line.unit.clone(),
        user_id: line.user_id.clone(),
        disclosure_ids: line.disclosure_ids.clone(),
    }
}

/// A time as RFC 3339, or empty for 0 (never).
fn time_text(unix_ms: i64) -> String {
    if unix_ms == 0 {
        String::new()
    } else {
        rfc3339(unix_ms).unwrap_or_default()
    }
}

const DATE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

fn date_text(date: Date) -> String {
    date.format(DATE_FORMAT).unwrap_or_default()
}

fn parse_date(text: &str) -> Option<Date> {
    Date::parse(text, DATE_FORMAT).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use time::macros::date;

    use super::*;
    use crate::entry::{EntryActor, EntryBody, EntryObject, EntryPurpose};

    /// An entry as the log stores it (read as a report reads it).
    fn record(action: &str, disclosure_id: &str, details: &[(&str, &str)]) -> EntryRecord {
        let mut stored = serde_json::to_value(body(action, disclosure_id, details)).unwrap();
        stored["format"] = "tryggdel.audit.entry/1".into();
        stored["recorded_at"] = "2026-11-18T08:26:40.000Z".into();
        stored["recorded_at_unix_ms"] = 1_795_000_000_000_i64.into();
        serde_json::from_value(stored).unwrap()
    }

    fn body(action: &str, disclosure_id: &str, details: &[(&str, &str)]) -> EntryBody {
        EntryBody {
            event_id: uuid::Uuid::now_v7().to_string(),
            source: "disclosure".into(),
            action: action.into(),
            occurred_at: String::new(),
            occurred_at_unix_ms: 1_795_000_000_000,
            outcome: "success".into(),
            outcome_detail: String::new(),
            actor: EntryActor {
                user_id: "beslut-bollnas".into(),
                roles: vec![],
                organisation: "bollnas-kommun".into(),
                unit: "IFO".into(),
            },
            organisation: "bollnas-kommun".into(),
            disclosure_id: disclosure_id.into(),
            objects: vec![EntryObject {
                kind: "disclosure".into(),
                id: disclosure_id.into(),
            }],
            purpose: EntryPurpose {
                legal_basis_id: "OSL-10-18c".into(),
                registry_version: "sha256:01".into(),
                purpose: "to prevent crime".into(),
            },
            recipient: "polisen/mitt".into(),
            person_refs: vec![],
            trace_id: String::new(),
            details: details
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }

    fn hold(action: &str, until: &str) -> EntryRecord {
        record(action, "d", &[("hold_id", "h1"), ("until", until)])
    }

    #[test]
    fn a_hold_holds_through_its_last_day_as_extended_until_ended() {
        let placed = vec![hold(HOLD_PLACED, "2026-12-31")];
        assert!(is_held(&placed, date!(2026 - 12 - 31)));
        assert!(!is_held(&placed, date!(2027 - 01 - 01)));
        let mut extended = placed.clone();
        extended.push(hold(HOLD_EXTENDED, "2027-06-30"));
        assert!(is_held(&extended, date!(2027 - 01 - 01)));
        let mut ended = extended.clone();
        ended.push(hold(HOLD_ENDED, "2027-06-30"));
        assert!(!is_held(&ended, date!(2026 - 12 - 03)));
        assert!(!is_held(
            &[record("disclosure.approved", "d", &[])],
            date!(2026 - 12 - 03)
        ));
    }

    #[test]
    fn a_held_disclosure_and_its_accesses_are_left_out() {
        let approved = record(
            "disclosure.approved",
            "d",
            &[("data_items", "identity,address")],
        );
        let read = record("disclosure.read", "d", &[]);
        let other = record("disclosure.approved", "e", &[]);
        let mut about = BTreeMap::new();
        about.insert("d".to_owned(), vec![approved.clone(), read.clone()]);
        about.insert("e".to_owned(), vec![other.clone()]);
        let persons = vec![approved.clone(), read.clone(), other.clone()];
        let named = BTreeSet::new();
        let scope = Scope {
            organisation: "bollnas-kommun",
            as_of: date!(2026 - 12 - 03),
            named: &named,
        };
        let open = assemble(&persons, &about, &scope);
        assert_eq!(open.disclosures.len(), 2);
        assert_eq!(open.disclosures[0].data_items, ["identity", "address"]);
        assert_eq!(open.disclosures[0].recipient, "polisen/mitt");
        assert_eq!(open.accesses.len(), 3);
        assert!(open.accesses.iter().all(|access| access.user_id.is_empty()));

        about
            .get_mut("d")
            .unwrap()
            .push(hold(HOLD_PLACED, "2026-12-31"));
        let held = assemble(&persons, &about, &scope);
        assert_eq!(held.withheld, 1);
        assert_eq!(held.disclosures.len(), 1);
        assert_eq!(held.disclosures[0].disclosure_id, "e");
        assert_eq!(held.accesses.len(), 1);

        let later = Scope {
            as_of: date!(2027 - 01 - 01),
            ..scope
        };
        assert_eq!(assemble(&persons, &about, &later).disclosures.len(), 2);
    }

    #[test]
    fn staff_are_named_only_where_their_organisation_wants_it() {
        let read = record("disclosure.read", "d", &[]);
        let about = BTreeMap::from([("d".to_owned(), vec![read.clone()])]);
        let named = BTreeSet::from(["bollnas-kommun".to_owned()]);
        assert_eq!(access_line(&read, &about, &named).user_id, "beslut-bollnas");
        assert_eq!(access_line(&read, &about, &BTreeSet::new()).user_id, "");
    }
}
