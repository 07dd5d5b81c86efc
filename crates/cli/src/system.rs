//! Starting the whole system in one process on the embedded default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tryggdel_auth::VerifierConfig;
use tryggdel_disclosure::{DEVELOPMENT_DIRECTORY, Directory, RelayConfig};
use tryggdel_domain::{LegalRegistry, PersonKey};
use tryggdel_service_kit::{ClientTls, ServerTls, ServiceEndpoint};

use crate::devkit::{AUDIENCE, AUDIT_ORIGIN, DataDirectory, ISSUER, read};

/// The services `tryggdel start` runs, in start order.
pub const SERVICES: [&str; 2] = ["audit", "disclosure"];

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
    pub disclosure: tryggdel_disclosure::RunningService,
}

fn server_tls(data: &DataDirectory, service: &str) -> anyhow::Result<ServerTls> {
    Ok(ServerTls {
        cert_chain_pem: read(&data.server_cert(service))?,
        key_pem: read(&data.server_key(service))?,
        client_ca_pem: read(&data.ca_cert())?,
    })
}

/// How `caller` reaches the service at `address`, with its own service certificate.
fn endpoint(
    data: &DataDirectory,
    caller: &str,
    address: SocketAddr,
) -> anyhow::Result<ServiceEndpoint> {
    Ok(ServiceEndpoint {
        uri: format!("https://{address}"),
        server_name: "localhost".to_owned(),
        tls: ClientTls {
            ca_pem: read(&data.ca_cert())?,
            cert_pem: read(&data.server_cert(caller))?,
            key_pem: read(&data.server_key(caller))?,
        },
        timeout: Duration::from_secs(5),
    })
}

fn receipt_key(data: &DataDirectory) -> anyhow::Result<ed25519_dalek::SigningKey> {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    ed25519_dalek::SigningKey::from_pkcs8_pem(&read(&data.receipt_key())?)
        .context("receipt signing key (expected Ed25519 PKCS#8 PEM)")
}

/// Creates the development data directory if needed and starts every service.
pub async fn start_system(options: &SystemOptions) -> anyhow::Result<RunningSystem> {
    tryggdel_tls::install_crypto_provider();
    let data = DataDirectory::new(&options.data_dir);
    let registry = Arc::new(LegalRegistry::embedded().context("legal-basis registry")?);
    let directory_text = match &options.directory {
        Some(path) => read(path)?,
        None => DEVELOPMENT_DIRECTORY.to_owned(),
    };
    let directory = Arc::new(
        Directory::from_toml(&directory_text, &registry).context("organisation directory")?,
    );
    if data.ensure(&SERVICES, &directory.codes())? {
        tracing::info!(data_dir = %data.root.display(), "created development certificates and keys");
    }
    let database_url = |service: &str| {
        options
            .database_url
            .clone()
            .unwrap_or_else(|| data.sqlite_url(service))
    };
    let token = VerifierConfig {
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        public_key_pem: read(&data.verifying_key())?,
        leeway_seconds: 30,
    };
    let person_key =
        PersonKey::from_base64(&read(&data.person_key())?).context("person index key")?;

    let audit = tryggdel_audit::spawn(
        &tryggdel_audit::Settings {
            database_url: database_url("audit"),
            tls: server_tls(&data, "audit")?,
            token: token.clone(),
            directory: directory.clone(),
            person_key: person_key.clone(),
            origin: AUDIT_ORIGIN.to_owned(),
            signing_key: tryggdel_audit::signing_key_from_pem(&read(&data.audit_log_key())?)?,
            checkpoint_interval: Duration::from_secs(1),
            appenders: tryggdel_audit::DEFAULT_APPENDERS
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
        },
        options.audit_listen,
    )
    .await?;

    let disclosure = tryggdel_disclosure::spawn(
        &tryggdel_disclosure::Settings {
            database_url: database_url("disclosure"),
            tls: server_tls(&data, "disclosure")?,
            token,
            field_key: tryggdel_disclosure::field_key(&read(&data.field_key())?)?,
            person_key,
            registry: registry.clone(),
            directory,
            audit: endpoint(&data, "disclosure", audit.local_addr)?,
            notification: endpoint(&data, "disclosure", options.notification_listen)?,
            receipt_key: receipt_key(&data)?.verifying_key(),
            relay: RelayConfig::default(),
        },
        options.disclosure_listen,
    )
    .await?;
    Ok(RunningSystem {
        data,
        registry_version: registry.registry_version().to_owned(),
        audit,
        disclosure,
    })
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
        println!(
            "  a token               cargo run --bin tryggdel -- dev-token --role caseworker --user handlaggare-bollnas --org bollnas-kommun"
        );
        println!("stop with Ctrl-C (or SIGTERM)");
    }

    /// Stops every service, letting in-flight calls finish; the disclosure service first, so
    /// its relay hands what it can to the audit log before that stops.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.disclosure.stop().await?;
        self.audit.stop().await
    }
}
