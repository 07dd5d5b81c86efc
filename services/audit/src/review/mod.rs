//! Systematic log review (HSLF-FS 2016:40 4 kap. 9 §, patientdatalagen 4 kap. 3 §): the
//! `LogReviewService` the audit service serves to compliance officers.
//!
//! A run over an organisation's period combines a seeded, reproducible random sample of its
//! access entries (`sample`) with targeted rules (`rules`): access to a person with protected
//! identity, access with no relation to the case, access outside working hours, many persons in
//! a short time, reveals of protected details, and compliance reads. Each finding names its
//! rule and explains itself (`explain`); the run stores its seed, rules and the version of the
//! organisation's written criteria it was held against (`store`).
//!
//! Invariants:
//! - Only compliance officers: of the organisation, or of a supervisory organisation (who may
//!   review any organisation but set no organisation's criteria); anyone else is refused, and
//!   a run of another organisation does not exist for them.
//! - Setting criteria, a run and an outcome are each an audit entry, durable before anything
//!   is answered (`audit.review_criteria_set`, `audit.review_run`, `audit.review_outcome`);
//!   the run's entry holds counts, the seed and the period, nothing personal.
//! - The rules are set-based statements over indexed columns; an entry's bytes are parsed
//!   only for findings, in one function ([`read_entry`]).
//! - The same seed, organisation and period draw the same sample from the same log.

pub mod access;
pub mod explain;
pub mod holidays;
pub mod period;
pub mod rules;
pub mod sample;
pub mod settings;
pub mod store;

use std::collections::HashMap;

use tonic::{Request, Response, Status};
use tryggdel_auth::Role;
use tryggdel_domain::OrganisationCode;
use tryggdel_proto::audit::v1::log_review_service_server::LogReviewService;
use tryggdel_proto::audit::v1::{
    Actor, AuditEvent, GetReviewCriteriaRequest, GetReviewRunRequest, ListReviewRunsRequest,
    ListReviewRunsResponse, Outcome, RecordReviewOutcomeRequest, ReviewCriteria, ReviewFinding,
    ReviewOutcome, ReviewRuleCount, ReviewRun, SetReviewCriteriaRequest, StartReviewRunRequest,
};
use tryggdel_service_kit::{Authenticator, Caller, ServiceError, now_unix_ms, page_size, respond};

use crate::entry::{EntryRecord, body_from_event};
use crate::log::AuditLog;

pub use settings::{ReviewSettings, WorkingHours};

use period::{Period, day_text};
use rules::{Hit, Rules, Scope};
use sample::{SAMPLE_ALGORITHM, Seed, sample_positions};
use store::{ReviewStore, StoredCriteria, StoredFinding, StoredRun};

/// The name the service records its own events under.
const SOURCE: &str = "audit";
/// The longest criteria text.
const MAX_CRITERIA: usize = 20_000;
/// The longest outcome note.
const MAX_NOTE: usize = 4000;
const DEFAULT_PAGE_SIZE: u32 = 20;
const MAX_PAGE_SIZE: u32 = 100;

/// The one function that reads an entry's stored bytes for the review.
pub(crate) fn read_entry(bytes: &[u8]) -> Result<EntryRecord, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// The handlers of `LogReviewService`.
#[derive(Clone)]
pub struct ReviewApi {
    log: AuditLog,
    store: ReviewStore,
    authenticator: Authenticator,
    settings: ReviewSettings,
}

/// An outcome's stored name.
fn outcome_name(outcome: ReviewOutcome) -> &'static str {
    match outcome {
        ReviewOutcome::Unspecified => "",
        ReviewOutcome::NoRemark => "no_remark",
        ReviewOutcome::Explained => "explained",
        ReviewOutcome::UnauthorisedEscalated => "unauthorised_escalated",
    }
}

fn outcome_of(name: &str) -> ReviewOutcome {
    match name {
        "no_remark" => ReviewOutcome::NoRemark,
        "explained" => ReviewOutcome::Explained,
        "unauthorised_escalated" => ReviewOutcome::UnauthorisedEscalated,
        _ => ReviewOutcome::Unspecified,
    }
}

fn wire_criteria(organisation: &str, criteria: Option<StoredCriteria>) -> ReviewCriteria {
    match criteria {
        Some(criteria) => ReviewCriteria {
            organisation: criteria.organisation,
            version: u32::try_from(criteria.version).unwrap_or(u32::MAX),
            text: criteria.text,
            set_by: criteria.set_by,
            set_at_unix_ms: criteria.set_at,
        },
        None => ReviewCriteria {
            organisation: organisation.to_owned(),
            ..ReviewCriteria::default()
        },
    }
}

fn wire_finding(finding: StoredFinding) -> ReviewFinding {
    ReviewFinding {
        run_id: finding.run_id,
        number: u32::try_from(finding.number).unwrap_or(u32::MAX),
        rule: finding.rule,
        entry_index: finding.entry_index,
        actor_user_id: finding.actor_user_id,
        disclosure_id: finding.disclosure_id,
        action: finding.action,
        occurred_at_unix_ms: finding.occurred_at,
        explanation: finding.explanation,
        explanation_sv: finding.explanation_sv,
        outcome: outcome_of(&finding.outcome) as i32,
        note: finding.note,
        outcome_by: finding.outcome_by,
        outcome_at_unix_ms: finding.outcome_at,
    }
}

fn wire_run(
    run: StoredRun,
    criteria: ReviewCriteria,
    findings: Vec<ReviewFinding>,
    (total, open): (i64, i64),
) -> ReviewRun {
    let rule_counts = run
        .rule_counts
        .lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            Some(ReviewRuleCount {
                rule: parts.next()?.to_owned(),
                matched: parts.next()?.parse().ok()?,
                findings: parts.next()?.parse().ok()?,
            })
        })
        .collect();
    ReviewRun {
        run_id: run.run_id,
        organisation: run.organisation,
        from: run.period_from,
        until: run.period_until,
        from_unix_ms: run.from_ms,
        until_unix_ms: run.until_ms,
        seed: run.seed,
        sample_size: u32::try_from(run.sample_size).unwrap_or(u32::MAX),
        sample_algorithm: run.sample_algorithm,
        criteria: Some(criteria),
        rules: run.rules.lines().map(str::to_owned).collect(),
        started_by: run.started_by,
        started_at_unix_ms: run.started_at,
        access_entries: u64::try_from(run.access_entries).unwrap_or_default(),
        rule_counts,
        findings,
        finding_count: u32::try_from(total).unwrap_or(u32::MAX),
        open_findings: u32::try_from(open).unwrap_or(u32::MAX),
    }
}

/// A finding about to be stored, before its number.
struct Draft {
    rule: &'static str,
    hit: Hit,
    explanation: (String, String),
}

impl ReviewApi {
    pub fn new(log: AuditLog, authenticator: Authenticator, settings: ReviewSettings) -> ReviewApi {
        ReviewApi {
            store: ReviewStore::new(log.store().database().clone()),
            log,
            authenticator,
            settings,
        }
    }

    pub fn store(&self) -> &ReviewStore {
        &self.store
    }

    /// A compliance officer reviewing `organisation` (empty: their own): their own, or any
    /// organisation of the directory for a supervisor's.
    async fn reviewer<T>(
        &self,
        request: &Request<T>,
        organisation: &str,
        doing: &str,
    ) -> Result<(Caller, String), ServiceError> {
        let caller = self.authenticator.user(request).await?;
        caller.require_any(&[Role::ComplianceOfficer], doing)?;
        let own = caller.organisation.code().as_str().to_owned();
        if organisation.is_empty() || organisation == own {
            return Ok((caller, own));
        }
        if !caller.is_supervisor() {
            return Err(ServiceError::PermissionDenied(format!(
                "a compliance officer of {own} may review only {own}'s log"
            )));
        }
        let code = OrganisationCode::parse(organisation)
            .map_err(|error| ServiceError::invalid("organisation", error))?;
        if self.authenticator.directory().organisation(&code).is_none() {
            return Err(ServiceError::NotFound("organisation"));
        }
        Ok((caller, organisation.to_owned()))
    }

    /// May `caller` see `organisation`'s runs: their own, or a supervisor any.
    fn may_see(caller: &Caller, organisation: &str) -> bool {
        caller.organisation.code().as_str() == organisation || caller.is_supervisor()
    }

    /// Appends the review's own event; nothing is answered unless it is durable.
    async fn record(
        &self,
        caller: &Caller,
        action: &str,
        details: Vec<(&str, String)>,
    ) -> Result<(), ServiceError> {
        let event = AuditEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            action: action.to_owned(),
            occurred_at_unix_ms: now_unix_ms(),
            actor: Some(Actor {
                user_id: caller.user().to_owned(),
                roles: caller.role_names(),
                organisation: caller.organisation.code().as_str().to_owned(),
                unit: caller.principal.unit.clone().unwrap_or_default(),
            }),
            organisation: caller.organisation.code().as_str().to_owned(),
            purpose: "compliance review".into(),
            outcome: Outcome::Success as i32,
            trace_id: caller.trace_id.clone(),
            details: details
                .into_iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
            ..AuditEvent::default()
        };
        let body = body_from_event("event", &event, SOURCE)?;
        self.log.append(vec![body]).await.map_err(|error| {
            tracing::warn!(error = %error, action, "review entry not durable");
            ServiceError::Unavailable(
                "the review could not be recorded in the audit log, so nothing was done; retry"
                    .into(),
            )
        })?;
        Ok(())
    }

    async fn set_criteria(
        &self,
        request: Request<SetReviewCriteriaRequest>,
    ) -> Result<ReviewCriteria, ServiceError> {
        let caller = self.authenticator.user(&request).await?;
        caller.require_any(&[Role::ComplianceOfficer], "setting review criteria")?;
        let request = request.into_inner();
        let own = caller.organisation.code().as_str().to_owned();
        if !(request.organisation.is_empty() || request.organisation == own) {
            return Err(ServiceError::PermissionDenied(format!(
                "a compliance officer of {own} may set only {own}'s review criteria"
            )));
        }
        let text = request.text.trim();
        if text.is_empty() {
            return Err(ServiceError::invalid(
                "text",
                "the criteria must not be empty",
            ));
        }
        tryggdel_service_kit::bounded_text("text", text, MAX_CRITERIA)?;
        tryggdel_service_kit::no_control_characters("text", text, true)?;
        let latest = self.store.criteria(&own, 0).await?;
        let next = latest.map(|criteria| criteria.version).unwrap_or(0) + 1;
        self.record(
            &caller,
            "audit.review_criteria_set",
            vec![
                ("organisation", own.clone()),
                ("version", next.to_string()),
                (
                    "text_sha256",
                    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())),
                ),
            ],
        )
        .await?;
        let stored = self
            .store
            .insert_criteria(&own, text, caller.user(), now_unix_ms())
            .await
            .map_err(|error| match error {
                crate::store::StoreError::Database(error)
                    if tryggdel_storage::is_unique_violation(&error) =>
                {
                    ServiceError::StaleVersion {
                        expected: next - 1,
                        current: next,
                    }
                }
                other => ServiceError::from(other),
            })?;
        Ok(wire_criteria(&own, Some(stored)))
    }

    async fn get_criteria(
        &self,
        request: Request<GetReviewCriteriaRequest>,
    ) -> Result<ReviewCriteria, ServiceError> {
        let organisation = request.get_ref().organisation.clone();
        let (_, organisation) = self
            .reviewer(&request, &organisation, "reading review criteria")
            .await?;
        let version = request.into_inner().version;
        let criteria = self
            .store
            .criteria(&organisation, i64::from(version))
            .await?;
        if version != 0 && criteria.is_none() {
            return Err(ServiceError::NotFound("criteria version"));
        }
        Ok(wire_criteria(&organisation, criteria))
    }

    async fn start_run(
        &self,
        request: Request<StartReviewRunRequest>,
    ) -> Result<ReviewRun, ServiceError> {
        let organisation = request.get_ref().organisation.clone();
        let (caller, organisation) = self
            .reviewer(&request, &organisation, "running a log review")
            .await?;
        let request = request.into_inner();
        let period = Period::parse(&request.from, &request.until)
            .map_err(|(field, problem)| ServiceError::invalid(field, problem))?;
        let seed = if request.seed.is_empty() {
            Seed::random()
        } else {
            Seed::parse(&request.seed).map_err(|problem| ServiceError::invalid("seed", problem))?
        };
        let sample_size = match request.sample_size {
            0 => self.settings.sample_size(),
            size if size > settings::MAX_SAMPLE => {
                return Err(ServiceError::invalid(
                    "sample_size",
                    format!("at most {}", settings::MAX_SAMPLE),
                ));
            }
            size => size,
        };
        let (from, until) = (day_text(period.from()), day_text(period.until()));
        let criteria = self.store.criteria(&organisation, 0).await?;
        let criteria_version = criteria.as_ref().map(|c| c.version).unwrap_or(0);

        let scope = Scope {
            organisation: &organisation,
            from_ms: period.from_ms(),
            until_ms: period.until_ms(),
        };
        let rules = Rules::new(
            self.log.store().database(),
            scope,
            self.settings.max_findings_per_rule(),
        );
        let windows = period.working_windows(self.settings.working_hours());
        let window_ms = i64::from(self.settings.burst_minutes()) * 60_000;
        // Two statements at a time, each on its own connection (PostgreSQL; SQLite's one
        // connection takes them in turn), in two streams of about equal work on a month of a
        // large organisation: the sample, the cases' relations and the protected persons'
        // lookups; beside them "many persons" and the rules of one scan of the period.
        let sample_and_lookups = async {
            let population = rules.access_count().await?;
            let positions = sample_positions(
                &seed,
                &organisation,
                &from,
                &until,
                usize::try_from(population).unwrap_or(usize::MAX),
                sample_size as usize,
            );
            let sampled = rules.accesses_at(&positions).await?;
            let unrelated = rules.no_relation().await?;
            let protected = rules.protected_identity().await?;
            Ok::<_, crate::store::StoreError>((population, sampled, unrelated, protected))
        };
        let scans = async {
            let bursts = rules
                .bursts(self.settings.burst_persons(), window_ms)
                .await?;
            let (outside, revealed, compliance) =
                rules.outside_revealed_compliance(&windows).await?;
            Ok::<_, crate::store::StoreError>((bursts, outside, revealed, compliance))
        };
        let ((population, sampled, unrelated, protected), (bursts, outside, revealed, compliance)) =
            tokio::try_join!(sample_and_lookups, scans)?;

        // The bytes of every entry that becomes a finding, parsed once each.
        let mut wanted: Vec<i64> = sampled.clone();
        for matches in [&protected, &unrelated, &outside, &revealed, &compliance] {
            wanted.extend(matches.hits.iter().map(|hit| hit.index));
        }
        wanted.extend(bursts.iter().map(|burst| burst.first_index));
        wanted.sort_unstable();
        wanted.dedup();
        let records: HashMap<i64, EntryRecord> = rules
            .entries(&wanted)
            .await?
            .into_iter()
            .filter_map(|(index, bytes)| match read_entry(&bytes) {
                Ok(record) => Some((index, record)),
                Err(error) => {
                    tracing::warn!(index, error = %error, "review: an entry does not parse");
                    None
                }
            })
            .collect();
        let settings = self.settings;
        let explain = |rule: &'static str, hit: &Hit| match records.get(&hit.index) {
            Some(record) => explain::entry_explanation(rule, &settings, record),
            None => (
                format!(
                    "{} did {} (entry {}) on {}.",
                    hit.actor_user_id,
                    hit.action,
                    hit.index,
                    period::local_text(hit.occurred_at)
                ),
                format!(
                    "{} utförde {} (post {}) {}.",
                    hit.actor_user_id,
                    hit.action,
                    hit.index,
                    period::local_text(hit.occurred_at)
                ),
            ),
        };
        let hit_of = |index: i64| -> Hit {
            match records.get(&index) {
                Some(record) => Hit {
                    index,
                    occurred_at: record.body.occurred_at_unix_ms,
                    actor_user_id: record.body.actor.user_id.clone(),
                    disclosure_id: record.body.disclosure_id.clone(),
                    action: record.body.action.clone(),
                },
                None => Hit {
                    index,
                    occurred_at: 0,
                    actor_user_id: String::new(),
                    disclosure_id: String::new(),
                    action: String::new(),
                },
            }
        };

        let mut drafts: Vec<Draft> = Vec::new();
        for index in &sampled {
            let hit = hit_of(*index);
            let explanation = explain(rules::RULE_SAMPLE, &hit);
            drafts.push(Draft {
                rule: rules::RULE_SAMPLE,
                hit,
                explanation,
            });
        }
        for (rule, matches) in [
            (rules::RULE_PROTECTED_IDENTITY, &protected),
            (rules::RULE_NO_RELATION, &unrelated),
            (rules::RULE_OUTSIDE_HOURS, &outside),
        ] {
            for hit in &matches.hits {
                drafts.push(Draft {
                    rule,
                    explanation: explain(rule, hit),
                    hit: hit.clone(),
                });
            }
        }
        for burst in &bursts {
            let mut hit = hit_of(burst.first_index);
            hit.actor_user_id = burst.actor_user_id.clone();
            hit.occurred_at = burst.first_at;
            drafts.push(Draft {
                rule: rules::RULE_MANY_PERSONS,
                explanation: explain::burst_explanation(
                    &settings,
                    &burst.actor_user_id,
                    burst.persons,
                    burst.first_at,
                    burst.last_at,
                ),
                hit,
            });
        }
        for (rule, matches) in [
            (rules::RULE_PROTECTED_REVEALED, &revealed),
            (rules::RULE_COMPLIANCE_READ, &compliance),
        ] {
            for hit in &matches.hits {
                drafts.push(Draft {
                    rule,
                    explanation: explain(rule, hit),
                    hit: hit.clone(),
                });
            }
        }

        let count = |rule: &str| drafts.iter().filter(|d| d.rule == rule).count();
        let counts: Vec<(&str, u64, usize)> = vec![
            (rules::RULE_SAMPLE, population, count(rules::RULE_SAMPLE)),
            (
                rules::RULE_PROTECTED_IDENTITY,
                protected.matched,
                count(rules::RULE_PROTECTED_IDENTITY),
            ),
            (
                rules::RULE_NO_RELATION,
                unrelated.matched,
                count(rules::RULE_NO_RELATION),
            ),
            (
                rules::RULE_OUTSIDE_HOURS,
                outside.matched,
                count(rules::RULE_OUTSIDE_HOURS),
            ),
            (
                rules::RULE_MANY_PERSONS,
                bursts.len() as u64,
                count(rules::RULE_MANY_PERSONS),
            ),
            (
                rules::RULE_PROTECTED_REVEALED,
                revealed.matched,
                count(rules::RULE_PROTECTED_REVEALED),
            ),
            (
                rules::RULE_COMPLIANCE_READ,
                compliance.matched,
                count(rules::RULE_COMPLIANCE_READ),
            ),
        ];
        let rule_counts = counts
            .iter()
            .map(|(rule, matched, findings)| format!("{rule} {matched} {findings}"))
            .collect::<Vec<_>>()
            .join("\n");
        let rules_text = [
            format!(
                "{}: {sample_size} of the period's access entries drawn at random ({SAMPLE_ALGORITHM})",
                rules::RULE_SAMPLE
            ),
            format!(
                "{}: accesses marked protected_identity=true, and accesses to the persons of \
                 entries so marked in the period",
                rules::RULE_PROTECTED_IDENTITY
            ),
            format!(
                "{}: accesses of a case by a user who did not draft, submit or decide it, is no \
                 officer of its receiving inbox and no compliance officer",
                rules::RULE_NO_RELATION
            ),
            format!(
                "{}: accesses outside {} on weekdays that are no public holiday, midsummer, \
                 Christmas or New Year's Eve (Europe/Stockholm)",
                rules::RULE_OUTSIDE_HOURS,
                settings.working_hours()
            ),
            format!(
                "{}: {} or more persons within {} minutes by one user",
                rules::RULE_MANY_PERSONS,
                settings.burst_persons(),
                settings.burst_minutes()
            ),
            format!(
                "{}: disclosure.protected_revealed",
                rules::RULE_PROTECTED_REVEALED
            ),
            format!(
                "{}: reads of the audit log (audit.*)",
                rules::RULE_COMPLIANCE_READ
            ),
            format!(
                "at most {} findings per rule",
                settings.max_findings_per_rule()
            ),
        ]
        .join("\n");

        let run_id = uuid::Uuid::now_v7().hyphenated().to_string();
        let started_at = now_unix_ms();
        let mut details = vec![
            ("run_id", run_id.clone()),
            ("organisation", organisation.clone()),
            ("from", from.clone()),
            ("until", until.clone()),
            ("seed", seed.to_hex()),
            ("sample_size", sample_size.to_string()),
            ("criteria_version", criteria_version.to_string()),
            ("access_entries", population.to_string()),
            ("findings", drafts.len().to_string()),
        ];
        for (rule, matched, _) in &counts {
            details.push((rule, matched.to_string()));
        }
        self.record(&caller, "audit.review_run", details).await?;

        let findings: Vec<StoredFinding> = drafts
            .into_iter()
            .enumerate()
            .map(|(i, draft)| StoredFinding {
                run_id: run_id.clone(),
                number: i as i64 + 1,
                rule: draft.rule.to_owned(),
                entry_index: draft.hit.index,
                actor_user_id: draft.hit.actor_user_id,
                disclosure_id: draft.hit.disclosure_id,
                action: draft.hit.action,
                occurred_at: draft.hit.occurred_at,
                explanation: draft.explanation.0,
                explanation_sv: draft.explanation.1,
                outcome: String::new(),
                note: String::new(),
                outcome_by: String::new(),
                outcome_at: 0,
            })
            .collect();
        let run = StoredRun {
            run_id,
            organisation: organisation.clone(),
            period_from: from,
            period_until: until,
            from_ms: period.from_ms(),
            until_ms: period.until_ms(),
            seed: seed.to_hex(),
            sample_size: i64::from(sample_size),
            sample_algorithm: SAMPLE_ALGORITHM.to_owned(),
            criteria_version,
            rules: rules_text,
            rule_counts,
            started_by: caller.user().to_owned(),
            started_at,
            access_entries: i64::try_from(population).unwrap_or(i64::MAX),
        };
        self.store.insert_run(&run, &findings).await?;
        let total = findings.len() as i64;
        Ok(wire_run(
            run,
            wire_criteria(&organisation, criteria),
            findings.into_iter().map(wire_finding).collect(),
            (total, total),
        ))
    }

    /// The run `run_id` if the caller may see it (else it does not exist for them).
    async fn visible_run(&self, caller: &Caller, run_id: &str) -> Result<StoredRun, ServiceError> {
        let run = self
            .store
            .run(run_id)
            .await?
            .ok_or(ServiceError::NotFound("review run"))?;
        if !Self::may_see(caller, &run.organisation) {
            return Err(ServiceError::NotFound("review run"));
        }
        Ok(run)
    }

    async fn get_run(
        &self,
        request: Request<GetReviewRunRequest>,
    ) -> Result<ReviewRun, ServiceError> {
        let caller = self.authenticator.user(&request).await?;
        caller.require_any(&[Role::ComplianceOfficer], "reading a log review")?;
        let run = self
            .visible_run(&caller, &request.into_inner().run_id)
            .await?;
        let criteria = self
            .store
            .criteria(&run.organisation, run.criteria_version)
            .await?
            .filter(|_| run.criteria_version > 0);
        let findings = self.store.findings(&run.run_id).await?;
        let total = findings.len() as i64;
        let open = findings.iter().filter(|f| f.outcome.is_empty()).count() as i64;
        let criteria = wire_criteria(&run.organisation, criteria);
        Ok(wire_run(
            run,
            criteria,
            findings.into_iter().map(wire_finding).collect(),
            (total, open),
        ))
    }

    async fn list_runs(
        &self,
        request: Request<ListReviewRunsRequest>,
    ) -> Result<ListReviewRunsResponse, ServiceError> {
        let organisation = request.get_ref().organisation.clone();
        let (_, organisation) = self
            .reviewer(&request, &organisation, "listing log reviews")
            .await?;
        let request = request.into_inner();
        if request.page_size > MAX_PAGE_SIZE {
            return Err(ServiceError::invalid(
                "page_size",
                format!("at most {MAX_PAGE_SIZE}"),
            ));
        }
        let limit = page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
        let offset: i64 = if request.page_token.is_empty() {
            0
        } else {
            tryggdel_service_kit::decode_page_token(&request.page_token)?
                .strip_prefix("runs:")
                .and_then(|offset| offset.parse().ok())
                .ok_or_else(tryggdel_service_kit::invalid_page_token)?
        };
        let stored = self
            .store
            .runs(&organisation, offset, i64::from(limit))
            .await?;
        let next_page_token = if stored.len() == limit as usize {
            tryggdel_service_kit::encode_page_token(&format!("runs:{}", offset + i64::from(limit)))
        } else {
            String::new()
        };
        let mut runs = Vec::with_capacity(stored.len());
        for run in stored {
            let counts = self.store.finding_counts(&run.run_id).await?;
            let criteria = ReviewCriteria {
                organisation: run.organisation.clone(),
                version: u32::try_from(run.criteria_version).unwrap_or(u32::MAX),
                ..ReviewCriteria::default()
            };
            runs.push(wire_run(run, criteria, Vec::new(), counts));
        }
        Ok(ListReviewRunsResponse {
            runs,
            next_page_token,
        })
    }

    async fn record_outcome(
        &self,
        request: Request<RecordReviewOutcomeRequest>,
    ) -> Result<ReviewFinding, ServiceError> {
        let caller = self.authenticator.user(&request).await?;
        caller.require_any(&[Role::ComplianceOfficer], "recording a review outcome")?;
        let request = request.into_inner();
        let outcome = match ReviewOutcome::try_from(request.outcome) {
            Ok(ReviewOutcome::Unspecified) | Err(_) => {
                return Err(ServiceError::invalid(
                    "outcome",
                    "must be NO_REMARK, EXPLAINED or UNAUTHORISED_ESCALATED",
                ));
            }
            Ok(outcome) => outcome,
        };
        let note = request.note.trim();
        if note.is_empty() && outcome != ReviewOutcome::NoRemark {
            return Err(ServiceError::invalid(
                "note",
                "is required for EXPLAINED and UNAUTHORISED_ESCALATED",
            ));
        }
        tryggdel_service_kit::bounded_text("note", note, MAX_NOTE)?;
        tryggdel_service_kit::no_control_characters("note", note, true)?;
        let run = self.visible_run(&caller, &request.run_id).await?;
        let number = i64::from(request.finding);
        let finding = self
            .store
            .findings(&run.run_id)
            .await?
            .into_iter()
            .find(|finding| finding.number == number)
            .ok_or(ServiceError::NotFound("finding"))?;
        self.record(
            &caller,
            "audit.review_outcome",
            vec![
                ("run_id", run.run_id.clone()),
                ("organisation", run.organisation.clone()),
                ("finding", number.to_string()),
                ("rule", finding.rule.clone()),
                ("entry_index", finding.entry_index.to_string()),
                ("outcome", outcome_name(outcome).to_owned()),
                ("note", note.to_owned()),
            ],
        )
        .await?;
        let recorded = self
            .store
            .record_outcome(
                &run.run_id,
                number,
                outcome_name(outcome),
                note,
                caller.user(),
                now_unix_ms(),
            )
            .await?
            .ok_or(ServiceError::NotFound("finding"))?;
        Ok(wire_finding(recorded))
    }
}

#[tonic::async_trait]
impl LogReviewService for ReviewApi {
    async fn set_review_criteria(
        &self,
        request: Request<SetReviewCriteriaRequest>,
    ) -> Result<Response<ReviewCriteria>, Status> {
        respond(self.set_criteria(request).await)
    }

    async fn get_review_criteria(
        &self,
        request: Request<GetReviewCriteriaRequest>,
    ) -> Result<Response<ReviewCriteria>, Status> {
        respond(self.get_criteria(request).await)
    }

    async fn start_review_run(
        &self,
        request: Request<StartReviewRunRequest>,
    ) -> Result<Response<ReviewRun>, Status> {
        respond(self.start_run(request).await)
    }

    async fn get_review_run(
        &self,
        request: Request<GetReviewRunRequest>,
    ) -> Result<Response<ReviewRun>, Status> {
        respond(self.get_run(request).await)
    }

    async fn list_review_runs(
        &self,
        request: Request<ListReviewRunsRequest>,
    ) -> Result<Response<ListReviewRunsResponse>, Status> {
        respond(self.list_runs(request).await)
    }

    async fn record_review_outcome(
        &self,
        request: Request<RecordReviewOutcomeRequest>,
    ) -> Result<Response<ReviewFinding>, Status> {
        respond(self.record_outcome(request).await)
    }
}
