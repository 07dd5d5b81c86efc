//! The writer's plans on PostgreSQL: the event-id lookup stays an index scan even when its
//! generic plan was made while the log was young and its tables not yet analysed (such a plan
//! was a sequential scan, kept as the log grew).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use tryggdel_audit::store::{self, LogConnection};
use tryggdel_test_support::TestBackend;

mod postgres {
    use super::*;

    #[tokio::test]
    async fn the_event_id_lookup_keeps_to_the_index_on_a_young_log() {
        let Some((_database, store)) = common::store(TestBackend::Postgres).await else {
            return;
        };
        let mut writer = store.begin_write().await.unwrap();
        // Batches' worth of ids: more than the 10 rows a generic plan guesses for `= ANY($1)`,
        // so PostgreSQL settles on the generic plan from the sixth execution on.
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
        let (name, generic): (String, i64) = sqlx::query_as(
            "SELECT name, generic_plans FROM pg_prepared_statements \
             WHERE statement LIKE '%FROM audit_entries WHERE event_id = ANY%'",
        )
        .fetch_one(&mut *connection)
        .await
        .unwrap();
        assert!(generic > 0, "the lookup was not yet on its generic plan");
        // The plan the writer's next lookup would run.
        let plan: Vec<(String,)> =
            sqlx::query_as(&format!("EXPLAIN EXECUTE {name}('{{event-1,event-2}}')"))
                .fetch_all(&mut *connection)
                .await
                .unwrap();
        let plan: Vec<&str> = plan.iter().map(|(line,)| line.as_str()).collect();
        assert!(
            plan.iter()
                .any(|line| line.contains("audit_entries_event_id_key"))
                && !plan.iter().any(|line| line.contains("Seq Scan")),
            "the lookup's plan: {plan:#?}"
        );
        writer.rollback().await.unwrap();
    }
}
