//! Clearing through the real server, on SQLite and on PostgreSQL (when
//! `TRYGGDEL_TEST_POSTGRES_URL` is set). Four rejected disclosures, each about its own
//! persons: an old one is cleared (its persons' names and identity numbers are then in no
//! table, and on SQLite nowhere in the database files), a held one, one about a person born
//! on an exempt day and a young one are kept. A dry run first changes nothing. The test
//! controls the clock through the disclosures' last entries (set back in the database).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sqlx::Row;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_auth::Role;
use tryggdel_disclosure::RunningService;
use tryggdel_disclosure::clearing::ClearingRetention;
use tryggdel_proto::common::v1::Person;
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_proto::disclosure::v1::*;
use tryggdel_system::testing::{bind_with_identity, fast_relay, test_system};
use tryggdel_system::{BoundSystem, Service};
use tryggdel_test_support::{
    BearerInterceptor, TestBackend, TestDatabase, TestIdentity, on_both_backends,
};

type Client = DisclosureServiceClient<InterceptedService<Channel, BearerInterceptor>>;

const BOLLNAS: &str = "bollnas-kommun";
const IVO: &str = "ivo";
const DAY_MS: i64 = 24 * 3600 * 1000;

const DECISION: &str = r#"
id = "GB-2026-03"
title = "Gallring av personuppgifter i utlämningsärenden"
decided_by = "Socialnämnden"
decided_on = 2026-11-30
retention_years = 5
kinds = ["person_references", "free_text", "disclosure_content"]
exempt_birth_days = [5, 15, 25]
"#;

struct Harness {
    identity: TestIdentity,
    service: RunningService,
    audit: tryggdel_audit::RunningService,
    database: TestDatabase,
    audit_database: TestDatabase,
    _data: tempfile::TempDir,
}

impl Harness {
    async fn start(backend: TestBackend) -> Option<Harness> {
        Harness::keeping(backend, ClearingRetention::default()).await
    }

    /// With organisations keeping disclosures as `retention` says.
    async fn keeping(backend: TestBackend, retention: ClearingRetention) -> Option<Harness> {
        let database = TestDatabase::create(backend).await?;
        let audit_database = TestDatabase::create(backend).await?;
        let data = tempfile::tempdir().unwrap();
        let builder = test_system(data.path())
            .database(Service::Audit, audit_database.url.clone())
            .database(Service::Disclosure, database.url.clone())
            .audit(|settings| settings.appenders = vec!["disclosure".into()])
            .disclosure(move |settings| {
                settings.relay = fast_relay();
                settings.clearing_retention = retention;
            });
        let (identity, bound) = bind_with_identity(builder).await.unwrap();
        let BoundSystem {
            listeners,
            settings: system,
            ..
        } = bound;
        let audit = tryggdel_audit::spawn_on(&system.audit, listeners.audit)
            .await
            .unwrap();
        let service = tryggdel_disclosure::spawn_on(&system.disclosure, listeners.disclosure)
            .await
            .unwrap();
        Some(Harness {
            identity,
            service,
            audit,
            database,
            audit_database,
            _data: data,
        })
    }

    async fn client(&self, user: &str, organisation: &str, roles: &[Role]) -> Client {
        let token = self.identity.token(user, organisation, roles);
        let channel = self
            .identity
            .channel(self.service.local_addr, organisation)
            .await;
        DisclosureServiceClient::with_interceptor(channel, BearerInterceptor::new(&token))
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.service.api.store().database().pool()
    }

    /// Sets the disclosure's last entry `days` back from now.
    async fn age(&self, id: &str, days: i64) {
        let at = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - days * DAY_MS;
        sqlx::query("UPDATE disclosures SET updated_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id.to_owned())
            .execute(self.pool())
            .await
            .unwrap();
    }

    /// Waits (bounded) until every outbox event is in the audit log.
    async fn wait_for_relay(&self) {
        let store = self.service.api.store();
        for _ in 0..400 {
            if store.audit_backlog().await.unwrap() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the outbox still holds events for the audit log");
    }

    /// Every row of every table of the disclosure database, as text (PostgreSQL), or the
    /// database files' bytes (SQLite).
    async fn everything_stored(&self) -> Vec<u8> {
        match self.service.api.store().database().backend() {
            tryggdel_storage::Backend::Sqlite => {
                let path = self
                    .database
                    .url
                    .trim_start_matches("sqlite://")
                    .split('?')
                    .next()
                    .unwrap()
                    .to_owned();
                let mut bytes = Vec::new();
                for suffix in ["", "-wal", "-journal"] {
                    if let Ok(file) = std::fs::read(format!("{path}{suffix}")) {
                        bytes.extend(file);
                    }
                }
                assert!(bytes.len() > 4096, "the database file was read");
                bytes
            }
            tryggdel_storage::Backend::Postgres => {
                let tables: Vec<String> = sqlx::query(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = 'disclosure'",
                )
                .fetch_all(self.pool())
                .await
                .unwrap()
                .iter()
                .map(|row| row.try_get::<String, _>(0).unwrap())
                .collect();
                assert!(tables.iter().any(|table| table == "disclosures"));
                let mut text = Vec::new();
                for table in tables {
                    let rows =
                        sqlx::query(&format!("SELECT CAST(t AS TEXT) FROM disclosure.{table} t"))
                            .fetch_all(self.pool())
                            .await
                            .unwrap();
                    for row in rows {
                        text.extend(row.try_get::<String, _>(0).unwrap().into_bytes());
                    }
                }
                text
            }
        }
    }

    async fn stop(self) {
        self.service.stop().await.unwrap();
        self.audit.stop().await.unwrap();
        self.database.remove().await;
        self.audit_database.remove().await;
    }
}

fn personnummer(year: i32, month: u8, day: u8, birth_number: u16) -> String {
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).unwrap(), day).unwrap();
    tryggdel_domain::testing::personnummer_from(date, birth_number)
}

/// A complete social-services disclosure about `subject` and `victim`, ready to submit.
fn content(subject: &Person, victim: &Person) -> DraftContent {
    let item = |name: &str| SelectedItem {
        item: name.into(),
        reason: "behövs för att polisen ska kunna identifiera och skydda".into(),
    };
    DraftContent {
        unit: "Socialtjänsten, vuxenenheten".into(),
        case_reference: "BOL-2026-0042".into(),
        subject: Some(subject.clone()),
        victim: Some(victim.clone()),
        relation: "cohabitant".into(),
        victim_protection: "none".into(),
        legal_basis_id: "OSL-10-18c".into(),
        claimed_secrecy: "OSL-26-1".into(),
        recipient: "polismyndigheten".into(),
        crime_id: "grov-kvinnofridskrankning".into(),
        crime_time: "future_risk".into(),
        risk_description: "Hot om att skada den närstående vid hennes flytt.".into(),
        checklist: [
            (
                "special_circumstances",
                "Upprepade hot om våld senaste veckan.",
            ),
            (
                "contributes_to_prevention",
                "Polisen kan genomföra skyddsåtgärder.",
            ),
            (
                "not_unsuitable",
                "Pågående insatser påverkas inte negativt.",
            ),
        ]
        .into_iter()
        .map(|(key, justification)| ChecklistAnswer {
            key: key.into(),
            answer: true,
            justification: justification.into(),
        })
        .collect(),
        data_items: vec![
            item("subject_identity_number"),
            item("subject_name"),
            item("victim_name"),
            item("relation"),
            item("risk_description"),
        ],
        alternatives_considered: "Samtycke övervägt men bedöms öka risken.".into(),
        contact_person: "Handläggare Bollnäs, 0278-250 00".into(),
        ..DraftContent::default()
    }
}

fn person(name: &str, identity_number: String) -> Person {
    Person {
        identity_number,
        name: name.into(),
    }
}

/// A disclosure about the two persons, drafted, submitted and rejected with a reason naming
/// the subject. Returns its id.
async fn rejected(
    caseworker: &mut Client,
    decision_maker: &mut Client,
    request_id: &str,
    subject: &Person,
    victim: &Person,
) -> String {
    let draft = caseworker
        .create_draft(CreateDraftRequest {
            client_request_id: request_id.into(),
            content: Some(content(subject, victim)),
        })
        .await
        .unwrap()
        .into_inner();
    let submitted = caseworker
        .submit(SubmitRequest {
            disclosure_id: draft.id.clone(),
            expected_version: draft.version,
        })
        .await
        .unwrap()
        .into_inner();
    decision_maker
        .reject(RejectRequest {
            disclosure_id: submitted.id.clone(),
            expected_version: submitted.version,
            reason: format!("{} bedöms inte utgöra en fara.", subject.name),
        })
        .await
        .unwrap();
    draft.id
}

/// A disclosure about the two persons, drafted, submitted, approved and (in the database)
/// handed over to the police. Returns its id.
async fn approved(
    harness: &Harness,
    caseworker: &mut Client,
    decision_maker: &mut Client,
    request_id: &str,
    subject: &Person,
    victim: &Person,
) -> String {
    let draft = caseworker
        .create_draft(CreateDraftRequest {
            client_request_id: request_id.into(),
            content: Some(content(subject, victim)),
        })
        .await
        .unwrap()
        .into_inner();
    let submitted = caseworker
        .submit(SubmitRequest {
            disclosure_id: draft.id.clone(),
            expected_version: draft.version,
        })
        .await
        .unwrap()
        .into_inner();
    decision_maker
        .approve(ApproveRequest {
            disclosure_id: submitted.id.clone(),
            expected_version: submitted.version,
            comment: "Beslutat enligt delegation".into(),
            close_relative_judgement: String::new(),
        })
        .await
        .unwrap();
    sqlx::query("UPDATE outbox SET delivery_relayed_at = 1 WHERE disclosure_id = $1")
        .bind(draft.id.clone())
        .execute(harness.pool())
        .await
        .unwrap();
    draft.id
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

fn run(dry_run: bool) -> RunClearingRequest {
    RunClearingRequest {
        decision_toml: DECISION.into(),
        dry_run,
    }
}

async fn clearing_clears_only_what_is_due(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness
        .client("handlaggare-bollnas", BOLLNAS, &[Role::Caseworker])
        .await;
    let token = harness.identity.role_token(BOLLNAS, Role::DecisionMaker);
    let mut decision_maker = {
        let channel = harness
            .identity
            .channel(harness.service.local_addr, BOLLNAS)
            .await;
        DisclosureServiceClient::with_interceptor(channel, BearerInterceptor::new(&token))
    };
    let old_subject = person("Gallrad Gammalsson", personnummer(1971, 2, 14, 311));
    let old_victim = person("Gallrad Offersdotter", personnummer(1974, 6, 2, 422));
    let old = rejected(
        &mut caseworker,
        &mut decision_maker,
        "clear-old-0001",
        &old_subject,
        &old_victim,
    )
    .await;
    let held_subject = person("Kvarhållen Hållsson", personnummer(1972, 3, 11, 533));
    let held_victim = person("Kvarhållen Offer", personnummer(1975, 8, 9, 644));
    let held = rejected(
        &mut caseworker,
        &mut decision_maker,
        "clear-held-0001",
        &held_subject,
        &held_victim,
    )
    .await;
    let exempt_subject = person("Forskning Femtonde", personnummer(1973, 4, 15, 755));
    let exempt_victim = person("Forskning Offer", personnummer(1976, 9, 3, 866));
    let exempt = rejected(
        &mut caseworker,
        &mut decision_maker,
        "clear-exempt-0001",
        &exempt_subject,
        &exempt_victim,
    )
    .await;
    let young_subject = person("Ung Ungsson", personnummer(1980, 5, 12, 977));
    let young_victim = person("Ung Offer", personnummer(1982, 10, 4, 188));
    let young = rejected(
        &mut caseworker,
        &mut decision_maker,
        "clear-young-0001",
        &young_subject,
        &young_victim,
    )
    .await;
    let approved_subject = person("Godkänd Gammalsson", personnummer(1970, 1, 9, 299));
    let approved_victim = person("Godkänd Offer", personnummer(1977, 11, 3, 381));
    let approved = approved(
        &harness,
        &mut caseworker,
        &mut decision_maker,
        "clear-approved-0001",
        &approved_subject,
        &approved_victim,
    )
    .await;
    let until = tryggdel_domain::swedish_date(time::OffsetDateTime::now_utc())
        .saturating_add(time::Duration::days(7))
        .to_string();
    caseworker
        .place_hold(PlaceHoldRequest {
            client_request_id: "hold-clear-0001".into(),
            disclosure_id: held.clone(),
            legal_ground: "OSL-18-1".into(),
            until,
        })
        .await
        .unwrap();
    harness.wait_for_relay().await;
    for id in [&old, &held, &exempt, &approved] {
        harness.age(id, 6 * 366).await;
    }
    harness.age(&young, 365).await;
    let before = harness.everything_stored().await;
    assert!(
        contains(&before, &old_subject.name),
        "the reason names the subject"
    );

    // Only the organisation's administrators and compliance officers run clearing.
    let refused = caseworker.run_clearing(run(true)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let mut supervisor = harness
        .client("granskare-ivo", IVO, &[Role::ComplianceOfficer])
        .await;
    let refused = supervisor.run_clearing(run(true)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let mut officer = harness
        .client("dataskydd-bollnas", BOLLNAS, &[Role::ComplianceOfficer])
        .await;
    let invalid = officer
        .run_clearing(RunClearingRequest {
            decision_toml: "id = \"x\"".into(),
            dry_run: true,
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument, "{invalid:?}");

    // A dry run says what it would do and changes nothing.
    let dry = officer.run_clearing(run(true)).await.unwrap().into_inner();
    let mut due = vec![old.as_str(), approved.as_str()];
    due.sort();
    assert!(dry.dry_run);
    assert_eq!(dry.decision_id, "GB-2026-03");
    assert_eq!(dry.decision_sha256.len(), 64);
    let mut cleared: Vec<&str> = dry
        .cleared
        .iter()
        .map(|c| c.disclosure_id.as_str())
        .collect();
    cleared.sort();
    assert_eq!(cleared, due);
    let mut kept: Vec<(&str, &str)> = dry
        .kept
        .iter()
        .map(|k| (k.disclosure_id.as_str(), k.reason.as_str()))
        .collect();
    kept.sort();
    let mut expected = vec![
        (held.as_str(), "held"),
        (exempt.as_str(), "exempt_birth_day"),
    ];
    expected.sort();
    assert_eq!(kept, expected);
    assert_eq!(dry.persons_cleared, 4);
    assert!(contains(
        &harness.everything_stored().await,
        &old_subject.name
    ));

    // The real run clears the old one only.
    let report = officer.run_clearing(run(false)).await.unwrap().into_inner();
    assert!(!report.dry_run);
    let mut cleared: Vec<&str> = report
        .cleared
        .iter()
        .map(|c| c.disclosure_id.as_str())
        .collect();
    cleared.sort();
    assert_eq!(cleared, due);
    assert_eq!(report.kept.len(), 2);
    assert_eq!(report.persons_cleared, 4);
    assert!(report.audit_log_cleared);

    let after = harness.everything_stored().await;
    for gone in [
        &old_subject,
        &old_victim,
        &approved_subject,
        &approved_victim,
    ] {
        assert!(!contains(&after, &gone.name), "{} is left", gone.name);
        assert!(
            !contains(&after, &gone.identity_number),
            "{} is left",
            gone.identity_number
        );
    }
    // The kept ones still read in full.
    for (id, subject) in [
        (&held, &held_subject),
        (&exempt, &exempt_subject),
        (&young, &young_subject),
    ] {
        let disclosure = officer
            .get(GetRequest {
                disclosure_id: id.clone(),
                ..GetRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            disclosure.content.unwrap().subject.unwrap().name,
            subject.name
        );
        assert_eq!(
            disclosure
                .decision
                .map(|decision| decision.reason)
                .unwrap_or_default(),
            format!("{} bedöms inte utgöra en fara.", subject.name)
        );
    }
    // The cleared approval still reads: what was disclosed, not whose data it was.
    let cleared_approval = officer
        .get(GetRequest {
            disclosure_id: approved.clone(),
            ..GetRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let preview = cleared_approval.payload_preview.expect("the payload");
    assert!(preview.items.iter().any(|item| item.item == "subject_name"));
    assert!(
        preview
            .items
            .iter()
            .all(|item| item.value.is_empty() || item.value == "[gallrad]"),
        "{preview:?}"
    );
    assert!(
        cleared_approval
            .content
            .and_then(|content| content.subject)
            .is_none_or(|subject| subject.name.is_empty())
    );
    // The cleared one: a tombstone naming the decision, nothing personal in its events.
    let events = harness.service.api.store().events_of(&old).await.unwrap();
    let tombstone = events
        .iter()
        .find(|event| event.event_type == "disclosure.cleared")
        .expect("a tombstone");
    assert!(tombstone.payload.contains("GB-2026-03"));
    assert!(tombstone.payload.contains(&dry.decision_sha256));
    assert!(tombstone.payload.contains("\"person_refs\":[]"));
    for event in &events {
        assert!(
            event.payload.contains("\"person_refs\":[]"),
            "{}",
            event.payload
        );
    }

    // Nothing is due any more; the statistics still count it.
    let again = officer.run_clearing(run(false)).await.unwrap().into_inner();
    assert!(again.cleared.is_empty());
    let statistics = officer
        .get_statistics(GetStatisticsRequest {
            group_by: vec!["crime_category".into(), "outcome".into()],
            internal: true,
            ..GetStatisticsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let counts: Vec<(Vec<String>, u64)> = statistics
        .rows
        .iter()
        .map(|row| (row.keys.clone(), row.count))
        .collect();
    let category = "grov-kvinnofridskrankning".to_owned();
    assert_eq!(
        counts,
        [
            (vec![category.clone(), "approved".to_owned()], 1),
            (vec![category, "rejected".to_owned()], 4),
        ]
    );
    harness.stop().await;
}

/// Bollnäs keeps its disclosures seven years: a six-year-old one is not due under a
/// five-year decision there, and the report names the seven years it applied.
async fn a_longer_configured_retention_wins(backend: TestBackend) {
    let retention = ClearingRetention::new(
        5,
        std::collections::BTreeMap::from([(BOLLNAS.to_owned(), 7)]),
    )
    .unwrap();
    let Some(harness) = Harness::keeping(backend, retention).await else {
        return;
    };
    let mut caseworker = harness
        .client("handlaggare-bollnas", BOLLNAS, &[Role::Caseworker])
        .await;
    let token = harness.identity.role_token(BOLLNAS, Role::DecisionMaker);
    let mut decision_maker = {
        let channel = harness
            .identity
            .channel(harness.service.local_addr, BOLLNAS)
            .await;
        DisclosureServiceClient::with_interceptor(channel, BearerInterceptor::new(&token))
    };
    let subject = person("Sju Årsson", personnummer(1971, 2, 14, 311));
    let victim = person("Sju Offer", personnummer(1974, 6, 2, 422));
    let id = rejected(
        &mut caseworker,
        &mut decision_maker,
        "clear-seven-0001",
        &subject,
        &victim,
    )
    .await;
    harness.wait_for_relay().await;
    harness.age(&id, 6 * 366).await;
    let mut admin = harness
        .client("admin-bollnas", BOLLNAS, &[Role::Admin])
        .await;
    let report = admin.run_clearing(run(false)).await.unwrap().into_inner();
    assert_eq!(report.retention_years, 7);
    assert!(report.cleared.is_empty(), "{report:?}");
    harness.age(&id, 7 * 366).await;
    let report = admin.run_clearing(run(false)).await.unwrap().into_inner();
    assert_eq!(report.cleared.len(), 1, "{report:?}");
    harness.stop().await;
}

on_both_backends!(
    clearing_clears_only_what_is_due,
    a_longer_configured_retention_wins
);
