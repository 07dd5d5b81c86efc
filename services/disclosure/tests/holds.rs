//! Holds on disclosures through the real server (mTLS, tokens) with the audit service, on
//! SQLite and on PostgreSQL: who may place, extend, end and list them, the maximum length,
//! retried placements, and that every change reaches the audit log with its details.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use time::macros::format_description;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_auth::Role;
use tryggdel_disclosure::RunningService;
use tryggdel_proto::audit::v1::QueryRequest;
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_proto::disclosure::v1::*;
use tryggdel_service_kit::today_in_sweden;
use tryggdel_system::testing::{bind_with_identity, fast_relay, test_system};
use tryggdel_system::{BoundSystem, Service};
use tryggdel_test_support::draft::draft_content;
use tryggdel_test_support::{
    BearerInterceptor, TestBackend, TestDatabase, TestIdentity, on_both_backends,
};

type Client = DisclosureServiceClient<InterceptedService<Channel, BearerInterceptor>>;

const BOLLNAS: &str = "bollnas-kommun";
const JONKOPING: &str = "jonkoping-kommun";
const POLICE: &str = "polisen";
const MAX_DAYS: u32 = 30;

struct Harness {
    identity: TestIdentity,
    service: RunningService,
    audit: tryggdel_audit::RunningService,
    database: TestDatabase,
    audit_database: TestDatabase,
    _data: tempfile::TempDir,
}

impl Harness {
    /// The audit and disclosure services (holds at most [`MAX_DAYS`] long); the notification
    /// service is absent, so approvals wait in the outbox.
    async fn start(backend: TestBackend) -> Option<Harness> {
        let database = TestDatabase::create(backend).await?;
        let audit_database = TestDatabase::create(backend).await?;
        let data = tempfile::tempdir().unwrap();
        let builder = test_system(data.path())
            .database(Service::Audit, audit_database.url.clone())
            .database(Service::Disclosure, database.url.clone())
            .audit(|settings| settings.appenders = vec!["disclosure".into()])
            .disclosure(|settings| {
                settings.relay = fast_relay();
                settings.hold_max_days = MAX_DAYS;
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

    async fn client_with_token(&self, organisation: &str, token: &str) -> Client {
        let channel = self
            .identity
            .channel(self.service.local_addr, organisation)
            .await;
        DisclosureServiceClient::with_interceptor(channel, BearerInterceptor::new(token))
    }

    async fn client(&self, organisation: &str, role: Role) -> Client {
        let token = self.identity.role_token(organisation, role);
        self.client_with_token(organisation, &token).await
    }

    async fn police(&self, region: &str) -> Client {
        let token = self
            .identity
            .officer_token("utredare-polisen", POLICE, Some(region));
        self.client_with_token(POLICE, &token).await
    }

    /// An approved disclosure of Bollnäs (to the police region mitt).
    async fn approved(&self, request_id: &str) -> Disclosure {
        let mut caseworker = self.client(BOLLNAS, Role::Caseworker).await;
        let draft = caseworker
            .create_draft(CreateDraftRequest {
                client_request_id: request_id.into(),
                content: Some(draft_content("BOL-2026-0099", "OSL-26-1", false).unwrap()),
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
        self.client(BOLLNAS, Role::DecisionMaker)
            .await
            .approve(ApproveRequest {
                disclosure_id: submitted.id.clone(),
                expected_version: submitted.version,
                comment: "Beslutat enligt delegation".into(),
                close_relative_judgement: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// The audit log's entries about `disclosure_id` with `action`, as JSON, once the outbox
    /// has reached the log.
    async fn logged(&self, disclosure_id: &str, action: &str) -> Vec<serde_json::Value> {
        let store = self.service.api.store();
        for _ in 0..400 {
            if store.audit_backlog().await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let channel = self.identity.channel(self.audit.local_addr, "ivo").await;
        let token = self
            .identity
            .token("granskare-ivo", "ivo", &[Role::ComplianceOfficer]);
        AuditServiceClient::with_interceptor(channel, BearerInterceptor::new(&token))
            .query(QueryRequest {
                disclosure_id: disclosure_id.into(),
                action: action.into(),
                ..QueryRequest::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries
            .iter()
            .map(|entry| serde_json::from_slice(&entry.entry).unwrap())
            .collect()
    }

    async fn stop(self) {
        self.service.stop().await.unwrap();
        self.audit.stop().await.unwrap();
        self.database.remove().await;
        self.audit_database.remove().await;
    }
}

/// The day `days` after today, as a request gives it.
fn day(days: i64) -> String {
    (today_in_sweden() + time::Duration::days(days))
        .format(format_description!("[year]-[month]-[day]"))
        .unwrap()
}

fn place(disclosure: &Disclosure, request_id: &str, until: &str) -> PlaceHoldRequest {
    PlaceHoldRequest {
        client_request_id: request_id.into(),
        disclosure_id: disclosure.id.clone(),
        legal_ground: "RB-23-18 förundersökning".into(),
        until: until.into(),
    }
}

async fn holds_are_placed_extended_and_ended_and_audited(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let disclosure = harness.approved("req-hold-0001").await;
    let mut officer = harness.client(BOLLNAS, Role::ComplianceOfficer).await;

    // Longer than the maximum, or already past: refused, saying why.
    let status = officer
        .place_hold(place(
            &disclosure,
            "hold-req-0001",
            &day(i64::from(MAX_DAYS) + 1),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("until: "), "{status:?}");
    assert!(
        status.message().contains("at most 30 days (hold_max_days)"),
        "{status:?}"
    );
    let status = officer
        .place_hold(place(&disclosure, "hold-req-0001", &day(-1)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut no_ground = place(&disclosure, "hold-req-0001", &day(10));
    no_ground.legal_ground = " ".into();
    let status = officer.place_hold(no_ground).await.unwrap_err();
    assert!(status.message().starts_with("legal_ground"), "{status:?}");

    // Placed; a retry with the same request id returns the same hold.
    let hold = officer
        .place_hold(place(&disclosure, "hold-req-0001", &day(10)))
        .await
        .unwrap()
        .into_inner();
    assert!(hold.active);
    assert_eq!(hold.version, 1);
    assert_eq!(hold.issuer_organisation, BOLLNAS);
    assert_eq!(hold.until, day(10));
    let again = officer
        .place_hold(place(&disclosure, "hold-req-0001", &day(10)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, hold.id);

    // Extended: later only, within the maximum from today, under the version last seen.
    let status = officer
        .extend_hold(ExtendHoldRequest {
            hold_id: hold.id.clone(),
            expected_version: 1,
            until: day(5),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = officer
        .extend_hold(ExtendHoldRequest {
            hold_id: hold.id.clone(),
            expected_version: 1,
            until: day(i64::from(MAX_DAYS) + 1),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let extended = officer
        .extend_hold(ExtendHoldRequest {
            hold_id: hold.id.clone(),
            expected_version: 1,
            until: day(20),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (extended.version, extended.until.as_str()),
        (2, day(20).as_str())
    );
    let status = officer
        .end_hold(EndHoldRequest {
            hold_id: hold.id.clone(),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);

    // Ended; an ended hold changes no more.
    let ended = harness
        .client(BOLLNAS, Role::DecisionMaker)
        .await
        .end_hold(EndHoldRequest {
            hold_id: hold.id.clone(),
            expected_version: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!ended.active);
    assert!(ended.ended_at_unix_ms > 0);
    let status = officer
        .extend_hold(ExtendHoldRequest {
            hold_id: hold.id.clone(),
            expected_version: 3,
            until: day(25),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    let listed = officer
        .list_holds(ListHoldsRequest {
            disclosure_id: disclosure.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .holds;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0], ended);

    // Each change is in the audit log once, with the hold's details.
    let placed = harness
        .logged(&disclosure.id, "disclosure.hold_placed")
        .await;
    assert_eq!(placed.len(), 1, "a retried placement is logged once");
    let details = &placed[0]["details"];
    assert_eq!(details["hold_id"], hold.id.as_str());
    assert_eq!(details["until"], day(10).as_str());
    assert_eq!(details["legal_ground"], "RB-23-18 förundersökning");
    assert_eq!(details["issuer"], BOLLNAS);
    assert_eq!(placed[0]["disclosure_id"], disclosure.id.as_str());
    let extended_entries = harness
        .logged(&disclosure.id, "disclosure.hold_extended")
        .await;
    assert_eq!(extended_entries.len(), 1);
    assert_eq!(extended_entries[0]["details"]["until"], day(20).as_str());
    let ended_entries = harness
        .logged(&disclosure.id, "disclosure.hold_ended")
        .await;
    assert_eq!(ended_entries.len(), 1);
    assert_eq!(ended_entries[0]["details"]["hold_id"], hold.id.as_str());
    harness.stop().await;
}

async fn only_the_organisation_and_the_receiving_authority_hold(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let disclosure = harness.approved("req-hold-0002").await;

    // Another municipality does not even learn the disclosure exists; a supervisor sees it
    // but places no holds; an admin of the organisation is not one of its officers.
    let status = harness
        .client(JONKOPING, Role::ComplianceOfficer)
        .await
        .place_hold(place(&disclosure, "hold-req-0002", &day(10)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = harness
        .client("ivo", Role::ComplianceOfficer)
        .await
        .place_hold(place(&disclosure, "hold-req-0002", &day(10)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = harness
        .client(BOLLNAS, Role::Admin)
        .await
        .list_holds(ListHoldsRequest {
            disclosure_id: disclosure.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    // An officer of another police region did not receive it.
    let status = harness
        .police("syd")
        .await
        .place_hold(place(&disclosure, "hold-req-0002", &day(10)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // The receiving region's officer places one, named as its issuer; only the police change it.
    let mut police = harness.police("mitt").await;
    let hold = police
        .place_hold(place(&disclosure, "hold-req-0002", &day(10)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hold.issuer_organisation, POLICE);
    let status = harness
        .client(BOLLNAS, Role::ComplianceOfficer)
        .await
        .end_hold(EndHoldRequest {
            hold_id: hold.id.clone(),
            expected_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let logged = harness
        .logged(&disclosure.id, "disclosure.hold_placed")
        .await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["details"]["issuer"], POLICE);
    assert_eq!(logged[0]["actor"]["organisation"], POLICE);

    // A draft is no one's to hold but its organisation's.
    let mut caseworker = harness.client(BOLLNAS, Role::Caseworker).await;
    let draft = caseworker
        .create_draft(CreateDraftRequest {
            client_request_id: "req-hold-0003".into(),
            content: Some(draft_content("BOL-2026-0100", "OSL-26-1", false).unwrap()),
        })
        .await
        .unwrap()
        .into_inner();
    let status = police
        .place_hold(place(&draft, "hold-req-0003", &day(10)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        caseworker
            .place_hold(place(&draft, "hold-req-0003", &day(10)))
            .await
            .is_ok()
    );
    harness.stop().await;
}

async fn the_store_finds_the_active_hold_for_a_day(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let disclosure = harness.approved("req-hold-0004").await;
    let store = harness.service.api.store();
    let today = today_in_sweden();
    assert_eq!(
        store.active_hold(&disclosure.id, today).await.unwrap(),
        None
    );
    let hold = harness
        .client(BOLLNAS, Role::Caseworker)
        .await
        .place_hold(place(&disclosure, "hold-req-0004", &day(3)))
        .await
        .unwrap()
        .into_inner();
    let active = store.active_hold(&disclosure.id, today).await.unwrap();
    assert_eq!(active.map(|hold| hold.id), Some(hold.id.clone()));
    let last_day = today + time::Duration::days(3);
    assert!(
        store
            .active_hold(&disclosure.id, last_day)
            .await
            .unwrap()
            .is_some()
    );
    // It ends on its last day by itself.
    assert_eq!(
        store
            .active_hold(&disclosure.id, last_day + time::Duration::days(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.holds_of(&disclosure.id).await.unwrap().len(), 1);
    harness.stop().await;
}

on_both_backends!(
    holds_are_placed_extended_and_ended_and_audited,
    only_the_organisation_and_the_receiving_authority_hold,
    the_store_finds_the_active_hold_for_a_day,
);
