//! Integration tests of the log review: the real audit service on 127.0.0.1:0 with real mTLS
//! and tokens, on SQLite and on PostgreSQL. A week of entries is appended as the disclosure
//! service would report them, with one case for each targeted rule and an innocent access that
//! no rule may flag; the sample is drawn again from its seed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{BOLLNAS, Deployment};
use sqlx::Row as _;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_audit::AuditStore;
use tryggdel_audit::RunningService;
use tryggdel_audit::entry::body_from_event;
use tryggdel_audit::store::NewEntry;
use tryggdel_auth::Role;
use tryggdel_merkle::leaf_hash;
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::audit::v1::log_review_service_client::LogReviewServiceClient;
use tryggdel_proto::audit::v1::{
    Actor, AppendRequest, AuditEvent, GetReviewCriteriaRequest, GetReviewRunRequest,
    ListReviewRunsRequest, ObjectRef, Outcome, QueryRequest, RecordReviewOutcomeRequest,
    ReviewOutcome, ReviewRun, SetReviewCriteriaRequest, StartReviewRunRequest,
};
use tryggdel_storage::{Database, Migrations};
use tryggdel_test_support::{BearerInterceptor, TestBackend, TestDatabase, on_both_backends};

type ReviewClient = LogReviewServiceClient<InterceptedService<Channel, BearerInterceptor>>;
type AuditClient = AuditServiceClient<InterceptedService<Channel, BearerInterceptor>>;

const OTHER: &str = "jonkoping-kommun";
/// Monday 23 March 2026, 00:00 Swedish time (CET, UTC+1).
const MONDAY: i64 = 1_774_220_400_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

async fn reviewer(
    deployment: &Deployment,
    service: &RunningService,
    user: &str,
    organisation: &str,
    roles: &[Role],
) -> ReviewClient {
    let identity = &deployment.identity;
    let channel = identity.channel(service.local_addr, organisation).await;
    let token = identity.token(user, organisation, roles);
    LogReviewServiceClient::with_interceptor(channel, BearerInterceptor::new(&token))
}

async fn auditor(deployment: &Deployment, service: &RunningService) -> AuditClient {
    let identity = &deployment.identity;
    let channel = identity.channel(service.local_addr, BOLLNAS).await;
    let token = identity.token("granskare-bollnas", BOLLNAS, &[Role::ComplianceOfficer]);
    AuditServiceClient::with_interceptor(channel, BearerInterceptor::new(&token))
}

fn person(n: u32) -> String {
    format!("hmac-sha256:{:064x}", n)
}

/// An event of `organisation`'s disclosure `disclosure` by `user` at `at`.
struct Event<'a> {
    action: &'a str,
    user: &'a str,
    roles: &'a [&'a str],
    disclosure: &'a str,
    at: i64,
    persons: Vec<String>,
    protected: bool,
}

impl Event<'_> {
    fn audit_event(&self, organisation: &str) -> AuditEvent {
        let mut details = BTreeMap::new();
        if self.protected {
            details.insert("protected_identity".to_owned(), "true".to_owned());
        }
        AuditEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            action: self.action.into(),
            occurred_at_unix_ms: self.at,
            actor: Some(Actor {
                user_id: self.user.into(),
                roles: self.roles.iter().map(|role| (*role).to_owned()).collect(),
                organisation: organisation.into(),
                unit: "IFO".into(),
            }),
            objects: if self.disclosure.is_empty() {
                Vec::new()
            } else {
                vec![ObjectRef {
                    kind: "disclosure".into(),
                    id: self.disclosure.into(),
                }]
            },
            disclosure_id: self.disclosure.into(),
            organisation: organisation.into(),
            outcome: Outcome::Success as i32,
            person_refs: self.persons.clone(),
            details: details.into_iter().collect(),
            ..AuditEvent::default()
        }
    }
}

/// The indices of the cases the run must find, by what they are.
struct Week {
    innocent: u64,
    protected_read: u64,
    protected_person_page: u64,
    unrelated: u64,
    late: u64,
    saturday: u64,
    revealed: u64,
    compliance_query: u64,
    compliance_officer_read: u64,
    burst_first: u64,
    accesses: usize,
}

async fn append(client: &mut AuditServiceClient<Channel>, events: Vec<AuditEvent>) -> Vec<u64> {
    client
        .append(AppendRequest { events })
        .await
        .unwrap()
        .into_inner()
        .entries
        .iter()
        .map(|entry| entry.index)
        .collect()
}

async fn a_week_of_entries(deployment: &Deployment, service: &RunningService) -> Week {
    let mut disclosure = deployment.service_client(service, "disclosure").await;
    let caseworker = "handlaggare-bollnas";
    let caseworker_roles: &[&str] = &["caseworker"];
    let event = |action, user, roles, disclosure, at, persons: Vec<String>, protected| Event {
        action,
        user,
        roles,
        disclosure,
        at,
        persons,
        protected,
    };
    let plain = "0195f000-0000-7000-8000-000000000001";
    let protected = "0195f000-0000-7000-8000-000000000002";
    let events = vec![
        // Monday: a plain case drafted and decided, then read by its drafter in working hours.
        event(
            "disclosure.drafted",
            caseworker,
            caseworker_roles,
            plain,
            MONDAY + 9 * HOUR,
            vec![person(1)],
            false,
        ),
        event(
            "disclosure.approved",
            "beslut-bollnas",
            &["decision_maker"],
            plain,
            MONDAY + 10 * HOUR,
            vec![person(1)],
            false,
        ),
        event(
            "disclosure.read",
            caseworker,
            caseworker_roles,
            plain,
            MONDAY + 11 * HOUR,
            vec![person(1)],
            false,
        ),
        // Tuesday: a case about a person with protected identity, read and revealed by its drafter.
        event(
            "disclosure.drafted",
            caseworker,
            caseworker_roles,
            protected,
            MONDAY + DAY + 9 * HOUR,
            vec![person(2)],
            true,
        ),
        event(
            "disclosure.read",
            caseworker,
            caseworker_roles,
            protected,
            MONDAY + DAY + 10 * HOUR,
            vec![person(2)],
            true,
        ),
        event(
            "disclosure.protected_revealed",
            caseworker,
            caseworker_roles,
            protected,
            MONDAY + DAY + 10 * HOUR + 300_000,
            vec![person(2)],
            true,
        ),
        // A list page naming that person, without the mark: found by the person.
        event(
            "disclosure.listed",
            caseworker,
            caseworker_roles,
            "",
            MONDAY + DAY + 11 * HOUR,
            vec![person(2), person(1)],
            false,
        ),
        // Wednesday: a colleague with no relation to the plain case reads it; a compliance
        // officer reads it and searches the log.
        event(
            "disclosure.read",
            "handlaggare-2",
            caseworker_roles,
            plain,
            MONDAY + 2 * DAY + 10 * HOUR,
            vec![person(1)],
            false,
        ),
        event(
            "disclosure.read",
            "granskare-bollnas",
            &["compliance_officer"],
            plain,
            MONDAY + 2 * DAY + 13 * HOUR,
            vec![person(1)],
            false,
        ),
        event(
            "audit.queried",
            "granskare-bollnas",
            &["compliance_officer"],
            "",
            MONDAY + 2 * DAY + 14 * HOUR,
            Vec::new(),
            false,
        ),
        // Thursday 22:30 and Saturday 10:00: the drafter reads the plain case out of hours.
        event(
            "disclosure.read",
            caseworker,
            caseworker_roles,
            plain,
            MONDAY + 3 * DAY + 22 * HOUR + 30 * 60_000,
            vec![person(1)],
            false,
        ),
        event(
            "disclosure.read",
            caseworker,
            caseworker_roles,
            plain,
            MONDAY + 5 * DAY + 10 * HOUR,
            vec![person(1)],
            false,
        ),
    ];
    let indices = append(
        &mut disclosure,
        events
            .iter()
            .map(|event| event.audit_event(BOLLNAS))
            .collect(),
    )
    .await;
    // Friday 10:00: one user reads 25 cases about 25 persons within five minutes.
    let ids: Vec<String> = (0..25)
        .map(|n| format!("0195f000-0000-7000-8000-1000000000{n:02}"))
        .collect();
    let burst: Vec<AuditEvent> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            event(
                "disclosure.read",
                "nyfiken-bollnas",
                caseworker_roles,
                id,
                MONDAY + 4 * DAY + 10 * HOUR + n as i64 * 10_000,
                vec![person(100 + n as u32)],
                false,
            )
            .audit_event(BOLLNAS)
        })
        .collect();
    let burst_indices = append(&mut disclosure, burst).await;
    // Another organisation's late read, and one of ours in the next week: not this review's.
    append(
        &mut disclosure,
        vec![
            event(
                "disclosure.read",
                "someone",
                caseworker_roles,
                plain,
                MONDAY + 3 * DAY + 23 * HOUR,
                vec![person(1)],
                true,
            )
            .audit_event(OTHER),
            event(
                "disclosure.read",
                "handlaggare-2",
                caseworker_roles,
                plain,
                MONDAY + 8 * DAY + 23 * HOUR,
                vec![person(1)],
                true,
            )
            .audit_event(BOLLNAS),
        ],
    )
    .await;
    Week {
        innocent: indices[2],
        protected_read: indices[4],
        revealed: indices[5],
        protected_person_page: indices[6],
        unrelated: indices[7],
        compliance_officer_read: indices[8],
        compliance_query: indices[9],
        late: indices[10],
        saturday: indices[11],
        burst_first: burst_indices[0],
        // Reads, the page, the reveal and the query of the week, and the burst.
        accesses: 9 + 25,
    }
}

fn start(seed: &str, sample_size: u32) -> StartReviewRunRequest {
    StartReviewRunRequest {
        organisation: String::new(),
        from: "2026-03-23".into(),
        until: "2026-03-29".into(),
        seed: seed.into(),
        sample_size,
    }
}

/// The entry indices a run found by `rule`.
fn found(run: &ReviewRun, rule: &str) -> BTreeSet<u64> {
    run.findings
        .iter()
        .filter(|finding| finding.rule == rule)
        .map(|finding| finding.entry_index as u64)
        .collect()
}

async fn a_run_finds_each_targeted_case_and_samples_from_its_seed(backend: TestBackend) {
    let Some(deployment) = Deployment::create(backend).await else {
        return;
    };
    let service = deployment.spawn().await;
    let week = a_week_of_entries(&deployment, &service).await;
    let mut officer = reviewer(
        &deployment,
        &service,
        "granskare-bollnas",
        BOLLNAS,
        &[Role::ComplianceOfficer],
    )
    .await;

    // The written criteria are data, versioned.
    for text in [
        "Version ett.",
        "Åtkomst utan koppling till ärendet är obehörig.",
    ] {
        officer
            .set_review_criteria(SetReviewCriteriaRequest {
                organisation: String::new(),
                text: text.into(),
            })
            .await
            .unwrap();
    }
    let criteria = officer
        .get_review_criteria(GetReviewCriteriaRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(criteria.version, 2);
    assert!(criteria.text.starts_with("Åtkomst"));

    let seed = "0f".repeat(32);
    let run = officer
        .start_review_run(start(&seed, 5))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.seed, seed);
    assert_eq!(run.access_entries, week.accesses as u64);
    assert_eq!(run.criteria.as_ref().unwrap().version, 2);
    assert_eq!(run.finding_count as usize, run.findings.len());

    assert_eq!(
        found(&run, "protected_identity"),
        BTreeSet::from([
            week.protected_read,
            week.revealed,
            week.protected_person_page
        ])
    );
    // The colleague, and the burst's reader of 25 cases none of which they drafted; not the
    // drafter, not the compliance officer.
    let unrelated = found(&run, "no_relation");
    assert!(unrelated.contains(&week.unrelated));
    assert!(unrelated.contains(&week.burst_first));
    assert_eq!(unrelated.len(), 26, "{unrelated:?}");
    assert!(!unrelated.contains(&week.compliance_officer_read));
    assert_eq!(
        found(&run, "outside_hours"),
        BTreeSet::from([week.late, week.saturday])
    );
    assert_eq!(
        found(&run, "many_persons"),
        BTreeSet::from([week.burst_first])
    );
    assert_eq!(
        found(&run, "protected_revealed"),
        BTreeSet::from([week.revealed])
    );
    assert_eq!(
        found(&run, "compliance_read"),
        BTreeSet::from([week.compliance_query])
    );
    // The innocent read is flagged by no targeted rule.
    assert!(
        run.findings
            .iter()
            .filter(|finding| finding.rule != "sample")
            .all(|finding| finding.entry_index as u64 != week.innocent),
        "the drafter's read in working hours is innocent"
    );
    // Each finding explains itself, naming who, what and when.
    let late = run
        .findings
        .iter()
        .find(|finding| finding.rule == "outside_hours" && finding.entry_index as u64 == week.late)
        .unwrap();
    assert!(
        late.explanation.contains("handlaggare-bollnas"),
        "{}",
        late.explanation
    );
    assert!(
        late.explanation.contains("2026-03-26 22:30"),
        "{}",
        late.explanation
    );
    assert!(
        late.explanation_sv.contains("utanför arbetstid"),
        "{}",
        late.explanation_sv
    );
    let burst = run
        .findings
        .iter()
        .find(|finding| finding.rule == "many_persons")
        .unwrap();
    assert!(
        burst
            .explanation
            .contains("nyfiken-bollnas accessed 25 different persons"),
        "{}",
        burst.explanation
    );

    // The sample: the same seed draws the same entries, another seed others.
    let sample = found(&run, "sample");
    assert_eq!(sample.len(), 5);
    let again = officer
        .start_review_run(start(&seed, 5))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found(&again, "sample"), sample);
    let other = officer
        .start_review_run(start(&"a5".repeat(32), 5))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(found(&other, "sample"), sample);
    let drawn = officer
        .start_review_run(start("", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(drawn.seed.len(), 64, "a seed is drawn and returned");
    assert_ne!(drawn.seed, seed);

    // The run is stored and listed.
    let stored = officer
        .get_review_run(GetReviewRunRequest {
            run_id: run.run_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.findings, run.findings);
    assert_eq!(stored.criteria.unwrap().text, criteria.text);
    let listed = officer
        .list_review_runs(ListReviewRunsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.runs.len(), 4);
    assert_eq!(listed.runs[0].run_id, drawn.run_id, "newest first");

    // Outcomes: a note is required but for no remark; each is recorded and audited.
    let refused = officer
        .record_review_outcome(RecordReviewOutcomeRequest {
            run_id: run.run_id.clone(),
            finding: 1,
            outcome: ReviewOutcome::Explained as i32,
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    officer
        .record_review_outcome(RecordReviewOutcomeRequest {
            run_id: run.run_id.clone(),
            finding: 1,
            outcome: ReviewOutcome::NoRemark as i32,
            note: String::new(),
        })
        .await
        .unwrap();
    let unrelated_finding = run
        .findings
        .iter()
        .find(|finding| {
            finding.rule == "no_relation" && finding.entry_index as u64 == week.unrelated
        })
        .unwrap();
    let escalated = officer
        .record_review_outcome(RecordReviewOutcomeRequest {
            run_id: run.run_id.clone(),
            finding: unrelated_finding.number,
            outcome: ReviewOutcome::UnauthorisedEscalated as i32,
            note: "Ingen koppling till ärendet; anmält till förvaltningschefen.".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        escalated.outcome,
        ReviewOutcome::UnauthorisedEscalated as i32
    );
    assert_eq!(escalated.outcome_by, "granskare-bollnas");
    let stored = officer
        .get_review_run(GetReviewRunRequest {
            run_id: run.run_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.open_findings, stored.finding_count - 2);
    assert_eq!(stored.findings[0].outcome, ReviewOutcome::NoRemark as i32);

    let audit = auditor(&deployment, &service).await;
    let count = |action: &'static str| {
        let mut audit = audit.clone();
        async move {
            audit
                .query(QueryRequest {
                    action: action.into(),
                    ..QueryRequest::default()
                })
                .await
                .unwrap()
                .into_inner()
                .entries
        }
    };
    let outcomes = count("audit.review_outcome").await;
    assert_eq!(outcomes.len(), 2);
    let last: serde_json::Value = serde_json::from_slice(&outcomes[1].entry).unwrap();
    assert_eq!(last["details"]["outcome"], "unauthorised_escalated");
    assert_eq!(last["details"]["run_id"], run.run_id.as_str());
    let runs = count("audit.review_run").await;
    assert_eq!(runs.len(), 4);
    let first: serde_json::Value = serde_json::from_slice(&runs[0].entry).unwrap();
    assert_eq!(first["details"]["seed"], seed.as_str());
    assert_eq!(
        first["details"]["access_entries"],
        week.accesses.to_string()
    );
    assert!(
        first["person_refs"].as_array().unwrap().is_empty(),
        "nothing personal"
    );
    assert_eq!(count("audit.review_criteria_set").await.len(), 2);

    service.stop().await.unwrap();
    deployment.database.remove().await;
}

async fn only_compliance_officers_review_and_only_their_own(backend: TestBackend) {
    let Some(deployment) = Deployment::create(backend).await else {
        return;
    };
    let service = deployment.spawn().await;
    a_week_of_entries(&deployment, &service).await;
    let mut officer = reviewer(
        &deployment,
        &service,
        "granskare-bollnas",
        BOLLNAS,
        &[Role::ComplianceOfficer],
    )
    .await;
    let run = officer
        .start_review_run(start("", 3))
        .await
        .unwrap()
        .into_inner();

    let mut caseworker = reviewer(
        &deployment,
        &service,
        "handlaggare-bollnas",
        BOLLNAS,
        &[Role::Caseworker],
    )
    .await;
    assert_eq!(
        caseworker
            .start_review_run(start("", 3))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        caseworker
            .get_review_run(GetReviewRunRequest {
                run_id: run.run_id.clone(),
            })
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let mut other = reviewer(
        &deployment,
        &service,
        "granskare-jonkoping",
        OTHER,
        &[Role::ComplianceOfficer],
    )
    .await;
    let mut theirs = start("", 3);
    theirs.organisation = BOLLNAS.into();
    assert_eq!(
        other
            .start_review_run(theirs.clone())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        other
            .get_review_run(GetReviewRunRequest {
                run_id: run.run_id.clone(),
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound,
        "another organisation's run does not exist for them"
    );
    assert_eq!(
        other
            .record_review_outcome(RecordReviewOutcomeRequest {
                run_id: run.run_id.clone(),
                finding: 1,
                outcome: ReviewOutcome::NoRemark as i32,
                note: String::new(),
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    // A supervisor's compliance officer may review the organisation, not set its criteria.
    let mut supervisor = reviewer(
        &deployment,
        &service,
        "granskare-ivo",
        "ivo",
        &[Role::ComplianceOfficer],
    )
    .await;
    let supervised = supervisor
        .start_review_run(theirs)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(supervised.organisation, BOLLNAS);
    assert_eq!(
        supervisor
            .set_review_criteria(SetReviewCriteriaRequest {
                organisation: BOLLNAS.into(),
                text: "x".into(),
            })
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    // Bad periods and seeds are named.
    let mut bad = start("xyz", 3);
    assert_eq!(
        officer
            .start_review_run(bad.clone())
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    bad.seed = String::new();
    bad.until = "2026-01-01".into();
    assert_eq!(
        officer.start_review_run(bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    service.stop().await.unwrap();
    deployment.database.remove().await;
}

/// The migrations of the log before the review's access index.
const BEFORE_ACCESS_INDEX: Migrations = tryggdel_storage::migrations!([
    "0001_audit_log.sql",
    "0002_audit_scrub.sql",
    "0003_personal_store.sql",
    "0004_log_review.sql",
    "0005_log_review_relations.sql",
]);

/// The rows of the access index, in a comparable order.
async fn access_index(store: &AuditStore) -> (Vec<String>, Vec<String>) {
    let accesses = lines(
        store,
        "SELECT CAST(idx AS TEXT) || ' ' || organisation || ' ' || CAST(occurred_at AS TEXT) \
         || ' ' || actor_user_id || ' ' || disclosure_id || ' ' || action \
         || ' access=' || CAST(access AS TEXT) \
         || ' protected=' || CAST(protected_identity AS TEXT) \
         || ' compliance=' || CAST(compliance_actor AS TEXT) AS line \
         FROM audit_accesses ORDER BY idx",
    )
    .await;
    let persons = lines(
        store,
        "SELECT CAST(idx AS TEXT) || ' ' || organisation || ' ' || CAST(occurred_at AS TEXT) \
         || ' ' || actor_user_id || ' ' || person_ref \
         || ' prev=' || COALESCE(CAST(prev_at AS TEXT), 'none') AS line \
         FROM audit_access_persons ORDER BY idx, person_ref",
    )
    .await;
    (accesses, persons)
}

/// The one text column `line` of each row of `sql`.
async fn lines(store: &AuditStore, sql: &str) -> Vec<String> {
    sqlx::query(sql)
        .fetch_all(store.database().pool())
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>("line"))
        .collect()
}

/// `user`'s read of disclosure d-1 and `persons` at `at`.
fn read<'a>(user: &'a str, roles: &'a [&'a str], at: i64, persons: &[u32]) -> Event<'a> {
    Event {
        action: "disclosure.read",
        user,
        roles,
        disclosure: "d-1",
        at,
        persons: persons.iter().map(|n| person(*n)).collect(),
        protected: false,
    }
}

/// A log written before the access index (reads, list pages, a reveal, compliance reads, a
/// marked change and plain changes) is indexed by the upgrade exactly as the sequencer indexes
/// the same entries when it writes them.
async fn the_upgrade_indexes_the_accesses_already_in_the_log(backend: TestBackend) {
    let Some(upgraded) = TestDatabase::create(backend).await else {
        return;
    };
    let Some(written) = TestDatabase::create(backend).await else {
        upgraded.remove().await;
        return;
    };
    let caseworker: &[&str] = &["caseworker"];
    let officer: &[&str] = &["compliance_officer"];
    let events = [
        read("anna", caseworker, MONDAY + 9 * HOUR, &[1, 2]),
        Event {
            action: "disclosure.approved",
            ..read("beslut", caseworker, MONDAY + 10 * HOUR, &[1])
        },
        read("anna", caseworker, MONDAY + 11 * HOUR, &[1]),
        read("anna", caseworker, MONDAY + 12 * HOUR, &[1]),
        read("bo", caseworker, MONDAY + 12 * HOUR, &[1]),
        Event {
            action: "disclosure.listed",
            ..read("anna", caseworker, MONDAY + 13 * HOUR, &[1, 3])
        },
        Event {
            action: "disclosure.protected_revealed",
            protected: true,
            ..read("anna", caseworker, MONDAY + 14 * HOUR, &[3])
        },
        Event {
            action: "disclosure.submitted",
            protected: true,
            ..read("anna", caseworker, MONDAY + 15 * HOUR, &[3])
        },
        Event {
            action: "audit.query",
            disclosure: "",
            ..read("granskare", officer, MONDAY + 16 * HOUR, &[1])
        },
        Event {
            action: "disclosure.read",
            ..read("granskare", officer, MONDAY + 17 * HOUR, &[2])
        },
        Event {
            action: "audit.review_outcome",
            disclosure: "",
            ..read("granskare", officer, MONDAY + 18 * HOUR, &[])
        },
    ];
    let entries: Vec<NewEntry> = events
        .iter()
        .zip(0u64..)
        .map(|(event, index)| {
            let body = body_from_event("event", &event.audit_event(BOLLNAS), "disclosure").unwrap();
            let bytes = body.clone().record_v1(MONDAY).to_bytes().unwrap();
            let leaf = leaf_hash(&bytes);
            body.new_entry(
                index,
                body.fingerprint().unwrap(),
                bytes,
                leaf,
                MONDAY,
                Vec::new(),
            )
        })
        .collect();

    // The log as a service before the index wrote it: entries and person index only.
    let before = AuditStore::new(
        Database::connect(&upgraded.url, "audit", &BEFORE_ACCESS_INDEX)
            .await
            .unwrap(),
    );
    let unindexed: Vec<NewEntry> = entries
        .iter()
        .cloned()
        .map(|entry| NewEntry {
            access: None,
            ..entry
        })
        .collect();
    let mut writer = before.begin_write().await.unwrap();
    writer.insert_entries(&unindexed).await.unwrap();
    writer.commit().await.unwrap();
    before.database().close().await;
    let after = AuditStore::new(
        Database::connect(&upgraded.url, "audit", &tryggdel_audit::store::MIGRATIONS)
            .await
            .unwrap(),
    );

    // The same entries written by today's writer, one at a time as they arrived.
    let live = AuditStore::new(
        Database::connect(&written.url, "audit", &tryggdel_audit::store::MIGRATIONS)
            .await
            .unwrap(),
    );
    for entry in &entries {
        let mut writer = live.begin_write().await.unwrap();
        writer
            .insert_entries(std::slice::from_ref(entry))
            .await
            .unwrap();
        writer.commit().await.unwrap();
    }

    let (accesses, persons) = access_index(&after).await;
    assert_eq!(
        (accesses.clone(), persons.clone()),
        access_index(&live).await
    );
    let kinds: Vec<(&str, &str)> = accesses
        .iter()
        .map(|row| {
            let fields: Vec<&str> = row.split(' ').collect();
            (fields[0], fields[6])
        })
        .collect();
    // Every access and the marked change; not the approval, nor the review's own outcome.
    assert_eq!(
        kinds,
        vec![
            ("0", "access=1"),
            ("2", "access=1"),
            ("3", "access=1"),
            ("4", "access=1"),
            ("5", "access=1"),
            ("6", "access=2"),
            ("7", "access=0"),
            ("8", "access=3"),
            ("9", "access=1"),
        ]
    );
    assert!(
        accesses[5].ends_with("protected=1 compliance=0"),
        "{}",
        accesses[5]
    );
    assert!(
        accesses[7].ends_with("protected=0 compliance=1"),
        "{}",
        accesses[7]
    );
    // Anna's accesses of person 1 each know her one before (the list page's is 12:00).
    let anna_1: Vec<&String> = persons
        .iter()
        .filter(|row| row.contains(" anna ") && row.contains(&person(1)))
        .collect();
    assert_eq!(anna_1.len(), 4, "{persons:#?}");
    assert!(anna_1[0].ends_with("prev=none"), "{}", anna_1[0]);
    assert!(anna_1[1].ends_with(&format!("prev={}", MONDAY + 9 * HOUR)));
    assert!(anna_1[2].ends_with(&format!("prev={}", MONDAY + 11 * HOUR)));
    assert!(anna_1[3].ends_with(&format!("prev={}", MONDAY + 12 * HOUR)));
    after.database().close().await;
    live.database().close().await;
    upgraded.remove().await;
    written.remove().await;
}

on_both_backends!(
    a_run_finds_each_targeted_case_and_samples_from_its_seed,
    only_compliance_officers_review_and_only_their_own,
    the_upgrade_indexes_the_accesses_already_in_the_log
);
