//! Subject reports through the real server (mTLS, tokens), on SQLite and on PostgreSQL: a
//! report lists a person's disclosures and the accesses to their data, leaves a disclosure out
//! (with every entry about it) while a hold holds on the report's date, and shows it again
//! after the hold's last day or its end; it is scoped as Query is, and is itself logged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use common::{BOLLNAS, Deployment, event};
use time::Date;
use time::macros::date;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_audit::RunningService;
use tryggdel_auth::Role;
use tryggdel_domain::IdentityNumber;
use tryggdel_proto::audit::v1::subject_report_service_client::SubjectReportServiceClient;
use tryggdel_proto::audit::v1::*;
use tryggdel_test_support::{BearerInterceptor, TestBackend, on_both_backends};

type ReportClient = SubjectReportServiceClient<InterceptedService<Channel, BearerInterceptor>>;

const JONKOPING: &str = "jonkoping-kommun";
const IVO: &str = "ivo";

/// The service with a clock the test sets, naming Bollnäs's staff in reports.
struct Harness {
    deployment: Deployment,
    service: RunningService,
    today: Arc<AtomicI32>,
}

impl Harness {
    async fn start(backend: TestBackend) -> Option<Harness> {
        let deployment = Deployment::create(backend).await?;
        let today = Arc::new(AtomicI32::new(date!(2026 - 12 - 03).to_julian_day()));
        let mut settings = deployment.settings();
        let clock = today.clone();
        settings.report.clock =
            Arc::new(move || Date::from_julian_day(clock.load(Ordering::SeqCst)).unwrap());
        settings.report.named_organisations = [BOLLNAS.to_owned()].into();
        let service = tryggdel_audit::spawn(&settings, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Some(Harness {
            deployment,
            service,
            today,
        })
    }

    fn set_today(&self, day: Date) {
        self.today.store(day.to_julian_day(), Ordering::SeqCst);
    }

    async fn append(&self, source: &str, events: Vec<AuditEvent>) {
        self.deployment
            .service_client(&self.service, source)
            .await
            .append(AppendRequest { events })
            .await
            .unwrap();
    }

    async fn reports(&self, user: &str, organisation: &str, role: Role) -> ReportClient {
        let identity = &self.deployment.identity;
        let channel = identity
            .channel(self.service.local_addr, organisation)
            .await;
        let token = identity.token(user, organisation, &[role]);
        SubjectReportServiceClient::with_interceptor(channel, BearerInterceptor::new(&token))
    }

    async fn officer(&self) -> ReportClient {
        self.reports("dso-bollnas", BOLLNAS, Role::ComplianceOfficer)
            .await
    }

    fn reference(&self, number: &str) -> String {
        self.deployment
            .person_key
            .reference(&IdentityNumber::parse(number, date!(2026 - 12 - 03)).unwrap())
            .as_str()
            .to_owned()
    }

    async fn stop(self) {
        self.service.stop().await.unwrap();
        self.deployment.database.remove().await;
    }
}

fn personnummer(birth: u16) -> String {
    tryggdel_domain::testing::personnummer_from(date!(1985 - 03 - 14), birth)
}

/// An event about disclosure `disclosure_id` concerning `person_ref`.
fn about(action: &str, disclosure_id: &str, person_ref: &str) -> AuditEvent {
    let mut event = event(action, Some(person_ref.to_owned()));
    event.disclosure_id = disclosure_id.to_owned();
    event.objects = vec![ObjectRef {
        kind: "disclosure".into(),
        id: disclosure_id.to_owned(),
    }];
    event
}

fn approved(disclosure_id: &str, person_ref: &str) -> AuditEvent {
    let mut event = about("disclosure.approved", disclosure_id, person_ref);
    event.details = [(
        "data_items".to_owned(),
        "subject_name,risk_description".to_owned(),
    )]
    .into();
    event
}

/// A hold event on `disclosure_id` as the disclosure service sends it.
fn hold(action: &str, disclosure_id: &str, person_ref: &str, until: &str) -> AuditEvent {
    let mut event = about(action, disclosure_id, person_ref);
    event.details = [
        (
            "hold_id".to_owned(),
            "0190a1b2-0000-7000-8000-0000000000aa".to_owned(),
        ),
        ("until".to_owned(), until.to_owned()),
        ("legal_ground".to_owned(), "RB-23-18".to_owned()),
        ("issuer".to_owned(), "polisen".to_owned()),
    ]
    .into();
    event.actor = Some(Actor {
        user_id: "utredare-polisen".into(),
        roles: vec!["police_officer".into()],
        organisation: "polisen".into(),
        unit: String::new(),
    });
    event
}

async fn report(client: &mut ReportClient, number: &str) -> SubjectReport {
    client
        .get_subject_report(GetSubjectReportRequest {
            person_identity_number: number.to_owned(),
            organisation: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn disclosure_ids(report: &SubjectReport) -> Vec<&str> {
    report
        .disclosures
        .iter()
        .map(|disclosure| disclosure.disclosure_id.as_str())
        .collect()
}

/// Whether any access in `report` names `disclosure_id`.
fn accesses_name(report: &SubjectReport, disclosure_id: &str) -> bool {
    report
        .accesses
        .iter()
        .any(|access| access.disclosure_ids.iter().any(|id| id == disclosure_id))
}

async fn a_hold_hides_a_disclosure_until_its_last_day_or_end(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let number = personnummer(123);
    let person = harness.reference(&number);
    let other = harness.reference(&personnummer(456));
    let held = uuid::Uuid::now_v7().to_string();
    let open = uuid::Uuid::now_v7().to_string();
    let strangers = uuid::Uuid::now_v7().to_string();
    let mut page = event("disclosure.listed", Some(person.clone()));
    page.person_refs.push(other.clone());
    page.disclosure_id = String::new();
    page.objects = [&held, &strangers]
        .iter()
        .map(|id| ObjectRef {
            kind: "disclosure".into(),
            id: (*id).clone(),
        })
        .collect();
    harness
        .append(
            "disclosure",
            vec![
                about("disclosure.draft_created", &held, &person),
                approved(&held, &person),
                about("disclosure.read", &held, &person),
                approved(&open, &person),
                approved(&strangers, &other),
                page,
            ],
        )
        .await;
    let mut delivered = event("notification.delivered", None);
    delivered.disclosure_id = held.clone();
    harness.append("notification", vec![delivered]).await;

    let mut officer = harness.officer().await;
    let before = report(&mut officer, &number).await;
    assert_eq!(before.as_of, "2026-12-03");
    assert_eq!(disclosure_ids(&before), [held.as_str(), open.as_str()]);
    let shown = &before.disclosures[0];
    assert_eq!(shown.recipient, "polisen/mitt");
    assert_eq!(shown.legal_basis_id, "OSL-10-18c");
    assert_eq!(shown.registry_version, "sha256:0123");
    assert_eq!(shown.data_items, ["subject_name", "risk_description"]);
    assert!(shown.approved_at_unix_ms > 0);
    assert!(shown.delivered_at_unix_ms > 0);
    // Five of the person's entries; the page names the held disclosure, not the stranger's.
    assert_eq!(before.accesses.len(), 5, "{:?}", before.accesses);
    let listed = before
        .accesses
        .iter()
        .find(|access| access.action == "disclosure.listed")
        .unwrap();
    assert_eq!(listed.disclosure_ids, std::slice::from_ref(&held));
    // Bollnäs names its staff.
    assert_eq!(listed.user_id, "beslut-bollnas");
    let json: serde_json::Value = serde_json::from_slice(&before.json).unwrap();
    assert_eq!(json["format"], "tryggdel.subject_report/1");
    assert_eq!(json["disclosures"].as_array().unwrap().len(), 2);

    // A hold placed by the receiving police, until the end of the month: the disclosure and
    // every entry naming it are gone, the other disclosure stays.
    harness
        .append(
            "disclosure",
            vec![hold("disclosure.hold_placed", &held, &person, "2026-12-31")],
        )
        .await;
    let during = report(&mut officer, &number).await;
    assert_eq!(disclosure_ids(&during), [open.as_str()]);
    assert!(!accesses_name(&during, &held));
    assert!(
        !String::from_utf8(during.json.clone())
            .unwrap()
            .contains(&held)
    );
    assert!(
        during
            .accesses
            .iter()
            .all(|access| access.action != "disclosure.listed"
                && access.action != "disclosure.hold_placed")
    );
    harness.set_today(date!(2026 - 12 - 31));
    assert_eq!(
        disclosure_ids(&report(&mut officer, &number).await),
        [open.as_str()]
    );

    // After its last day it is shown again, with its accesses.
    harness.set_today(date!(2027 - 01 - 01));
    let after = report(&mut officer, &number).await;
    assert_eq!(disclosure_ids(&after), [held.as_str(), open.as_str()]);
    assert!(accesses_name(&after, &held));
    // The police's staff are not named.
    let placed = after
        .accesses
        .iter()
        .find(|access| access.action == "disclosure.hold_placed")
        .unwrap();
    assert_eq!(
        (placed.organisation.as_str(), placed.user_id.as_str()),
        ("polisen", "")
    );

    // Extended, it holds again; ended, it does not.
    harness
        .append(
            "disclosure",
            vec![hold(
                "disclosure.hold_extended",
                &held,
                &person,
                "2027-01-31",
            )],
        )
        .await;
    assert_eq!(
        disclosure_ids(&report(&mut officer, &number).await),
        [open.as_str()]
    );
    harness
        .append(
            "disclosure",
            vec![hold("disclosure.hold_ended", &held, &person, "2027-01-31")],
        )
        .await;
    assert_eq!(
        disclosure_ids(&report(&mut officer, &number).await),
        [held.as_str(), open.as_str()]
    );
    harness.stop().await;
}

async fn reports_are_scoped_and_logged(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let number = personnummer(123);
    let person = harness.reference(&number);
    let disclosure = uuid::Uuid::now_v7().to_string();
    harness
        .append("disclosure", vec![approved(&disclosure, &person)])
        .await;

    // Only compliance officers; an organisation's officer reports only its own part.
    let status = harness
        .reports("handlaggare-bollnas", BOLLNAS, Role::Caseworker)
        .await
        .get_subject_report(GetSubjectReportRequest {
            person_identity_number: number.clone(),
            organisation: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = harness
        .officer()
        .await
        .get_subject_report(GetSubjectReportRequest {
            person_identity_number: number.clone(),
            organisation: JONKOPING.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = harness
        .officer()
        .await
        .get_subject_report(GetSubjectReportRequest {
            person_identity_number: "19850314-0000".into(),
            organisation: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("person_identity_number"));
    let mut jonkoping = harness
        .reports("dso-jonkoping", JONKOPING, Role::ComplianceOfficer)
        .await;
    let theirs = report(&mut jonkoping, &number).await;
    assert!(theirs.disclosures.is_empty());
    assert!(theirs.accesses.is_empty());
    assert_eq!(theirs.organisation, JONKOPING);
    // A supervisor sees every organisation's part.
    let mut supervisor = harness
        .reports("granskare-ivo", IVO, Role::ComplianceOfficer)
        .await;
    let all = report(&mut supervisor, &number).await;
    assert_eq!(disclosure_ids(&all), [disclosure.as_str()]);
    assert_eq!(all.organisation, "");
    // Each report is an entry about the person (found by their number), by whom it was made.
    let own = report(&mut harness.officer().await, &number).await;
    assert_eq!(disclosure_ids(&own), [disclosure.as_str()]);
    let channel = harness
        .deployment
        .identity
        .channel(harness.service.local_addr, IVO)
        .await;
    let token = harness
        .deployment
        .identity
        .token("granskare-ivo", IVO, &[Role::ComplianceOfficer]);
    let logged =
        tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient::with_interceptor(
            channel,
            BearerInterceptor::new(&token),
        )
        .query(QueryRequest {
            person_identity_number: number.clone(),
            action: "audit.subject_report".into(),
            ..QueryRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(
        logged.len(),
        3,
        "Jönköping's, the supervisor's and Bollnäs's"
    );
    assert!(logged.iter().any(|entry| entry.index == own.report_index));
    let last: serde_json::Value = serde_json::from_slice(&logged[2].entry).unwrap();
    assert_eq!(last["actor"]["user_id"], "dso-bollnas");
    assert_eq!(last["event_id"], own.report_id.as_str());
    // A later report lists the earlier ones among the accesses.
    let later = report(&mut supervisor, &number).await;
    assert!(
        later
            .accesses
            .iter()
            .any(|access| access.action == "audit.subject_report")
    );
    harness.stop().await;
}

on_both_backends!(
    a_hold_hides_a_disclosure_until_its_last_day_or_end,
    reports_are_scoped_and_logged,
);
