//! Group commit of the events that record reads (the access log): every read of personal data
//! writes its event durably before it is answered, and many concurrent reads would otherwise
//! each wait for a commit of their own (and, on SQLite, for the one connection in turn). One
//! writer per database takes every request waiting at that moment, writes them in one
//! transaction and answers each only after that commit.
//!
//! Invariants: a caller is answered `Ok` only once its events are committed; a batch that
//! fails is written again request by request, so one bad request fails alone and every other
//! caller still gets its own answer; a caller's events stay together and in order.

use tokio::sync::{mpsc, oneshot};

use super::OutboxEvent;
use crate::health::DatabaseHealth;

/// The most events one transaction takes; more waiting requests go in the next.
const MAX_BATCH_EVENTS: usize = 512;

/// Requests queued for the writer before callers wait for room.
const QUEUE: usize = 1024;

/// One caller's events and where its answer goes.
struct Request {
    events: Vec<OutboxEvent>,
    done: oneshot::Sender<Result<(), sqlx::Error>>,
}

/// The pools the writer uses, as [`crate::Database::pool`] chooses between them.
#[derive(Clone, Debug)]
pub(crate) struct WriterPools {
    pub pool: sqlx::AnyPool,
    pub refusing: sqlx::AnyPool,
    pub health: DatabaseHealth,
}

impl WriterPools {
    fn current(&self) -> &sqlx::AnyPool {
        if self.health.is_up() {
            &self.pool
        } else {
            &self.refusing
        }
    }
}

/// The handle of a database's group-commit writer; the writer ends when the last handle is
/// dropped.
#[derive(Clone, Debug)]
pub(crate) struct GroupCommit {
    requests: mpsc::Sender<Request>,
}

impl GroupCommit {
    /// Starts the writer on the current runtime.
    pub fn start(pools: WriterPools) -> GroupCommit {
        let (requests, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(pools, queue));
        GroupCommit { requests }
    }

    /// Writes `events` (all or nothing) and answers once they are committed.
    pub async fn record(&self, events: Vec<OutboxEvent>) -> Result<(), sqlx::Error> {
        let (done, answer) = oneshot::channel();
        self.requests
            .send(Request { events, done })
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        answer.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

async fn run(pools: WriterPools, mut queue: mpsc::Receiver<Request>) {
    while let Some(first) = queue.recv().await {
        let mut count = first.events.len();
        let mut batch = vec![first];
        while count < MAX_BATCH_EVENTS {
            match queue.try_recv() {
                Ok(request) => {
                    count += request.events.len();
                    batch.push(request);
                }
                Err(_) => break,
            }
        }
        let pool = pools.current().clone();
        if batch.len() == 1 {
            for request in batch {
                let result = insert(&pool, &request.events).await;
                let _ = request.done.send(result);
            }
            continue;
        }
        let all: Vec<&OutboxEvent> = batch.iter().flat_map(|request| &request.events).collect();
        match insert_refs(&pool, &all).await {
            Ok(()) => {
                for request in batch {
                    let _ = request.done.send(Ok(()));
                }
            }
            Err(error) => {
                tracing::debug!(%error, requests = batch.len(), "group commit failed; writing each request alone");
                for request in batch {
                    let result = insert(&pool, &request.events).await;
                    let _ = request.done.send(result);
                }
            }
        }
    }
}

async fn insert(pool: &sqlx::AnyPool, events: &[OutboxEvent]) -> Result<(), sqlx::Error> {
    let refs: Vec<&OutboxEvent> = events.iter().collect();
    insert_refs(pool, &refs).await
}

/// Writes `events` in one transaction.
async fn insert_refs(pool: &sqlx::AnyPool, events: &[&OutboxEvent]) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    for event in events {
        event.insert(&mut transaction).await?;
    }
    transaction.commit().await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::{OutboxEvent, record_events};
    use crate::{Database, MigrationFile, Migrations};

    fn event(n: i64) -> OutboxEvent {
        OutboxEvent {
            event_id: format!("e{n}"),
            event_type: "t".into(),
            disclosure_id: "d".into(),
            organisation: "o".into(),
            payload: "{}".into(),
            created_at: n,
            audit_event: vec![1, 2, 3],
            traceparent: String::new(),
        }
    }

    const OUTBOX: &[MigrationFile] = &[MigrationFile {
        name: "0001_outbox.sql",
        sql: "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, \
              event_id TEXT NOT NULL UNIQUE, event_type TEXT NOT NULL, \
              disclosure_id TEXT NOT NULL, organisation TEXT NOT NULL, payload TEXT NOT NULL, \
              created_at INTEGER NOT NULL, audit_event BLOB, \
              traceparent TEXT NOT NULL DEFAULT '');",
    }];

    async fn database(directory: &tempfile::TempDir) -> Database {
        let url = format!("sqlite://{}", directory.path().join("g.db").display());
        let migrations = Migrations {
            sqlite: OUTBOX,
            postgres: &[],
        };
        Database::connect(&url, "g", &migrations).await.unwrap()
    }

    async fn stored(database: &Database) -> Vec<(String, i64)> {
        sqlx::query_as("SELECT event_id, created_at FROM outbox ORDER BY seq")
            .fetch_all(database.pool())
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_each_get_their_own_answer_and_a_bad_one_fails_alone() {
        let directory = tempfile::tempdir().unwrap();
        let database = database(&directory).await;
        record_events(&database, &[event(0)]).await.unwrap();
        let mut calls = Vec::new();
        for n in 1..=60 {
            let database = database.clone();
            calls.push(tokio::spawn(async move {
                // Every tenth caller repeats the first event's id, which the table refuses.
                let events = if n % 10 == 0 {
                    vec![event(1000 + n), event(0)]
                } else {
                    vec![event(1000 + n), event(2000 + n)]
                };
                (n, record_events(&database, &events).await)
            }));
        }
        for call in calls {
            let (n, result) = call.await.unwrap();
            assert_eq!(result.is_err(), n % 10 == 0, "caller {n}: {result:?}");
        }
        let rows = stored(&database).await;
        // The first event, then two of each of the 54 callers that succeeded, each caller's
        // pair together and in order; nothing of the refused callers.
        assert_eq!(rows.len(), 1 + 2 * 54);
        for pair in rows[1..].chunks(2) {
            assert_eq!(pair[1].1 - pair[0].1, 1000, "{pair:?}");
            assert_ne!(pair[0].1 % 10, 0);
        }
    }

    #[tokio::test]
    async fn nothing_to_record_writes_nothing() {
        let directory = tempfile::tempdir().unwrap();
        let database = database(&directory).await;
        record_events(&database, &[]).await.unwrap();
        assert!(stored(&database).await.is_empty());
    }
}
