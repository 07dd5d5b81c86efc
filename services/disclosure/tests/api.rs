//! Integration tests: the real server on 127.0.0.1:0 with real mTLS and real tokens, on SQLite
//! and on PostgreSQL (when `TRYGGDEL_TEST_POSTGRES_URL` is set; CI requires it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use std::time::Duration;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_auth::Role;

use tryggdel_disclosure::store::OutboxEvent;
use tryggdel_disclosure::{Expiry, RunningService, Settings};
use tryggdel_domain::{RECEIPT_FORMAT, ReceiptStatement, sign_receipt};
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::audit::v1::{AuditEvent, QueryRequest};
use tryggdel_proto::common::v1::{DisclosureState, Person};
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_proto::disclosure::v1::*;
use tryggdel_proto::notification::v1 as notification;
use tryggdel_proto::notification::v1::notification_service_server::{
    NotificationService, NotificationServiceServer,
};
use tryggdel_service_kit::RunningServer;
use tryggdel_system::testing::{bind_with_identity, fast_relay, test_system};
use tryggdel_system::{BoundSystem, Service};
use tryggdel_test_support::{
    BearerInterceptor, TestBackend, TestDatabase, TestIdentity, caseworker_of,
};

type Client = DisclosureServiceClient<InterceptedService<Channel, BearerInterceptor>>;
type AuditClient = AuditServiceClient<InterceptedService<Channel, BearerInterceptor>>;

const BOLLNAS: &str = "bollnas-kommun";
const GAVLEBORG: &str = "region-gavleborg";
const JONKOPING: &str = "jonkoping-kommun";

struct Harness {
    identity: TestIdentity,
    service: RunningService,
    /// None while a test has the audit service down.
    audit: Option<tryggdel_audit::RunningService>,
    audit_address: std::net::SocketAddr,
    audit_settings: tryggdel_audit::Settings,
    audit_database: TestDatabase,
    database: TestDatabase,
    /// The disclosure service's settings, to start it again.
    settings: Settings,
    /// The police's receipt key, which the service pins.
    receipt_signer: ed25519_dalek::SigningKey,
    /// The stand-in notification service, when the test has one.
    notification: Option<(FakeNotification, RunningServer)>,
    /// The development data directory the settings were made from.
    _data: tempfile::TempDir,
}

impl Harness {
    /// Delivery to the police is tested with all three services in tests/; here the
    /// notification service is absent (its address refuses connections) and approvals wait in
    /// the outbox.
    async fn start(backend: TestBackend) -> Option<Harness> {
        Harness::launch(backend, None, Expiry::default()).await
    }

    /// With untouched drafts and submitted disclosures expiring as `expiry` says.
    async fn start_expiring(backend: TestBackend, expiry: Expiry) -> Option<Harness> {
        Harness::launch(backend, None, expiry).await
    }

    /// With a stand-in notification service that takes hand-overs (see [`FakeNotification`]).
    async fn start_delivering(backend: TestBackend) -> Option<Harness> {
        Harness::launch(
            backend,
            Some(FakeNotification::default()),
            Expiry::default(),
        )
        .await
    }

    /// The audit and disclosure services as the system builder makes them (from a development
    /// data directory, each on a fresh database), and, in the notification service's place,
    /// `fake` if given; untouched disclosures expire as `expiry` says.
    async fn launch(
        backend: TestBackend,
        fake: Option<FakeNotification>,
        expiry: Expiry,
    ) -> Option<Harness> {
        let database = TestDatabase::create(backend).await?;
        let audit_database = TestDatabase::create(backend).await?;
        let data = tempfile::tempdir().unwrap();
        let builder = test_system(data.path())
            .database(Service::Audit, audit_database.url.clone())
            .database(Service::Disclosure, database.url.clone())
            .audit(|settings| settings.appenders = vec!["disclosure".into()])
            .disclosure(move |settings| {
                settings.relay = fast_relay();
                settings.expiry = expiry;
            });
        let (identity, bound) = bind_with_identity(builder).await.unwrap();
        let BoundSystem {
            listeners,
            settings: system,
            ..
        } = bound;
        let notification = fake.map(|fake| {
            let server = RunningServer::start_on(
                "tryggdel.notification.v1.NotificationService",
                tonic::service::Routes::new(NotificationServiceServer::new(fake.clone())),
                &system.notification.tls,
                listeners.notification,
            )
            .unwrap();
            (fake, server)
        });
        let audit = tryggdel_audit::spawn_on(&system.audit, listeners.audit)
            .await
            .unwrap();
        let service = tryggdel_disclosure::spawn_on(&system.disclosure, listeners.disclosure)
            .await
            .unwrap();
        Some(Harness {
            identity,
            service,
            audit_address: audit.local_addr,
            audit: Some(audit),
            audit_settings: system.audit,
            audit_database,
            database,
            settings: system.disclosure,
            receipt_signer: system.notification.receipt_signing_key,
            notification,
            _data: data,
        })
    }

    /// Stops the disclosure service and starts it again (on another port) with the same
    /// settings and database.
    async fn restart_service(self) -> Harness {
        self.service.stop().await.unwrap();
        let service = tryggdel_disclosure::spawn(&self.settings, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Harness { service, ..self }
    }

    /// An audit client for the supervisor's compliance officer.
    async fn audit_officer(&self) -> AuditClient {
        let channel = self.identity.channel(self.audit_address, "ivo").await;
        let token = self
            .identity
            .token("granskare-ivo", "ivo", &[Role::ComplianceOfficer]);
        AuditServiceClient::with_interceptor(channel, BearerInterceptor::new(&token))
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
        panic!(
            "the outbox still holds {} events for the audit log",
            store.audit_backlog().await.unwrap()
        );
    }

    /// Waits (bounded) until every approval's hand-over to the notification service is
    /// settled, delivered or not.
    async fn wait_for_delivery(&self) {
        let store = self.service.api.store();
        for _ in 0..400 {
            if store.delivery_backlog().await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(store.delivery_backlog().await.unwrap(), 0);
    }

    /// Starts the audit service again on its address, after a test stopped it.
    async fn restart_audit(&mut self) {
        self.audit = Some(
            tryggdel_audit::spawn(&self.audit_settings, self.audit_address)
                .await
                .unwrap(),
        );
    }

    /// How many of the audit log's entries about a disclosure record `action`.
    async fn audit_count(&self, disclosure_id: &str, action: &str) -> usize {
        self.audit_entries(disclosure_id)
            .await
            .iter()
            .filter(|(_, logged)| logged == action)
            .count()
    }

    /// The audit log's entries about one disclosure, as (event id, action).
    async fn audit_entries(&self, disclosure_id: &str) -> Vec<(String, String)> {
        let entries = self
            .audit_officer()
            .await
            .query(QueryRequest {
                disclosure_id: disclosure_id.to_owned(),
                ..QueryRequest::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        entries
            .iter()
            .map(|entry| {
                let json: serde_json::Value = serde_json::from_slice(&entry.entry).unwrap();
                (
                    json["event_id"].as_str().unwrap().to_owned(),
                    json["action"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    async fn client_with_token(&self, organisation: &str, token: &str) -> Client {
        let channel = self
            .identity
            .channel(self.service.local_addr, organisation)
            .await;
        DisclosureServiceClient::with_interceptor(channel, BearerInterceptor::new(token))
    }

    async fn client(&self, user: &str, organisation: &str, roles: &[Role]) -> Client {
        let token = self.identity.token(user, organisation, roles);
        self.client_with_token(organisation, &token).await
    }

    async fn caseworker(&self, organisation: &str) -> Client {
        let token = self.identity.role_token(organisation, Role::Caseworker);
        self.client_with_token(organisation, &token).await
    }

    async fn decision_maker(&self, organisation: &str) -> Client {
        let token = self.identity.role_token(organisation, Role::DecisionMaker);
        self.client_with_token(organisation, &token).await
    }

    async fn stop(self) {
        self.service.stop().await.unwrap();
        if let Some((_, server)) = self.notification {
            server.stop().await.unwrap();
        }
        if let Some(audit) = self.audit {
            audit.stop().await.unwrap();
        }
        self.database.remove().await;
        self.audit_database.remove().await;
    }
}

fn personnummer(year: i32, month: u8, day: u8, birth_number: u16) -> String {
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).unwrap(), day).unwrap();
    tryggdel_domain::testing::personnummer_from(date, birth_number)
}

fn checklist() -> Vec<ChecklistAnswer> {
    [
        ("special_circumstances", "Upprepade hot om våld senaste veckan; tidigare misshandel 2025; riskbedömning SARA:SV 2026-11-01 visar hög risk."),
        ("contributes_to_prevention", "Polisen kan genomföra skyddsåtgärder och ett personsäkerhetsarbete för den närstående."),
        ("not_unsuitable", "Pågående insatser påverkas inte negativt; den närstående har själv uttryckt oro och önskar skydd."),
    ]
    .into_iter()
    .map(|(key, justification)| ChecklistAnswer {
        key: key.into(),
        answer: true,
        justification: justification.into(),
    })
    .collect()
}

fn item(name: &str) -> SelectedItem {
    SelectedItem {
        item: name.into(),
        reason: "behövs för att polisen ska kunna identifiera och skydda".into(),
    }
}

/// A social-services case in Bollnäs: a risk of grov kvinnofridskränkning against a cohabitant.
fn social_services_content() -> DraftContent {
    DraftContent {
        unit: "Socialtjänsten, vuxenenheten".into(),
        case_reference: "BOL-2026-0042".into(),
        subject: Some(Person {
            identity_number: personnummer(1985, 3, 14, 123),
            name: "Testperson Ett".into(),
        }),
        victim: Some(Person {
            identity_number: personnummer(1988, 7, 2, 456),
            name: "Testperson Två".into(),
        }),
        relation: "cohabitant".into(),
        relation_justification: String::new(),
        victim_protection: "skyddad_folkbokforing".into(),
        victim_protected: Some(ProtectedDetails {
            address: "Skyddad väg 1, 821 00 Bollnäs".into(),
            workplace: "Arbetsplatsen AB".into(),
            school: String::new(),
            shelter: String::new(),
        }),
        legal_basis_id: "OSL-10-18c".into(),
        claimed_secrecy: "OSL-26-1".into(),
        recipient: "polismyndigheten".into(),
        crime_id: "grov-kvinnofridskrankning".into(),
        crime_time: "future_risk".into(),
        risk_description: "Hot om att skada den närstående vid hennes flytt.".into(),
        checklist: checklist(),
        data_items: vec![
            item("subject_identity_number"),
            item("subject_name"),
            item("victim_name"),
            item("relation"),
            item("risk_description"),
        ],
        alternatives_considered: "Samtycke övervägt men bedöms öka risken.".into(),
        urgent: false,
        consent: None,
        contact_person: "Handläggare Bollnäs, 0278-250 00".into(),
        answers_follow_up_id: String::new(),
        answers_information_request_id: String::new(),
    }
}

fn healthcare_content() -> DraftContent {
    DraftContent {
        unit: "Psykiatriska mottagningen Bollnäs".into(),
        case_reference: "JOURNAL-77".into(),
        claimed_secrecy: "OSL-25-1".into(),
        crime_id: "grov-misshandel".into(),
        relation: "child".into(),
        ..social_services_content()
    }
}

fn create_request(request_id: &str, content: DraftContent) -> CreateDraftRequest {
    CreateDraftRequest {
        client_request_id: request_id.into(),
        content: Some(content),
    }
}

async fn create(client: &mut Client, request_id: &str, content: DraftContent) -> Disclosure {
    client
        .create_draft(create_request(request_id, content))
        .await
        .unwrap()
        .into_inner()
}

/// A read of a disclosure with its protected details masked.
fn get_request(disclosure_id: &str) -> GetRequest {
    GetRequest {
        disclosure_id: disclosure_id.to_owned(),
        reveal_protected: false,
    }
}

/// A read of a disclosure that asks to reveal its protected details.
fn reveal_request(disclosure_id: &str) -> GetRequest {
    GetRequest {
        reveal_protected: true,
        ..get_request(disclosure_id)
    }
}

/// An assessment of a stored disclosure, as of `as_of` (empty: today).
fn assess_stored(disclosure_id: &str, as_of: &str) -> AssessLegalBasisRequest {
    AssessLegalBasisRequest {
        target: Some(assess_legal_basis_request::Target::DisclosureId(
            disclosure_id.to_owned(),
        )),
        as_of: as_of.into(),
    }
}

/// Outbox events as (event id, event type), as the audit log's entries are compared.
fn ids_and_types(events: &[OutboxEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|event| (event.event_id.clone(), event.event_type.clone()))
        .collect()
}

/// The types of the events that record changes (a disclosure's or request's steps), in order:
/// the access log's events of reads in between are left out (tested on their own).
fn event_types(events: &[OutboxEvent]) -> Vec<&str> {
    events
        .iter()
        .filter(|event| !is_access(event))
        .map(|event| event.event_type.as_str())
        .collect()
}

/// The events that record changes, without the access log's reads in between.
fn changes(events: Vec<OutboxEvent>) -> Vec<OutboxEvent> {
    events
        .into_iter()
        .filter(|event| !is_access(event))
        .collect()
}

/// Whether `event` records a read of personal data (the access log), not a change.
fn is_access(event: &OutboxEvent) -> bool {
    [
        "disclosure.read",
        "disclosure.listed",
        "information_request.read",
        "information_request.listed",
    ]
    .contains(&event.event_type.as_str())
}

/// A dry-run assessment of content that is not stored, as of today.
async fn assess_content(client: &mut Client, content: DraftContent) -> Assessment {
    client
        .assess_legal_basis(AssessLegalBasisRequest {
            target: Some(assess_legal_basis_request::Target::Content(content)),
            as_of: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn submit_request(disclosure: &Disclosure) -> SubmitRequest {
    SubmitRequest {
        disclosure_id: disclosure.id.clone(),
        expected_version: disclosure.version,
    }
}

async fn submit(client: &mut Client, disclosure: &Disclosure) -> Disclosure {
    client
        .submit(submit_request(disclosure))
        .await
        .unwrap()
        .into_inner()
}

async fn approve(
    client: &mut Client,
    disclosure: &Disclosure,
) -> Result<Disclosure, tonic::Status> {
    client
        .approve(ApproveRequest {
            disclosure_id: disclosure.id.clone(),
            expected_version: disclosure.version,
            comment: "Beslutat enligt delegation".into(),
            close_relative_judgement: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// An approval with the decision maker's written judgement whether the victim is a närstående.
async fn approve_with_judgement(
    client: &mut Client,
    disclosure: &Disclosure,
    judgement: &str,
) -> Result<Disclosure, tonic::Status> {
    client
        .approve(ApproveRequest {
            disclosure_id: disclosure.id.clone(),
            expected_version: disclosure.version,
            comment: "Beslutat enligt delegation".into(),
            close_relative_judgement: judgement.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The Bollnäs case with a victim whose relation is "other", and the caseworker's account.
fn other_relation_content() -> DraftContent {
    DraftContent {
        relation: "other".into(),
        relation_justification: "Kollega på arbetsplatsen".into(),
        ..social_services_content()
    }
}

fn assert_code<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, contains: &str) {
    let status = result.expect_err("call should have been refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(contains),
        "message {:?} should contain {contains:?}",
        status.message()
    );
}

async fn bollnas_happy_path(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let draft = create(
        &mut caseworker,
        "req-bollnas-0001",
        social_services_content(),
    )
    .await;
    assert_eq!(draft.state, DisclosureState::Draft as i32);
    assert_eq!(draft.police_region, "mitt");
    assert_eq!(draft.version, 1);
    let subject = draft.content.as_ref().unwrap().subject.as_ref().unwrap();
    assert_eq!(
        subject.identity_number.len(),
        13,
        "normalised to YYYYMMDD-NNNC"
    );

    let assessment = caseworker
        .assess_legal_basis(assess_stored(&draft.id, ""))
        .await
        .unwrap()
        .into_inner();
    assert!(assessment.passed, "{assessment:?}");
    assert!(assessment.registry_version.starts_with("sha256:"));
    assert!(
        assessment
            .conditions
            .iter()
            .any(|c| c.key == "minimum_penalty" && c.passed)
    );

    let submitted = submit(&mut caseworker, &draft).await;
    assert_eq!(submitted.state, DisclosureState::Submitted as i32);

    let mut decision_maker = harness.decision_maker(BOLLNAS).await;
    let approved = approve(&mut decision_maker, &submitted).await.unwrap();
    assert_eq!(approved.state, DisclosureState::Approved as i32);
    let decision = approved.decision.as_ref().unwrap();
    assert_eq!(decision.outcome, "approved");
    assert_eq!(decision.decided_by, "beslut-bollnas");
    assert_eq!(decision.payload_sha256.len(), 64);
    assert!(decision.registry_version.starts_with("sha256:"));
    assert!(decision.assessment.as_ref().unwrap().passed);

    // Every state change left one outbox event, in order.
    let events = harness
        .service
        .api
        .store()
        .events_of(&draft.id)
        .await
        .unwrap();
    assert_eq!(
        event_types(&events),
        [
            "disclosure.draft_created",
            "disclosure.submitted",
            "disclosure.approved"
        ]
    );
    assert!(events[2].payload.contains(&decision.payload_sha256));
    for event in &events {
        assert!(
            !event.payload.contains("Skyddad väg"),
            "no protected data in events"
        );
        let twelve_digits = subject.identity_number.replace('-', "");
        assert!(
            !event.payload.contains(&subject.identity_number)
                && !event.payload.contains(&twelve_digits)
                && !event.payload.contains(&twelve_digits[2..]),
            "no identity numbers in events"
        );
    }

    // The relay put every event in the audit log, once, in order; the subject is findable
    // there by identity number although the log holds only a keyed hash.
    harness.wait_for_relay().await;
    let logged = harness.audit_entries(&draft.id).await;
    assert_eq!(logged, ids_and_types(&events));
    let by_person = harness
        .audit_officer()
        .await
        .query(QueryRequest {
            person_identity_number: subject.identity_number.clone(),
            ..QueryRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(by_person.len(), 3);
    let approved: serde_json::Value = serde_json::from_slice(&by_person[2].entry).unwrap();
    assert_eq!(approved["action"], "disclosure.approved");
    assert_eq!(approved["actor"]["user_id"], "beslut-bollnas");
    assert_eq!(approved["purpose"]["legal_basis_id"], "OSL-10-18c");
    assert_eq!(
        approved["purpose"]["registry_version"],
        decision.registry_version
    );
    assert_eq!(approved["recipient"], "polisen/mitt");
    assert_eq!(
        approved["details"]["payload_sha256"],
        decision.payload_sha256
    );
    assert_eq!(approved["trace_id"].as_str().unwrap().len(), 32);
    harness.stop().await;
}

async fn healthcare_happy_path_and_wrong_secrecy(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness.caseworker(GAVLEBORG).await;
    let draft = create(&mut caseworker, "req-gavle-0001", healthcare_content()).await;
    assert_eq!(draft.police_region, "mitt");
    let submitted = submit(&mut caseworker, &draft).await;
    let mut decision_maker = harness.decision_maker(GAVLEBORG).await;
    let approved = approve(&mut decision_maker, &submitted).await.unwrap();
    assert_eq!(approved.state, DisclosureState::Approved as i32);

    // A healthcare provider claiming social-services secrecy is refused.
    let wrong = DraftContent {
        claimed_secrecy: "OSL-26-1".into(),
        ..healthcare_content()
    };
    let assessment = assess_content(&mut caseworker, wrong.clone()).await;
    assert!(!assessment.passed);
    assert!(
        assessment
            .conditions
            .iter()
            .any(|c| c.key == "claimed_secrecy" && !c.passed)
    );
    let draft = create(&mut caseworker, "req-gavle-0002", wrong).await;
    let submitted = submit(&mut caseworker, &draft).await;
    assert_code(
        approve(&mut decision_maker, &submitted).await,
        Code::FailedPrecondition,
        "claimed_secrecy",
    );
    harness.stop().await;
}

fn reject_request(disclosure: &Disclosure, reason: &str) -> RejectRequest {
    RejectRequest {
        disclosure_id: disclosure.id.clone(),
        expected_version: disclosure.version,
        reason: reason.into(),
    }
}

async fn four_eyes_and_delegation(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    // A user who is both caseworker and decision maker drafts: they may not approve it.
    let mut both = harness
        .client(
            "dubbelroll-bollnas",
            BOLLNAS,
            &[Role::Caseworker, Role::DecisionMaker],
        )
        .await;
    let draft = create(&mut both, "req-4eyes-0001", social_services_content()).await;
    let submitted = submit(&mut both, &draft).await;
    assert_code(
        approve(&mut both, &submitted).await,
        Code::PermissionDenied,
        "four-eyes",
    );

    // A decision maker without the delegation may not approve.
    let mut undelegated = harness
        .client("annan-chef", BOLLNAS, &[Role::DecisionMaker])
        .await;
    assert_code(
        approve(&mut undelegated, &submitted).await,
        Code::PermissionDenied,
        "no delegation",
    );
    // Police and compliance roles can neither draft nor approve.
    let mut police = harness
        .client(
            "polis-1",
            BOLLNAS,
            &[Role::PoliceOfficer, Role::ComplianceOfficer],
        )
        .await;
    assert_code(
        police
            .create_draft(create_request("req-police-0001", social_services_content()))
            .await,
        Code::PermissionDenied,
        "caseworker",
    );
    assert_code(
        approve(&mut police, &submitted).await,
        Code::PermissionDenied,
        "decision_maker",
    );
    // A reject needs a reason.
    let mut decision_maker = harness.decision_maker(BOLLNAS).await;
    assert_code(
        decision_maker
            .reject(reject_request(&submitted, "  "))
            .await,
        Code::InvalidArgument,
        "reason",
    );
    let rejected = decision_maker
        .reject(reject_request(&submitted, "Underlaget räcker inte"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.state, DisclosureState::Rejected as i32);
    harness.stop().await;
}

async fn other_organisation_is_not_told(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let draft = create(&mut caseworker, "req-other-0001", social_services_content()).await;
    let mut stranger = harness.caseworker(JONKOPING).await;
    let get = stranger.get(get_request(&draft.id)).await;
    assert_code(get, Code::NotFound, "not found");
    let missing = stranger
        .get(get_request(&uuid::Uuid::now_v7().to_string()))
        .await;
    assert_code(missing, Code::NotFound, "not found");
    let listed = stranger
        .list(ListRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.disclosures.is_empty());
    // A certificate of another organisation than the token's is refused.
    let token = harness
        .identity
        .token("handlaggare-bollnas", BOLLNAS, &[Role::Caseworker]);
    let mut mismatched = harness.client_with_token(JONKOPING, &token).await;
    assert_code(
        mismatched.get(get_request(&draft.id)).await,
        Code::PermissionDenied,
        "certificate",
    );
    harness.stop().await;
}

async fn the_console_calls_for_its_signed_in_users(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let address = harness.service.local_addr;
    let identity = &harness.identity;
    let as_service = |name: &'static str, token: String| async move {
        DisclosureServiceClient::with_interceptor(
            identity.service_channel(address, name).await,
            BearerInterceptor::new(&token),
        )
    };

    // The console's certificate with the signed-in user's token: the call is that user's,
    // whatever their organisation.
    let mut bollnas = as_service("console", identity.role_token(BOLLNAS, Role::Caseworker)).await;
    let draft = create(&mut bollnas, "req-console-0001", social_services_content()).await;
    assert_eq!(draft.organisation, BOLLNAS);
    assert_eq!(draft.drafted_by, "handlaggare-bollnas");
    let mut jonkoping =
        as_service("console", identity.role_token(JONKOPING, Role::Caseworker)).await;
    assert!(
        jonkoping
            .list(ListRequest::default())
            .await
            .unwrap()
            .into_inner()
            .disclosures
            .is_empty()
    );
    // … and still only what that user may see.
    assert_code(
        jonkoping.get(get_request(&draft.id)).await,
        Code::NotFound,
        "not found",
    );

    // The token is still verified in full, and its organisation must be registered.
    let stranger = TestIdentity::generate();
    let mut forged = as_service("console", stranger.role_token(BOLLNAS, Role::Caseworker)).await;
    assert_code(
        forged.list(ListRequest::default()).await,
        Code::Unauthenticated,
        "unknown key",
    );
    let mut unregistered = as_service(
        "console",
        identity.token("handlaggare", "okand-kommun", &[Role::Caseworker]),
    )
    .await;
    assert_code(
        unregistered.list(ListRequest::default()).await,
        Code::PermissionDenied,
        "not registered",
    );
    let mut no_token =
        DisclosureServiceClient::new(identity.service_channel(address, "console").await);
    assert_code(
        no_token.list(ListRequest::default()).await,
        Code::Unauthenticated,
        "missing bearer token",
    );

    // Any other service's certificate with a user's token is refused.
    let mut audit = as_service("audit", identity.role_token(BOLLNAS, Role::Caseworker)).await;
    assert_code(
        audit.list(ListRequest::default()).await,
        Code::PermissionDenied,
        "service certificates other than the console's may not make user calls",
    );

    // A user calling directly keeps the organisation-to-certificate binding.
    let mut mismatched = harness
        .client_with_token(BOLLNAS, &identity.role_token(JONKOPING, Role::Caseworker))
        .await;
    assert_code(
        mismatched.list(ListRequest::default()).await,
        Code::PermissionDenied,
        "the client certificate does not belong to the token's organisation",
    );
    harness.stop().await;
}

async fn tokens_are_checked(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expired = tryggdel_auth::Claims {
        iss: tryggdel_test_support::ISSUER.into(),
        aud: tryggdel_test_support::AUDIENCE.into(),
        sub: "handlaggare-bollnas".into(),
        exp: now - 3600,
        nbf: now - 7200,
        iat: now - 7200,
        jti: "expired-1".into(),
        org: BOLLNAS.into(),
        unit: None,
        roles: vec![Role::Caseworker],
        region: None,
        name: None,
    };
    let token = harness.identity.signer().mint_claims(&expired).unwrap();
    let mut client = harness.client_with_token(BOLLNAS, &token).await;
    assert_code(
        client.list(ListRequest::default()).await,
        Code::Unauthenticated,
        "expired",
    );

    // The classic key-confusion attack: HS256 with the public key as the HMAC secret.
    let claims = tryggdel_auth::Claims {
        exp: now + 600,
        nbf: now - 10,
        iat: now - 10,
        jti: "hs256-1".into(),
        ..expired
    };
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(harness.identity.keys.public_key_pem.as_bytes()),
    )
    .unwrap();
    let mut client = harness.client_with_token(BOLLNAS, &forged).await;
    assert_code(
        client.list(ListRequest::default()).await,
        Code::Unauthenticated,
        "",
    );

    // No token at all.
    let channel = harness
        .identity
        .channel(harness.service.local_addr, BOLLNAS)
        .await;
    let mut anonymous = DisclosureServiceClient::new(channel);
    assert_code(
        anonymous.list(ListRequest::default()).await,
        Code::Unauthenticated,
        "bearer",
    );
    harness.stop().await;
}

/// Lists disclosures over `connected` with `token`; a connection that could not be made is
/// the call's failure.
async fn list_over<E: std::fmt::Display>(
    connected: Result<Channel, E>,
    token: &str,
) -> Result<(), tonic::Status> {
    let channel = connected.map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    DisclosureServiceClient::with_interceptor(channel, BearerInterceptor::new(token))
        .list(ListRequest::default())
        .await
        .map(|_| ())
}

async fn transport_security(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let address = format!("https://{}", harness.service.local_addr);
    // No client certificate: the handshake is refused, so no call gets through.
    let without_certificate = tonic::transport::Endpoint::from_shared(address.clone())
        .unwrap()
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(
                    harness.identity.ca.cert_pem(),
                ))
                .domain_name("localhost"),
        )
        .unwrap();
    let token = harness
        .identity
        .token("handlaggare-bollnas", BOLLNAS, &[Role::Caseworker]);
    let outcome = list_over(without_certificate.connect().await, &token).await;
    assert!(
        outcome.is_err(),
        "a call without a client certificate must fail"
    );

    // A certificate from another CA.
    let foreign = TestIdentity::generate();
    let foreign_client = foreign.client_certificate(BOLLNAS);
    let outcome = tryggdel_tls::connect_channel(
        &address,
        "localhost",
        harness.identity.ca.cert_pem(),
        &foreign_client.cert_pem,
        &foreign_client.key_pem,
    )
    .await;
    let outcome = list_over(outcome, &token).await;
    assert!(
        outcome.is_err(),
        "a certificate from an unknown CA must be refused"
    );

    // Plaintext HTTP/2.
    let plaintext =
        tonic::transport::Endpoint::from_shared(format!("http://{}", harness.service.local_addr))
            .unwrap()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(5));
    // (Even with a valid token.)
    let outcome = list_over(plaintext.connect().await, &token).await;
    assert!(outcome.is_err(), "plaintext must be refused");

    // The server still serves a proper client afterwards.
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    caseworker.list(ListRequest::default()).await.unwrap();
    harness.stop().await;
}

async fn committed_crime_and_effective_dates(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let committed = DraftContent {
        crime_time: "committed".into(),
        ..social_services_content()
    };
    let assessment = assess_content(&mut caseworker, committed).await;
    assert!(!assessment.passed);
    assert!(
        assessment
            .conditions
            .iter()
            .any(|c| c.key == "crime_time" && !c.passed)
    );
    assert!(assessment.suggested_bases.contains(&"OSL-10-21".to_owned()));
    assert!(assessment.suggested_bases.contains(&"OSL-10-23".to_owned()));

    // Grov kvinnofridskränkning: minimum nine months until 2021-12-31, one year from 2022.
    let draft = create(&mut caseworker, "req-dates-0001", social_services_content()).await;
    let as_of = |date: &str| assess_stored(&draft.id, date);
    let autumn_2021 = caseworker
        .assess_legal_basis(as_of("2021-10-01"))
        .await
        .unwrap()
        .into_inner();
    assert!(!autumn_2021.passed);
    let penalty = autumn_2021
        .conditions
        .iter()
        .find(|c| c.key == "minimum_penalty")
        .unwrap();
    assert!(
        !penalty.passed && penalty.reason.contains('9'),
        "{penalty:?}"
    );
    let summer_2022 = caseworker
        .assess_legal_basis(as_of("2022-06-01"))
        .await
        .unwrap()
        .into_inner();
    assert!(summer_2022.passed, "{summer_2022:?}");
    assert_code(
        caseworker.assess_legal_basis(as_of("2022-13-01")).await,
        Code::InvalidArgument,
        "as_of",
    );
    harness.stop().await;
}

async fn concurrent_updates_one_wins(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut first = harness.caseworker(BOLLNAS).await;
    let mut second = harness.caseworker(BOLLNAS).await;
    let draft = create(&mut first, "req-race-0001", social_services_content()).await;
    let update = |text: &str| UpdateDraftRequest {
        disclosure_id: draft.id.clone(),
        expected_version: draft.version,
        content: Some(DraftContent {
            risk_description: text.into(),
            ..social_services_content()
        }),
    };
    let (a, b) = tokio::join!(
        first.update_draft(update("version A")),
        second.update_draft(update("version B"))
    );
    let outcomes = [a.is_ok(), b.is_ok()];
    assert_eq!(
        outcomes.iter().filter(|ok| **ok).count(),
        1,
        "exactly one update wins"
    );
    let loser = match (a, b) {
        (Err(status), Ok(_)) | (Ok(_), Err(status)) => status,
        _ => unreachable!("exactly one update won"),
    };
    assert_eq!(loser.code(), Code::Aborted, "{loser:?}");
    assert!(loser.message().contains("stale version"));
    let current = first
        .get(get_request(&draft.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(current.version, 2);
    harness.stop().await;
}

async fn invalid_input_names_the_field(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let mut content = social_services_content();
    let mut victim = content.victim.clone().unwrap();
    let last = victim.identity_number.pop().unwrap();
    victim.identity_number.push(char::from(
        b'0' + (last.to_digit(10).unwrap() as u8 + 1) % 10,
    ));
    content.victim = Some(victim);
    let bad_link = DraftContent {
        answers_follow_up_id: "question-7".into(),
        ..social_services_content()
    };
    let oversized = DraftContent {
        risk_description: "x".repeat(10_000),
        ..social_services_content()
    };
    // Each refused with the field it fails on.
    for (request_id, content, field) in [
        (
            "req-invalid-0001",
            content,
            "content.victim.identity_number",
        ),
        ("short", social_services_content(), "client_request_id"),
        ("req-invalid-0003", bad_link, "content.answers_follow_up_id"),
        ("req-invalid-0002", oversized, "content.risk_description"),
    ] {
        assert_code(
            caseworker
                .create_draft(create_request(request_id, content))
                .await,
            Code::InvalidArgument,
            field,
        );
    }
    assert_code(
        caseworker.get(get_request("not-an-id")).await,
        Code::InvalidArgument,
        "disclosure_id",
    );
    // A request over the service's message size limit (512 KiB) is refused before it is read.
    let over_the_limit = DraftContent {
        risk_description: "x".repeat(600 * 1024),
        ..social_services_content()
    };
    assert_code(
        caseworker
            .create_draft(create_request("req-invalid-0004", over_the_limit))
            .await,
        Code::ResourceExhausted,
        "too large",
    );
    // Nothing was half-written.
    assert!(
        caseworker
            .list(ListRequest::default())
            .await
            .unwrap()
            .into_inner()
            .disclosures
            .is_empty()
    );
    // An incomplete draft cannot be submitted, and says what is missing.
    let partial = create(
        &mut caseworker,
        "req-partial-0001",
        DraftContent {
            unit: "Vuxenenheten".into(),
            ..Default::default()
        },
    )
    .await;
    assert_code(
        caseworker.submit(submit_request(&partial)).await,
        Code::FailedPrecondition,
        "content.subject.identity_number",
    );
    harness.stop().await;
}

async fn create_is_idempotent(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let first = create(&mut caseworker, "req-retry-0001", social_services_content()).await;
    let again = create(&mut caseworker, "req-retry-0001", social_services_content()).await;
    assert_eq!(first.id, again.id);
    let different = caseworker
        .create_draft(create_request("req-retry-0001", healthcare_content()))
        .await;
    assert_code(different, Code::AlreadyExists, "client_request_id");
    // Content that no longer validates under a used request id is that request's retry with
    // other content, not invalid input.
    let invalid = caseworker
        .create_draft(CreateDraftRequest {
            client_request_id: "req-retry-0001".into(),
            content: None,
        })
        .await;
    assert_code(invalid, Code::AlreadyExists, "client_request_id");
    let listed = caseworker
        .list(ListRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.disclosures.len(), 1);
    harness.stop().await;
}

async fn protected_details_masked_and_reveals_recorded(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let draft = create(&mut caseworker, "req-protect-01", social_services_content()).await;
    let protected = draft
        .content
        .as_ref()
        .unwrap()
        .victim_protected
        .as_ref()
        .unwrap();
    assert_eq!(protected.address, "***");
    assert!(!draft.protected_revealed);

    let revealed = caseworker
        .get(reveal_request(&draft.id))
        .await
        .unwrap()
        .into_inner();
    assert!(revealed.protected_revealed);
    assert_eq!(
        revealed.content.unwrap().victim_protected.unwrap().address,
        "Skyddad väg 1, 821 00 Bollnäs"
    );
    // Another caseworker of the same organisation sees the case, masked, and may not reveal.
    let mut colleague = harness
        .client("handlaggare-2", BOLLNAS, &[Role::Caseworker])
        .await;
    assert_code(
        colleague.get(reveal_request(&draft.id)).await,
        Code::PermissionDenied,
        "reveal",
    );
    // The reveal is in the audit log (it was appended before the data was returned).
    assert_eq!(
        harness
            .audit_count(&draft.id, "disclosure.protected_revealed")
            .await,
        1
    );
    // The sealed columns hold no clear text.
    let row = harness
        .service
        .api
        .store()
        .get(&draft.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!row.protected_sealed.contains("Skyddad"));
    assert!(!row.content_sealed.contains("Testperson"));

    // Every event of a disclosure with protected details says so (the log review finds
    // accesses to a person with protected identity by it); one without does not.
    let plain = create(
        &mut caseworker,
        "req-protect-02",
        DraftContent {
            victim_protected: None,
            ..social_services_content()
        },
    )
    .await;
    caseworker.get(get_request(&plain.id)).await.unwrap();
    harness.wait_for_relay().await;
    for (id, expected) in [(&draft.id, Some("true")), (&plain.id, None)] {
        let entries = harness
            .audit_officer()
            .await
            .query(QueryRequest {
                disclosure_id: id.clone(),
                ..QueryRequest::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        assert!(entries.len() >= 2, "drafted and read: {}", entries.len());
        for entry in &entries {
            let json: serde_json::Value = serde_json::from_slice(&entry.entry).unwrap();
            assert_eq!(
                json["details"]["protected_identity"].as_str(),
                expected,
                "{} of {id}",
                json["action"]
            );
        }
    }
    harness.stop().await;
}

async fn list_pages_and_filters(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let mut ids = Vec::new();
    for index in 0..5 {
        let draft = create(
            &mut caseworker,
            &format!("req-page-{index:04}"),
            social_services_content(),
        )
        .await;
        ids.push(draft.id);
    }
    let draft = caseworker
        .get(get_request(&ids[0]))
        .await
        .unwrap()
        .into_inner();
    submit(&mut caseworker, &draft).await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = caseworker
            .list(ListRequest {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.disclosures.len() <= 2);
        seen.extend(page.disclosures.into_iter().map(|d| d.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected, "newest first, each once");
    let submitted = caseworker
        .list(ListRequest {
            state: DisclosureState::Submitted as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(submitted.disclosures.len(), 1);
    assert_eq!(submitted.disclosures[0].id, ids[0]);
    assert_code(
        caseworker
            .list(ListRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "page_size",
    );
    harness.stop().await;
}

async fn decision_queue_and_payload_preview(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let mut decision_maker = harness.decision_maker(BOLLNAS).await;
    let mut submitted = Vec::new();
    for (index, urgent) in [false, true, false, true].into_iter().enumerate() {
        let mut content = social_services_content();
        content.urgent = urgent;
        let draft = create(&mut caseworker, &format!("req-queue-{index}"), content).await;
        submitted.push((urgent, submit(&mut caseworker, &draft).await));
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    // Not submitted: never in the queue.
    create(
        &mut caseworker,
        "req-queue-draft",
        social_services_content(),
    )
    .await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = decision_maker
            .list(ListRequest {
                state: DisclosureState::Submitted as i32,
                order: ListOrder::DecisionQueue as i32,
                page_size: 1,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.disclosures.into_iter().map(|d| d.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<String> = [1, 3, 0, 2]
        .into_iter()
        .map(|index| submitted[index].1.id.clone())
        .collect();
    assert_eq!(
        seen, expected,
        "urgent first, then the longest waiting, each once"
    );
    // A newest-first token is not a queue token.
    let newest = decision_maker
        .list(ListRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_code(
        decision_maker
            .list(ListRequest {
                order: ListOrder::DecisionQueue as i32,
                page_token: newest.next_page_token,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "page_token",
    );

    // The payload the police would get, before approval, is the one the approval binds.
    let (_, waiting) = &submitted[0];
    let before = decision_maker
        .get(get_request(&waiting.id))
        .await
        .unwrap()
        .into_inner();
    let preview = before
        .payload_preview
        .clone()
        .expect("a submitted, passing disclosure has a preview");
    assert!(!preview.items.is_empty());
    assert!(
        preview
            .items
            .iter()
            .all(|item| !item.masked || item.value.is_empty())
    );
    let approved = approve(&mut decision_maker, &before).await.unwrap();
    let decision = approved.decision.expect("approved");
    assert_eq!(preview.sha256, decision.payload_sha256);
    let after = decision_maker
        .get(get_request(&waiting.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        after.payload_preview.unwrap().sha256,
        decision.payload_sha256
    );
    // A draft has none.
    let draft = create(
        &mut caseworker,
        "req-queue-preview",
        social_services_content(),
    )
    .await;
    let draft = caseworker
        .get(get_request(&draft.id))
        .await
        .unwrap()
        .into_inner();
    assert!(draft.payload_preview.is_none());
    harness.stop().await;
}

/// Issue 17: närstående is a judgement. A victim of relation "other" is neither passed nor
/// failed but needs the decision maker's written judgement, which the approval stores, returns
/// and audits; a judgement nothing asked for is refused; a rejection needs none.
async fn relation_other_needs_the_decision_makers_judgement(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let mut decision_maker = harness.decision_maker(BOLLNAS).await;
    let draft = create(&mut caseworker, "req-other-0001", other_relation_content()).await;

    // The caseworker's text does not pass the condition; it waits for the decision maker.
    let assessment = caseworker
        .assess_legal_basis(assess_stored(&draft.id, ""))
        .await
        .unwrap()
        .into_inner();
    assert!(!assessment.passed, "{assessment:?}");
    assert!(assessment.needs_judgement);
    let close_relative = assessment
        .conditions
        .iter()
        .find(|condition| condition.key == "close_relative")
        .unwrap();
    assert!(!close_relative.passed && close_relative.needs_judgement);
    assert!(!close_relative.reason.contains("Kollega"));
    let others: Vec<&Condition> = assessment
        .conditions
        .iter()
        .filter(|condition| condition.key != "close_relative")
        .collect();
    assert!(
        others
            .iter()
            .all(|condition| condition.passed && !condition.needs_judgement)
    );

    // A caseworker cannot give the judgement, so submitting does not wait for it, and the
    // decision maker sees the payload the approval would bind.
    let submitted = submit(&mut caseworker, &draft).await;
    assert_eq!(submitted.state, DisclosureState::Submitted as i32);
    let before = decision_maker
        .get(get_request(&submitted.id))
        .await
        .unwrap()
        .into_inner();
    let preview = before.payload_preview.clone().expect("a preview");

    // Without the judgement (or with only blanks) the approval is refused, naming the field.
    for blank in ["", "  \n\t "] {
        assert_code(
            approve_with_judgement(&mut decision_maker, &before, blank).await,
            Code::FailedPrecondition,
            "close_relative_judgement: the victim's relation 'other' needs your judgement \
             whether they are a närstående; approve with your written reasoning",
        );
    }
    // The judgement is one line of bounded text, as the audit entry holds it.
    for refused in ["sambo\u{0}", "sambo\nsedan 2019", &"x".repeat(2_001)] {
        assert_code(
            approve_with_judgement(&mut decision_maker, &before, refused).await,
            Code::InvalidArgument,
            "close_relative_judgement",
        );
    }
    let unchanged = decision_maker
        .get(get_request(&submitted.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.state, DisclosureState::Submitted as i32);
    assert_eq!(unchanged.version, submitted.version);

    // With it, the approval passes; the decision carries the judgement and the confirmed
    // assessment.
    let judgement =
        "De har levt i en nära och förtroendefull relation sedan 2019 och delar hushåll.";
    let approved = approve_with_judgement(&mut decision_maker, &before, &format!(" {judgement} "))
        .await
        .unwrap();
    assert_eq!(approved.state, DisclosureState::Approved as i32);
    let decision = approved.decision.as_ref().unwrap();
    assert_eq!(decision.judgement, judgement);
    assert_eq!(decision.payload_sha256, preview.sha256);
    let bound = decision.assessment.as_ref().unwrap();
    assert!(bound.passed && !bound.needs_judgement, "{bound:?}");
    let confirmed = bound
        .conditions
        .iter()
        .find(|condition| condition.key == "close_relative")
        .unwrap();
    assert!(confirmed.passed && !confirmed.needs_judgement);
    assert!(
        confirmed.reason.contains("decision maker's judgement"),
        "{}",
        confirmed.reason
    );

    // Stored: a read and a re-evaluation show it; the re-evaluation itself still says the
    // condition is a judgement, and the decision holds the one that was made.
    let read = caseworker
        .get(get_request(&submitted.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.decision.as_ref().unwrap().judgement, judgement);
    assert_eq!(
        read.decision.as_ref().unwrap().assessment.as_ref(),
        Some(bound)
    );
    let again = decision_maker
        .assess_legal_basis(assess_stored(&submitted.id, ""))
        .await
        .unwrap()
        .into_inner();
    assert!(again.needs_judgement && !again.passed);

    // Audited with the approval.
    let events = harness
        .service
        .api
        .store()
        .events_of(&draft.id)
        .await
        .unwrap();
    assert_eq!(
        event_types(&events),
        [
            "disclosure.draft_created",
            "disclosure.submitted",
            "disclosure.approved"
        ]
    );
    harness.wait_for_relay().await;
    let entries = harness
        .audit_officer()
        .await
        .query(QueryRequest {
            disclosure_id: draft.id.clone(),
            ..QueryRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    // Entries with their personal data (the judgement is free text, kept beside the leaf).
    let logged: Vec<serde_json::Value> = entries
        .iter()
        .map(tryggdel_test_support::merged_entry)
        .collect();
    let approval = logged
        .iter()
        .find(|entry| entry["action"] == "disclosure.approved")
        .unwrap();
    assert_eq!(approval["details"]["close_relative_judgement"], judgement);
    assert_eq!(approval["actor"]["user_id"], "beslut-bollnas");
    assert!(
        logged
            .iter()
            .filter(|entry| entry["action"] != "disclosure.approved")
            .all(|entry| entry["details"].get("close_relative_judgement").is_none())
    );

    // A judgement when none is needed is refused, so nothing meaningless is stored.
    let cohabitant = create(&mut caseworker, "req-other-0002", social_services_content()).await;
    let cohabitant = submit(&mut caseworker, &cohabitant).await;
    assert_code(
        approve_with_judgement(&mut decision_maker, &cohabitant, "De är sambor.").await,
        Code::InvalidArgument,
        "close_relative_judgement: no condition of the assessment needs your judgement",
    );
    let plain = approve(&mut decision_maker, &cohabitant).await.unwrap();
    assert_eq!(plain.decision.as_ref().unwrap().judgement, "");
    harness.wait_for_relay().await;
    let plain_entries = harness
        .audit_officer()
        .await
        .query(QueryRequest {
            disclosure_id: cohabitant.id.clone(),
            ..QueryRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    for entry in &plain_entries {
        let json = tryggdel_test_support::merged_entry(entry);
        assert!(json["details"].get("close_relative_judgement").is_none());
    }

    // A rejection needs no judgement.
    let colleague = create(&mut caseworker, "req-other-0003", other_relation_content()).await;
    let colleague = submit(&mut caseworker, &colleague).await;
    let rejected = decision_maker
        .reject(RejectRequest {
            disclosure_id: colleague.id.clone(),
            expected_version: colleague.version,
            reason: "En kollega är inte närstående.".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.state, DisclosureState::Rejected as i32);
    assert_eq!(rejected.decision.as_ref().unwrap().judgement, "");
    harness.stop().await;
}

async fn health_is_served_over_mtls(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let channel = harness
        .identity
        .channel(harness.service.local_addr, BOLLNAS)
        .await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "tryggdel.disclosure.v1.DisclosureService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    harness.stop().await;
}

async fn audit_outage_loses_nothing_and_reads_fail_closed(backend: TestBackend) {
    let Some(mut harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let before = create(&mut caseworker, "req-outage-01", social_services_content()).await;
    harness.wait_for_relay().await;

    // The audit service goes down. Drafting and submitting go on; the events wait.
    harness.audit.take().unwrap().stop().await.unwrap();
    let during = create(&mut caseworker, "req-outage-02", social_services_content()).await;
    let during = submit(&mut caseworker, &during).await;
    assert!(harness.service.api.store().audit_backlog().await.unwrap() >= 2);

    // Reads of personal data that cannot be audited do not happen.
    assert_code(
        caseworker.get(reveal_request(&during.id)).await,
        Code::Unavailable,
        "audit log",
    );
    let mut supervisor = harness
        .client("granskare-ivo", "ivo", &[Role::ComplianceOfficer])
        .await;
    assert_code(
        supervisor.get(get_request(&during.id)).await,
        Code::Unavailable,
        "audit log",
    );

    // The audit service comes back on its address; every event arrives exactly once.
    harness.restart_audit().await;
    harness.wait_for_relay().await;
    for disclosure in [&before, &during] {
        let logged = harness.audit_entries(&disclosure.id).await;
        let outbox = harness
            .service
            .api
            .store()
            .events_of(&disclosure.id)
            .await
            .unwrap();
        assert_eq!(logged, ids_and_types(&outbox));
    }
    // And the reads work again, each audited.
    supervisor.get(get_request(&during.id)).await.unwrap();
    assert_eq!(harness.audit_count(&during.id, "disclosure.read").await, 1);
    harness.stop().await;
}

/// The police's signed receipt, brought by the notification service, acknowledges an approved
/// disclosure (through delivered: here it overtakes the hand-over, which cannot reach the
/// notification service) exactly once; the hand-over then settles without delivering.
async fn receipts_acknowledge_an_approval_once(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let draft = create(&mut caseworker, "req-receipt-01", social_services_content()).await;
    let submitted = submit(&mut caseworker, &draft).await;
    let mut decision_maker = harness.decision_maker(BOLLNAS).await;
    let approved = approve(&mut decision_maker, &submitted).await.unwrap();
    let payload_sha256 = approved.decision.as_ref().unwrap().payload_sha256.clone();
    let statement = ReceiptStatement {
        format: RECEIPT_FORMAT.into(),
        disclosure_id: approved.id.clone(),
        police_region: "mitt".into(),
        police_reference: "K-2026-1234".into(),
        acknowledged_by: "polis-mitt".into(),
        acknowledged_at: "2026-11-22T10:00:00Z".into(),
        acknowledged_at_unix_ms: 1_795_341_600_000,
        payload_sha256: payload_sha256.clone(),
    };
    let receipt = |statement: &ReceiptStatement| {
        let signed = sign_receipt(statement, &harness.receipt_signer).unwrap();
        RecordReceiptRequest {
            disclosure_id: approved.id.clone(),
            statement: signed.statement,
            signature: signed.signature,
            key_id: signed.key_id,
            trace_id: String::new(),
        }
    };
    let service = |name: &'static str| {
        let identity = &harness.identity;
        let address = harness.service.local_addr;
        async move { DisclosureServiceClient::new(identity.service_channel(address, name).await) }
    };

    // Only the notification service records receipts.
    let mut organisation = DisclosureServiceClient::new(
        harness
            .identity
            .channel(harness.service.local_addr, BOLLNAS)
            .await,
    );
    assert_code(
        organisation.record_receipt(receipt(&statement)).await,
        Code::PermissionDenied,
        "needs its certificate",
    );
    assert_code(
        service("audit")
            .await
            .record_receipt(receipt(&statement))
            .await,
        Code::PermissionDenied,
        "service audit may not record receipts",
    );

    // A receipt for another payload, or from another region, is refused.
    let mut notification = service("notification").await;
    let other_payload = ReceiptStatement {
        payload_sha256: "0".repeat(64),
        ..statement.clone()
    };
    assert_code(
        notification.record_receipt(receipt(&other_payload)).await,
        Code::FailedPrecondition,
        "another payload",
    );
    let other_region = ReceiptStatement {
        police_region: "syd".into(),
        ..statement.clone()
    };
    assert_code(
        notification.record_receipt(receipt(&other_region)).await,
        Code::InvalidArgument,
        "the disclosure went to mitt",
    );

    let recorded = notification
        .record_receipt(receipt(&statement))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(recorded.state, DisclosureState::Acknowledged as i32);
    assert!(!recorded.duplicate);
    let again = notification
        .record_receipt(receipt(&statement))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.state, DisclosureState::Acknowledged as i32);
    assert!(again.duplicate);

    let acknowledged = caseworker
        .get(get_request(&approved.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acknowledged.state, DisclosureState::Acknowledged as i32);
    assert_eq!(acknowledged.version, approved.version + 2);
    let decision = acknowledged.decision.as_ref().unwrap();
    assert_eq!(decision.outcome, "approved");
    assert_eq!(decision.payload_sha256, payload_sha256);
    let delivery = acknowledged.delivery.as_ref().unwrap();
    assert_eq!(delivery.police_region, "mitt");
    assert_eq!(delivery.police_reference, "K-2026-1234");
    assert_eq!(delivery.acknowledged_by, "polis-mitt");
    assert_eq!(delivery.acknowledged_at_unix_ms, 1_795_341_600_000);
    assert_eq!(delivery.delivered_at_unix_ms, 1_795_341_600_000);
    assert!(!delivery.receipt_signature.is_empty());

    let store = harness.service.api.store();
    let events = changes(store.events_of(&approved.id).await.unwrap());
    assert_eq!(
        event_types(&events),
        [
            "disclosure.draft_created",
            "disclosure.submitted",
            "disclosure.approved",
            "disclosure.delivered",
            "disclosure.acknowledged"
        ]
    );
    assert!(events[4].payload.contains("polis-mitt"));

    // The hand-over, retrying against an unreachable notification service, finds the
    // disclosure acknowledged and settles the approval without delivering it.
    harness.wait_for_delivery().await;
    assert_eq!(
        changes(store.events_of(&approved.id).await.unwrap()).len(),
        5
    );
    harness.stop().await;
}

/// A notification service that takes every hand-over (in region mitt, numbered in order)
/// except those of the disclosures in `refuse`, which it refuses for good, and every recall
/// (kept in `recalled`).
#[derive(Clone, Default)]
struct FakeNotification {
    received: Arc<std::sync::Mutex<Vec<notification::DeliverRequest>>>,
    refuse: Arc<std::sync::Mutex<Vec<String>>>,
    recalled: Arc<std::sync::Mutex<Vec<notification::RecallRequest>>>,
}

#[tonic::async_trait]
impl NotificationService for FakeNotification {
    async fn deliver(
        &self,
        request: tonic::Request<notification::DeliverRequest>,
    ) -> Result<tonic::Response<notification::DeliverResponse>, tonic::Status> {
        let request = request.into_inner();
        if self.refuse.lock().unwrap().contains(&request.disclosure_id) {
            return Err(tonic::Status::failed_precondition("payload hash mismatch"));
        }
        let mut received = self.received.lock().unwrap();
        received.push(request);
        Ok(tonic::Response::new(notification::DeliverResponse {
            police_region: "mitt".into(),
            sequence: received.len() as u64,
            duplicate: false,
        }))
    }

    type SubscribeStream = tokio_stream::Empty<Result<notification::Delivery, tonic::Status>>;

    async fn subscribe(
        &self,
        _: tonic::Request<notification::SubscribeRequest>,
    ) -> Result<tonic::Response<Self::SubscribeStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }

    async fn list_pending(
        &self,
        _: tonic::Request<notification::ListPendingRequest>,
    ) -> Result<tonic::Response<notification::ListPendingResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }

    async fn acknowledge(
        &self,
        _: tonic::Request<notification::AcknowledgeRequest>,
    ) -> Result<tonic::Response<notification::Receipt>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }

    async fn get_delivery_status(
        &self,
        _: tonic::Request<notification::GetDeliveryStatusRequest>,
    ) -> Result<tonic::Response<notification::DeliveryStatus>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }

    async fn ask_follow_up(
        &self,
        _: tonic::Request<notification::AskFollowUpRequest>,
    ) -> Result<tonic::Response<notification::FollowUp>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }

    async fn list_follow_ups(
        &self,
        _: tonic::Request<notification::ListFollowUpsRequest>,
    ) -> Result<tonic::Response<notification::ListFollowUpsResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }

    async fn list_escalations(
        &self,
        _: tonic::Request<notification::ListEscalationsRequest>,
    ) -> Result<tonic::Response<notification::ListEscalationsResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }

    async fn recall(
        &self,
        request: tonic::Request<notification::RecallRequest>,
    ) -> Result<tonic::Response<notification::RecallResponse>, tonic::Status> {
        self.recalled.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(notification::RecallResponse {
            duplicate: false,
        }))
    }

    async fn acknowledge_recall(
        &self,
        _: tonic::Request<notification::AcknowledgeRecallRequest>,
    ) -> Result<tonic::Response<notification::Recall>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }
}

/// Approvals are handed to the notification service with the payload bound at approval: a
/// hand-over it takes delivers the disclosure with a delivery record; one it refuses for good
/// is recorded as refused, and neither is sent again.
async fn approvals_are_handed_over_or_refused_once(backend: TestBackend) {
    let Some(harness) = Harness::start_delivering(backend).await else {
        return;
    };
    let fake = harness.notification.as_ref().unwrap().0.clone();
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let mut decision_maker = harness.decision_maker(BOLLNAS).await;
    let taken = create(
        &mut caseworker,
        "req-handover-01",
        social_services_content(),
    )
    .await;
    let refused = create(
        &mut caseworker,
        "req-handover-02",
        social_services_content(),
    )
    .await;
    fake.refuse.lock().unwrap().push(refused.id.clone());
    let taken = submit(&mut caseworker, &taken).await;
    let refused = submit(&mut caseworker, &refused).await;
    let taken = approve(&mut decision_maker, &taken).await.unwrap();
    let refused = approve(&mut decision_maker, &refused).await.unwrap();

    let store = harness.service.api.store();
    harness.wait_for_delivery().await;

    // What the notification service got: the approval's payload, hash and decision.
    let received = fake.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let handed_over = &received[0];
    let decision = taken.decision.as_ref().unwrap();
    assert_eq!(handed_over.disclosure_id, taken.id);
    assert_eq!(handed_over.organisation, BOLLNAS);
    assert_eq!(handed_over.state, "approved");
    assert!(!handed_over.urgent);
    assert_eq!(handed_over.payload_sha256, decision.payload_sha256);
    assert_eq!(
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&handed_over.payload)),
        decision.payload_sha256
    );
    assert_eq!(handed_over.approved_by, "beslut-bollnas");
    assert_eq!(handed_over.approved_at_unix_ms, decision.decided_at_unix_ms);
    assert_eq!(handed_over.legal_basis_id, "OSL-10-18c");
    assert_eq!(handed_over.registry_version, decision.registry_version);

    let delivered = caseworker
        .get(get_request(&taken.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(delivered.state, DisclosureState::Delivered as i32);
    assert_eq!(delivered.version, taken.version + 1);
    assert!(delivered.updated_at_unix_ms >= taken.updated_at_unix_ms);
    let delivery = delivered.delivery.as_ref().unwrap();
    assert_eq!(delivery.police_region, "mitt");
    assert!(delivery.delivered_at_unix_ms >= decision.decided_at_unix_ms);
    assert_eq!(delivery.acknowledged_by, "");
    assert!(delivery.receipt_statement.is_empty());
    let events = store.events_of(&taken.id).await.unwrap();
    assert_eq!(
        event_types(&events),
        [
            "disclosure.draft_created",
            "disclosure.submitted",
            "disclosure.approved",
            "disclosure.delivered"
        ]
    );
    let payload: serde_json::Value = serde_json::from_str(&events[3].payload).unwrap();
    assert_eq!(payload["state"], "delivered");
    assert_eq!(payload["version"], taken.version + 1);
    assert_eq!(payload["details"]["sequence"], "1");
    assert_eq!(payload["details"]["police_region"], "mitt");
    assert_eq!(payload["actor"]["user_id"], "");

    // The refused approval stays approved; its refusal is on record with the reason.
    let still_approved = caseworker
        .get(get_request(&refused.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still_approved.state, DisclosureState::Approved as i32);
    assert_eq!(still_approved.version, refused.version);
    assert!(still_approved.delivery.is_none());
    let events = changes(store.events_of(&refused.id).await.unwrap());
    let last = events.last().unwrap();
    assert_eq!(last.event_type, "disclosure.delivery_refused");
    let payload: serde_json::Value = serde_json::from_str(&last.payload).unwrap();
    assert_eq!(
        payload["refusal"],
        "FailedPrecondition: payload hash mismatch"
    );
    assert_eq!(payload["state"], "approved");
    harness.wait_for_relay().await;
    let logged = harness.audit_entries(&refused.id).await;
    let last_change = logged
        .iter()
        .rfind(|(_, action)| action != "disclosure.read")
        .unwrap();
    assert_eq!(last_change.1, "disclosure.delivery_refused");
    // The caseworker's read of it is in the log too.
    assert!(logged.iter().any(|(_, action)| action == "disclosure.read"));
    harness.stop().await;
}

/// Withdrawing what the police already have is a recall: it needs a reason, keeps the
/// approval and the delivery on record, and is the `disclosure.recalled` event in the audit
/// log; withdrawing an approval not yet handed over stays a plain withdrawal.
async fn a_withdrawal_after_delivery_is_a_recall(backend: TestBackend) {
    let Some(harness) = Harness::start_delivering(backend).await else {
        return;
    };
    let fake = harness.notification.as_ref().unwrap().0.clone();
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let mut decision_maker = harness.decision_maker(BOLLNAS).await;
    let delivered = create(&mut caseworker, "req-recall-01", social_services_content()).await;
    let delivered = submit(&mut caseworker, &delivered).await;
    let approved = approve(&mut decision_maker, &delivered).await.unwrap();
    harness.wait_for_delivery().await;
    let delivered = caseworker
        .get(get_request(&approved.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(delivered.state, DisclosureState::Delivered as i32);

    let without_reason = caseworker
        .withdraw(WithdrawRequest {
            disclosure_id: delivered.id.clone(),
            expected_version: delivered.version,
            reason: "  ".into(),
        })
        .await;
    assert_code(without_reason, Code::InvalidArgument, "reason");

    let recalled = caseworker
        .withdraw(WithdrawRequest {
            disclosure_id: delivered.id.clone(),
            expected_version: delivered.version,
            reason: "Fel person angiven".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(recalled.state, DisclosureState::Withdrawn as i32);
    assert_eq!(recalled.version, delivered.version + 1);
    // The approval and the hand-over stay as they were.
    let decision = recalled.decision.as_ref().unwrap();
    assert_eq!(decision, approved.decision.as_ref().unwrap());
    let read = caseworker
        .get(get_request(&recalled.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.state, DisclosureState::Withdrawn as i32);
    assert_eq!(read.decision, recalled.decision);
    assert_eq!(read.delivery, delivered.delivery);
    let store = harness.service.api.store();
    let events = store.events_of(&recalled.id).await.unwrap();
    let last = events.iter().rfind(|event| !is_access(event)).unwrap();
    assert_eq!(last.event_type, "disclosure.recalled");
    let payload: serde_json::Value = serde_json::from_str(&last.payload).unwrap();
    assert_eq!(payload["state"], "withdrawn");
    assert_eq!(payload["details"]["reason"], "Fel person angiven");
    assert_eq!(payload["details"]["recalled_from"], "delivered");
    assert_eq!(payload["actor"]["user_id"], delivered.drafted_by);
    // Nothing is withdrawn twice.
    let again = caseworker
        .withdraw(WithdrawRequest {
            disclosure_id: recalled.id.clone(),
            expected_version: recalled.version,
            reason: "igen".into(),
        })
        .await;
    assert_code(again, Code::FailedPrecondition, "withdrawn");

    // An approval the police never got (the hand-over was refused) withdrawn is no recall,
    // and needs no reason.
    let never_delivered = create(&mut caseworker, "req-recall-02", social_services_content()).await;
    fake.refuse.lock().unwrap().push(never_delivered.id.clone());
    let never_delivered = submit(&mut caseworker, &never_delivered).await;
    let never_delivered = approve(&mut decision_maker, &never_delivered)
        .await
        .unwrap();
    harness.wait_for_delivery().await;
    let withdrawn = caseworker
        .withdraw(WithdrawRequest {
            disclosure_id: never_delivered.id.clone(),
            expected_version: never_delivered.version,
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(withdrawn.state, DisclosureState::Withdrawn as i32);
    assert!(withdrawn.delivery.is_none());
    let events = store.events_of(&withdrawn.id).await.unwrap();
    assert_eq!(events.last().unwrap().event_type, "disclosure.withdrawn");

    // The recall reaches the notification service, once, with the withdrawal.
    for _ in 0..400 {
        if store.recall_backlog().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(store.recall_backlog().await.unwrap(), 0);
    let recalls = fake.recalled.lock().unwrap().clone();
    assert_eq!(recalls.len(), 1);
    assert_eq!(recalls[0].disclosure_id, recalled.id);
    assert_eq!(recalls[0].reason, "Fel person angiven");
    assert_eq!(recalls[0].withdrawn_by, delivered.drafted_by);
    assert_eq!(
        recalls[0].withdrawn_at_unix_ms,
        payload["details"]["withdrawn_at_unix_ms"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    );
    harness.wait_for_relay().await;
    assert_eq!(
        harness
            .audit_count(&recalled.id, "disclosure.recalled")
            .await,
        1
    );
    assert_eq!(
        harness
            .audit_count(&withdrawn.id, "disclosure.recalled")
            .await,
        0
    );
    assert_eq!(
        harness
            .audit_count(&withdrawn.id, "disclosure.withdrawn")
            .await,
        1
    );
    harness.stop().await;
}

/// Events written before the outbox kept each event's audit event get it when the service
/// starts, and reach the audit log like any other, exactly once.
async fn earlier_events_reach_the_audit_log_after_a_restart(backend: TestBackend) {
    let Some(mut harness) = Harness::start(backend).await else {
        return;
    };
    // The audit service is down, so the events stay in the outbox.
    harness.audit.take().unwrap().stop().await.unwrap();
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let draft = create(&mut caseworker, "req-earlier-01", social_services_content()).await;
    let submitted = submit(&mut caseworker, &draft).await;
    // As the rows were before the outbox had the columns.
    sqlx::query("UPDATE outbox SET audit_event = NULL, traceparent = '' WHERE disclosure_id = $1")
        .bind(&draft.id)
        .execute(harness.service.api.store().database().pool())
        .await
        .unwrap();
    let mut harness = harness.restart_service().await;

    // Filled in at start, from each event's payload.
    let events = harness
        .service
        .api
        .store()
        .events_of(&submitted.id)
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    for event in &events {
        let payload: tryggdel_disclosure::store::OutboxPayload =
            serde_json::from_str(&event.payload).unwrap();
        let audit_event =
            <AuditEvent as prost::Message>::decode(event.audit_event.as_slice()).unwrap();
        assert_eq!(audit_event, payload.audit_event());
        assert_eq!(audit_event.event_id, event.event_id);
        assert_eq!(event.traceparent, payload.traceparent);
    }

    // The audit service comes back; the earlier events arrive, once, in order.
    harness.restart_audit().await;
    harness.wait_for_relay().await;
    let logged = harness.audit_entries(&draft.id).await;
    assert_eq!(logged, ids_and_types(&events));
    harness.stop().await;
}

/// Drafts and submitted disclosures expire after three seconds untouched, their authors warned
/// two seconds before; the background round is left to the test (once an hour).
fn short_expiry(check_interval: Duration) -> Expiry {
    Expiry::new(
        Duration::from_secs(3),
        Duration::from_secs(2),
        check_interval,
    )
    .unwrap()
}

/// Sleeps until the clock is past `at` (Unix ms).
async fn sleep_until_past(at: i64) {
    let now = tryggdel_service_kit::now_unix_ms();
    if now <= at {
        tokio::time::sleep(Duration::from_millis((at - now + 1) as u64)).await;
    }
}

fn detail(event: &OutboxEvent, key: &str) -> String {
    let payload: serde_json::Value = serde_json::from_str(&event.payload).unwrap();
    payload["details"][key]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn untouched_disclosures_are_warned_then_expire(backend: TestBackend) {
    let Some(harness) =
        Harness::start_expiring(backend, short_expiry(Duration::from_secs(3600))).await
    else {
        return;
    };
    let api = &harness.service.api;
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let mut decision_maker = harness.decision_maker(BOLLNAS).await;
    let draft = create(
        &mut caseworker,
        "req-expiry-draft",
        social_services_content(),
    )
    .await;
    let touched = create(
        &mut caseworker,
        "req-expiry-touched",
        social_services_content(),
    )
    .await;
    let created = create(
        &mut caseworker,
        "req-expiry-submitted",
        social_services_content(),
    )
    .await;
    let submitted = submit(&mut caseworker, &created).await;
    let created = create(
        &mut caseworker,
        "req-expiry-approved",
        social_services_content(),
    )
    .await;
    let approved = approve(
        &mut decision_maker,
        &submit(&mut caseworker, &created).await,
    )
    .await
    .unwrap();
    assert_eq!(draft.expires_at_unix_ms, draft.updated_at_unix_ms + 3000);
    assert_eq!(
        submitted.expires_at_unix_ms,
        submitted.updated_at_unix_ms + 3000
    );
    assert_eq!(approved.expires_at_unix_ms, 0);
    let listed = caseworker
        .list(ListRequest::default())
        .await
        .unwrap()
        .into_inner()
        .disclosures;
    let listed_draft = listed.iter().find(|item| item.id == draft.id).unwrap();
    assert_eq!(listed_draft.expires_at_unix_ms, draft.expires_at_unix_ms);
    let listed_approved = listed.iter().find(|item| item.id == approved.id).unwrap();
    assert_eq!(listed_approved.expires_at_unix_ms, 0);

    // Untouched for a second: the three open ones are warned, once; nothing expires yet.
    let last_change = [&draft, &touched, &submitted, &approved]
        .iter()
        .map(|disclosure| disclosure.updated_at_unix_ms)
        .max()
        .unwrap();
    sleep_until_past(last_change + 1000).await;
    let warned_at = tryggdel_service_kit::now_unix_ms();
    let round = api.expire_untouched(warned_at).await.unwrap();
    assert_eq!((round.warned, round.expired), (3, 0));
    let again = api.expire_untouched(warned_at).await.unwrap();
    assert_eq!((again.warned, again.expired), (0, 0));
    let events = api.store().events_of(&draft.id).await.unwrap();
    assert_eq!(
        event_types(&events),
        ["disclosure.draft_created", "disclosure.expiry_warned"]
    );
    // Warned a little late (after one second untouched): the whole two seconds still follow.
    let expires_at = (draft.updated_at_unix_ms + 3000).max(warned_at + 2000);
    assert_eq!(
        detail(&events[1], "expires_at_unix_ms"),
        expires_at.to_string()
    );
    let warned = caseworker
        .get(get_request(&draft.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(warned.version, draft.version, "a warning changes nothing");
    assert_eq!(warned.expires_at_unix_ms, expires_at);

    // The caseworker goes on with one of them after the warning: it starts over.
    let touched = caseworker
        .update_draft(UpdateDraftRequest {
            disclosure_id: touched.id.clone(),
            expected_version: touched.version,
            content: Some(DraftContent {
                risk_description: "Nya uppgifter om hot.".into(),
                ..social_services_content()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(touched.updated_at_unix_ms >= warned_at);
    assert_eq!(
        touched.expires_at_unix_ms,
        touched.updated_at_unix_ms + 3000
    );

    // Three seconds untouched and two since the warning: the others expire.
    sleep_until_past((last_change + 3000).max(warned_at + 2000)).await;
    let round = api
        .expire_untouched(tryggdel_service_kit::now_unix_ms())
        .await
        .unwrap();
    assert_eq!(round.expired, 2, "{round:?}");
    assert_eq!(
        round.warned, 1,
        "the touched draft is warned again: {round:?}"
    );
    for (disclosure, before) in [
        (&draft, DisclosureState::Draft),
        (&submitted, DisclosureState::Submitted),
    ] {
        let expired = caseworker
            .get(get_request(&disclosure.id))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(expired.state, DisclosureState::Expired as i32, "{before:?}");
        assert_eq!(expired.version, disclosure.version + 1);
        assert_eq!(expired.expires_at_unix_ms, 0);
        // The personal data is gone; what the audit needs stays.
        let content = expired.content.unwrap();
        assert_eq!(content.case_reference, "");
        assert!(content.subject.is_none() && content.victim.is_none());
        assert_eq!(content.risk_description, "");
        assert_eq!(content.victim_protected.unwrap().address, "");
        assert_eq!(expired.organisation, BOLLNAS);
        assert_eq!(expired.drafted_by, disclosure.drafted_by);
        assert_eq!(expired.created_at_unix_ms, disclosure.created_at_unix_ms);
        let stored = api.store().get(&disclosure.id).await.unwrap().unwrap();
        assert_eq!(stored.legal_basis_id, "OSL-10-18c");
        let events = changes(api.store().events_of(&disclosure.id).await.unwrap());
        let types = event_types(&events);
        assert_eq!(
            &types[types.len() - 2..],
            ["disclosure.expiry_warned", "disclosure.expired"]
        );
        let expiry: serde_json::Value =
            serde_json::from_str(&events.last().unwrap().payload).unwrap();
        assert_eq!(expiry["state"], "expired");
        assert_eq!(
            expiry["person_refs"].as_array().map(Vec::len),
            Some(2),
            "the expiry stays findable by person: {expiry}"
        );
        // An expired disclosure cannot be taken up again.
        let refused = caseworker
            .update_draft(UpdateDraftRequest {
                disclosure_id: disclosure.id.clone(),
                expected_version: expired.version,
                content: Some(social_services_content()),
            })
            .await;
        assert_code(refused, Code::FailedPrecondition, "");
    }
    let still = caseworker
        .get(get_request(&touched.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.state, DisclosureState::Draft as i32);
    assert_eq!(
        still.content.unwrap().risk_description,
        "Nya uppgifter om hot."
    );
    let approved_now = caseworker
        .get(get_request(&approved.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved_now.state, DisclosureState::Approved as i32);
    assert!(
        !event_types(&api.store().events_of(&approved.id).await.unwrap())
            .iter()
            .any(|event| event.starts_with("disclosure.expir")),
        "an approved disclosure is never warned or expired"
    );

    // Both events of each are in the audit log.
    harness.wait_for_relay().await;
    for disclosure in [&draft, &submitted] {
        assert_eq!(
            harness
                .audit_count(&disclosure.id, "disclosure.expiry_warned")
                .await,
            1
        );
        assert_eq!(
            harness
                .audit_count(&disclosure.id, "disclosure.expired")
                .await,
            1
        );
    }
    assert_eq!(
        harness.audit_count(&touched.id, "disclosure.expired").await,
        0
    );
    assert_eq!(
        harness
            .audit_count(&touched.id, "disclosure.expiry_warned")
            .await,
        2
    );
    harness.stop().await;
}

async fn the_expiry_checker_runs_in_the_background(backend: TestBackend) {
    let Some(harness) =
        Harness::start_expiring(backend, short_expiry(Duration::from_millis(100))).await
    else {
        return;
    };
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let draft = create(
        &mut caseworker,
        "req-expiry-background",
        social_services_content(),
    )
    .await;
    let mut state = 0;
    for _ in 0..200 {
        state = caseworker
            .get(get_request(&draft.id))
            .await
            .unwrap()
            .into_inner()
            .state;
        if state == DisclosureState::Expired as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, DisclosureState::Expired as i32);
    let events = harness
        .service
        .api
        .store()
        .events_of(&draft.id)
        .await
        .unwrap();
    assert_eq!(
        event_types(&events),
        [
            "disclosure.draft_created",
            "disclosure.expiry_warned",
            "disclosure.expired"
        ]
    );
    harness.wait_for_relay().await;
    assert_eq!(
        harness.audit_count(&draft.id, "disclosure.expired").await,
        1
    );
    harness.stop().await;
}

use tryggdel_test_support::on_both_backends;

on_both_backends!(
    bollnas_happy_path,
    healthcare_happy_path_and_wrong_secrecy,
    four_eyes_and_delegation,
    other_organisation_is_not_told,
    the_console_calls_for_its_signed_in_users,
    tokens_are_checked,
    transport_security,
    committed_crime_and_effective_dates,
    concurrent_updates_one_wins,
    invalid_input_names_the_field,
    create_is_idempotent,
    protected_details_masked_and_reveals_recorded,
    audit_outage_loses_nothing_and_reads_fail_closed,
    list_pages_and_filters,
    decision_queue_and_payload_preview,
    relation_other_needs_the_decision_makers_judgement,
    health_is_served_over_mtls,
    receipts_acknowledge_an_approval_once,
    approvals_are_handed_over_or_refused_once,
    a_withdrawal_after_delivery_is_a_recall,
    earlier_events_reach_the_audit_log_after_a_restart,
    untouched_disclosures_are_warned_then_expire,
    the_expiry_checker_runs_in_the_background,
    a_re_evaluation_across_a_delegation_change,
    a_request_for_information_is_answered_by_an_approved_disclosure,
    a_request_for_information_is_refused_with_its_reason_and_weighing,
    an_open_request_past_its_deadline_escalates_until_it_is_settled,
    every_read_is_logged_before_it_is_served_and_none_while_the_log_is_down,
);

// Delegations: granted, revoked and listed by an admin; decisions name the one they relied on.

/// A grant of a delegation under OSL 10:18 c to `user` from `valid_from` (empty: today).
fn grant_request(user: &str, valid_from: &str) -> GrantDelegationRequest {
    GrantDelegationRequest {
        user: user.into(),
        legal_bases: vec!["OSL-10-18c".into()],
        valid_from: valid_from.into(),
        valid_to: String::new(),
    }
}

async fn list_delegations(client: &mut Client, as_of: &str) -> Vec<(String, String)> {
    client
        .list_delegations(ListDelegationsRequest {
            organisation: String::new(),
            as_of: as_of.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .delegations
        .into_iter()
        .map(|delegation| (delegation.user, delegation.id))
        .collect()
}

/// A re-evaluation across a delegation change: A holds the delegation on d1 and approves; A's
/// delegation is revoked from d2 and B's granted; re-evaluating the old decision shows A's
/// delegation, valid on its date; after d2, A is refused and B decides.
async fn a_re_evaluation_across_a_delegation_change(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let format = tryggdel_disclosure::content::format_date;
    let today = tryggdel_service_kit::today_in_sweden();
    let d1 = today - time::Duration::days(2);
    let yesterday = today - time::Duration::days(1);
    let mut admin = harness
        .client("admin-bollnas", BOLLNAS, &[Role::Admin])
        .await;
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let mut anna = harness
        .client("beslut-anna", BOLLNAS, &[Role::DecisionMaker])
        .await;
    let mut bertil = harness
        .client("beslut-bertil", BOLLNAS, &[Role::DecisionMaker])
        .await;

    // The directory file seeded the deployment; an admin grants A a delegation from today.
    let seeded = list_delegations(&mut admin, "").await;
    assert!(
        seeded.iter().any(|(user, _)| user == "beslut-bollnas"),
        "{seeded:?}"
    );
    let granted_a = admin
        .grant_delegation(grant_request("beslut-anna", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(granted_a.valid_from, format(today));
    assert_eq!(granted_a.valid_to, "");
    assert_eq!(granted_a.granted_by, "admin-bollnas");
    assert_eq!(granted_a.organisation, BOLLNAS);

    // A decides on that day, relying on that delegation.
    let first = create(&mut caseworker, "req-deleg-0001", social_services_content()).await;
    let first = submit(&mut caseworker, &first).await;
    let approved = approve(&mut anna, &first).await.unwrap();
    let decision = approved.decision.unwrap();
    assert_eq!(decision.decided_by, "beslut-anna");
    assert_eq!(decision.delegation_id, granted_a.id);

    // Two days pass: the grant and the decision move back to d1 (the clock cannot).
    let store = harness.service.api.store();
    sqlx::query("UPDATE delegations SET valid_from = $1 WHERE id = $2")
        .bind(format(d1))
        .bind(&granted_a.id)
        .execute(store.database().pool())
        .await
        .unwrap();
    let two_days_ms = 2 * 24 * 60 * 60 * 1000_i64;
    sqlx::query("UPDATE disclosures SET decided_at = decided_at - $1 WHERE id = $2")
        .bind(two_days_ms)
        .bind(&first.id)
        .execute(store.database().pool())
        .await
        .unwrap();

    // A's delegation cannot end before it began; it is revoked from d2 = today.
    let revoke = |valid_to: time::Date| RevokeDelegationRequest {
        delegation_id: granted_a.id.clone(),
        valid_to: format(valid_to),
    };
    assert_code(
        admin
            .revoke_delegation(revoke(d1 - time::Duration::days(1)))
            .await,
        Code::InvalidArgument,
        "before valid_from",
    );
    let revoked_a = admin
        .revoke_delegation(revoke(yesterday))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked_a.valid_from, format(d1));
    assert_eq!(revoked_a.valid_to, format(yesterday));
    // A revocation only ends a delegation sooner, never lengthens it.
    assert_code(
        admin.revoke_delegation(revoke(today)).await,
        Code::FailedPrecondition,
        "only ends it sooner",
    );
    let granted_b = admin
        .grant_delegation(grant_request("beslut-bertil", ""))
        .await
        .unwrap()
        .into_inner();

    // Re-evaluating the old decision as of its date shows A's delegation, valid on d1.
    let reevaluated = caseworker
        .assess_legal_basis(assess_stored(&first.id, &format(d1)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reevaluated.as_of, format(d1));
    let held = reevaluated.decision_delegation.unwrap();
    assert_eq!(held.id, granted_a.id);
    assert_eq!(held.user, "beslut-anna");
    assert_eq!(held.valid_from, format(d1));
    assert_eq!(held.valid_to, format(yesterday));
    assert_eq!(held.legal_bases, vec!["OSL-10-18c".to_owned()]);
    // The stored decision still names it.
    let read = caseworker
        .get(get_request(&first.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.decision.unwrap().delegation_id, granted_a.id);

    // Who held a delegation on each date.
    let on_d1 = list_delegations(&mut anna, &format(d1)).await;
    assert!(on_d1.contains(&("beslut-anna".into(), granted_a.id.clone())));
    assert!(!on_d1.iter().any(|(user, _)| user == "beslut-bertil"));
    let on_today = list_delegations(&mut anna, &format(today)).await;
    assert!(on_today.contains(&("beslut-bertil".into(), granted_b.id.clone())));
    assert!(!on_today.iter().any(|(user, _)| user == "beslut-anna"));

    // After d2, a new approval by A is refused and B's is allowed, naming B's delegation.
    let second = create(&mut caseworker, "req-deleg-0002", social_services_content()).await;
    let second = submit(&mut caseworker, &second).await;
    assert_code(
        approve(&mut anna, &second).await,
        Code::PermissionDenied,
        "no delegation",
    );
    let approved = approve(&mut bertil, &second).await.unwrap();
    assert_eq!(approved.decision.unwrap().delegation_id, granted_b.id);
    // A rejection names its delegation too.
    let third = create(&mut caseworker, "req-deleg-0003", social_services_content()).await;
    let third = submit(&mut caseworker, &third).await;
    let rejected = bertil
        .reject(reject_request(&third, "Underlaget räcker inte"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.decision.unwrap().delegation_id, granted_b.id);

    // Every change is audited, the change in its details; decisions name their delegation.
    let events = store.events_of(&granted_a.id).await.unwrap();
    assert_eq!(
        event_types(&events),
        ["delegation.granted", "delegation.revoked"]
    );
    let revoked: serde_json::Value = serde_json::from_str(&events[1].payload).unwrap();
    assert_eq!(revoked["details"]["valid_to"], format(yesterday));
    assert_eq!(revoked["details"]["user"], "beslut-anna");
    assert_eq!(revoked["actor"]["user_id"], "admin-bollnas");
    let approval = store
        .events_of(&first.id)
        .await
        .unwrap()
        .into_iter()
        .find(|event| event.event_type == "disclosure.approved")
        .unwrap();
    let approval: serde_json::Value = serde_json::from_str(&approval.payload).unwrap();
    assert_eq!(approval["details"]["delegation_id"], granted_a.id.as_str());
    harness.wait_for_relay().await;

    // Only an admin of the organisation administers its delegations.
    assert_code(
        anna.grant_delegation(grant_request("beslut-anna", ""))
            .await,
        Code::PermissionDenied,
        "admin",
    );
    let mut supervisor = harness
        .client("admin-ivo", "ivo", &[Role::Admin, Role::ComplianceOfficer])
        .await;
    assert_code(
        supervisor
            .grant_delegation(grant_request("beslut-anna", ""))
            .await,
        Code::PermissionDenied,
        "no delegations",
    );
    let mut other_admin = harness
        .client("admin-jonkoping", JONKOPING, &[Role::Admin])
        .await;
    assert_code(
        other_admin.revoke_delegation(revoke(today)).await,
        Code::NotFound,
        "delegation",
    );
    assert_code(
        admin
            .grant_delegation(GrantDelegationRequest {
                legal_bases: vec!["OSL-99-1".into()],
                ..grant_request("beslut-anna", "")
            })
            .await,
        Code::InvalidArgument,
        "legal_bases[0]",
    );
    harness.stop().await;
}

// Requests for information: an officer asks, the organisation answers with an approved
// disclosure or refuses with its reason and weighing; open requests past their deadline
// escalate.

const AKLAGARMYNDIGHETEN: &str = "aklagarmyndigheten";

impl Harness {
    /// An officer of Polismyndigheten in `region`.
    async fn police(&self, region: &str) -> Client {
        let token =
            self.identity
                .officer_token(&format!("polis-{region}-1"), "polisen", Some(region));
        self.client_with_token("polisen", &token).await
    }

    /// A prosecutor (an officer of Åklagarmyndigheten, which has one inbox).
    async fn prosecutor(&self) -> Client {
        let token = self
            .identity
            .officer_token("aklagare-1", AKLAGARMYNDIGHETEN, None);
        self.client_with_token(AKLAGARMYNDIGHETEN, &token).await
    }
}

/// An RFC 3339 time `ahead` from now.
fn from_now(ahead: Duration) -> String {
    (time::OffsetDateTime::now_utc() + ahead)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A request to Bollnäs about the subject of [`social_services_content`], due in two days.
fn information_request(client_request_id: &str) -> RequestInformationRequest {
    RequestInformationRequest {
        client_request_id: client_request_id.into(),
        organisation: BOLLNAS.into(),
        subject_identity_number: personnummer(1985, 3, 14, 123).replace('-', ""),
        subject_name: "Testperson Ett".into(),
        information_sought: "Uppgifter om pågående insatser och kända hot mot närstående.".into(),
        purpose: "Förhindra ett befarat allvarligt brott mot en närstående.".into(),
        legal_ground: "Uppgiftsskyldighet till brottsbekämpande myndigheter".into(),
        urgent: false,
        reply_by: from_now(Duration::from_secs(2 * 24 * 3600)),
    }
}

fn get_information(id: &str) -> GetInformationRequestRequest {
    GetInformationRequestRequest {
        information_request_id: id.into(),
    }
}

fn refusal(
    request: &InformationRequest,
    reason: &str,
    weighing: &str,
) -> RefuseInformationRequestRequest {
    RefuseInformationRequestRequest {
        information_request_id: request.id.clone(),
        expected_version: request.version,
        reason: reason.into(),
        weighing: weighing.into(),
    }
}

async fn list_information(client: &mut Client) -> Vec<String> {
    client
        .list_information_requests(ListInformationRequestsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .requests
        .into_iter()
        .map(|request| request.id)
        .collect()
}

async fn a_request_for_information_is_answered_by_an_approved_disclosure(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut syd = harness.police("syd").await;
    let first = information_request("begaran-0001");
    let sent = syd
        .request_information(first.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent.state(), InformationRequestState::Open);
    assert_eq!(sent.organisation, BOLLNAS);
    assert_eq!(sent.requester_authority, "polismyndigheten");
    assert_eq!(
        sent.requester_inbox, "syd",
        "the answer goes to the asking officer's region"
    );
    assert_eq!(
        sent.subject.as_ref().unwrap().identity_number,
        personnummer(1985, 3, 14, 123),
        "the number is normalised"
    );
    // A retry returns the same request; the same id with other content is refused.
    let again = syd
        .request_information(first.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, sent.id);
    let mut changed = first;
    changed.purpose = "Något annat".into();
    assert_code(
        syd.request_information(changed).await,
        Code::AlreadyExists,
        "client_request_id",
    );

    // Bad requests name their problem; only officers send them.
    let mut to_police = information_request("begaran-0002");
    to_police.organisation = "polisen".into();
    assert_code(
        syd.request_information(to_police).await,
        Code::InvalidArgument,
        "organisation",
    );
    let mut past = information_request("begaran-0003");
    past.reply_by = "2020-01-01".into();
    assert_code(
        syd.request_information(past).await,
        Code::InvalidArgument,
        "reply_by",
    );
    let mut unnamed = information_request("begaran-0004");
    unnamed.information_sought = " ".into();
    assert_code(
        syd.request_information(unnamed).await,
        Code::InvalidArgument,
        "information_sought",
    );
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    assert_code(
        caseworker
            .request_information(information_request("begaran-0005"))
            .await,
        Code::PermissionDenied,
        "police_officer",
    );

    // The organisation asked sees it; nobody else does.
    assert_eq!(
        list_information(&mut caseworker).await,
        vec![sent.id.clone()]
    );
    assert_eq!(list_information(&mut syd).await, vec![sent.id.clone()]);
    let mut jonkoping = harness.caseworker(JONKOPING).await;
    assert!(list_information(&mut jonkoping).await.is_empty());
    assert_code(
        jonkoping
            .get_information_request(get_information(&sent.id))
            .await,
        Code::NotFound,
        "",
    );
    let mut mitt = harness.police("mitt").await;
    assert!(list_information(&mut mitt).await.is_empty());
    assert_code(
        mitt.get_information_request(get_information(&sent.id))
            .await,
        Code::NotFound,
        "",
    );
    let seen = caseworker
        .get_information_request(get_information(&sent.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.information_sought, sent.information_sought);

    // The answer is a disclosure naming the request: to the asking authority, routed to the
    // asking officer's region (Bollnäs itself routes to Mitt).
    let mut answer = social_services_content();
    answer.answers_information_request_id = sent.id.clone();
    answer.recipient = AKLAGARMYNDIGHETEN.into();
    assert_code(
        caseworker
            .create_draft(create_request("svar-0001", answer.clone()))
            .await,
        Code::InvalidArgument,
        "content.recipient",
    );
    answer.recipient = "polismyndigheten".into();
    let draft = create(&mut caseworker, "svar-0002", answer.clone()).await;
    assert_eq!(draft.police_region, "syd");
    let submitted = submit(&mut caseworker, &draft).await;
    let mut decider = harness.decision_maker(BOLLNAS).await;
    let approved = approve(&mut decider, &submitted).await.unwrap();
    assert_eq!(approved.state(), DisclosureState::Approved);
    let answered = syd
        .get_information_request(get_information(&sent.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.state(), InformationRequestState::Answered);
    assert_eq!(answered.answered_by_disclosure_id, draft.id);
    assert!(answered.answered_at_unix_ms > 0);
    assert_eq!(answered.version, sent.version + 1);
    // Answered once: no further draft may answer it, and it cannot be refused.
    assert_code(
        caseworker
            .create_draft(create_request("svar-0003", answer))
            .await,
        Code::FailedPrecondition,
        "already answered",
    );
    assert_code(
        caseworker
            .refuse_information_request(refusal(&answered, "Sekretess", "Avvägning"))
            .await,
        Code::FailedPrecondition,
        "already answered",
    );

    // Every step is in the audit log; the disclosure's approval names the request.
    harness.wait_for_relay().await;
    let store = harness.service.api.store();
    assert_eq!(
        event_types(&store.events_of(&sent.id).await.unwrap()),
        vec![
            "information_request.received",
            "information_request.answered"
        ]
    );
    let approval = store
        .events_of(&draft.id)
        .await
        .unwrap()
        .into_iter()
        .find(|event| event.event_type == "disclosure.approved")
        .unwrap();
    assert_eq!(detail(&approval, "answers_information_request_id"), sent.id);
    harness.stop().await;
}

async fn a_request_for_information_is_refused_with_its_reason_and_weighing(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut prosecutor = harness.prosecutor().await;
    let sent = prosecutor
        .request_information(RequestInformationRequest {
            urgent: true,
            ..information_request("begaran-1001")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent.requester_authority, AKLAGARMYNDIGHETEN);
    assert_eq!(
        sent.requester_inbox, AKLAGARMYNDIGHETEN,
        "one inbox for the authority"
    );
    assert!(sent.urgent);

    let mut caseworker = harness.caseworker(BOLLNAS).await;
    assert_code(
        caseworker
            .refuse_information_request(refusal(&sent, "Sekretessen väger tyngre.", ""))
            .await,
        Code::InvalidArgument,
        "weighing",
    );
    assert_code(
        caseworker
            .refuse_information_request(RefuseInformationRequestRequest {
                expected_version: sent.version + 1,
                ..refusal(&sent, "Sekretessen väger tyngre.", "Avvägning gjord.")
            })
            .await,
        Code::Aborted,
        "",
    );
    // The asking officer may not refuse their own request.
    assert_code(
        prosecutor
            .refuse_information_request(refusal(&sent, "x", "y"))
            .await,
        Code::PermissionDenied,
        "",
    );
    let reason = "Uppgifterna omfattas av sekretess som uppgiftsskyldigheten inte bryter.";
    let weighing = "Intresset av att uppgifterna lämnas väger inte tyngre än det intresse sekretessen skyddar.";
    let refused = caseworker
        .refuse_information_request(refusal(&sent, reason, weighing))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refused.state(), InformationRequestState::Refused);
    assert_eq!(refused.refused_by, caseworker_of(BOLLNAS));
    // The asking officer sees the refusal and why.
    let seen = prosecutor
        .get_information_request(get_information(&sent.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.state(), InformationRequestState::Refused);
    assert_eq!(seen.refusal_reason, reason);
    assert_eq!(seen.refusal_weighing, weighing);
    // Refused once: not again, and no disclosure answers it.
    assert_code(
        caseworker
            .refuse_information_request(refusal(&seen, reason, weighing))
            .await,
        Code::FailedPrecondition,
        "already refused",
    );
    let mut answer = social_services_content();
    answer.answers_information_request_id = sent.id.clone();
    assert_code(
        caseworker
            .create_draft(create_request("svar-1001", answer))
            .await,
        Code::FailedPrecondition,
        "already refused",
    );
    // Listing by state.
    let refused_only = prosecutor
        .list_information_requests(ListInformationRequestsRequest {
            state: InformationRequestState::Refused as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .requests;
    assert_eq!(refused_only.len(), 1);
    let open_only = caseworker
        .list_information_requests(ListInformationRequestsRequest {
            state: InformationRequestState::Open as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .requests;
    assert!(open_only.is_empty());

    harness.wait_for_relay().await;
    let events = harness
        .service
        .api
        .store()
        .events_of(&sent.id)
        .await
        .unwrap();
    assert_eq!(
        event_types(&events),
        vec![
            "information_request.received",
            "information_request.refused"
        ]
    );
    assert_eq!(detail(&events[1], "reason"), reason);
    assert_eq!(detail(&events[1], "weighing"), weighing);
    harness.stop().await;
}

async fn an_open_request_past_its_deadline_escalates_until_it_is_settled(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut syd = harness.police("syd").await;
    let urgent = syd
        .request_information(RequestInformationRequest {
            urgent: true,
            reply_by: from_now(Duration::from_secs(3600)),
            ..information_request("begaran-2001")
        })
        .await
        .unwrap()
        .into_inner();
    let ordinary = syd
        .request_information(information_request("begaran-2002"))
        .await
        .unwrap()
        .into_inner();
    // The queue: urgent first, then the nearest deadline.
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    assert_eq!(
        list_information(&mut caseworker).await,
        vec![urgent.id.clone(), ordinary.id.clone()]
    );
    let api = &harness.service.api;
    let hour = 3_600_000;
    // Before its deadline nothing escalates.
    assert_eq!(
        api.escalate_overdue_requests(urgent.reply_by_unix_ms - 1)
            .await
            .unwrap(),
        0
    );
    // At the deadline it escalates once, then again after the urgent interval (an hour).
    let due = urgent.reply_by_unix_ms;
    assert_eq!(api.escalate_overdue_requests(due).await.unwrap(), 1);
    assert_eq!(api.escalate_overdue_requests(due + 1).await.unwrap(), 0);
    assert_eq!(
        api.escalate_overdue_requests(due + hour - 1).await.unwrap(),
        0
    );
    assert_eq!(api.escalate_overdue_requests(due + hour).await.unwrap(), 1);
    let escalated = caseworker
        .get_information_request(get_information(&urgent.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(escalated.escalations, 2);
    assert_eq!(escalated.last_escalated_at_unix_ms, due + hour);
    assert_eq!(
        escalated.version, urgent.version,
        "an escalation changes no content"
    );
    // The ordinary one escalates at its own deadline, then daily.
    let later = ordinary.reply_by_unix_ms;
    assert_eq!(api.escalate_overdue_requests(later).await.unwrap(), 2);
    assert_eq!(
        api.escalate_overdue_requests(later + 2 * hour)
            .await
            .unwrap(),
        1,
        "only the urgent one"
    );
    // Settled requests escalate no more.
    caseworker
        .refuse_information_request(refusal(&escalated, "Sekretess", "Avvägning gjord."))
        .await
        .unwrap();
    assert_eq!(
        api.escalate_overdue_requests(later + 30 * hour)
            .await
            .unwrap(),
        1
    );
    let ordinary_now = syd
        .get_information_request(get_information(&ordinary.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ordinary_now.escalations, 2);
    assert_eq!(ordinary_now.state(), InformationRequestState::Open);

    harness.wait_for_relay().await;
    let events = api.store().events_of(&urgent.id).await.unwrap();
    let overdue: Vec<String> = events
        .iter()
        .filter(|event| event.event_type == "information_request.overdue")
        .map(|event| detail(event, "escalation"))
        .collect();
    assert_eq!(overdue, vec!["1", "2", "3", "4"]);
    harness.stop().await;
}

// The access log: every read of personal data is recorded before it is served.

/// The access events of the outbox about `id` (a disclosure or a request), as (type, actor).
async fn accesses(harness: &Harness, id: &str) -> Vec<(String, String)> {
    harness
        .service
        .api
        .store()
        .events_of(id)
        .await
        .unwrap()
        .iter()
        .filter(|event| is_access(event))
        .map(|event| {
            let payload: serde_json::Value = serde_json::from_str(&event.payload).unwrap();
            (
                event.event_type.clone(),
                payload["actor"]["user_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn every_read_is_logged_before_it_is_served_and_none_while_the_log_is_down(
    backend: TestBackend,
) {
    let Some(mut harness) = Harness::start(backend).await else {
        return;
    };
    let mut caseworker = harness.caseworker(BOLLNAS).await;
    let mut decider = harness.decision_maker(BOLLNAS).await;
    let draft = create(&mut caseworker, "req-access-01", social_services_content()).await;
    let other = create(&mut caseworker, "req-access-02", social_services_content()).await;
    assert!(
        accesses(&harness, &draft.id).await.is_empty(),
        "a change is no read"
    );

    // A Get is in the outbox when its answer arrives: who, with the persons as keyed refs.
    caseworker.get(get_request(&draft.id)).await.unwrap();
    assert_eq!(
        accesses(&harness, &draft.id).await,
        vec![("disclosure.read".to_owned(), caseworker_of(BOLLNAS))]
    );
    decider.get(get_request(&draft.id)).await.unwrap();
    let events = harness
        .service
        .api
        .store()
        .events_of(&draft.id)
        .await
        .unwrap();
    let read: serde_json::Value = serde_json::from_str(&events.last().unwrap().payload).unwrap();
    assert_eq!(read["event_type"], "disclosure.read");
    assert_eq!(read["actor"]["roles"][0], "decision_maker");
    assert_eq!(read["actor"]["unit"], "Enheten för våld i nära relationer");
    assert_eq!(read["person_refs"].as_array().unwrap().len(), 2);
    assert!(read["occurred_at_unix_ms"].as_i64().unwrap() > 0);

    // A page of a List is one event naming every disclosure on it and every person.
    let listed = caseworker
        .list(ListRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.disclosures.len(), 2);
    let page = harness
        .service
        .api
        .store()
        .events_of("")
        .await
        .unwrap()
        .into_iter()
        .rfind(|event| event.event_type == "disclosure.listed")
        .unwrap();
    let ids = detail(&page, "disclosure_ids");
    assert!(ids.contains(&draft.id) && ids.contains(&other.id), "{ids}");
    let payload: serde_json::Value = serde_json::from_str(&page.payload).unwrap();
    assert_eq!(
        payload["person_refs"].as_array().unwrap().len(),
        2,
        "the same two people"
    );

    // An officer's read of a request is logged too.
    let mut syd = harness.police("syd").await;
    let request = syd
        .request_information(information_request("begaran-access-1"))
        .await
        .unwrap()
        .into_inner();
    syd.get_information_request(get_information(&request.id))
        .await
        .unwrap();
    assert_eq!(
        accesses(&harness, &request.id).await,
        vec![(
            "information_request.read".to_owned(),
            "polis-syd-1".to_owned()
        )]
    );

    // Every read reaches the audit log, each as an entry naming its objects.
    harness.wait_for_relay().await;
    assert_eq!(harness.audit_count(&draft.id, "disclosure.read").await, 2);

    // The audit service goes down: reads go on only until the log is known not to answer
    // (the next append of the relay), then every read is refused; none is served unlogged.
    harness.audit.take().unwrap().stop().await.unwrap();
    let mut served = 0;
    let mut refused = None;
    for _ in 0..400 {
        match caseworker.get(get_request(&draft.id)).await {
            Ok(_) => served += 1,
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let refused = refused.expect("reads were never refused while the audit log was down");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("audit log"), "{refused:?}");
    assert_code(
        caseworker.list(ListRequest::default()).await,
        Code::Unavailable,
        "audit log",
    );
    assert_code(
        syd.get_information_request(get_information(&request.id))
            .await,
        Code::Unavailable,
        "audit log",
    );
    assert_eq!(
        accesses(&harness, &draft.id).await.len(),
        2 + served,
        "every read served was recorded"
    );

    // Back up: the recorded reads arrive exactly once, and reads are served again.
    harness.restart_audit().await;
    harness.wait_for_relay().await;
    assert_eq!(
        harness.audit_count(&draft.id, "disclosure.read").await,
        2 + served
    );
    caseworker.get(get_request(&draft.id)).await.unwrap();
    harness.stop().await;
}
