//! Delivery to the police with all three services running (disclosure, notification, audit),
//! real mTLS and real tokens, on SQLite and on PostgreSQL: an approved disclosure reaches the
//! police region it belongs to, comes back with a signed receipt, survives an outage of the
//! notification service, and escalates when nobody acknowledges it in time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{BOLLNAS, Notifications, Options, System, assert_all_found};
use tonic::Code;
use tryggdel_auth::Role;
use tryggdel_proto::common::v1::DisclosureState;
use tryggdel_proto::notification::v1::notification_service_client::NotificationServiceClient;
use tryggdel_proto::notification::v1::{
    AcknowledgeRequest, DeliverRequest, Delivery, SubscribeRequest,
};
use tryggdel_test_support::{TestBackend, acknowledge, escalation_rounds, on_both_backends};

const JONKOPING: &str = "jonkoping-kommun";
const MALMO: &str = "malmo-stad";

/// How quickly an urgent disclosure must be acknowledged in these tests.
const URGENT_DEADLINE: Duration = Duration::from_millis(400);

/// The system with short deadlines, checked often, so that escalations happen within a test.
async fn start(backend: TestBackend) -> Option<System> {
    System::start(
        backend,
        Options {
            urgent_deadline: URGENT_DEADLINE,
            escalation_repeat: URGENT_DEADLINE,
            deadline_check_interval: Duration::from_millis(50),
            state_polls: 300,
        },
    )
    .await
}

/// The audit log's actions about one disclosure, in log order.
async fn audit_actions(system: &System, id: &str) -> Vec<String> {
    system
        .audit_entries(id)
        .await
        .iter()
        .map(|entry| entry["action"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits (bounded) until the audit log's actions about one disclosure satisfy `done`;
/// answers the actions last seen.
async fn wait_for_actions(
    system: &System,
    id: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let mut actions = Vec::new();
    for _ in 0..200 {
        actions = audit_actions(system, id).await;
        if done(&actions) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    actions
}

/// `officer`'s region's delivery stream, after `cursor`.
async fn subscribe(officer: &mut Notifications, cursor: u64) -> tonic::Streaming<Delivery> {
    officer
        .subscribe(SubscribeRequest { cursor })
        .await
        .unwrap()
        .into_inner()
}

async fn next(stream: &mut tonic::Streaming<Delivery>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("a delivery within 20 s")
        .unwrap()
        .expect("the stream is open")
}

async fn bollnas_reaches_mitt_and_comes_back_acknowledged(backend: TestBackend) {
    let Some(system) = start(backend).await else {
        return;
    };
    let mut mitt = system.officer("mitt").await;
    let mut mitt_stream = subscribe(&mut mitt, 0).await;
    let mut ost_stream = subscribe(&mut system.officer("ost").await, 0).await;
    let mut syd_stream = subscribe(&mut system.officer("syd").await, 0).await;

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
    let first = acknowledge(&mut mitt, &approved.id, "5000-K123456-26")
        .await
        .unwrap();
    let second = acknowledge(&mut mitt, &approved.id, "5000-K999999-26")
        .await
        .unwrap();
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

    // Every hop is in the audit log. (Waiting for a number of entries was not enough: the
    // reads of the case are entries too, and can arrive before the last hop.)
    let hops = [
        "disclosure.draft_created",
        "disclosure.submitted",
        "disclosure.approved",
        "notification.delivered",
        "disclosure.delivered",
        "notification.acknowledged",
        "disclosure.acknowledged",
    ];
    let actions = wait_for_actions(&system, &approved.id, |actions| {
        hops.iter()
            .all(|hop| actions.iter().any(|action| action == hop))
    })
    .await;
    assert_all_found(&actions, &hops);
    system.stop().await;
}

async fn approvals_wait_for_the_notification_service_and_none_is_lost(backend: TestBackend) {
    let Some(mut system) = start(backend).await else {
        return;
    };
    let mut mitt = system.officer("mitt").await;
    let mut stream = subscribe(&mut mitt, 0).await;
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
        let state = common::get(&mut caseworker, id).await.state;
        assert_eq!(state, DisclosureState::Approved as i32);
    }

    // Back on its address: every approval is delivered, once, and a subscriber that
    // reconnects with its cursor gets exactly those.
    system.restart_notification().await;
    let mut mitt = system.officer("mitt").await;
    let mut stream = subscribe(&mut mitt, seen.sequence).await;
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
    let Some(system) = start(backend).await else {
        return;
    };
    let urgent = system
        .approved_and_delivered(BOLLNAS, "lev-urgent-1", true)
        .await;
    let mut decision_maker = system
        .notifications("beslut-bollnas", BOLLNAS, Role::DecisionMaker)
        .await;
    let mut rounds = Vec::new();
    for _ in 0..400 {
        rounds = escalation_rounds(&mut decision_maker, &urgent.id).await;
        if rounds.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(&rounds[..2], &[1, 2], "escalated and repeated: {rounds:?}");
    let escalated = |actions: &[String]| {
        actions
            .iter()
            .any(|action| action == "notification.escalated")
    };
    let actions = wait_for_actions(&system, &urgent.id, escalated).await;
    assert!(escalated(&actions), "{actions:?}");
    system.stop().await;
}

async fn a_tampered_payload_is_refused(backend: TestBackend) {
    let Some(system) = start(backend).await else {
        return;
    };
    let approved = system
        .approved_and_delivered(BOLLNAS, "lev-tamper-1", false)
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
            person_refs: Vec::new(),
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
