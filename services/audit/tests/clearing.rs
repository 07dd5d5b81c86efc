//! Integration tests of clearing (gallring) in the audit log: the real service on 127.0.0.1:0
//! with mTLS and tokens, on SQLite and PostgreSQL. Clearing a person and a disclosure leaves
//! nothing of them in any table (nor, on SQLite, in the database files), the export still
//! verifies offline with the cleared parts accepted, a changed opening is found, a hold blocks
//! clearing, and format-1 entries written before format 2 keep verifying.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{BOLLNAS, Deployment, event};
use time::macros::date;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_audit::entry::{EntryRecord, body_from_event};
use tryggdel_audit::scrub::Finding;
use tryggdel_audit::store::NewEntry;
use tryggdel_audit::{AuditStore, RunningService};
use tryggdel_audit_verify::{VerifyOptions, verify_export};
use tryggdel_auth::Role;
use tryggdel_domain::IdentityNumber;
use tryggdel_domain::testing::{CLEARING_DECISION_TOML, personnummer_from};
use tryggdel_merkle::leaf_hash;
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::audit::v1::{AppendRequest, AuditEvent, ClearRequest, QueryRequest};
use tryggdel_storage::{Database, Migrations};
use tryggdel_test_support::{BearerInterceptor, TestBackend, on_both_backends};

type UserClient = AuditServiceClient<InterceptedService<Channel, BearerInterceptor>>;

const IVO: &str = "ivo";
/// A name that occurs only in the free text of the cleared person's entries.
const NAME: &str = "Astrid Gallringsdotter";

async fn user(
    deployment: &Deployment,
    service: &RunningService,
    user: &str,
    organisation: &str,
) -> UserClient {
    let identity = &deployment.identity;
    let channel = identity.channel(service.local_addr, organisation).await;
    let token = identity.token(user, organisation, &[Role::ComplianceOfficer]);
    AuditServiceClient::with_interceptor(channel, BearerInterceptor::new(&token))
}

fn number(born: time::Date) -> (String, IdentityNumber) {
    let text = personnummer_from(born, 234);
    let parsed = IdentityNumber::parse(&text, date!(2026 - 12 - 01)).unwrap();
    (text, parsed)
}

fn on_disclosure(
    action: &str,
    person_ref: Option<String>,
    disclosure_id: &str,
    details: &[(&str, String)],
) -> AuditEvent {
    let mut event = event(action, person_ref);
    event.disclosure_id = disclosure_id.to_owned();
    event.details = details
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .collect();
    event
}

/// Every row of every table of the log's database as text (blobs as hex).
async fn every_table(store: &AuditStore, backend: TestBackend) -> String {
    let pool = store.database().pool();
    let mut text = String::new();
    match backend {
        TestBackend::Sqlite => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            for table in tables {
                let columns: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                        .fetch_all(pool)
                        .await
                        .unwrap();
                let row = columns
                    .iter()
                    .map(|column| format!("quote(\"{column}\")"))
                    .collect::<Vec<_>>()
                    .join(" || '|' || ");
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT {row} FROM \"{table}\""))
                        .fetch_all(pool)
                        .await
                        .unwrap();
                text.push_str(&format!("[{table}]\n{}\n", rows.join("\n")));
            }
        }
        TestBackend::Postgres => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            for table in tables {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT CAST(t AS TEXT) FROM \"{table}\" AS t"))
                        .fetch_all(pool)
                        .await
                        .unwrap();
                text.push_str(&format!("[{table}]\n{}\n", rows.join("\n")));
            }
        }
    }
    text
}

/// Which of `needles` occur in `haystack`, as they are or in hex (either case).
fn found_in(haystack: &[u8], needles: &[(&str, String)]) -> Vec<String> {
    let contains = |needle: &[u8]| {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    };
    needles
        .iter()
        .filter(|(_, needle)| {
            let lower = hex::encode(needle.as_bytes());
            contains(needle.as_bytes())
                || contains(lower.as_bytes())
                || contains(lower.to_uppercase().as_bytes())
        })
        .map(|(what, _)| (*what).to_owned())
        .collect()
}

/// The SQLite database's files (main, -wal, -shm) as they are on disk.
fn sqlite_files(url: &str) -> Vec<u8> {
    let path = url.strip_prefix("sqlite://").unwrap();
    let path = path.split('?').next().unwrap();
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(file) = std::fs::read(format!("{path}{suffix}")) {
            bytes.extend(file);
        }
    }
    bytes
}

async fn key_material(store: &AuditStore, scope_ref: &str) -> String {
    sqlx::query_scalar("SELECT key_material FROM audit_personal_keys WHERE scope_ref = $1")
        .bind(scope_ref)
        .fetch_one(store.database().pool())
        .await
        .unwrap()
}

/// The migrations of the log before format 2.
const BEFORE_FORMAT_2: Migrations =
    tryggdel_storage::migrations!(["0001_audit_log.sql", "0002_audit_scrub.sql"]);

/// Entries of the log as it was before format 2: the database migrated as it was then and the
/// entries written directly, as a service of that time did; the service then upgrades it.
async fn write_format_1_entries(deployment: &Deployment, person_ref: &str) {
    let store = AuditStore::new(
        Database::connect(&deployment.database.url, "audit", &BEFORE_FORMAT_2)
            .await
            .unwrap(),
    );
    let mut entries = Vec::new();
    for index in 0..2u64 {
        let body = body_from_event(
            "event",
            &on_disclosure(
                "disclosure.approved",
                Some(person_ref.to_owned()),
                "d-format-1",
                &[("reason", "skäl från förr".to_owned())],
            ),
            "disclosure",
        )
        .unwrap();
        let bytes = body
            .clone()
            .record_v1(1_795_000_000_000)
            .to_bytes()
            .unwrap();
        let leaf = leaf_hash(&bytes);
        entries.push(body.new_entry(
            index,
            body.fingerprint().unwrap(),
            bytes,
            leaf,
            1_795_000_000_000,
            Vec::new(),
        ));
    }
    let entries: Vec<NewEntry> = entries;
    let mut writer = store.begin_write().await.unwrap();
    writer.insert_entries(&entries).await.unwrap();
    writer.commit().await.unwrap();
    store.database().close().await;
}

async fn clearing_leaves_nothing_and_the_log_verifies(backend: TestBackend) {
    let Some(deployment) = Deployment::create(backend).await else {
        return;
    };
    let (cleared_number, cleared) = number(date!(1980 - 03 - 16));
    let (_, kept) = number(date!(1990 - 01 - 02));
    let (exempt_number, _) = number(date!(1980 - 03 - 15));
    let cleared_ref = deployment
        .person_key
        .reference(&cleared)
        .as_str()
        .to_owned();
    let kept_ref = deployment.person_key.reference(&kept).as_str().to_owned();
    write_format_1_entries(&deployment, &kept_ref).await;

    let service = deployment.spawn().await;
    let store = service.api.log().store().clone();
    let mut disclosure = deployment.service_client(&service, "disclosure").await;
    let cleared_disclosure = uuid::Uuid::now_v7().to_string();
    let kept_disclosure = uuid::Uuid::now_v7().to_string();
    let held_disclosure = uuid::Uuid::now_v7().to_string();
    let mut approved = on_disclosure(
        "disclosure.approved",
        Some(cleared_ref.clone()),
        &cleared_disclosure,
        &[("reason", format!("{NAME} hotade grannen"))],
    );
    approved.outcome_detail = format!("{NAME} informerades");
    let mut read_outside = on_disclosure(
        "person.searched",
        Some(cleared_ref.clone()),
        "",
        &[("question", format!("Finns {NAME} i registret?"))],
    );
    read_outside.objects.clear();
    let outside_event_id = read_outside.event_id.clone();
    let events = vec![
        approved,
        read_outside,
        on_disclosure(
            "disclosure.approved",
            Some(kept_ref.clone()),
            &kept_disclosure,
            &[("reason", "Bertil hotade".to_owned())],
        ),
        on_disclosure(
            "disclosure.hold_placed",
            None,
            &held_disclosure,
            &[
                ("hold_id", "h-1".to_owned()),
                ("until", "2099-12-31".to_owned()),
                ("legal_ground", "RB 23:18".to_owned()),
            ],
        ),
    ];
    disclosure.append(AppendRequest { events }).await.unwrap();

    // The leaves hold no personal data; the one reader gives it back from the openings.
    for stored in store.range(2, 6, 10).await.unwrap() {
        let text = String::from_utf8(stored.bytes.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"format":"tryggdel.audit.entry/2""#),
            "{text}"
        );
        for personal in [NAME, &cleared_ref, &kept_ref, "Bertil"] {
            assert!(!text.contains(personal), "{personal} in {text}");
        }
    }
    let mut local = user(&deployment, &service, "dso-bollnas", BOLLNAS).await;
    let found = local
        .query(QueryRequest {
            person_identity_number: cleared_number.clone(),
            ..QueryRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.entries.len(), 2);
    let opened: String = found
        .entries
        .iter()
        .flat_map(|entry| &entry.openings)
        .map(|opening| String::from_utf8(opening.data.clone()).unwrap())
        .collect();
    assert!(
        opened.contains(NAME) && opened.contains(&cleared_ref),
        "{opened}"
    );

    // Captured before clearing: the keys, which must not survive it anywhere.
    let needles = vec![
        ("the identity number", cleared.as_twelve_digits().to_owned()),
        (
            "the identity number (canonical)",
            cleared.to_canonical_string(),
        ),
        ("the person reference", cleared_ref.clone()),
        ("the name", NAME.to_owned()),
        ("the person's key", key_material(&store, &cleared_ref).await),
        (
            "the disclosure's key",
            key_material(&store, &cleared_disclosure).await,
        ),
        (
            "the key of the entry outside a disclosure",
            key_material(&store, &outside_event_id).await,
        ),
    ];
    let before = every_table(&store, backend).await;
    assert!(
        found_in(before.as_bytes(), &needles).contains(&"the person's key".to_owned()),
        "the search finds what is there"
    );

    // A hold blocks clearing its disclosure, and a person born on an exempt day is kept.
    let status = disclosure
        .clear(ClearRequest {
            decision_toml: CLEARING_DECISION_TOML.into(),
            disclosure_ids: vec![cleared_disclosure.clone(), held_disclosure.clone()],
            identity_numbers: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains(&held_disclosure), "{status:?}");
    let status = disclosure
        .clear(ClearRequest {
            decision_toml: CLEARING_DECISION_TOML.into(),
            disclosure_ids: Vec::new(),
            identity_numbers: vec![exempt_number],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("exempt"), "{status:?}");
    let status = disclosure
        .clear(ClearRequest {
            decision_toml: "id = \"x\"".into(),
            disclosure_ids: vec![cleared_disclosure.clone()],
            identity_numbers: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let cleared_answer = disclosure
        .clear(ClearRequest {
            decision_toml: CLEARING_DECISION_TOML.into(),
            disclosure_ids: vec![cleared_disclosure.clone()],
            identity_numbers: vec![cleared_number.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cleared_answer.decision_id, "GB-2026-03");
    assert_eq!(cleared_answer.disclosures_cleared, 1);
    assert_eq!(cleared_answer.persons_cleared, 1);
    assert_eq!(cleared_answer.keys_destroyed, 3);
    assert_eq!(cleared_answer.openings_deleted, 5);
    assert!(cleared_answer.person_index_rows_deleted >= 3);
    assert_eq!(cleared_answer.tombstone_indices.len(), 1);

    // Nothing of the person is left in any table, while the other person's data is.
    let after = every_table(&store, backend).await;
    assert_eq!(found_in(after.as_bytes(), &needles), Vec::<String>::new());
    assert!(after.contains(&kept_ref));
    if backend == TestBackend::Sqlite {
        let files = sqlite_files(&deployment.database.url);
        assert!(!files.is_empty());
        assert_eq!(found_in(&files, &needles), Vec::<String>::new());
    }

    // The tombstone names the decision and the keys, and nothing personal.
    let tombstone = store
        .entry(cleared_answer.tombstone_indices[0])
        .await
        .unwrap()
        .unwrap();
    let record = EntryRecord::parse(&tombstone.bytes).unwrap();
    assert_eq!(record.body.action, "audit.cleared");
    assert_eq!(
        record.body.details["decision_sha256"],
        cleared_answer.decision_sha256
    );
    assert_eq!(record.body.details["key_ids"].split(',').count(), 3);
    assert_eq!(record.openings, Some(Vec::new()));

    // The person is no longer found; what remains reads with the cleared parts marked.
    let found = local
        .query(QueryRequest {
            person_identity_number: cleared_number.clone(),
            ..QueryRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(found.entries.is_empty());
    let full = store
        .full_entries(store.range(2, 3, 1).await.unwrap())
        .await
        .unwrap();
    assert_eq!(full[0].cleared(), 2);
    assert!(full[0].record.body.person_refs.is_empty());
    assert!(full[0].record.body.outcome_detail.is_empty());

    // The export verifies end to end, format-1 entries included, the cleared parts accepted.
    let mut supervisor = user(&deployment, &service, "granskare-ivo", IVO).await;
    let options = VerifyOptions::new(deployment.verifier());
    let honest = common::export_file(&mut supervisor, 0).await;
    let report = verify_export(honest.as_slice(), &options, &mut |_| {}).unwrap();
    assert!(report.is_ok(), "{report}");
    assert!(report.openings_cleared >= 5, "{report}");
    assert!(report.openings_checked > 0, "{report}");
    assert!(report.to_string().contains("parts cleared"), "{report}");

    // An opening changed in the export file is named by its entry's index.
    let kept_index = 4;
    let tampered: Vec<u8> = String::from_utf8(honest.clone())
        .unwrap()
        .lines()
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
            if value["index"] == kept_index {
                let data = STANDARD.encode(br#"{"details":{"reason":"Cecilia hotade"}}"#);
                value["openings"][1]["data"] = serde_json::Value::String(data);
            }
            format!("{value}\n")
        })
        .collect::<String>()
        .into_bytes();
    let report = verify_export(tampered.as_slice(), &options, &mut |_| {}).unwrap();
    assert!(!report.is_ok());
    let indices: Vec<u64> = report
        .findings()
        .filter_map(|finding| finding.index)
        .collect();
    assert_eq!(indices, vec![kept_index], "{report}");

    // An opening deleted without a clearing (no tombstone names its key) is found too.
    let pool = store.database().pool();
    let unprotect = match backend {
        TestBackend::Postgres => {
            "ALTER TABLE audit_personal_openings \
             DISABLE TRIGGER audit_personal_openings_delete_after_key"
        }
        TestBackend::Sqlite => "DROP TRIGGER audit_personal_openings_delete_after_key",
    };
    sqlx::query(unprotect).execute(pool).await.unwrap();
    let deleted = sqlx::query(
        "DELETE FROM audit_personal_openings WHERE idx = $1 AND key_id = \
         (SELECT key_id FROM audit_personal_keys WHERE scope_ref = $2)",
    )
    .bind(kept_index as i64)
    .bind(&kept_disclosure)
    .execute(pool)
    .await
    .unwrap();
    assert_eq!(deleted.rows_affected(), 1);
    let removed = common::export_file(&mut supervisor, 0).await;
    let report = verify_export(removed.as_slice(), &options, &mut |_| {}).unwrap();
    assert!(!report.is_ok());
    let findings: Vec<&str> = report
        .findings()
        .filter(|finding| finding.index == Some(kept_index))
        .map(|finding| finding.message.as_str())
        .collect();
    assert!(
        findings.len() == 1 && findings[0].contains("without a clearing"),
        "{report}"
    );

    // An opening changed in the database is refused to readers and found by the scrub.
    let unprotect = match backend {
        TestBackend::Postgres => {
            "ALTER TABLE audit_personal_openings DISABLE TRIGGER audit_personal_openings_no_update"
        }
        TestBackend::Sqlite => "DROP TRIGGER audit_personal_openings_no_update",
    };
    sqlx::query(unprotect).execute(pool).await.unwrap();
    // The kept entry's remaining opening replaced by another entry's (sealed for another key).
    let first: String = sqlx::query_scalar(
        "SELECT sealed FROM audit_personal_openings WHERE idx <> $1 ORDER BY idx DESC LIMIT 1",
    )
    .bind(kept_index as i64)
    .fetch_one(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE audit_personal_openings SET sealed = $1 WHERE idx = $2")
        .bind(first)
        .bind(kept_index as i64)
        .execute(pool)
        .await
        .unwrap();
    let status = supervisor
        .query(QueryRequest {
            disclosure_id: kept_disclosure.clone(),
            ..QueryRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains(&format!("entry {kept_index} ")),
        "{status:?}"
    );
    let findings = service.api.integrity().scrub_pass(1000).await.unwrap();
    assert!(
        findings.contains(&(kept_index, Finding::OpeningChanged)),
        "{findings:?}"
    );
    service.stop().await.unwrap();
    deployment.database.remove().await;
}

on_both_backends!(clearing_leaves_nothing_and_the_log_verifies);
