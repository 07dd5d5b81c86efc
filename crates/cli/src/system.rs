//! Starting the whole system in one process on the embedded default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tryggdel_auth::VerifierConfig;
use tryggdel_disclosure::{DEVELOPMENT_DIRECTORY, Directory, RunningService, ServerTls, Settings};
use tryggdel_domain::LegalRegistry;

use crate::devkit::{AUDIENCE, DataDirectory, ISSUER, read};

/// What `tryggdel start` was asked for.
#[derive(Clone, Debug)]
pub struct SystemOptions {
    pub data_dir: PathBuf,
    pub disclosure_listen: SocketAddr,
    /// None: a SQLite file in the data directory.
    pub database_url: Option<String>,
    /// None: the development organisation directory.
    pub directory: Option<PathBuf>,
}

/// The running services.
pub struct RunningSystem {
    pub data: DataDirectory,
    pub registry_version: String,
    pub disclosure: RunningService,
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
    if data.ensure(&["disclosure"], &directory.codes())? {
        tracing::info!(data_dir = %data.root.display(), "created development certificates and keys");
    }
    let settings = Settings {
        database_url: options
            .database_url
            .clone()
            .unwrap_or_else(|| data.sqlite_url("disclosure")),
        tls: ServerTls {
            cert_chain_pem: read(&data.server_cert("disclosure"))?,
            key_pem: read(&data.server_key("disclosure"))?,
            client_ca_pem: read(&data.ca_cert())?,
        },
        token: VerifierConfig {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            public_key_pem: read(&data.verifying_key())?,
            leeway_seconds: 30,
        },
        field_key: tryggdel_disclosure::field_key(&read(&data.field_key())?)?,
        registry: registry.clone(),
        directory,
    };
    let disclosure = tryggdel_disclosure::spawn(&settings, options.disclosure_listen).await?;
    Ok(RunningSystem {
        data,
        registry_version: registry.registry_version().to_owned(),
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
        println!("  legal-basis registry  {}", self.registry_version);
        println!("  CA certificate        {}", data.ca_cert().display());
        println!(
            "  client certificates   {}/<organisation>.pem and <organisation>-key.pem",
            data.root.join("pki/clients").display()
        );
        println!(
            "  a token               cargo run --bin tryggdel -- dev-token --role caseworker --user handlaggare-bollnas --org bollnas-kommun"
        );
        println!("stop with Ctrl-C (or SIGTERM)");
    }

    /// Stops every service, letting in-flight calls finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.disclosure.stop().await
    }
}
