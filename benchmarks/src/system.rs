//! The three services started in this process by the system builder `tryggdel start` uses,
//! each on its own fresh database (production relay pacing, default deadlines; checkpoints as
//! often as the benchmark asks).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tryggdel_disclosure::{DEVELOPMENT_DIRECTORY, Directory};
use tryggdel_domain::LegalRegistry;
use tryggdel_system::{DataDirectory, Service, SystemBuilder};

use crate::{Backend, BenchDatabase, BenchIdentity};

/// How the system is started.
#[derive(Clone, Debug)]
pub struct SystemOptions {
    pub backend: Backend,
    /// Prefix of the PostgreSQL databases' names.
    pub database_prefix: String,
    /// How often, at most, the audit log signs a checkpoint (`tryggdel start`: 1 s).
    pub checkpoint_interval: Duration,
}

/// The running services and what a client needs to call them.
pub struct System {
    pub identity: Arc<BenchIdentity>,
    pub directory: Arc<Directory>,
    pub databases: Vec<BenchDatabase>,
    pub audit: tryggdel_audit::RunningService,
    pub notification: tryggdel_notification::RunningService,
    pub disclosure: tryggdel_disclosure::RunningService,
    /// The development data directory the services were configured from.
    _data: tempfile::TempDir,
}

/// A random Ed25519 signing key (checkpoints, receipts).
pub fn random_signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng)
}

/// The development organisation directory, checked against the embedded registry.
pub fn development_directory() -> anyhow::Result<(Arc<LegalRegistry>, Arc<Directory>)> {
    let registry = Arc::new(LegalRegistry::embedded().context("legal-basis registry")?);
    let directory = Arc::new(
        Directory::from_toml(DEVELOPMENT_DIRECTORY, &registry).context("organisation directory")?,
    );
    Ok((registry, directory))
}

/// The audit service's settings for `database_url`, as `tryggdel start` configures it on the
/// development data directory `data` (created if needed), signing checkpoints at most every
/// `checkpoint_interval`.
pub fn audit_settings(
    data: &DataDirectory,
    database_url: String,
    checkpoint_interval: Duration,
) -> anyhow::Result<tryggdel_audit::Settings> {
    let mut settings = SystemBuilder::development(&data.root).audit_settings(database_url)?;
    settings.checkpoint_interval = checkpoint_interval;
    Ok(settings)
}

impl System {
    pub async fn start(options: &SystemOptions) -> anyhow::Result<System> {
        let mut databases = Vec::new();
        for label in ["audit", "notification", "disclosure"] {
            databases.push(
                BenchDatabase::create(&options.backend, &options.database_prefix, label).await?,
            );
        }
        match Self::start_on(options, databases).await {
            Ok(system) => Ok(system),
            Err((error, databases)) => {
                for database in databases {
                    database.remove().await.ok();
                }
                Err(error)
            }
        }
    }

    async fn start_on(
        options: &SystemOptions,
        databases: Vec<BenchDatabase>,
    ) -> Result<System, (anyhow::Error, Vec<BenchDatabase>)> {
        let started = async {
            let data = tempfile::tempdir().context("a data directory")?;
            let url = |index: usize| {
                databases
                    .get(index)
                    .map(|database| database.url.clone())
                    .context("three databases")
            };
            let checkpoint_interval = options.checkpoint_interval;
            let running = SystemBuilder::development(data.path())
                .on_free_ports()
                .database(Service::Audit, url(0)?)
                .database(Service::Notification, url(1)?)
                .database(Service::Disclosure, url(2)?)
                .audit(move |settings| settings.checkpoint_interval = checkpoint_interval)
                .start()
                .await
                .context("starting the services")?;
            let identity = Arc::new(BenchIdentity::from_development_pki(&DataDirectory::new(
                data.path(),
            ))?);
            let directory = running.settings.disclosure.directory.clone();
            anyhow::Ok((data, identity, directory, running))
        }
        .await;
        match started {
            Ok((data, identity, directory, running)) => Ok(System {
                identity,
                directory,
                databases,
                audit: running.audit,
                notification: running.notification,
                disclosure: running.disclosure,
                _data: data,
            }),
            Err(error) => Err((error, databases)),
        }
    }

    pub fn disclosure_address(&self) -> SocketAddr {
        self.disclosure.local_addr
    }

    pub fn notification_address(&self) -> SocketAddr {
        self.notification.local_addr
    }

    pub fn audit_address(&self) -> SocketAddr {
        self.audit.local_addr
    }

    /// The PostgreSQL databases' names (empty on SQLite).
    pub fn database_names(&self) -> Vec<String> {
        self.databases
            .iter()
            .filter_map(|database| database.name.clone())
            .collect()
    }

    /// Stops the services (disclosure, notification, audit: each relay hands over what it
    /// holds before its receiver stops) and hands back their databases.
    pub async fn stop_services(self) -> (anyhow::Result<()>, Vec<BenchDatabase>) {
        let stopped = async {
            self.disclosure.stop().await?;
            self.notification.stop().await?;
            self.audit.stop().await
        }
        .await;
        (stopped, self.databases)
    }
}

/// Drops the databases unless `keep`.
pub async fn remove_databases(databases: Vec<BenchDatabase>, keep: bool) -> anyhow::Result<()> {
    if !keep {
        for database in databases {
            database.remove().await?;
        }
    }
    Ok(())
}
