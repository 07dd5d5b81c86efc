//! Integration tests: the real audit service on 127.0.0.1:0 with real mTLS and real tokens, on
//! SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::{
    BOLLNAS, Deployment, ORIGIN, consistency_proof, event, events, latest_checkpoint, proof_hashes,
};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_audit::RunningService;
use tryggdel_audit_verify::{VerifyOptions, verify_export};
use tryggdel_auth::Role;
use tryggdel_domain::IdentityNumber;
use tryggdel_merkle::checkpoint::CheckpointVerifier;
use tryggdel_merkle::{leaf_hash, verify_consistency, verify_inclusion};
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::audit::v1::*;
use tryggdel_test_support::{BearerInterceptor, TestBackend, on_both_backends};

const IVO: &str = "ivo";

type UserClient = AuditServiceClient<InterceptedService<Channel, BearerInterceptor>>;

/// One instance of the service on its deployment.
struct Harness {
    deployment: Deployment,
    service: RunningService,
}

impl Harness {
    async fn start(backend: TestBackend) -> Option<Harness> {
        let deployment = Deployment::create(backend).await?;
        let service = deployment.spawn().await;
        Some(Harness {
            deployment,
            service,
        })
    }

    /// Stops the service and starts it again on the same database and keys.
    async fn restart(self) -> Harness {
        let Harness {
            deployment,
            service,
        } = self;
        service.stop().await.unwrap();
        let service = deployment.spawn().await;
        Harness {
            deployment,
            service,
        }
    }

    fn verifier(&self) -> CheckpointVerifier {
        self.deployment.verifier()
    }

    async fn as_service(&self, name: &str) -> AuditServiceClient<Channel> {
        self.deployment.service_client(&self.service, name).await
    }

    async fn as_user(&self, user: &str, organisation: &str, roles: &[Role]) -> UserClient {
        let identity = &self.deployment.identity;
        let channel = identity
            .channel(self.service.local_addr, organisation)
            .await;
        let token = identity.token(user, organisation, roles);
        AuditServiceClient::with_interceptor(channel, BearerInterceptor::new(&token))
    }

    async fn supervisor(&self) -> UserClient {
        self.as_user("granskare-ivo", IVO, &[Role::ComplianceOfficer])
            .await
    }

    async fn stop(self) {
        self.service.stop().await.unwrap();
        self.deployment.database.remove().await;
    }
}

fn personnummer() -> String {
    tryggdel_domain::testing::personnummer_from(time::macros::date!(1988 - 04 - 12), 234)
}

async fn append(
    client: &mut AuditServiceClient<Channel>,
    events: Vec<AuditEvent>,
) -> Vec<AppendedEntry> {
    client
        .append(AppendRequest { events })
        .await
        .unwrap()
        .into_inner()
        .entries
}

async fn append_prove_and_verify(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut service = harness.as_service("disclosure").await;
    let reference = harness.deployment.person_key.reference(
        &IdentityNumber::parse(&personnummer(), time::macros::date!(2026 - 11 - 22)).unwrap(),
    );
    let mut appended = append(&mut service, events(5)).await;
    appended.extend(
        append(
            &mut service,
            vec![event("disclosure.submitted", Some(reference.to_string()))],
        )
        .await,
    );
    let indices: Vec<u64> = appended.iter().map(|entry| entry.index).collect();
    assert_eq!(indices, vec![0, 1, 2, 3, 4, 5]);

    let checkpoint = latest_checkpoint(&mut service).await;
    let verified = harness.verifier().verify(&checkpoint.note).unwrap();
    assert_eq!(verified.size(), 6);
    assert_eq!(verified.origin(), ORIGIN);
    assert_eq!(verified.root().to_vec(), checkpoint.root_hash);

    let mut officer = harness.supervisor().await;
    for entry in &appended {
        let by_index = officer
            .get_inclusion_proof(GetInclusionProofRequest {
                entry: Some(get_inclusion_proof_request::Entry::Index(entry.index)),
                tree_size: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let by_event = officer
            .get_inclusion_proof(GetInclusionProofRequest {
                entry: Some(get_inclusion_proof_request::Entry::EventId(
                    entry.event_id.clone(),
                )),
                tree_size: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(by_index, by_event);
        // The stored bytes are what the leaf hash covers.
        assert_eq!(leaf_hash(&by_index.entry).to_vec(), entry.leaf_hash);
        let proof = proof_hashes(&by_index.hashes);
        verify_inclusion(
            &leaf_hash(&by_index.entry),
            entry.index,
            verified.size(),
            &proof,
            verified.root(),
        )
        .unwrap();
    }

    // The entry is readable JSON with who, what, why and the trace id; the person only as a
    // keyed hash.
    let proof = officer
        .get_inclusion_proof(GetInclusionProofRequest {
            entry: Some(get_inclusion_proof_request::Entry::Index(5)),
            tree_size: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let text = String::from_utf8(proof.entry.clone()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["action"], "disclosure.submitted");
    assert_eq!(json["source"], "disclosure");
    assert_eq!(json["actor"]["user_id"], "beslut-bollnas");
    assert_eq!(json["purpose"]["legal_basis_id"], "OSL-10-18c");
    assert_eq!(json["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    // Format 2: the person reference is not in the leaf, which commits to it.
    assert_eq!(json["format"], "tryggdel.audit.entry/2");
    assert_eq!(json["person_refs"], serde_json::json!([]));
    assert_eq!(json["openings"].as_array().unwrap().len(), 1);
    assert!(!text.contains(reference.as_str()));
    assert!(!text.contains(&personnummer()[..8]));

    // A service gets the proof but not the entry; a proof beyond the log is refused.
    let service_proof = service
        .get_inclusion_proof(GetInclusionProofRequest {
            entry: Some(get_inclusion_proof_request::Entry::Index(2)),
            tree_size: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(service_proof.entry.is_empty());
    let beyond = officer
        .get_inclusion_proof(GetInclusionProofRequest {
            entry: Some(get_inclusion_proof_request::Entry::Index(6)),
            tree_size: 6,
        })
        .await
        .unwrap_err();
    assert_eq!(beyond.code(), Code::InvalidArgument);
    assert!(beyond.message().contains("index"), "{}", beyond.message());
    harness.stop().await;
}

async fn consistency_between_checkpoints(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut service = harness.as_service("disclosure").await;
    append(&mut service, events(3)).await;
    let early = latest_checkpoint(&mut service).await;
    append(&mut service, events(10)).await;
    append(&mut service, events(4)).await;
    let late = latest_checkpoint(&mut service).await;
    let early = harness.verifier().verify(&early.note).unwrap();
    let late = harness.verifier().verify(&late.note).unwrap();
    assert_eq!((early.size(), late.size()), (3, 17));

    let hashes = consistency_proof(&mut service, early.size(), late.size()).await;
    verify_consistency(
        early.size(),
        late.size(),
        early.root(),
        late.root(),
        &hashes,
    )
    .unwrap();

    // The early checkpoint is still served as it was signed.
    let again = service
        .get_checkpoint(GetCheckpointRequest { tree_size: 3 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(harness.verifier().verify(&again.note).unwrap(), early);

    for (first, second, field) in [
        (0, 17, "first_size"),
        (5, 3, "first_size"),
        (3, 99, "second_size"),
    ] {
        let status = service
            .get_consistency_proof(GetConsistencyProofRequest {
                first_size: first,
                second_size: second,
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{first} {second}");
        assert!(status.message().starts_with(field), "{}", status.message());
    }
    let missing = service
        .get_checkpoint(GetCheckpointRequest { tree_size: 4 })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // After a restart the log carries on from where it was, consistent with before.
    let harness = harness.restart().await;
    let mut service = harness.as_service("disclosure").await;
    let after = append(&mut service, events(2)).await;
    assert_eq!(after[0].index, 17);
    let latest = harness
        .verifier()
        .verify(&latest_checkpoint(&mut service).await.note)
        .unwrap();
    let hashes = consistency_proof(&mut service, 17, 0).await;
    verify_consistency(17, latest.size(), late.root(), latest.root(), &hashes).unwrap();
    harness.stop().await;
}

async fn duplicate_event_ids_get_the_same_index(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut service = harness.as_service("disclosure").await;
    let once = event("disclosure.approved", None);
    let first = append(&mut service, vec![once.clone()]).await;
    let second = append(&mut service, vec![once.clone()]).await;
    assert_eq!(first[0].index, second[0].index);
    assert!(!first[0].duplicate);
    assert!(second[0].duplicate);
    assert_eq!(first[0].leaf_hash, second[0].leaf_hash);

    // Twice within one call, and next to a new event.
    let twice = event("disclosure.submitted", None);
    let both = append(
        &mut service,
        vec![twice.clone(), twice.clone(), once.clone()],
    )
    .await;
    assert_eq!(both[0].index, 1);
    assert_eq!(both[1].index, 1);
    assert!(both[1].duplicate);
    assert_eq!(both[2].index, 0);
    assert_eq!(latest_checkpoint(&mut service).await.tree_size, 2);

    // The same id with other content is refused, and nothing of that call is logged.
    let forged = AuditEvent {
        action: "disclosure.withdrawn".into(),
        ..once.clone()
    };
    let status = service
        .append(AppendRequest {
            events: vec![event("disclosure.approved", None), forged],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(
        status.message().contains(&once.event_id),
        "{}",
        status.message()
    );
    assert_eq!(latest_checkpoint(&mut service).await.tree_size, 2);

    // Invalid events name their field.
    let status = service
        .append(AppendRequest {
            events: vec![
                event("disclosure.approved", None),
                AuditEvent {
                    person_refs: vec![personnummer()],
                    ..event("disclosure.approved", None)
                },
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("events[1].person_refs[0]"),
        "{}",
        status.message()
    );
    harness.stop().await;
}

/// A direct SQL statement on the service's own database (as its owner, i.e. the operator).
async fn sql(harness: &Harness, statement: &str) -> Result<(), sqlx::Error> {
    sqlx::query(statement)
        .execute(harness.service.api.log().store().database().pool())
        .await
        .map(|_| ())
}

async fn tampering_is_refused_and_detected(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut service = harness.as_service("disclosure").await;
    for _ in 0..3 {
        append(&mut service, events(2)).await;
    }
    let reference = harness.deployment.person_key.reference(
        &IdentityNumber::parse(&personnummer(), time::macros::date!(2026 - 11 - 22)).unwrap(),
    );
    append(
        &mut service,
        vec![event("disclosure.approved", Some(reference.to_string())); 1],
    )
    .await;
    append(&mut service, events(1)).await;
    let mut officer = harness.supervisor().await;
    let options = VerifyOptions::new(harness.verifier());
    let honest = common::export_file(&mut officer, 0).await;
    let report = verify_export(honest.as_slice(), &options, &mut |_| {}).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.tree_size, 8);

    // The database itself refuses changes, to the service and to the operator alike.
    for statement in [
        "UPDATE audit_entries SET action = 'nothing' WHERE idx = 3",
        "DELETE FROM audit_entries WHERE idx = 3",
        "DELETE FROM audit_checkpoints",
        "UPDATE audit_checkpoints SET note = ''",
        "UPDATE audit_entry_persons SET idx = 0",
        "DELETE FROM audit_entry_persons",
    ] {
        let error = sql(&harness, statement).await.unwrap_err();
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    if backend == TestBackend::Postgres {
        let error = sql(&harness, "TRUNCATE audit_entries").await.unwrap_err();
        assert!(error.to_string().contains("append-only"), "{error}");
    }

    // An operator who switches the protection off and rewrites entry 3 is caught by the
    // verifier, which names the entry.
    match backend {
        TestBackend::Postgres => {
            sql(
                &harness,
                "ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only",
            )
            .await
            .unwrap();
        }
        TestBackend::Sqlite => {
            sql(&harness, "DROP TRIGGER audit_entries_no_update")
                .await
                .unwrap();
        }
    }
    let rewritten = match backend {
        TestBackend::Postgres => {
            "UPDATE audit_entries SET entry = convert_to(replace(convert_from(entry, 'UTF8'), 'beslut-bollnas', 'beslut-annan'), 'UTF8') WHERE idx = 3"
        }
        TestBackend::Sqlite => {
            "UPDATE audit_entries SET entry = CAST(replace(CAST(entry AS TEXT), 'beslut-bollnas', 'beslut-annan') AS BLOB) WHERE idx = 3"
        }
    };
    sql(&harness, rewritten).await.unwrap();
    let tampered = common::export_file(&mut officer, 0).await;
    assert_ne!(tampered, honest);
    let report = verify_export(tampered.as_slice(), &options, &mut |_| {}).unwrap();
    assert!(!report.is_ok());
    let indices: BTreeSet<u64> = report
        .findings()
        .filter_map(|finding| finding.index)
        .collect();
    assert_eq!(indices, BTreeSet::from([3]), "{report}");
    assert!(report.to_string().contains("index 3"), "{report}");

    // Rewriting the recorded leaf hash as well makes the log refuse to open at all.
    let leaf = match backend {
        TestBackend::Postgres => {
            "UPDATE audit_entries SET leaf_hash = sha256('\\x00'::bytea || entry) WHERE idx = 3"
        }
        TestBackend::Sqlite => "UPDATE audit_entries SET leaf_hash = zeroblob(32) WHERE idx = 3",
    };
    sql(&harness, leaf).await.unwrap();
    let settings = harness.deployment.settings();
    harness.service.stop().await.unwrap();
    let reopened = tryggdel_audit::spawn(&settings, "127.0.0.1:0".parse().unwrap()).await;
    let error = format!(
        "{:#}",
        reopened.err().expect("a rewritten log must not open")
    );
    assert!(
        error.contains("do not reproduce the signed root"),
        "{error}"
    );
    harness.deployment.database.remove().await;
}

async fn only_services_append_and_only_compliance_officers_query(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut service = harness.as_service("disclosure").await;
    let number = personnummer();
    let reference = harness
        .deployment
        .person_key
        .reference(&IdentityNumber::parse(&number, time::macros::date!(2026 - 11 - 22)).unwrap());
    append(
        &mut service,
        vec![
            event("disclosure.draft_created", Some(reference.to_string())),
            event("disclosure.approved", None),
        ],
    )
    .await;
    append(&mut harness.as_service("notification").await, events(1)).await;

    // A user, even a compliance officer, cannot append; neither can an unknown service.
    let mut officer = harness.supervisor().await;
    let status = officer
        .append(AppendRequest { events: events(1) })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = harness
        .as_service("rogue")
        .await
        .append(AppendRequest { events: events(1) })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("rogue"));

    // A caseworker cannot query or export.
    let mut caseworker = harness
        .as_user("handlaggare-bollnas", BOLLNAS, &[Role::Caseworker])
        .await;
    let status = caseworker.query(QueryRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = caseworker
        .export(ExportRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // A supervisor finds the person's entries by identity number.
    let found = officer
        .query(QueryRequest {
            person_identity_number: number.clone(),
            ..QueryRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.entries.len(), 1);
    assert_eq!(found.entries[0].index, 0);
    assert!(found.checkpoint.is_some());
    let status = officer
        .query(QueryRequest {
            person_identity_number: "19880412-0000".into(),
            ..QueryRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("person_identity_number"));

    // The municipality's own compliance officer sees its own entries only.
    let mut local = harness
        .as_user("dso-bollnas", BOLLNAS, &[Role::ComplianceOfficer])
        .await;
    let own = local
        .query(QueryRequest {
            action: "disclosure.approved".into(),
            ..QueryRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.entries.len(), 2);
    let status = local
        .query(QueryRequest {
            organisation: "jonkoping-kommun".into(),
            ..QueryRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = local.export(ExportRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // Every query was itself logged, with the officer and the person as a keyed hash.
    let queries = officer
        .query(QueryRequest {
            action: "audit.queried".into(),
            page_size: 2,
            ..QueryRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(queries.entries.len(), 2);
    assert!(!queries.next_page_token.is_empty());
    let first: serde_json::Value = serde_json::from_slice(&queries.entries[0].entry).unwrap();
    assert_eq!(first["actor"]["user_id"], "granskare-ivo");
    assert_eq!(first["source"], "audit");
    // The person is in the entry's opening, sent beside its leaf.
    assert_eq!(first["person_refs"], serde_json::json!([]));
    let opening: serde_json::Value =
        serde_json::from_slice(&queries.entries[0].openings[0].data).unwrap();
    assert_eq!(opening["person_refs"][0], reference.as_str());
    let rest = officer
        .query(QueryRequest {
            action: "audit.queried".into(),
            page_size: 2,
            page_token: queries.next_page_token,
            ..QueryRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        rest.entries
            .iter()
            .all(|entry| entry.index > queries.entries[1].index)
    );
    assert!(!rest.entries.is_empty());
    harness.stop().await;
}

async fn concurrent_appends_are_sequenced_without_gaps(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let mut client = harness.as_service("disclosure").await;
        tasks.push(tokio::spawn(async move {
            let mut indices = Vec::new();
            for _ in 0..10 {
                for entry in append(&mut client, events(2)).await {
                    indices.push(entry.index);
                }
            }
            indices
        }));
    }
    let mut all = BTreeSet::new();
    for task in tasks {
        for index in task.await.unwrap() {
            assert!(all.insert(index), "index {index} given twice");
        }
    }
    assert_eq!(all, (0..320).collect::<BTreeSet<u64>>());
    let mut service = harness.as_service("disclosure").await;
    let before = harness
        .verifier()
        .verify(&latest_checkpoint(&mut service).await.note)
        .unwrap();
    assert_eq!(before.size(), 320);

    // Everything acknowledged is there after a restart, with the same root.
    let harness = harness.restart().await;
    let mut service = harness.as_service("disclosure").await;
    let after = harness
        .verifier()
        .verify(&latest_checkpoint(&mut service).await.note)
        .unwrap();
    assert_eq!(after, before);
    let mut officer = harness.supervisor().await;
    let export = common::export_file(&mut officer, 0).await;
    let report = verify_export(
        export.as_slice(),
        &VerifyOptions::new(harness.verifier()),
        &mut |_| {},
    )
    .unwrap();
    assert!(report.is_ok(), "{report}");
    harness.stop().await;
}

async fn the_console_reads_as_its_signed_in_user(backend: TestBackend) {
    let Some(harness) = Harness::start(backend).await else {
        return;
    };
    append(&mut harness.as_service("disclosure").await, events(2)).await;
    let identity = &harness.deployment.identity;
    let address = harness.service.local_addr;
    let console = |token: String| async move {
        AuditServiceClient::with_interceptor(
            identity.service_channel(address, "console").await,
            BearerInterceptor::new(&token),
        )
    };

    // With the signed-in compliance officer's token the console reads what that officer may.
    let mut officer =
        console(identity.token("granskare-ivo", IVO, &[Role::ComplianceOfficer])).await;
    let found = officer
        .query(QueryRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.entries.len(), 2);
    let mut caseworker =
        console(identity.token("handlaggare-bollnas", BOLLNAS, &[Role::Caseworker])).await;
    assert_eq!(
        caseworker
            .query(QueryRequest::default())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    // A token the console forwards is verified, also for what a service may read alone.
    let stranger = tryggdel_test_support::TestIdentity::generate();
    let mut forged =
        console(stranger.token("granskare-ivo", IVO, &[Role::ComplianceOfficer])).await;
    assert_eq!(
        forged
            .get_checkpoint(GetCheckpointRequest { tree_size: 0 })
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    // Without a token the console reads checkpoints as any service, but queries nothing: a
    // query is a user's.
    let mut alone = harness.as_service("console").await;
    assert!(
        alone
            .get_checkpoint(GetCheckpointRequest { tree_size: 0 })
            .await
            .is_ok()
    );
    assert_eq!(
        alone
            .query(QueryRequest::default())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    harness.stop().await;
}

on_both_backends!(
    append_prove_and_verify,
    consistency_between_checkpoints,
    duplicate_event_ids_get_the_same_index,
    tampering_is_refused_and_detected,
    only_services_append_and_only_compliance_officers_query,
    concurrent_appends_are_sequenced_without_gaps,
    the_console_reads_as_its_signed_in_user,
);
