//! A disclosure withdrawn after delivery, with all three services running (disclosure,
//! notification, audit), real mTLS and real tokens, on SQLite and on PostgreSQL: the drafter
//! withdraws it with a reason, the police see the recall on their stream and in ListPending,
//! acknowledge it, and the audit log has the withdrawal, the recall and its acknowledgement.
//! A disclosure the police never got is withdrawn as before, with no recall.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{BOLLNAS, Options, System, assert_all_found, content, submitted};
use tonic::Code;
use tryggdel_auth::Role;
use tryggdel_proto::common::v1::DisclosureState;
use tryggdel_proto::disclosure::v1::WithdrawRequest;
use tryggdel_proto::notification::v1::{
    AcknowledgeRecallRequest, Delivery, ListPendingRequest, SubscribeRequest,
};
use tryggdel_test_support::{TestBackend, acknowledge, on_both_backends};

async fn next(stream: &mut tonic::Streaming<Delivery>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("a delivery within 20 s")
        .unwrap()
        .expect("the stream is open")
}

/// Waits (bounded) until the audit log's actions about `id` include every one of `expected`.
async fn wait_for_actions(system: &System, id: &str, expected: &[&str]) -> Vec<String> {
    let mut actions = Vec::new();
    for _ in 0..400 {
        actions = system
            .audit_entries(id)
            .await
            .iter()
            .map(|entry| entry["action"].as_str().unwrap().to_owned())
            .collect();
        if expected
            .iter()
            .all(|action| actions.iter().any(|found| found == action))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    actions
}

async fn a_delivered_disclosure_withdrawn_is_recalled_and_acknowledged(backend: TestBackend) {
    let options = Options {
        urgent_deadline: Duration::from_secs(900),
        escalation_repeat: Duration::from_secs(900),
        deadline_check_interval: Duration::from_secs(1),
        state_polls: 400,
    };
    let Some(system) = System::start(backend, options).await else {
        return;
    };
    let mut mitt = system.officer("mitt").await;
    let mut stream = mitt
        .subscribe(SubscribeRequest { cursor: 0 })
        .await
        .unwrap()
        .into_inner();
    let approved = system
        .approved_and_delivered(BOLLNAS, "recall-1", false)
        .await;
    let delivery = next(&mut stream).await;
    assert_eq!(delivery.disclosure_id, approved.id);
    assert!(delivery.recall.is_none());
    let delivered = system
        .wait_for_state(&approved.id, DisclosureState::Delivered)
        .await;

    // The drafter withdraws it; after delivery that needs a reason.
    let mut caseworker = system
        .disclosures("handlaggare-bollnas", BOLLNAS, Role::Caseworker)
        .await;
    let withdraw = |reason: &str| WithdrawRequest {
        disclosure_id: delivered.id.clone(),
        expected_version: delivered.version,
        reason: reason.to_owned(),
    };
    let status = caseworker.withdraw(withdraw("")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let withdrawn = caseworker
        .withdraw(withdraw("Fel person angiven"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(withdrawn.state, DisclosureState::Withdrawn as i32);

    // The police see the recall on their stream and in ListPending.
    let recalled = next(&mut stream).await;
    assert_eq!(recalled.disclosure_id, approved.id);
    assert_eq!(recalled.sequence, delivery.sequence);
    let recall = recalled.recall.unwrap();
    assert_eq!(recall.reason, "Fel person angiven");
    assert_eq!(recall.withdrawn_by, "handlaggare-bollnas");
    let pending = mitt
        .list_pending(ListPendingRequest::default())
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<_> = pending
        .deliveries
        .iter()
        .filter(|listed| listed.disclosure_id == approved.id)
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].recall.as_ref().unwrap().reason,
        "Fel person angiven"
    );
    // The recalled delivery itself is no longer acknowledged; its recall is.
    let status = acknowledge(&mut mitt, &approved.id, "5000-K1-26")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let acknowledged = mitt
        .acknowledge_recall(AcknowledgeRecallRequest {
            disclosure_id: approved.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acknowledged.acknowledged_by, "polis-mitt-1");
    let pending = mitt
        .list_pending(ListPendingRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        pending
            .deliveries
            .iter()
            .all(|listed| listed.disclosure_id != approved.id)
    );

    // The withdrawal, the recall and its acknowledgement are in the audit log.
    let expected = [
        "disclosure.approved",
        "notification.delivered",
        "disclosure.delivered",
        "disclosure.recalled",
        "notification.recalled",
        "notification.recall_acknowledged",
    ];
    let actions = wait_for_actions(&system, &approved.id, &expected).await;
    assert_all_found(&actions, &expected);

    // A disclosure the police never got is withdrawn as before: no recall reaches them.
    let mut other = system
        .disclosures("handlaggare-bollnas", BOLLNAS, Role::Caseworker)
        .await;
    let never_delivered = submitted(&mut other, "recall-2", content("LEV-2", false)).await;
    let plain = other
        .withdraw(WithdrawRequest {
            disclosure_id: never_delivered.id.clone(),
            expected_version: never_delivered.version,
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plain.state, DisclosureState::Withdrawn as i32);
    let actions = wait_for_actions(&system, &never_delivered.id, &["disclosure.withdrawn"]).await;
    assert_all_found(&actions, &["disclosure.withdrawn"]);
    assert!(
        actions.iter().all(|action| !action.contains("recall")),
        "{actions:?}"
    );
    let status = mitt
        .acknowledge_recall(AcknowledgeRecallRequest {
            disclosure_id: never_delivered.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    system.stop().await;
}

on_both_backends!(a_delivered_disclosure_withdrawn_is_recalled_and_acknowledged);
