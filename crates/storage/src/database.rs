//! Connecting to SQLite or PostgreSQL through sqlx's `Any` driver (and, on PostgreSQL, a
//! small native pool for what the `Any` driver cannot do, such as `COPY`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

use crate::migrations::{EmbeddedMigrations, MigrationFile};

/// Connections of the native PostgreSQL pool: one service's writers take turns on a lock of
/// their own, so they need few.
const POSTGRES_NATIVE_CONNECTIONS: u32 = 2;

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

/// A connection pool for one service's schema.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// On PostgreSQL, a native pool on the same schema (see [`Database::postgres_pool`]).
    postgres: Option<PgPool>,
}

impl Database {
    /// Connects to `url` (`sqlite://path/to/file.db` or `postgres://…`) for the service that
    /// owns `schema`, creating the SQLite file or the PostgreSQL schema if missing, and runs
    /// the service's migrations.
    pub async fn connect(
        url: &str,
        schema: &str,
        migrations: &Migrations,
    ) -> Result<Database, DatabaseError> {
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
        let mut postgres = None;
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
                AnyPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|connection, _meta| {
                        Box::pin(async move {
                            connection
                                .execute(
                                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                                )
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?
            }
            Backend::Postgres => {
                let options = AnyConnectOptions::from_str(url).map_err(connect_error)?;
                let mut first = options.connect().await.map_err(connect_error)?;
                first
                    .execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str())
                    .await
                    .map_err(connect_error)?;
                first.close().await.map_err(connect_error)?;
                let session = session_settings(schema, false);
                let native_session = session_settings(schema, true);
                let native_options = PgConnectOptions::from_str(url).map_err(connect_error)?;
                // Connects on first use: most services never ask for it.
                postgres = Some(
                    PgPoolOptions::new()
                        .max_connections(POSTGRES_NATIVE_CONNECTIONS)
                        .acquire_timeout(Duration::from_secs(10))
                        .max_lifetime(NATIVE_CONNECTION_LIFETIME)
                        .after_connect(move |connection, _meta| {
                            let session = native_session.clone();
                            Box::pin(async move {
                                connection.execute(session.as_str()).await?;
                                Ok(())
                            })
                        })
                        .connect_lazy_with(native_options),
                );
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(move |connection, _meta| {
                        let session = session.clone();
                        Box::pin(async move {
                            connection.execute(session.as_str()).await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?
            }
        };
        let files = match backend {
            Backend::Sqlite => migrations.sqlite,
            Backend::Postgres => migrations.postgres,
        };
        let migrate_error = |source| DatabaseError::Migrate {
            schema: schema.to_owned(),
            source,
        };
        Migrator::new(EmbeddedMigrations(files))
            .await
            .map_err(migrate_error)?
            .run(&pool)
            .await
            .map_err(migrate_error)?;
        tracing::info!(backend = backend.as_str(), schema, "database ready");
        Ok(Database {
            pool,
            backend,
            postgres,
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// On PostgreSQL, a native pool (at most two connections, made on first use) on the same
    /// server, user and schema as [`Database::pool`], for what the `Any` driver cannot do:
    /// `COPY`, array parameters. None on SQLite.
    pub fn postgres_pool(&self) -> Option<&PgPool> {
        self.postgres.as_ref()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(postgres) = &self.postgres {
            postgres.close().await;
        }
    }
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

/// The statements run on every new PostgreSQL connection of `schema`'s pools (one round trip).
fn session_settings(schema: &str, native: bool) -> String {
    let mut settings = format!(
        "SET search_path TO {schema}; \
         SELECT set_config('client_connection_check_interval', '{CLIENT_CHECK_INTERVAL_MS}', false) \
         WHERE current_setting('server_version_num')::int >= 140000;"
    );
    if native {
        settings.push_str(&format!(
            " SET idle_in_transaction_session_timeout = {NATIVE_IDLE_IN_TRANSACTION_MS};"
        ));
    }
    settings
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

    #[tokio::test]
    async fn sqlite_file_is_created_and_reachable() {
        let directory = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", directory.path().join("x.db").display());
        let migrations = Migrations {
            sqlite: EMPTY,
            postgres: EMPTY,
        };
        let database = Database::connect(&url, "x", &migrations).await.unwrap();
        assert_eq!(database.backend(), Backend::Sqlite);
        let (value,): (i64,) = sqlx::query_as("SELECT 1 + 1")
            .fetch_one(database.pool())
            .await
            .unwrap();
        assert_eq!(value, 2);
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
