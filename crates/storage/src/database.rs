//! Connecting to SQLite or PostgreSQL through sqlx's `Any` driver (and, on PostgreSQL, a
//! small native pool for what the `Any` driver cannot do, such as `COPY`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

use crate::health::{DatabaseHealth, DatabaseOptions, PoolGate, probe_postgres};
use crate::migrations::{EmbeddedMigrations, MigrationFile};
use crate::outbox::{GroupCommit, WriterPools};

/// Connections of the native PostgreSQL pool: one service's writers take turns on a lock of
/// their own, so they need few.
const POSTGRES_NATIVE_CONNECTIONS: u32 = 2;

/// Connections on which PostgreSQL's access records are written (see the `group` module):
/// one per batch it commits at once.
const POSTGRES_RECORD_CONNECTIONS: u32 = crate::outbox::POSTGRES_BATCHES_IN_FLIGHT as u32;

/// Connections of SQLite's pool of readers (see [`Database::read_pool`]).
const SQLITE_READERS: u32 = 4;

/// WAL pages after which SQLite's writing connection checkpoints in its commit (SQLite's
/// default is 1,000). A checkpoint syncs the WAL and the database file, and the commit that
/// runs it answers only afterwards; at the default, under a steady flow of reads each
/// recorded in the access log, Get's 99th percentile was 13–14 ms against 1.1–1.2 ms for a
/// read that records nothing (BENCHMARKS.md, section 8). Between these checkpoints the access
/// log's flusher copies pages back without waiting for the writer, so the one that runs in a
/// commit has little left to copy. The WAL file stays below twice this many pages (80 MB at
/// 4 KiB): after the checkpoint the next write starts it over unless a reader still reads
/// from it.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// How long a connection of the native pool is reused. The audit log writes through it at up
/// to ~50 MB/s, and over TLS a connection that had carried about 9 GB has stalled (see
/// BENCHMARKS.md, section 3); a fresh connection each minute keeps each one far below that,
/// for the cost of one TLS handshake and login a minute.
const NATIVE_CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Which database engine a [`Database`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("unsupported database url scheme (expected sqlite: or postgres:)")]
    UnsupportedUrl,
    #[error("invalid schema name {0:?} (lowercase letters and _ only)")]
    InvalidSchema(String),
    #[error("could not connect to the {backend} database")]
    Connect {
        backend: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrations of schema {schema} failed")]
    Migrate {
        schema: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

/// The migrations of one service, one set per backend (their SQL dialects differ in triggers
/// and key generation, the tables are the same), embedded with
/// [`migration_files!`](crate::migration_files).
pub struct Migrations {
    pub sqlite: &'static [MigrationFile],
    pub postgres: &'static [MigrationFile],
}

impl Migrations {
    /// Checks that the embedded files are exactly those in `dir/sqlite` and `dir/postgres`
    /// (every `.sql` file, with the same contents) and that they parse as migrations.
    pub fn check_embedded(&self, dir: &std::path::Path) -> Result<(), String> {
        for (backend, files) in [("sqlite", self.sqlite), ("postgres", self.postgres)] {
            crate::migrations::check_embedded(files, &dir.join(backend))?;
            crate::migrations::migrations(files).map_err(|error| error.to_string())?;
        }
        Ok(())
    }
}

/// A connection pool for one service's schema, and whether its database answers.
///
/// While the database is down (see [`DatabaseHealth`]) [`Database::pool`] and
/// [`Database::postgres_pool`] give pools that are closed, so every call fails at once with
/// `PoolClosed` (an [`Outage`](crate::Outage)) instead of waiting out the deadline; once the
/// probe finds the database answering, the real pools again.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    /// On SQLite, read-only connections beside the one that writes; on PostgreSQL, `pool`.
    readers: AnyPool,
    backend: Backend,
    /// On PostgreSQL, a native pool on the same schema (see [`Database::postgres_pool`]).
    postgres: Option<PgPool>,
    /// Closed pools, handed out while the database is down.
    refusing: AnyPool,
    refusing_postgres: Option<PgPool>,
    health: DatabaseHealth,
    options: DatabaseOptions,
    /// Ends the probe when the database is closed or its last handle dropped.
    probe: Option<Arc<ProbeTask>>,
    /// The group-commit writer of events that record reads.
    reads: GroupCommit,
    /// The pool it writes on: on PostgreSQL connections whose commits do not wait for the
    /// disk; on SQLite, `pool`.
    records: AnyPool,
}

/// The PostgreSQL probe's task, stopped when dropped.
#[derive(Debug)]
struct ProbeTask {
    stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for ProbeTask {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Database {
    /// [`Database::connect_with`] with the default options.
    pub async fn connect(
        url: &str,
        schema: &str,
        migrations: &Migrations,
    ) -> Result<Database, DatabaseError> {
        Database::connect_with(url, schema, migrations, DatabaseOptions::default()).await
    }

    /// Connects to `url` (`sqlite://path/to/file.db` or `postgres://…`) for the service that
    /// owns `schema`, creating the SQLite file or the PostgreSQL schema if missing, and runs
    /// the service's migrations. On PostgreSQL it starts the probe that keeps
    /// [`Database::health`], and bounds every connection's wait and statement by
    /// `options.deadline`.
    pub async fn connect_with(
        url: &str,
        schema: &str,
        migrations: &Migrations,
        options: DatabaseOptions,
    ) -> Result<Database, DatabaseError> {
        let deadline = options.deadline;
        sqlx::any::install_default_drivers();
        if schema.is_empty() || !schema.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            return Err(DatabaseError::InvalidSchema(schema.to_owned()));
        }
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(DatabaseError::UnsupportedUrl);
        };
        let connect_error = |source| DatabaseError::Connect {
            backend: backend.as_str(),
            source,
        };
        let health = DatabaseHealth::up();
        let mut postgres = None;
        let mut refusing_postgres = None;
        let mut records = None;
        let mut probe = None;
        let pool = match backend {
            Backend::Sqlite => {
                let url = if url.contains('?') {
                    url.to_owned()
                } else {
                    format!("{url}?mode=rwc")
                };
                let options = AnyConnectOptions::from_str(&url).map_err(connect_error)?;
                // SQLite allows one writer at a time; a single connection serialises every
                // transaction in the process instead of failing them with SQLITE_BUSY.
                // Another process holding the file's lock (a backup, `tryggdel migrate`) is
                // waited for no longer than the deadline.
                let pragmas = format!(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {}; \
                     PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};",
                    deadline.as_millis()
                );
                pool_options::<sqlx::Any>(1, deadline, pragmas)
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?
            }
            Backend::Postgres => {
                let options = AnyConnectOptions::from_str(url).map_err(connect_error)?;
                // Schema and migrations on a connection of their own, without the deadline on
                // statements: a migration may take longer than a call may.
                let mut first = options.connect().await.map_err(connect_error)?;
                first
                    .execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str())
                    .await
                    .map_err(connect_error)?;
                first
                    .execute(session_settings(schema, Session::Migrations).as_str())
                    .await
                    .map_err(connect_error)?;
                let migrate_error = |source| DatabaseError::Migrate {
                    schema: schema.to_owned(),
                    source,
                };
                Migrator::new(EmbeddedMigrations(migrations.postgres))
                    .await
                    .map_err(migrate_error)?
                    .run(&mut first)
                    .await
                    .map_err(migrate_error)?;
                first.close().await.map_err(connect_error)?;
                let session = session_settings(schema, Session::Calls(deadline));
                let records_session = session_settings(schema, Session::Records(deadline));
                let native_session = session_settings(schema, Session::Native(deadline));
                let native_options = PgConnectOptions::from_str(url).map_err(connect_error)?;
                // Connects on first use: most services never ask for it.
                postgres = Some(
                    pool_options::<sqlx::Postgres>(
                        POSTGRES_NATIVE_CONNECTIONS,
                        deadline,
                        native_session,
                    )
                    .max_lifetime(NATIVE_CONNECTION_LIFETIME)
                    .connect_lazy_with(native_options.clone()),
                );
                refusing_postgres = Some(refusing_postgres_pool(native_options.clone()).await);
                let any = pool_options::<sqlx::Any>(16, deadline, session)
                    .connect_with(options.clone())
                    .await
                    .map_err(connect_error)?;
                let unsynced = pool_options::<sqlx::Any>(
                    POSTGRES_RECORD_CONNECTIONS,
                    deadline,
                    records_session,
                )
                .connect_lazy_with(options.clone());
                records = Some(unsynced.clone());
                if let Some(native) = &postgres {
                    let (stop, stopped) = tokio::sync::watch::channel(false);
                    let gate = PoolGate {
                        any: any.clone(),
                        records: unsynced,
                        any_options: options,
                        native: native.clone(),
                        native_options: native_options.clone(),
                    };
                    tokio::spawn(probe_postgres(
                        health.clone(),
                        native_options,
                        gate,
                        stopped,
                    ));
                    probe = Some(Arc::new(ProbeTask { stop }));
                }
                any
            }
        };
        if backend == Backend::Sqlite {
            let migrate_error = |source| DatabaseError::Migrate {
                schema: schema.to_owned(),
                source,
            };
            Migrator::new(EmbeddedMigrations(migrations.sqlite))
                .await
                .map_err(migrate_error)?
                .run(&pool)
                .await
                .map_err(migrate_error)?;
        }
        let readers = match backend {
            // In WAL mode readers see every committed transaction and wait for no writer, so
            // a read does not queue behind the one connection's commits. Made on first use.
            Backend::Sqlite => {
                let pragmas = format!(
                    "PRAGMA query_only = ON; PRAGMA busy_timeout = {};",
                    deadline.as_millis()
                );
                pool_options::<sqlx::Any>(SQLITE_READERS, deadline, pragmas)
                    .connect_lazy_with(pool.connect_options().as_ref().clone())
            }
            Backend::Postgres => pool.clone(),
        };
        let refusing = AnyPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(pool.connect_options().as_ref().clone());
        refusing.close().await;
        tracing::info!(backend = backend.as_str(), schema, "database ready");
        // SQLite's one writing connection writes the records too.
        let records = records.unwrap_or_else(|| pool.clone());
        let reads = GroupCommit::start(WriterPools {
            backend,
            pool: records.clone(),
            readers: readers.clone(),
            refusing: refusing.clone(),
            health: health.clone(),
        });
        Ok(Database {
            reads,
            records,
            pool,
            readers,
            backend,
            postgres,
            refusing,
            refusing_postgres,
            health,
            options,
            probe,
        })
    }

    /// The pool calls run on: while the database is down, one that refuses at once.
    pub fn pool(&self) -> &AnyPool {
        if self.health.is_up() {
            &self.pool
        } else {
            &self.refusing
        }
    }

    /// The pool for reads that write nothing and need no transaction with a write: on SQLite
    /// read-only connections that do not wait for the writing one (each sees every transaction
    /// committed before it began); on PostgreSQL the same as [`Database::pool`].
    pub fn read_pool(&self) -> &AnyPool {
        match self.backend {
            Backend::Sqlite if self.health.is_up() => &self.readers,
            _ => self.pool(),
        }
    }

    /// The writer that commits the events of concurrent reads together.
    pub(crate) fn reads(&self) -> &GroupCommit {
        &self.reads
    }

    /// On PostgreSQL, a native pool (at most two connections, made on first use) on the same
    /// server, user and schema as [`Database::pool`], for what the `Any` driver cannot do:
    /// `COPY`, array parameters; while the database is down, one that refuses at once. None on
    /// SQLite.
    pub fn postgres_pool(&self) -> Option<&PgPool> {
        if self.health.is_up() {
            self.postgres.as_ref()
        } else {
            self.refusing_postgres.as_ref()
        }
    }

    /// Whether the database answers, as the probe last found it (always up on SQLite).
    pub fn health(&self) -> &DatabaseHealth {
        &self.health
    }

    pub fn options(&self) -> DatabaseOptions {
        self.options
    }

    /// True once [`Database::close`] was called (not while the database is merely down).
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        if let Some(probe) = &self.probe {
            let _ = probe.stop.send(true);
        }
        self.pool.close().await;
        self.readers.close().await;
        self.records.close().await;
        if let Some(postgres) = &self.postgres {
            postgres.close().await;
        }
    }
}

/// A pool of at most `connections`, each of which runs `statements` when it is made (one
/// round trip), waiting no longer than `deadline` for a connection.
fn pool_options<DB: sqlx::Database>(
    connections: u32,
    deadline: Duration,
    statements: String,
) -> sqlx::pool::PoolOptions<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    sqlx::pool::PoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(deadline)
        .after_connect(move |connection: &mut DB::Connection, _meta| {
            let statements = statements.clone();
            Box::pin(async move {
                connection.execute(statements.as_str()).await?;
                Ok(())
            })
        })
}

/// How often the server checks, while a statement runs (or waits for a lock), that the client is
/// still connected: a client that gives up on a statement closes its connection, and the
/// server then ends the statement and rolls its transaction back within this time instead of
/// holding its locks until the statement would have finished. (`client_connection_check_interval`
/// is PostgreSQL 14's; older servers skip it.)
const CLIENT_CHECK_INTERVAL_MS: u32 = 1000;

/// How long a transaction on the native pool may sit idle between statements before the server
/// ends it: its transactions (the audit log's writers) hold a lock that every instance waits
/// for, and run their statements back to back, so a long pause means a client that has hung
/// or been stopped (SIGSTOP, a frozen VM) without its connection closing.
const NATIVE_IDLE_IN_TRANSACTION_MS: u32 = 30_000;

/// What a PostgreSQL connection is for.
#[derive(Clone, Copy)]
enum Session {
    /// Creating the schema and running migrations: no deadline on statements.
    Migrations,
    /// The `Any` pool's calls: every statement within the deadline.
    Calls(Duration),
    /// The access records' writers: as `Calls`, and commits that do not wait for the disk.
    Records(Duration),
    /// The native pool's (the audit log's writers): within the deadline, and a transaction
    /// left idle is ended.
    Native(Duration),
}

/// The statements run on every new PostgreSQL connection of `schema`'s pools (one round trip).
/// JIT compilation is off: the services' statements are short, or run once over many rows,
/// and compiling one of the log review's took half a second of its five (BENCHMARKS.md,
/// section 7).
fn session_settings(schema: &str, session: Session) -> String {
    let mut settings = format!(
        "SET search_path TO {schema}; SET jit = off; \
         SELECT set_config('client_connection_check_interval', '{CLIENT_CHECK_INTERVAL_MS}', false) \
         WHERE current_setting('server_version_num')::int >= 140000;"
    );
    match session {
        Session::Migrations => {}
        Session::Calls(deadline) => {
            settings.push_str(&format!(
                " SET statement_timeout = {};",
                deadline.as_millis()
            ));
        }
        Session::Records(deadline) => {
            settings.push_str(&format!(
                " SET statement_timeout = {}; SET synchronous_commit = off;",
                deadline.as_millis()
            ));
        }
        Session::Native(deadline) => {
            settings.push_str(&format!(
                " SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {NATIVE_IDLE_IN_TRANSACTION_MS};",
                deadline.as_millis()
            ));
        }
    }
    settings
}

/// A native pool that is closed: what [`Database::postgres_pool`] gives while the database is
/// down.
async fn refusing_postgres_pool(options: PgConnectOptions) -> PgPool {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(options);
    pool.close().await;
    pool
}

/// True when `error` is a unique-constraint violation (on either backend).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(database_error) => database_error.is_unique_violation(),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const EMPTY: &[MigrationFile] = &[];

    /// A SQLite database `name` in `directory` with the SQLite migrations `sqlite`.
    async fn sqlite(
        directory: &tempfile::TempDir,
        name: &str,
        sqlite: &'static [MigrationFile],
    ) -> Database {
        let url = format!(
            "sqlite://{}",
            directory.path().join(format!("{name}.db")).display()
        );
        let migrations = Migrations {
            sqlite,
            postgres: EMPTY,
        };
        Database::connect(&url, name, &migrations).await.unwrap()
    }

    #[tokio::test]
    async fn sqlite_file_is_created_and_reachable() {
        let directory = tempfile::tempdir().unwrap();
        let database = sqlite(&directory, "x", EMPTY).await;
        assert_eq!(database.backend(), Backend::Sqlite);
        let (value,): (i64,) = sqlx::query_as("SELECT 1 + 1")
            .fetch_one(database.pool())
            .await
            .unwrap();
        assert_eq!(value, 2);
    }

    /// A SQLite read does not wait for the one writing connection, sees only what is
    /// committed, and cannot write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_readers_do_not_wait_for_the_writer_and_cannot_write() {
        const TABLE: &[MigrationFile] = &[MigrationFile {
            name: "0001_t.sql",
            sql: "CREATE TABLE t (n INTEGER NOT NULL);",
        }];
        let directory = tempfile::tempdir().unwrap();
        let database = sqlite(&directory, "r", TABLE).await;
        let count = || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM t")
                .fetch_one(database.read_pool())
                .await
                .unwrap()
        };
        // The writer holds the only writing connection in an open transaction.
        let mut writing = database.pool().begin().await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (1)")
            .execute(&mut *writing)
            .await
            .unwrap();
        let during = tokio::time::timeout(Duration::from_secs(5), count())
            .await
            .expect("a read waited for the open write transaction");
        assert_eq!(during, 0, "a read saw an uncommitted row");
        writing.commit().await.unwrap();
        assert_eq!(count().await, 1);
        let refused = sqlx::query("INSERT INTO t (n) VALUES (2)")
            .execute(database.read_pool())
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("readonly"),
            "unexpected error: {refused}"
        );
        assert_eq!(count().await, 1);
    }

    /// Under a steady stream of commits, with readers reading all the while, the WAL is
    /// checkpointed and started over: it does not grow with what was written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_wal_stays_bounded_while_readers_keep_reading() {
        const TABLE: &[MigrationFile] = &[MigrationFile {
            name: "0001_t.sql",
            sql: "CREATE TABLE t (n INTEGER NOT NULL, payload BLOB NOT NULL);",
        }];
        let directory = tempfile::tempdir().unwrap();
        let database = sqlite(&directory, "w", TABLE).await;
        let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(database.pool())
            .await
            .unwrap();
        let bound = 2 * i64::from(WAL_AUTOCHECKPOINT_PAGES) * page_size;
        let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let mut readers = Vec::new();
        for _ in 0..SQLITE_READERS {
            let pool = database.read_pool().clone();
            let writing = writing.clone();
            readers.push(tokio::spawn(async move {
                let mut reads = 0_u64;
                while writing.load(std::sync::atomic::Ordering::Relaxed) {
                    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM t")
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                    reads += 1;
                }
                reads
            }));
        }
        // Half as much again as the bound, in commits of 16 pages each.
        let payload = vec![7_u8; 16 * usize::try_from(page_size).unwrap()];
        let commits = 3 * bound / 2 / (16 * page_size);
        let wal = directory.path().join("w.db-wal");
        let mut largest = 0;
        for n in 0..commits {
            sqlx::query("INSERT INTO t (n, payload) VALUES ($1, $2)")
                .bind(n)
                .bind(payload.as_slice())
                .execute(database.pool())
                .await
                .unwrap();
            let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            largest = largest.max(i64::try_from(size).unwrap());
        }
        writing.store(false, std::sync::atomic::Ordering::Relaxed);
        let mut reads = 0;
        for reader in readers {
            reads += reader.await.unwrap();
        }
        assert!(reads > commits as u64, "the readers hardly read ({reads})");
        assert!(
            largest < bound,
            "the WAL grew to {largest} bytes, past {bound}, over {} bytes written",
            commits * 16 * page_size
        );
    }

    #[tokio::test]
    async fn unknown_scheme_and_bad_schema_are_refused() {
        let migrations = Migrations {
            sqlite: EMPTY,
            postgres: EMPTY,
        };
        assert!(matches!(
            Database::connect("mysql://x", "x", &migrations).await,
            Err(DatabaseError::UnsupportedUrl)
        ));
        assert!(matches!(
            Database::connect("sqlite://x.db", "x; DROP", &migrations).await,
            Err(DatabaseError::InvalidSchema(_))
        ));
    }
}
