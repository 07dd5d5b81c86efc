//! Group commit of the events that record reads (the access log): every read of personal data
//! writes its event durably before it is answered, and many concurrent reads would otherwise
//! each wait for a commit of their own (and, on SQLite, for the one connection in turn). One
//! writer per database takes every request waiting at that moment, writes them in one
//! transaction (one INSERT) and answers each only after that commit. On SQLite the next batch
//! waits for that commit; on PostgreSQL up to [`POSTGRES_BATCHES_IN_FLIGHT`] are committed at
//! once.
//!
//! The commits do not wait for the disk: a caller is answered once its events are in the
//! database (PostgreSQL's WAL buffers, SQLite's WAL file), and they reach the disk within
//! [`FLUSHED_WITHIN`] (PostgreSQL's WAL writer flushes every `wal_writer_delay`, 200 ms by
//! default; on SQLite a flusher beside this writer checkpoints on a reader's connection, which
//! syncs the WAL first and waits for no writer), or with the next
//! commit that waits, whichever comes first. A crash of the service loses nothing answered; a
//! crash of the database's machine in that window can lose the newest records. A wait for
//! the disk on every read would add its whole latency (several ms at the 99th percentile) to
//! every read of personal data.
//!
//! Invariants: a caller is answered `Ok` only once its events are committed; a batch that
//! fails is written again request by request, so one bad request fails alone and every other
//! caller still gets its own answer; a caller's events stay together and in order.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection as _, Executor as _};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{OutboxEvent, Unsynced};
use crate::Backend;
use crate::health::DatabaseHealth;

/// How long a committed record may stay off the disk on SQLite.
const FLUSHED_WITHIN: Duration = Duration::from_millis(200);

/// The most events one transaction takes; more waiting requests go in the next.
const MAX_BATCH_EVENTS: usize = 512;

/// Batches committed at once on PostgreSQL, each on a connection of its own. Its commits do
/// not wait for the disk, so there is no flush for batches to share, and a request would
/// otherwise wait for the batch before its own. SQLite has one writing connection: one batch.
pub(crate) const POSTGRES_BATCHES_IN_FLIGHT: usize = 4;

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
    pub backend: Backend,
    pub pool: sqlx::AnyPool,
    /// SQLite's readers, on which the flusher checkpoints.
    pub readers: sqlx::AnyPool,
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
    // On SQLite, the flusher is told of every commit that did not wait for the disk; one
    // waiting signal stands for any number of commits.
    let unflushed = (pools.backend == Backend::Sqlite).then(|| {
        let (tell, told) = mpsc::channel(1);
        tokio::spawn(flusher(pools.readers.clone(), told));
        tell
    });
    let in_flight = Arc::new(Semaphore::new(match pools.backend {
        Backend::Sqlite => 1,
        Backend::Postgres => POSTGRES_BATCHES_IN_FLIGHT,
    }));
    loop {
        // Requests gather while every batch slot is busy; the next batch takes them all.
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
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
        let backend = pools.backend;
        let unflushed = unflushed.clone();
        let commit = async move {
            let wrote = commit(backend, &pool, batch).await;
            if let (true, Some(tell)) = (wrote, &unflushed) {
                // Full: a flush is already due, and it takes this commit too.
                let _ = tell.try_send(());
            }
            drop(slot);
        };
        match backend {
            Backend::Sqlite => commit.await,
            Backend::Postgres => {
                tokio::spawn(commit);
            }
        }
    }
}

/// Writes `batch` in one transaction and answers each request; if that fails and the batch
/// holds several requests, each request alone. Whether anything was written.
async fn commit(backend: Backend, pool: &sqlx::AnyPool, mut batch: Vec<Request>) -> bool {
    let all: Vec<&OutboxEvent> = batch.iter().flat_map(|request| &request.events).collect();
    let error = match insert_refs(backend, pool, &all).await {
        Ok(()) => {
            for request in batch {
                let _ = request.done.send(Ok(()));
            }
            return true;
        }
        Err(error) => error,
    };
    if batch.len() == 1
        && let Some(request) = batch.pop()
    {
        let _ = request.done.send(Err(error));
        return false;
    }
    tracing::debug!(%error, requests = batch.len(), "group commit failed; writing each request alone");
    let mut wrote = false;
    for request in batch {
        let result = insert(backend, pool, &request.events).await;
        wrote |= result.is_ok();
        let _ = request.done.send(result);
    }
    wrote
}

/// Puts SQLite's WAL on the disk within [`FLUSHED_WITHIN`] of each commit it is told of: a
/// passive checkpoint syncs the WAL before it copies pages back, and waits for no reader or
/// writer. A failed one is logged; the next checkpoint (or commit that waits for the disk)
/// syncs the same frames. Ends with the writer.
async fn flusher(readers: sqlx::AnyPool, mut told: mpsc::Receiver<()>) {
    while told.recv().await.is_some() {
        tokio::time::sleep(FLUSHED_WITHIN).await;
        match readers.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
            Ok(_) | Err(sqlx::Error::PoolClosed) => {}
            Err(error) => {
                tracing::warn!(%error, "flushing the access records to disk failed; the next flush retries")
            }
        }
    }
}

async fn insert(
    backend: Backend,
    pool: &sqlx::AnyPool,
    events: &[OutboxEvent],
) -> Result<(), sqlx::Error> {
    let refs: Vec<&OutboxEvent> = events.iter().collect();
    insert_refs(backend, pool, &refs).await
}

/// Writes `events` in one transaction that does not wait for the disk.
async fn insert_refs(
    backend: Backend,
    pool: &sqlx::AnyPool,
    events: &[&OutboxEvent],
) -> Result<(), sqlx::Error> {
    match backend {
        // The pool's sessions do not wait for the disk (`synchronous_commit = off`).
        Backend::Postgres if events.len() <= OutboxEvent::ROWS_PER_INSERT => {
            // One statement: its own transaction, one round trip.
            OutboxEvent::insert_all(events, &mut *pool.acquire().await?).await
        }
        Backend::Postgres => {
            let mut transaction = pool.begin().await?;
            OutboxEvent::insert_all(events, &mut transaction).await?;
            transaction.commit().await
        }
        Backend::Sqlite => {
            let mut connection = Unsynced::acquire(pool).await?;
            let written = async {
                let mut transaction = connection.get()?.begin().await?;
                OutboxEvent::insert_all(events, &mut transaction).await?;
                transaction.commit().await
            }
            .await;
            connection.restore().await?;
            written
        }
    }
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

    /// A record is committed when its caller is answered, the writing connection stays
    /// synchronous for every other commit, and the flusher puts the record into the database
    /// file (a checkpoint, which syncs the WAL first) without another commit to wait for.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answered_record_is_committed_and_reaches_the_database_file_soon() {
        let directory = tempfile::tempdir().unwrap();
        let database = database(&directory).await;
        let file = directory.path().join("g.db");
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(database.pool())
            .await
            .unwrap();
        let before = std::fs::read(&file).unwrap();
        record_events(&database, &[event(7)]).await.unwrap();
        // Committed: another connection sees it at once.
        assert_eq!(
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE event_id = 'e7'")
                .fetch_one(database.read_pool())
                .await
                .unwrap(),
            1
        );
        let synchronous = sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
            .fetch_one(database.pool())
            .await
            .unwrap();
        assert_eq!(
            synchronous, 2,
            "the writing connection was left unsynchronised"
        );
        let waited = std::time::Instant::now();
        while std::fs::read(&file).unwrap() == before {
            assert!(
                waited.elapsed() < std::time::Duration::from_secs(10),
                "the record never left the WAL for the database file"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
