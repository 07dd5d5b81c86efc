//! The writer's plans on PostgreSQL: each statement of a writer's transaction is planned for
//! the table as it is then, never by a generic plan fixed while the log was young (which, for
//! the event-id lookup, was a sequential scan kept as the log grew).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tryggdel_audit::store::{self, LogConnection};
use tryggdel_audit::{AuditStore, MIGRATIONS};
use tryggdel_storage::Database;
use tryggdel_test_support::{TestBackend, TestDatabase};

mod postgres {
    use super::*;

    #[tokio::test]
    async fn a_writers_lookups_are_planned_each_time_not_by_a_generic_plan() {
        let Some(database) = TestDatabase::create(TestBackend::Postgres).await else {
            return;
        };
        let connected = Database::connect(&database.url, "audit", &MIGRATIONS)
            .await
            .unwrap();
        let store = AuditStore::new(connected);
        let mut writer = store.begin_write().await.unwrap();
        // Batches' worth of ids: more than the 10 rows a generic plan guesses for `= ANY($1)`,
        // so PostgreSQL, left to choose, would settle on the generic plan from the sixth
        // execution on.
        let ids: Vec<String> = (0..40).map(|i| format!("event-{i}")).collect();
        for _ in 0..10 {
            let found = store::existing(&mut writer.connection().unwrap(), &ids)
                .await
                .unwrap();
            assert!(found.is_empty());
        }
        let LogConnection::Postgres(connection) = writer.connection().unwrap() else {
            panic!("a writer on PostgreSQL uses the native pool");
        };
        let (generic, custom): (i64, i64) = sqlx::query_as(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
             WHERE statement LIKE '%FROM audit_entries WHERE event_id = ANY%'",
        )
        .fetch_one(&mut *connection)
        .await
        .unwrap();
        assert_eq!(generic, 0, "the lookup ran on a generic plan");
        assert!(custom >= 10, "the lookup was planned {custom} times");
        writer.rollback().await.unwrap();
    }
}
