//! Inboxes, with all three services running (disclosure, notification, audit), real mTLS and
//! real tokens, on SQLite and on PostgreSQL: a disclosure to a law-enforcement authority other
//! than the police goes to that authority's one inbox, where its officers receive and
//! acknowledge it, its deadline escalates as a police delivery's does, and no police region
//! sees it; the answer to a request for information goes
//! to the region of the officer who asked, not to the region of the organisation's county.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{BOLLNAS, Notifications, Options, System, approve, content, submitted};
use tryggdel_auth::Role;
use tryggdel_proto::common::v1::DisclosureState;
use tryggdel_proto::disclosure::v1::{
    ChecklistAnswer, DraftContent, GetInformationRequestRequest, InformationRequestState,
    RequestInformationRequest,
};
use tryggdel_proto::notification::v1::{Delivery, ListPendingRequest};
use tryggdel_test_support::{TestBackend, acknowledge, escalation_rounds, on_both_backends};

const AKLAGARMYNDIGHETEN: &str = "aklagarmyndigheten";

/// Urgent deliveries are due quickly and checked often, so that one escalates within a test.
fn options() -> Options {
    Options {
        urgent_deadline: Duration::from_millis(400),
        escalation_repeat: Duration::from_secs(900),
        deadline_check_interval: Duration::from_millis(50),
        state_polls: 400,
    }
}

/// What `officer` has pending.
async fn pending(officer: &mut Notifications) -> Vec<Delivery> {
    officer
        .list_pending(ListPendingRequest::default())
        .await
        .unwrap()
        .into_inner()
        .deliveries
}

/// A prosecutor: an officer of Åklagarmyndigheten, whose token names no region.
async fn prosecutor(system: &System) -> Notifications {
    let token = system
        .identity
        .officer_token("aklagare-1", AKLAGARMYNDIGHETEN, None);
    system.notifications_as(AKLAGARMYNDIGHETEN, &token).await
}

/// A committed crime reported to the prosecutors under 10 kap. 23 § OSL.
fn to_the_prosecutors() -> DraftContent {
    DraftContent {
        legal_basis_id: "OSL-10-23".into(),
        recipient: AKLAGARMYNDIGHETEN.into(),
        crime_time: "committed".into(),
        checklist: vec![ChecklistAnswer {
            key: "suspicion_of_crime".into(),
            answer: true,
            justification: "Uppgifter i akten om ett begånget grovt brott".into(),
        }],
        ..content("INBOX-1", true)
    }
}

async fn a_disclosure_to_another_authority_goes_to_its_inbox(backend: TestBackend) {
    let Some(system) = System::start(backend, options()).await else {
        return;
    };
    let mut caseworker = system
        .disclosures("handlaggare-bollnas", BOLLNAS, Role::Caseworker)
        .await;
    let draft = submitted(&mut caseworker, "inbox-0001", to_the_prosecutors()).await;
    assert_eq!(draft.police_region, AKLAGARMYNDIGHETEN);
    let mut decider = system
        .disclosures("beslut-bollnas", BOLLNAS, Role::DecisionMaker)
        .await;
    let approved = approve(&mut decider, &draft).await;
    system
        .wait_for_state(&approved.id, DisclosureState::Delivered)
        .await;

    // The prosecutors have it; the police region of Bollnäs's county does not.
    let mut prosecutor = prosecutor(&system).await;
    let theirs = pending(&mut prosecutor).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].disclosure_id, approved.id);
    assert_eq!(theirs[0].police_region, AKLAGARMYNDIGHETEN);
    let mut mitt = system.officer("mitt").await;
    assert!(
        pending(&mut mitt)
            .await
            .iter()
            .all(|delivery| delivery.disclosure_id != approved.id)
    );
    let status = acknowledge(&mut mitt, &approved.id, "5000-K1-26")
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");

    // Unacknowledged past its (urgent) deadline, it escalates to Bollnäs's decision makers.
    let mut escalations = system
        .notifications("beslut-bollnas", BOLLNAS, Role::DecisionMaker)
        .await;
    let mut rounds = Vec::new();
    for _ in 0..400 {
        rounds = escalation_rounds(&mut escalations, &approved.id).await;
        if !rounds.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(rounds.first(), Some(&1), "escalated: {rounds:?}");

    // Their receipt acknowledges it, and the audit log names them as the recipient.
    let receipt = acknowledge(&mut prosecutor, &approved.id, "AM-2026-0042")
        .await
        .unwrap();
    assert_eq!(receipt.acknowledged_by, "aklagare-1");
    system
        .wait_for_state(&approved.id, DisclosureState::Acknowledged)
        .await;
    let entries = system.audit_entries(&approved.id).await;
    let approval = entries
        .iter()
        .find(|entry| entry["action"] == "disclosure.approved")
        .unwrap();
    assert_eq!(approval["recipient"], AKLAGARMYNDIGHETEN, "{approval}");
    system.stop().await;
}

async fn an_answer_to_a_request_goes_to_the_asking_officers_region(backend: TestBackend) {
    let Some(system) = System::start(backend, options()).await else {
        return;
    };
    // An officer of Region Syd asks Bollnäs (whose county routes to Region Mitt).
    let syd_token = system.police_token("syd", None);
    let mut syd_asks = system.disclosures_as("polisen", &syd_token).await;
    let reply_by = (time::OffsetDateTime::now_utc() + Duration::from_secs(3 * 24 * 3600))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let request = syd_asks
        .request_information(RequestInformationRequest {
            client_request_id: "inbox-begaran-1".into(),
            organisation: BOLLNAS.into(),
            subject_identity_number: String::new(),
            subject_name: String::new(),
            information_sought: "Kända hot mot den närstående".into(),
            purpose: "Förhindra brott mot en närstående".into(),
            legal_ground: "Uppgiftsskyldighet".into(),
            urgent: true,
            reply_by,
        })
        .await
        .unwrap()
        .into_inner();

    let mut caseworker = system
        .disclosures("handlaggare-bollnas", BOLLNAS, Role::Caseworker)
        .await;
    let answer = DraftContent {
        answers_information_request_id: request.id.clone(),
        ..content("SVAR-1", true)
    };
    let draft = submitted(&mut caseworker, "inbox-svar-1", answer).await;
    assert_eq!(draft.police_region, "syd");
    let mut decider = system
        .disclosures("beslut-bollnas", BOLLNAS, Role::DecisionMaker)
        .await;
    let approved = approve(&mut decider, &draft).await;
    system
        .wait_for_state(&approved.id, DisclosureState::Delivered)
        .await;

    let mut syd = system.officer("syd").await;
    let theirs = pending(&mut syd).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].disclosure_id, approved.id);
    let mut mitt = system.officer("mitt").await;
    assert!(pending(&mut mitt).await.is_empty());
    acknowledge(&mut syd, &approved.id, "5000-K9-26")
        .await
        .unwrap();
    system
        .wait_for_state(&approved.id, DisclosureState::Acknowledged)
        .await;
    let answered = syd_asks
        .get_information_request(GetInformationRequestRequest {
            information_request_id: request.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.state(), InformationRequestState::Answered);
    assert_eq!(answered.answered_by_disclosure_id, approved.id);
    system.stop().await;
}

on_both_backends!(
    a_disclosure_to_another_authority_goes_to_its_inbox,
    an_answer_to_a_request_goes_to_the_asking_officers_region,
);
