//! Delivery to the police with all three services running (disclosure, notification, audit),
//! real mTLS and real tokens, on SQLite and on PostgreSQL: an approved disclosure reaches the
//! police region it belongs to, comes back with a signed receipt, survives an outage of the
//! notification service, and escalates when nobody acknowledges it in time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_auth::{Role, TokenRequest};
use tryggdel_disclosure::{DEVELOPMENT_DIRECTORY, Directory, RelayConfig};
use tryggdel_domain::LegalRegistry;
use tryggdel_proto::audit::v1::QueryRequest;
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::common::v1::{DisclosureState, Person};
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_proto::disclosure::v1::*;
use tryggdel_proto::notification::v1::notification_service_client::NotificationServiceClient;
use tryggdel_proto::notification::v1::{
    AcknowledgeRequest, DeliverRequest, Delivery, ListEscalationsRequest, SubscribeRequest,
};
use tryggdel_storage::FieldKey;
use tryggdel_test_support::{
    BearerInterceptor, TestBackend, TestDatabase, TestIdentity, log_signing_key, on_both_backends,
    person_key,
};

type Disclosures = DisclosureServiceClient<InterceptedService<Channel, BearerInterceptor>>;
type Notifications = NotificationServiceClient<InterceptedService<Channel, BearerInterceptor>>;

const BOLLNAS: &str = "bollnas-kommun";
const JONKOPING: &str = "jonkoping-kommun";
const MALMO: &str = "malmo-stad";

/// How quickly an urgent disclosure must be acknowledged in these tests.
const URGENT_DEADLINE: Duration = Duration::from_millis(400);

struct System {
    identity: TestIdentity,
    databases: Vec<TestDatabase>,
    audit: tryggdel_audit::RunningService,
    notification: Option<tryggdel_notification::RunningService>,
    notification_settings: tryggdel_notification::Settings,
    notification_address: SocketAddr,
    disclosure: tryggdel_disclosure::RunningService,
    receipt_key: ed25519_dalek::VerifyingKey,
}

fn fast_relay() -> RelayConfig {
    RelayConfig {
        batch: 50,
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(300),
        poll_interval: Duration::from_millis(100),
    }
}

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

impl System {
    async fn start(backend: TestBackend) -> Option<System> {
        let mut databases = Vec::new();
        for _ in 0..3 {
            databases.push(TestDatabase::create(backend).await?);
        }
        let identity = TestIdentity::generate();
        let registry = Arc::new(LegalRegistry::embedded().unwrap());
        let directory = Arc::new(Directory::from_toml(DEVELOPMENT_DIRECTORY, &registry).unwrap());
        let person_key = person_key();
        let receipt_signing_key = log_signing_key();
        let (audit_listener, notification_listener, disclosure_listener) =
            (listener().await, listener().await, listener().await);
        let audit_address = audit_listener.local_addr().unwrap();
        let notification_address = notification_listener.local_addr().unwrap();
        let disclosure_address = disclosure_listener.local_addr().unwrap();

        let audit = tryggdel_audit::spawn_on(
            &tryggdel_audit::Settings {
                database_url: databases[0].url.clone(),
                tls: identity.server_tls("audit"),
                token: identity.verifier_config(),
                directory: directory.clone(),
                person_key: person_key.clone(),
                origin: "audit.test.tryggdel.se/log".into(),
                signing_key: log_signing_key(),
                checkpoint_interval: Duration::ZERO,
                appenders: tryggdel_audit::DEFAULT_APPENDERS
                    .iter()
                    .map(|name| name.to_string())
                    .collect(),
            },
            audit_listener,
        )
        .await
        .unwrap();
        let notification_settings = tryggdel_notification::Settings {
            database_url: databases[1].url.clone(),
            tls: identity.server_tls("notification"),
            token: identity.verifier_config(),
            directory: directory.clone(),
            field_key: FieldKey::from_base64(&FieldKey::generate_base64()).unwrap(),
            receipt_signing_key: receipt_signing_key.clone(),
            urgent_deadline: URGENT_DEADLINE,
            ordinary_deadline: Duration::from_secs(24 * 3600),
            escalation_repeat: URGENT_DEADLINE,
            deadline_check_interval: Duration::from_millis(50),
            senders: vec!["disclosure".into()],
            audit: identity.endpoint("notification", audit_address),
            disclosure: identity.endpoint("notification", disclosure_address),
            relay: fast_relay(),
        };
        let notification =
            tryggdel_notification::spawn_on(&notification_settings, notification_listener)
                .await
                .unwrap();
        let disclosure = tryggdel_disclosure::spawn_on(
            &tryggdel_disclosure::Settings {
                database_url: databases[2].url.clone(),
                tls: identity.server_tls("disclosure"),
                token: identity.verifier_config(),
                field_key: FieldKey::from_base64(&FieldKey::generate_base64()).unwrap(),
                person_key,
                registry,
                directory,
                audit: identity.endpoint("disclosure", audit_address),
                notification: identity.endpoint("disclosure", notification_address),
                receipt_key: receipt_signing_key.verifying_key(),
                relay: fast_relay(),
            },
            disclosure_listener,
        )
        .await
        .unwrap();
        Some(System {
            identity,
            databases,
            audit,
            notification: Some(notification),
            notification_settings,
            notification_address,
            disclosure,
            receipt_key: receipt_signing_key.verifying_key(),
        })
    }

    async fn disclosures(&self, user: &str, organisation: &str, role: Role) -> Disclosures {
        let channel = self
            .identity
            .channel(self.disclosure.local_addr, organisation)
            .await;
        let token = self.identity.token(user, organisation, &[role]);
        DisclosureServiceClient::with_interceptor(channel, BearerInterceptor::new(&token))
    }

    /// A police officer of `region`.
    async fn officer(&self, region: &str) -> Notifications {
        let channel = self
            .identity
            .channel(self.notification_address, "polisen")
            .await;
        let token = self
            .identity
            .signer()
            .mint(&TokenRequest {
                user_id: format!("polis-{region}-1"),
                organisation: "polisen".into(),
                unit: Some("Regionledningscentralen".into()),
                roles: vec![Role::PoliceOfficer],
                police_region: Some(region.into()),
                display_name: None,
                valid_for: Duration::from_secs(600),
            })
            .unwrap();
        NotificationServiceClient::with_interceptor(channel, BearerInterceptor::new(&token))
    }

    async fn notifications(&self, user: &str, organisation: &str, role: Role) -> Notifications {
        let channel = self
            .identity
            .channel(self.notification_address, organisation)
            .await;
        let token = self.identity.token(user, organisation, &[role]);
        NotificationServiceClient::with_interceptor(channel, BearerInterceptor::new(&token))
    }

    /// Drafts, submits and approves a disclosure of `organisation`; returns it approved.
    async fn approved(&self, organisation: &str, request: &str, urgent: bool) -> Disclosure {
        let short = organisation
            .trim_end_matches("-kommun")
            .trim_end_matches("-stad");
        let mut caseworker = self
            .disclosures(
                &format!("handlaggare-{short}"),
                organisation,
                Role::Caseworker,
            )
            .await;
        let draft = caseworker
            .create_draft(CreateDraftRequest {
                client_request_id: request.into(),
                content: Some(content(urgent)),
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
        let mut decision_maker = self
            .disclosures(
                &format!("beslut-{short}"),
                organisation,
                Role::DecisionMaker,
            )
            .await;
        decision_maker
            .approve(ApproveRequest {
                disclosure_id: submitted.id.clone(),
                expected_version: submitted.version,
                comment: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Waits (bounded) until the disclosure reaches `state`, as its drafter sees it.
    async fn wait_for_state(&self, id: &str, state: DisclosureState) -> Disclosure {
        let mut caseworker = self
            .disclosures("handlaggare-bollnas", BOLLNAS, Role::Caseworker)
            .await;
        let mut seen = None;
        for _ in 0..300 {
            let disclosure = caseworker
                .get(GetRequest {
                    disclosure_id: id.into(),
                    reveal_protected: false,
                })
                .await
                .unwrap()
                .into_inner();
            if disclosure.state == state as i32 {
                return disclosure;
            }
            seen = Some(disclosure.state);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("disclosure {id} did not reach {state:?}; last seen {seen:?}");
    }

    /// The audit log's actions about one disclosure, in log order.
    async fn audit_actions(&self, id: &str) -> Vec<String> {
        let channel = self.identity.channel(self.audit.local_addr, "ivo").await;
        let token = self
            .identity
            .token("granskare-ivo", "ivo", &[Role::ComplianceOfficer]);
        let mut officer =
            AuditServiceClient::with_interceptor(channel, BearerInterceptor::new(&token));
        officer
            .query(QueryRequest {
                disclosure_id: id.into(),
                ..QueryRequest::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries
            .iter()
            .map(|entry| {
                let json: serde_json::Value = serde_json::from_slice(&entry.entry).unwrap();
                json["action"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    async fn stop(self) {
        self.disclosure.stop().await.unwrap();
        if let Some(notification) = self.notification {
            notification.stop().await.unwrap();
        }
        self.audit.stop().await.unwrap();
        for database in self.databases {
            database.remove().await;
        }
    }
}

fn content(urgent: bool) -> DraftContent {
    let person = |year, birth| Person {
        identity_number: tryggdel_domain::testing::personnummer_from(
            time::Date::from_calendar_date(year, time::Month::May, 17).unwrap(),
            birth,
        ),
        name: format!("Testperson {birth}"),
    };
    let answer = |key: &str| ChecklistAnswer {
        key: key.into(),
        answer: true,
        justification: "Skriftlig motivering enligt riskbedömning".into(),
    };
    DraftContent {
        unit: "Socialtjänsten".into(),
        case_reference: "LEV-1".into(),
        subject: Some(person(1980, 111)),
        victim: Some(person(1982, 222)),
        relation: "spouse".into(),
        victim_protection: "none".into(),
        legal_basis_id: "OSL-10-18c".into(),
        claimed_secrecy: "OSL-26-1".into(),
        recipient: "polismyndigheten".into(),
        crime_id: "mord".into(),
        crime_time: "future_risk".into(),
        risk_description: "Allvarliga hot".into(),
        checklist: vec![
            answer("special_circumstances"),
            answer("contributes_to_prevention"),
            answer("not_unsuitable"),
        ],
        data_items: vec![SelectedItem {
            item: "subject_name".into(),
            reason: "identifiering".into(),
        }],
        urgent,
        ..Default::default()
    }
}

async fn next(stream: &mut tonic::Streaming<Delivery>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("a delivery within 20 s")
        .unwrap()
        .expect("the stream is open")
}

async fn bollnas_reaches_mitt_and_comes_back_acknowledged(backend: TestBackend) {
    let Some(system) = System::start(backend).await else {
        return;
    };
    let mut mitt = system.officer("mitt").await;
    let mut mitt_stream = mitt
        .subscribe(SubscribeRequest { cursor: 0 })
        .await
        .unwrap()
        .into_inner();
    let mut ost_stream = system
        .officer("ost")
        .await
        .subscribe(SubscribeRequest { cursor: 0 })
        .await
        .unwrap()
        .into_inner();
    let mut syd_stream = system
        .officer("syd")
        .await
        .subscribe(SubscribeRequest { cursor: 0 })
        .await
        .unwrap()
        .into_inner();

    let approved = system.approved(BOLLNAS, "lev-bollnas-1", false).await;
    let decision = approved.decision.clone().unwrap();
    let delivery = next(&mut mitt_stream).await;
    assert_eq!(delivery.disclosure_id, approved.id);
    assert_eq!(delivery.police_region, "mitt");
    assert_eq!(delivery.payload_sha256, decision.payload_sha256);
    assert_eq!(
        tryggdel_domain::PolicePayload::from_canonical_bytes(&delivery.payload)
            .unwrap()
            .sha256_hex(),
        decision.payload_sha256
    );
    system
        .wait_for_state(&approved.id, DisclosureState::Delivered)
        .await;

    // Regions Syd and Öst are not told: the first thing their officers get is their own
    // region's delivery (Malmö → Syd, Jönköping → Öst), made after Bollnäs's.
    let malmo = system.approved(MALMO, "lev-malmo-1", false).await;
    let syd_first = next(&mut syd_stream).await;
    assert_eq!(syd_first.disclosure_id, malmo.id);
    assert_eq!(syd_first.police_region, "syd");
    let jonkoping = system.approved(JONKOPING, "lev-jonkoping-1", false).await;
    assert_eq!(next(&mut ost_stream).await.disclosure_id, jonkoping.id);
    let status = system
        .officer("syd")
        .await
        .acknowledge(AcknowledgeRequest {
            disclosure_id: approved.id.clone(),
            police_reference: "1200-K1-26".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // Acknowledged twice: one receipt, signed by the notification service's key.
    let first = mitt
        .acknowledge(AcknowledgeRequest {
            disclosure_id: approved.id.clone(),
            police_reference: "5000-K123456-26".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let second = mitt
        .acknowledge(AcknowledgeRequest {
            disclosure_id: approved.id.clone(),
            police_reference: "5000-K999999-26".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second);
    let statement = tryggdel_notification::verify_receipt(&first, &system.receipt_key).unwrap();
    assert_eq!(statement.police_reference, "5000-K123456-26");
    assert_eq!(statement.payload_sha256, decision.payload_sha256);
    let mut forged = first.clone();
    forged.statement[10] ^= 1;
    assert!(tryggdel_notification::verify_receipt(&forged, &system.receipt_key).is_err());

    // The disclosing organisation sees when and by whom, and can prove it with the receipt.
    let acknowledged = system
        .wait_for_state(&approved.id, DisclosureState::Acknowledged)
        .await;
    let record = acknowledged.delivery.unwrap();
    assert_eq!(record.police_region, "mitt");
    assert_eq!(record.police_reference, "5000-K123456-26");
    assert_eq!(record.acknowledged_by, "polis-mitt-1");
    tryggdel_domain::verify_receipt(
        &record.receipt_statement,
        &record.receipt_signature,
        &record.receipt_key_id,
        &system.receipt_key,
    )
    .unwrap();

    // Every hop is in the audit log.
    let mut actions = Vec::new();
    for _ in 0..200 {
        actions = system.audit_actions(&approved.id).await;
        if actions.len() >= 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for expected in [
        "disclosure.draft_created",
        "disclosure.submitted",
        "disclosure.approved",
        "notification.delivered",
        "disclosure.delivered",
        "notification.acknowledged",
        "disclosure.acknowledged",
    ] {
        assert!(
            actions.iter().any(|action| action == expected),
            "{expected} in {actions:?}"
        );
    }
    system.stop().await;
}

async fn approvals_wait_for_the_notification_service_and_none_is_lost(backend: TestBackend) {
    let Some(mut system) = System::start(backend).await else {
        return;
    };
    let mut mitt = system.officer("mitt").await;
    let mut stream = mitt
        .subscribe(SubscribeRequest { cursor: 0 })
        .await
        .unwrap()
        .into_inner();
    let first = system.approved(BOLLNAS, "lev-outage-0", false).await;
    let seen = next(&mut stream).await;
    assert_eq!(seen.disclosure_id, first.id);
    drop(stream);

    // The notification service is down while three disclosures are approved.
    system.notification.take().unwrap().stop().await.unwrap();
    let mut waiting = Vec::new();
    for n in 1..=3 {
        waiting.push(
            system
                .approved(BOLLNAS, &format!("lev-outage-{n}"), false)
                .await
                .id,
        );
    }
    for id in &waiting {
        let mut caseworker = system
            .disclosures("handlaggare-bollnas", BOLLNAS, Role::Caseworker)
            .await;
        let state = caseworker
            .get(GetRequest {
                disclosure_id: id.clone(),
                reveal_protected: false,
            })
            .await
            .unwrap()
            .into_inner()
            .state;
        assert_eq!(state, DisclosureState::Approved as i32);
    }

    // Back on its address: every approval is delivered, once, and a subscriber that
    // reconnects with its cursor gets exactly those.
    let listener = TcpListener::bind(system.notification_address)
        .await
        .unwrap();
    system.notification = Some(
        tryggdel_notification::spawn_on(&system.notification_settings, listener)
            .await
            .unwrap(),
    );
    let mut mitt = system.officer("mitt").await;
    let mut stream = mitt
        .subscribe(SubscribeRequest {
            cursor: seen.sequence,
        })
        .await
        .unwrap()
        .into_inner();
    let mut received = Vec::new();
    for _ in 0..3 {
        received.push(next(&mut stream).await.disclosure_id);
    }
    assert_eq!(received, waiting);
    for id in &waiting {
        system.wait_for_state(id, DisclosureState::Delivered).await;
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.message())
            .await
            .is_err(),
        "nothing is delivered twice"
    );
    system.stop().await;
}

async fn an_unacknowledged_urgent_disclosure_escalates(backend: TestBackend) {
    let Some(system) = System::start(backend).await else {
        return;
    };
    let urgent = system.approved(BOLLNAS, "lev-urgent-1", true).await;
    system
        .wait_for_state(&urgent.id, DisclosureState::Delivered)
        .await;
    let mut decision_maker = system
        .notifications("beslut-bollnas", BOLLNAS, Role::DecisionMaker)
        .await;
    let mut rounds = Vec::new();
    for _ in 0..400 {
        rounds = decision_maker
            .list_escalations(ListEscalationsRequest {
                disclosure_id: urgent.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .escalations
            .iter()
            .map(|escalation| escalation.round)
            .collect();
        if rounds.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(&rounds[..2], &[1, 2], "escalated and repeated: {rounds:?}");
    let mut actions = Vec::new();
    for _ in 0..200 {
        actions = system.audit_actions(&urgent.id).await;
        if actions
            .iter()
            .any(|action| action == "notification.escalated")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        actions
            .iter()
            .any(|action| action == "notification.escalated"),
        "{actions:?}"
    );
    system.stop().await;
}

async fn a_tampered_payload_is_refused(backend: TestBackend) {
    let Some(system) = System::start(backend).await else {
        return;
    };
    let approved = system.approved(BOLLNAS, "lev-tamper-1", false).await;
    system
        .wait_for_state(&approved.id, DisclosureState::Delivered)
        .await;
    // Someone holding the disclosure service's certificate sends other bytes under the hash
    // bound at approval.
    let mut as_disclosure = NotificationServiceClient::new(
        system
            .identity
            .service_channel(system.notification_address, "disclosure")
            .await,
    );
    let decision = approved.decision.unwrap();
    let status = as_disclosure
        .deliver(DeliverRequest {
            disclosure_id: uuid::Uuid::now_v7().to_string(),
            organisation: BOLLNAS.into(),
            state: "approved".into(),
            urgent: false,
            payload: b"{\"tampered\":true}".to_vec(),
            payload_sha256: decision.payload_sha256,
            approved_by: "beslut-bollnas".into(),
            approved_at_unix_ms: decision.decided_at_unix_ms,
            legal_basis_id: "OSL-10-18c".into(),
            registry_version: decision.registry_version,
            trace_id: String::new(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            status.code(),
            Code::InvalidArgument | Code::FailedPrecondition
        ),
        "{status:?}"
    );
    assert!(status.message().contains("payload_sha256"), "{status:?}");
    system.stop().await;
}

on_both_backends!(
    bollnas_reaches_mitt_and_comes_back_acknowledged,
    approvals_wait_for_the_notification_service_and_none_is_lost,
    an_unacknowledged_urgent_disclosure_escalates,
    a_tampered_payload_is_refused,
);
