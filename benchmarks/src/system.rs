//! The three services started in this process, each on its own fresh database, wired to each
//! other over mTLS exactly as `tryggdel start` wires them (production relay pacing, checkpoints
//! signed at most once a second, default deadlines).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tryggdel_disclosure::{DEVELOPMENT_DIRECTORY, Directory, RelayConfig};
use tryggdel_domain::{LegalRegistry, PersonKey};
use tryggdel_storage::FieldKey;

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
}

/// A random per-deployment person key.
pub fn random_person_key() -> PersonKey {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    PersonKey::from_bytes(bytes)
}

/// A random Ed25519 signing key (checkpoints, receipts).
pub fn random_signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng)
}

async fn listener() -> anyhow::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a port on 127.0.0.1")
}

/// The development organisation directory, checked against the embedded registry.
pub fn development_directory() -> anyhow::Result<(Arc<LegalRegistry>, Arc<Directory>)> {
    let registry = Arc::new(LegalRegistry::embedded().context("legal-basis registry")?);
    let directory = Arc::new(
        Directory::from_toml(DEVELOPMENT_DIRECTORY, &registry).context("organisation directory")?,
    );
    Ok((registry, directory))
}

/// The audit service's settings for `database_url`.
pub fn audit_settings(
    identity: &BenchIdentity,
    directory: Arc<Directory>,
    database_url: String,
    checkpoint_interval: Duration,
) -> anyhow::Result<tryggdel_audit::Settings> {
    Ok(tryggdel_audit::Settings {
        database_url,
        tls: identity.server_tls("audit")?,
        token: identity.verifier_config(),
        directory,
        person_key: random_person_key(),
        origin: "audit.bench.tryggdel.se/log".into(),
        signing_key: random_signing_key(),
        checkpoint_interval,
        appenders: tryggdel_audit::DEFAULT_APPENDERS
            .iter()
            .map(|name| name.to_string())
            .collect(),
    })
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
            let identity = Arc::new(BenchIdentity::generate()?);
            let (registry, directory) = development_directory()?;
            let person_key = random_person_key();
            let receipt_signing_key = random_signing_key();
            let (audit_listener, notification_listener, disclosure_listener) =
                (listener().await?, listener().await?, listener().await?);
            let audit_address = audit_listener.local_addr()?;
            let notification_address = notification_listener.local_addr()?;
            let disclosure_address = disclosure_listener.local_addr()?;
            let url = |index: usize| {
                databases
                    .get(index)
                    .map(|database| database.url.clone())
                    .context("three databases")
            };

            let mut audit_settings = audit_settings(
                &identity,
                directory.clone(),
                url(0)?,
                options.checkpoint_interval,
            )?;
            audit_settings.person_key = person_key.clone();
            let audit = tryggdel_audit::spawn_on(&audit_settings, audit_listener)
                .await
                .context("starting the audit service")?;
            let notification = tryggdel_notification::spawn_on(
                &tryggdel_notification::Settings {
                    database_url: url(1)?,
                    tls: identity.server_tls("notification")?,
                    token: identity.verifier_config(),
                    directory: directory.clone(),
                    field_key: FieldKey::from_base64(&FieldKey::generate_base64())
                        .context("field key")?,
                    receipt_signing_key: receipt_signing_key.clone(),
                    urgent_deadline: tryggdel_notification::DEFAULT_URGENT_DEADLINE,
                    ordinary_deadline: tryggdel_notification::DEFAULT_ORDINARY_DEADLINE,
                    escalation_repeat: tryggdel_notification::DEFAULT_ESCALATION_REPEAT,
                    deadline_check_interval: tryggdel_notification::DEFAULT_DEADLINE_CHECK_INTERVAL,
                    senders: tryggdel_notification::DEFAULT_SENDERS
                        .iter()
                        .map(|name| name.to_string())
                        .collect(),
                    audit: identity.endpoint("notification", audit_address)?,
                    disclosure: identity.endpoint("notification", disclosure_address)?,
                    relay: tryggdel_notification::RelayConfig::default(),
                },
                notification_listener,
            )
            .await
            .context("starting the notification service")?;
            let disclosure = tryggdel_disclosure::spawn_on(
                &tryggdel_disclosure::Settings {
                    database_url: url(2)?,
                    tls: identity.server_tls("disclosure")?,
                    token: identity.verifier_config(),
                    field_key: FieldKey::from_base64(&FieldKey::generate_base64())
                        .context("field key")?,
                    person_key,
                    registry,
                    directory: directory.clone(),
                    audit: identity.endpoint("disclosure", audit_address)?,
                    notification: identity.endpoint("disclosure", notification_address)?,
                    receipt_key: receipt_signing_key.verifying_key(),
                    relay: RelayConfig::default(),
                },
                disclosure_listener,
            )
            .await
            .context("starting the disclosure service")?;
            anyhow::Ok((identity, directory, audit, notification, disclosure))
        }
        .await;
        match started {
            Ok((identity, directory, audit, notification, disclosure)) => Ok(System {
                identity,
                directory,
                databases,
                audit,
                notification,
                disclosure,
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
