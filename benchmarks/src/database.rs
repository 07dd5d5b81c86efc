//! Fresh databases for one benchmark run, and PostgreSQL's count of committed transactions in
//! them (`pg_stat_database.xact_commit`).

use anyhow::Context;
use sqlx::Connection;
use tryggdel_test_support::{create_postgres_database, drop_postgres_database};
pub use tryggdel_test_support::{redacted, with_database};

/// Where a benchmark makes its databases: the options every benchmark takes.
#[derive(clap::Args, Clone, Debug)]
pub struct DatabaseArgs {
    /// Admin URL of the PostgreSQL server (fresh databases are made there and dropped after).
    #[arg(long, env = "TRYGGDEL_BENCH_POSTGRES_URL", default_value = crate::DEFAULT_POSTGRES_URL)]
    pub postgres_url: String,
    /// Prefix of the fresh databases' names.
    #[arg(long, default_value = "tryggdel_bench_")]
    pub database_prefix: String,
    /// Keep the databases after the run (their names are printed).
    #[arg(long)]
    pub keep_databases: bool,
}

/// Where the services keep their data during a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file per service in a temporary directory.
    Sqlite,
    /// A fresh database per service on the server of this admin URL.
    Postgres { admin_url: String },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgresql",
        }
    }

    /// `postgres` or `sqlite`, with the admin URL for PostgreSQL.
    pub fn parse(name: &str, admin_url: &str) -> anyhow::Result<Backend> {
        match name {
            "postgres" | "postgresql" => Ok(Backend::Postgres {
                admin_url: admin_url.to_owned(),
            }),
            "sqlite" => Ok(Backend::Sqlite),
            other => anyhow::bail!("unknown backend {other:?}: expected postgres or sqlite"),
        }
    }

    pub fn admin_url(&self) -> Option<&str> {
        match self {
            Backend::Postgres { admin_url } => Some(admin_url),
            Backend::Sqlite => None,
        }
    }
}

/// A database that exists only for this run.
pub struct BenchDatabase {
    pub url: String,
    /// The PostgreSQL database's name (None on SQLite).
    pub name: Option<String>,
    admin_url: Option<String>,
    _directory: Option<tempfile::TempDir>,
}

impl BenchDatabase {
    /// A fresh, empty database named `<prefix><random>_<label>` (PostgreSQL), or a SQLite file.
    pub async fn create(backend: &Backend, prefix: &str, label: &str) -> anyhow::Result<Self> {
        match backend {
            Backend::Sqlite => {
                let directory = tempfile::tempdir().context("temporary directory")?;
                let url = format!(
                    "sqlite://{}",
                    directory.path().join(format!("{label}.db")).display()
                );
                Ok(BenchDatabase {
                    url,
                    name: None,
                    admin_url: None,
                    _directory: Some(directory),
                })
            }
            Backend::Postgres { admin_url } => {
                let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
                anyhow::ensure!(
                    prefix.chars().all(valid) && label.chars().all(valid),
                    "database prefix and label must be lowercase letters, digits and _"
                );
                let random = uuid::Uuid::new_v4().simple().to_string();
                let name = format!("{prefix}{}_{label}", &random[..12]);
                // PostgreSQL cuts longer identifiers silently, and the name must match later.
                anyhow::ensure!(
                    name.len() <= 63,
                    "database name {name} is longer than PostgreSQL's 63 bytes: shorten the prefix"
                );
                create_postgres_database(admin_url, &name).await?;
                Ok(BenchDatabase {
                    url: with_database(admin_url, &name),
                    name: Some(name),
                    admin_url: Some(admin_url.clone()),
                    _directory: None,
                })
            }
        }
    }

    /// The PostgreSQL database `name` an earlier run kept (`--keep-databases`), used as it is
    /// and never dropped by this run.
    pub fn existing(backend: &Backend, name: &str) -> anyhow::Result<Self> {
        let Backend::Postgres { admin_url } = backend else {
            anyhow::bail!(
                "only PostgreSQL databases can be reused (a SQLite run's files are temporary)"
            );
        };
        Ok(BenchDatabase {
            url: with_database(admin_url, name),
            name: Some(name.to_owned()),
            admin_url: None,
            _directory: None,
        })
    }

    /// Drops a PostgreSQL database (a SQLite file goes with its directory).
    pub async fn remove(self) -> anyhow::Result<()> {
        if let (Some(admin_url), Some(name)) = (&self.admin_url, &self.name) {
            drop_postgres_database(admin_url, name).await?;
        }
        Ok(())
    }
}

/// Committed transactions so far in the databases `names` (`pg_stat_database.xact_commit`;
/// every statement outside an explicit transaction counts as one).
pub async fn xact_commit(admin_url: &str, names: &[String]) -> anyhow::Result<i64> {
    Ok(xact_commits(admin_url, names)
        .await?
        .iter()
        .map(|(_, commits)| commits)
        .sum())
}

/// `xact_commit` of each of the databases `names`.
pub async fn xact_commits(admin_url: &str, names: &[String]) -> anyhow::Result<Vec<(String, i64)>> {
    let mut admin = sqlx::PgConnection::connect(admin_url).await?;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT datname::TEXT, xact_commit::BIGINT FROM pg_stat_database \
         WHERE datname = ANY($1) ORDER BY datname",
    )
    .bind(names)
    .fetch_all(&mut admin)
    .await
    .context("reading pg_stat_database")?;
    admin.close().await.ok();
    Ok(rows)
}

/// Server-wide counters (every database, every client): transaction ids assigned (one per
/// transaction that wrote), and WAL activity (`pg_stat_wal`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerCounters {
    pub xids: i64,
    pub wal_records: i64,
    pub wal_bytes: i64,
    pub wal_syncs: i64,
}

impl ServerCounters {
    pub async fn read(admin_url: &str) -> anyhow::Result<ServerCounters> {
        let mut admin = sqlx::PgConnection::connect(admin_url).await?;
        // txid_current() assigns an id itself: one extra per reading, subtracted in `since`.
        let (xids,): (i64,) = sqlx::query_as("SELECT txid_current()::BIGINT")
            .fetch_one(&mut admin)
            .await
            .context("reading the transaction id counter")?;
        let (wal_records, wal_bytes, wal_syncs): (i64, i64, i64) = sqlx::query_as(
            "SELECT wal_records::BIGINT, wal_bytes::BIGINT, wal_sync::BIGINT FROM pg_stat_wal",
        )
        .fetch_one(&mut admin)
        .await
        .context("reading pg_stat_wal")?;
        admin.close().await.ok();
        Ok(ServerCounters {
            xids,
            wal_records,
            wal_bytes,
            wal_syncs,
        })
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &ServerCounters) -> ServerCounters {
        ServerCounters {
            xids: self.xids - earlier.xids - 1,
            wal_records: self.wal_records - earlier.wal_records,
            wal_bytes: self.wal_bytes - earlier.wal_bytes,
            wal_syncs: self.wal_syncs - earlier.wal_syncs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (`with_database` is tested where it is written, in test-support.)
    #[test]
    fn urls_are_printed_without_credentials() {
        assert_eq!(redacted("postgres://u:p@h:5432/x"), "postgres://h:5432/x");
        assert_eq!(redacted("postgres://h/x"), "postgres://h/x");
    }
}
