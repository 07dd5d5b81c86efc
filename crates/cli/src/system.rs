//! Starting the whole system in one process on the embedded default.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use tokio::net::TcpListener;
use tryggdel_disclosure::{DEVELOPMENT_DIRECTORY, Directory};
use tryggdel_domain::LegalRegistry;

use crate::config::{Config, Endpoints};
use crate::devkit::{DataDirectory, read};
use crate::serve;

/// The services `tryggdel start` runs, in start order.
pub const SERVICES: [&str; 3] = ["audit", "notification", "disclosure"];

/// What `tryggdel start` was asked for.
#[derive(Clone, Debug)]
pub struct SystemOptions {
    pub data_dir: PathBuf,
    pub disclosure_listen: SocketAddr,
    pub audit_listen: SocketAddr,
    pub notification_listen: SocketAddr,
    /// None: a SQLite file per service in the data directory. A PostgreSQL URL is shared by
    /// the services, each in its own schema.
    pub database_url: Option<String>,
    /// None: the development organisation directory.
    pub directory: Option<PathBuf>,
}

/// The running services.
pub struct RunningSystem {
    pub data: DataDirectory,
    pub registry_version: String,
    pub audit: tryggdel_audit::RunningService,
    pub notification: tryggdel_notification::RunningService,
    pub disclosure: tryggdel_disclosure::RunningService,
}

async fn bind(address: SocketAddr, service: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address} for the {service} service"))
}

/// Creates the development data directory if needed and starts every service, each with the
/// configuration `tryggdel serve` would give it in development mode.
pub async fn start_system(options: &SystemOptions) -> anyhow::Result<RunningSystem> {
    tryggdel_tls::install_crypto_provider();
    let data = DataDirectory::new(&options.data_dir);
    if data.ensure(&SERVICES, &organisation_codes(options)?)? {
        tracing::info!(data_dir = %data.root.display(), "created development certificates and keys");
    }
    // Bind every listener first: each service must know the others' addresses.
    let audit_listener = bind(options.audit_listen, "audit").await?;
    let notification_listener = bind(options.notification_listen, "notification").await?;
    let disclosure_listener = bind(options.disclosure_listen, "disclosure").await?;
    let endpoints = Endpoints {
        audit: format!("https://{}", audit_listener.local_addr()?),
        disclosure: format!("https://{}", disclosure_listener.local_addr()?),
        notification: format!("https://{}", notification_listener.local_addr()?),
    };
    let database_url = |service: &str| {
        options
            .database_url
            .clone()
            .unwrap_or_else(|| data.sqlite_url(service))
    };

    let config = configured(&data, "audit", options, &endpoints);
    let common = serve::common(&config)?;
    let audit = tryggdel_audit::spawn_on(
        &serve::audit_settings(&config, &common, database_url("audit"))?,
        audit_listener,
    )
    .await?;

    let config = configured(&data, "notification", options, &endpoints);
    let common = serve::common(&config)?;
    let notification = tryggdel_notification::spawn_on(
        &serve::notification_settings(&config, &common, database_url("notification"))?,
        notification_listener,
    )
    .await?;

    let config = configured(&data, "disclosure", options, &endpoints);
    let common = serve::common(&config)?;
    let disclosure = tryggdel_disclosure::spawn_on(
        &serve::disclosure_settings(&config, &common, database_url("disclosure"))?,
        disclosure_listener,
    )
    .await?;
    Ok(RunningSystem {
        data,
        registry_version: common.registry.registry_version().to_owned(),
        audit,
        notification,
        disclosure,
    })
}

/// The development configuration of `service` with the bound endpoints.
fn configured(
    data: &DataDirectory,
    service: &str,
    options: &SystemOptions,
    endpoints: &Endpoints,
) -> Config {
    let mut config = data.development_config(service, options.directory.clone());
    config.endpoints = endpoints.clone();
    config
}

/// The organisation codes of the directory the system runs with (for their client
/// certificates).
fn organisation_codes(options: &SystemOptions) -> anyhow::Result<Vec<String>> {
    let registry = LegalRegistry::embedded().context("legal-basis registry")?;
    let text = match &options.directory {
        Some(path) => read(path)?,
        None => DEVELOPMENT_DIRECTORY.to_owned(),
    };
    Ok(Directory::from_toml(&text, &registry)
        .context("organisation directory")?
        .codes())
}

impl RunningSystem {
    /// What a newcomer needs to call the system.
    pub fn print_banner(&self) {
        let data = &self.data;
        println!(
            "tryggdel is running (development mode, data in {})",
            data.root.display()
        );
        println!(
            "  disclosure service    https://{}  (mTLS, TLS 1.3)",
            self.disclosure.local_addr
        );
        println!(
            "  audit service         https://{}  (mTLS, TLS 1.3)",
            self.audit.local_addr
        );
        println!(
            "  notification service  https://{}  (mTLS, TLS 1.3)",
            self.notification.local_addr
        );
        println!("  legal-basis registry  {}", self.registry_version);
        println!("  CA certificate        {}", data.ca_cert().display());
        println!(
            "  client certificates   {}/<organisation>.pem and <organisation>-key.pem",
            data.root.join("pki/clients").display()
        );
        println!(
            "  audit log key         {}  (for `tryggdel audit verify`)",
            data.audit_log_vkey().display()
        );
        let data_flag = if data.root == std::path::Path::new("data") {
            String::new()
        } else {
            format!(" --data-dir {}", data.root.display())
        };
        println!("tokens for each role (valid 60 minutes):");
        for (role, user, organisation, extra) in [
            ("caseworker", "handlaggare-bollnas", "bollnas-kommun", ""),
            ("decision_maker", "beslut-bollnas", "bollnas-kommun", ""),
            (
                "police_officer",
                "polis-mitt-1",
                "polisen",
                " --region mitt",
            ),
            ("compliance_officer", "granskare-ivo", "ivo", ""),
        ] {
            println!(
                "  {role:<19} cargo run -q --bin tryggdel --{data_flag} dev-token --role {role} --user {user} --org {organisation}{extra}"
            );
        }
        println!("the whole scenario:   cargo run -q --bin tryggdel --{data_flag} demo");
        println!("stop with Ctrl-C (or SIGTERM)");
    }

    /// Stops every service, letting in-flight calls finish: disclosure, then notification,
    /// then audit, so that each relay can hand over what it holds before its receiver stops.
    /// Whatever is still in an outbox is sent on the next start.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.disclosure.stop().await?;
        self.notification.stop().await?;
        self.audit.stop().await
    }
}
