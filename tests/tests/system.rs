//! The system started exactly as `tryggdel start` starts it, in a fresh data directory, and
//! called the way a newcomer would: with the generated client certificate and a development
//! token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use tonic::transport::Channel;
use tryggdel::audit::Connection;
use tryggdel_auth::{Role, SignerConfig, TokenRequest, TokenSigner};
use tryggdel_proto::audit::v1::QueryRequest;
use tryggdel_proto::common::v1::DisclosureState;
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_system::development::{AUDIENCE, ISSUER};
use tryggdel_system::{DataDirectory, SystemOptions, read, start_system};
use tryggdel_test_support::BearerInterceptor;

fn token(data: &DataDirectory, user: &str, organisation: &str, role: Role) -> String {
    TokenSigner::new(SignerConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        private_key_pem: read(&data.signing_key()).unwrap(),
    })
    .unwrap()
    .mint(&TokenRequest {
        user_id: user.into(),
        organisation: organisation.into(),
        unit: None,
        roles: vec![role],
        police_region: None,
        display_name: None,
        valid_for: Duration::from_secs(300),
    })
    .unwrap()
}

async fn channel(
    data: &DataDirectory,
    address: std::net::SocketAddr,
    organisation: &str,
) -> Channel {
    tryggdel_tls::connect_channel(
        &format!("https://{address}"),
        "localhost",
        &read(&data.ca_cert()).unwrap(),
        &read(&data.client_cert(organisation)).unwrap(),
        &read(&data.client_key(organisation)).unwrap(),
    )
    .await
    .unwrap()
}

/// A disclosure client of `user` of `organisation` with `role`, on the disclosure service at
/// `address`, as a newcomer makes one from the data directory.
async fn disclosures(
    data: &DataDirectory,
    address: std::net::SocketAddr,
    user: &str,
    organisation: &str,
    role: Role,
) -> common::Disclosures {
    DisclosureServiceClient::with_interceptor(
        channel(data, address, organisation).await,
        BearerInterceptor::new(&token(data, user, organisation, role)),
    )
}

/// The compliance officer of the supervisor, calling the audit service at `address`.
fn compliance_officer(data: &DataDirectory, address: std::net::SocketAddr) -> Connection {
    Connection::development(
        data,
        &format!("https://{address}"),
        "ivo",
        token(data, "granskare-ivo", "ivo", Role::ComplianceOfficer),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_command_serves_a_disclosure_from_draft_to_approval_and_keeps_it() {
    let directory = tempfile::tempdir().unwrap();
    let options = SystemOptions {
        data_dir: directory.path().join("data"),
        disclosure_listen: "127.0.0.1:0".parse().unwrap(),
        audit_listen: "127.0.0.1:0".parse().unwrap(),
        notification_listen: "127.0.0.1:0".parse().unwrap(),
        console_listen: "127.0.0.1:0".parse().unwrap(),
        database_url: None,
        directory: None,
    };
    let system = start_system(&options).await.unwrap();
    let data = DataDirectory::new(&options.data_dir);
    let address = system.disclosure.local_addr;
    let ca_before = read(&data.ca_cert()).unwrap();

    let mut caseworker = disclosures(
        &data,
        address,
        "handlaggare-bollnas",
        "bollnas-kommun",
        Role::Caseworker,
    )
    .await;
    let submitted = common::submitted(
        &mut caseworker,
        "e2e-request-1",
        common::content("E2E-1", true),
    )
    .await;
    assert_eq!(submitted.police_region, "mitt");
    let mut decision_maker = disclosures(
        &data,
        address,
        "beslut-bollnas",
        "bollnas-kommun",
        Role::DecisionMaker,
    )
    .await;
    let approved = common::approve(&mut decision_maker, &submitted).await;
    assert_eq!(approved.state, DisclosureState::Approved as i32);

    // A compliance officer of the supervisor finds the events in the audit log, exports
    // the log and verifies it offline with the log's public key.
    let officer = compliance_officer(&data, system.audit.local_addr);
    let mut entries = Vec::new();
    for _ in 0..200 {
        entries = officer
            .audit()
            .await
            .unwrap()
            .query(QueryRequest {
                disclosure_id: submitted.id.clone(),
                ..QueryRequest::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        // The three steps, then the hand-over to the police (notification and disclosure).
        if entries.len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each service's events are in the log in the order that service committed them. Across
    // services the log records arrival order: the notification service's `delivered` may
    // arrive before the disclosure service's relay has sent the approval.
    let parsed: Vec<(u64, serde_json::Value)> = entries
        .iter()
        .map(|entry| (entry.index, serde_json::from_slice(&entry.entry).unwrap()))
        .collect();
    let from = |source: &str| -> Vec<String> {
        parsed
            .iter()
            .filter(|(_, json)| json["source"] == source)
            .map(|(_, json)| json["action"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        from("disclosure"),
        [
            "disclosure.draft_created",
            "disclosure.submitted",
            "disclosure.approved",
            "disclosure.delivered"
        ]
    );
    assert_eq!(from("notification"), ["notification.delivered"]);
    let approved_index = parsed
        .iter()
        .find(|(_, json)| json["action"] == "disclosure.approved")
        .map(|(index, _)| *index)
        .unwrap();
    // Checkpoints are signed at most once a second; wait for one that covers the approval.
    let mut early = tryggdel::audit::checkpoint(&officer, 0).await.unwrap();
    for _ in 0..100 {
        if early.tree_size > approved_index {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        early = tryggdel::audit::checkpoint(&officer, 0).await.unwrap();
    }
    let early_file = directory.path().join("early.checkpoint");
    std::fs::write(&early_file, &early.note).unwrap();
    let export_file = directory.path().join("audit-1.jsonl");
    let written = tryggdel::audit::export(
        &officer,
        early.tree_size,
        std::fs::File::create(&export_file).unwrap(),
        &mut |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(written, early.tree_size);
    let key = data.audit_log_vkey().display().to_string();
    let report = tryggdel::audit::verify(
        &export_file,
        &key,
        &[],
        Some(approved_index),
        &mut |_, _| {},
    )
    .unwrap();
    assert!(report.is_ok(), "{report}");
    system.stop().await.unwrap();

    // A second start reuses the certificates and keys, and the disclosure is still there.
    let system = start_system(&options).await.unwrap();
    assert_eq!(read(&data.ca_cert()).unwrap(), ca_before);
    let mut caseworker = disclosures(
        &data,
        system.disclosure.local_addr,
        "handlaggare-bollnas",
        "bollnas-kommun",
        Role::Caseworker,
    )
    .await;
    let again = common::get(&mut caseworker, &submitted.id).await;
    // Handed to region Mitt by the notification service that `start` runs too.
    assert_eq!(again.state, DisclosureState::Delivered as i32);
    assert_eq!(again.delivery.as_ref().unwrap().police_region, "mitt");
    assert_eq!(
        again.decision.unwrap().payload_sha256,
        approved.decision.unwrap().payload_sha256
    );

    // The log carried on: a later export is consistent with the checkpoint taken before.
    let officer = compliance_officer(&data, system.audit.local_addr);
    let export_file = directory.path().join("audit-2.jsonl");
    // After the restart the first checkpoint is published once its witnesses cosigned it.
    let mut attempts = 0;
    loop {
        let exported = tryggdel::audit::export(
            &officer,
            0,
            std::fs::File::create(&export_file).unwrap(),
            &mut |_, _| {},
        )
        .await;
        match exported {
            Ok(_) => break,
            Err(error) if attempts < 200 && format!("{error:#}").contains("cosigned") => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(error) => panic!("export: {error:#}"),
        }
    }
    let key = data.audit_log_vkey().display().to_string();
    let report =
        tryggdel::audit::verify(&export_file, &key, &[early_file], None, &mut |_, _| {}).unwrap();
    assert!(report.is_ok(), "{report}");
    assert!(report.tree_size > early.tree_size);
    system.stop().await.unwrap();
}

/// Every service's binary carries exactly the migration files of its directories.
#[test]
fn every_migration_file_of_every_service_is_embedded() {
    let services = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../services");
    for (service, migrations) in [
        ("audit", &tryggdel_audit::MIGRATIONS),
        ("disclosure", &tryggdel_disclosure::MIGRATIONS),
        ("notification", &tryggdel_notification::MIGRATIONS),
    ] {
        let dir = services.join(service).join("migrations");
        if let Err(problem) = migrations.check_embedded(&dir) {
            panic!("{service}: {problem}");
        }
    }
}
