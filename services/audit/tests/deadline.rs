//! The log's write deadline on PostgreSQL: a writer that stalls while it holds the log's lock
//! (here: its insert waits behind another session's table lock) is abandoned, its connection
//! closed, and the server lets the log's lock go at once, so appends fail for a moment instead
//! of stopping for good; nothing already accepted is lost, and the retried event is logged once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use tryggdel_audit::entry::{EntryActor, EntryBody, EntryPurpose};
use tryggdel_audit::log::AppendError;
use tryggdel_audit::{AuditLog, LogConfig};
use tryggdel_merkle::checkpoint::CheckpointSigner;
use tryggdel_test_support::{TestBackend, log_signing_key};

const DEADLINE: Duration = Duration::from_secs(2);

fn body(event_id: &str) -> EntryBody {
    EntryBody {
        event_id: event_id.to_owned(),
        source: "disclosure".to_owned(),
        action: "disclosure.drafted".to_owned(),
        occurred_at: "2026-12-02T08:00:00Z".to_owned(),
        occurred_at_unix_ms: 1_796_198_400_000,
        outcome: "success".to_owned(),
        outcome_detail: String::new(),
        actor: EntryActor {
            user_id: "handlaggare-1".to_owned(),
            roles: vec!["caseworker".to_owned()],
            organisation: "bollnas-kommun".to_owned(),
            unit: "socialtjansten".to_owned(),
        },
        organisation: "bollnas-kommun".to_owned(),
        disclosure_id: "d-1".to_owned(),
        objects: Vec::new(),
        purpose: EntryPurpose {
            legal_basis_id: "osl-10-18c".to_owned(),
            registry_version: "2021-07-01".to_owned(),
            purpose: "prevent serious crime against a close relative".to_owned(),
        },
        recipient: String::new(),
        person_refs: vec!["ref-1".to_owned()],
        trace_id: String::new(),
        details: BTreeMap::new(),
    }
}

async fn scalar(connection: &mut PgConnection, statement: &str) -> i64 {
    sqlx::query_scalar(statement)
        .fetch_one(connection)
        .await
        .unwrap()
}

/// Appends `event_id`, which must be refused as unavailable within about the deadline.
async fn refused_at_the_deadline(log: &AuditLog, event_id: &str) {
    let started = Instant::now();
    let answer = tokio::time::timeout(DEADLINE * 10, log.append(vec![body(event_id)]))
        .await
        .expect("a stalled append must be answered, not hang");
    let error = answer.expect_err("an append whose writer stalled cannot succeed");
    // The sequencer abandons the batch, and the caller stops waiting, at the same deadline:
    // either answer is the refusal.
    assert!(
        matches!(
            error,
            AppendError::Unavailable(_) | AppendError::NotWithinDeadline(_)
        ),
        "{error:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= DEADLINE && waited < DEADLINE * 5,
        "answered after {waited:?}"
    );
}

/// Waits until no session holds an advisory lock in the test database (the log's is the only
/// one taken there).
async fn lock_released(admin: &mut PgConnection) {
    let started = Instant::now();
    loop {
        let held = scalar(
            admin,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .await;
        if held == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the abandoned writer's session still holds the log's lock"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_writer_is_abandoned_at_its_deadline_and_the_lock_goes_with_it() {
        let Some((database, store)) = common::store(TestBackend::Postgres).await else {
            return;
        };
        let signer = CheckpointSigner::new(log_signing_key(), common::ORIGIN).unwrap();
        let log = AuditLog::open(
            store,
            LogConfig {
                signer: Arc::new(signer),
                checkpoint_interval: Duration::ZERO,
                write_deadline: DEADLINE,
            },
        )
        .await
        .unwrap();
        let first = log.append(vec![body("first")]).await.unwrap();
        assert_eq!(first[0].index, 0);
        let mut admin = PgConnection::connect(&database.url).await.unwrap();

        // The writer's insert waits behind a table lock while it holds the log's lock; the
        // server is still waiting on that table lock when the writer is abandoned, and ends
        // the transaction only because the client closed its connection.
        let mut blocker = PgConnection::connect(&database.url).await.unwrap();
        sqlx::raw_sql("BEGIN; LOCK TABLE audit.audit_entries IN EXCLUSIVE MODE")
            .execute(&mut blocker)
            .await
            .unwrap();
        refused_at_the_deadline(&log, "second").await;
        lock_released(&mut admin).await;
        assert_eq!(log.durable_size(), 1);
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut blocker)
            .await
            .unwrap();

        // Another session holds the log's lock itself: the wait for it is bounded too.
        sqlx::raw_sql("BEGIN; SELECT pg_advisory_xact_lock(1413955925, hashtext('audit'))")
            .execute(&mut blocker)
            .await
            .unwrap();
        refused_at_the_deadline(&log, "second").await;
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut blocker)
            .await
            .unwrap();

        // The log carries on: the refused event goes in once, after what was accepted.
        let second = log.append(vec![body("second")]).await.unwrap();
        assert_eq!((second[0].index, second[0].duplicate), (1, false));
        let again = log.append(vec![body("second")]).await.unwrap();
        assert_eq!((again[0].index, again[0].duplicate), (1, true));
        assert_eq!(
            scalar(&mut admin, "SELECT count(*) FROM audit.audit_entries").await,
            2
        );
        assert_eq!(
            scalar(&mut admin, "SELECT count(*) FROM audit.audit_entry_persons").await,
            2
        );
        assert_eq!(log.durable_size(), 2);
        blocker.close().await.unwrap();
        admin.close().await.unwrap();
        database.remove().await;
    }
}
