//! Operating one service as deployed: `serve`, `migrate`, `health`, and `pki` for a
//! development or demonstration PKI.

use std::future::Future;
use std::path::Path;

use anyhow::{Context, bail};
use tryggdel_storage::{Database, Migrations};

use tryggdel_system::settings::{self as serve, Service};
use tryggdel_system::{CERTIFICATES, Config, DataDirectory, read};

fn migrations(service: Service) -> anyhow::Result<(&'static str, &'static Migrations)> {
    Ok(match service {
        Service::Disclosure => ("disclosure", &tryggdel_disclosure::MIGRATIONS),
        Service::Audit => ("audit", &tryggdel_audit::MIGRATIONS),
        Service::Notification => ("notification", &tryggdel_notification::MIGRATIONS),
        Service::Console => bail!("the console keeps no database: there is nothing to migrate"),
    })
}

/// Runs `service` with `config` until `shutdown`, then stops it cleanly.
pub async fn serve(
    service: Service,
    config: &Config,
    shutdown: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    if service == Service::Console {
        return serve_console(config, shutdown).await;
    }
    config.check_mode()?;
    let common = serve::common(config)?;
    let url = config.database_url()?;
    match service {
        Service::Disclosure => {
            let running = tryggdel_disclosure::spawn(
                &serve::disclosure_settings(config, &common, url)?,
                config.listen.disclosure,
            )
            .await?;
            tracing::info!(address = %running.local_addr, "disclosure service ready");
            shutdown.await?;
            running.stop().await
        }
        Service::Audit => {
            let running = tryggdel_audit::spawn(
                &serve::audit_settings(config, &common, url)?,
                config.listen.audit,
            )
            .await?;
            tracing::info!(address = %running.local_addr, "audit service ready");
            shutdown.await?;
            running.stop().await
        }
        Service::Notification => {
            let running = tryggdel_notification::spawn(
                &serve::notification_settings(config, &common, url)?,
                config.listen.notification,
            )
            .await?;
            tracing::info!(address = %running.local_addr, "notification service ready");
            shutdown.await?;
            running.stop().await
        }
        Service::Console => bail!("the console is served by serve_console"),
    }
}

/// Runs the console with `config` until `shutdown`. Development mode with
/// `console.development_signing_key` offers development sign-in; otherwise users sign in
/// with OpenID Connect (`[console.oidc]`).
async fn serve_console(
    config: &Config,
    shutdown: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    config.check_console_mode()?;
    let common = serve::common(config)?;
    let sign_in = tryggdel_system::console::sign_in(config)?;
    let settings = tryggdel_system::console::console_settings(config, &common, sign_in)?;
    let listener = std::net::TcpListener::bind(config.listen.console)
        .with_context(|| format!("binding {} for the console", config.listen.console))?;
    let running = tryggdel_console::start(settings, listener).await?;
    tracing::info!(address = %running.local_addr, "console ready");
    shutdown.await?;
    running.stop().await
}

/// Brings `service`'s schema up to date (idempotent; safe to run again).
pub async fn migrate(service: Service, config: &Config) -> anyhow::Result<()> {
    config.check_mode()?;
    let url = config.database_url()?;
    let (schema, migrations) = migrations(service)?;
    let database = Database::connect(&url, schema, migrations)
        .await
        .with_context(|| format!("migrating the {schema} schema"))?;
    database.close().await;
    Ok(())
}

/// Whether the service at `endpoint` reports SERVING, asked over mTLS with the configured
/// certificate.
pub async fn health(
    endpoint: &str,
    config: &Config,
    service: Option<Service>,
) -> anyhow::Result<()> {
    tryggdel_tls::install_crypto_provider();
    let common = serve::common(config)?;
    let target = serve::endpoint(&common, endpoint)?;
    let channel = tryggdel_tls::connect_channel(
        &target.uri,
        &target.server_name,
        &target.tls.ca_pem,
        &target.tls.cert_pem,
        &target.tls.key_pem,
    )
    .await
    .with_context(|| format!("connecting to {endpoint}"))?;
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let name = service.map(Service::grpc_name).unwrap_or_default();
    let status = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: name.to_owned(),
        })
        .await
        .map_err(|status| anyhow::anyhow!("health check of {endpoint}: {}", status.message()))?
        .into_inner()
        .status;
    if status != tonic_health::pb::health_check_response::ServingStatus::Serving as i32 {
        bail!("{endpoint} is not serving (status {status})");
    }
    Ok(())
}

/// The compose deployment's witnesses: their names and the hosts they are reached at.
const COMPOSE_WITNESSES: [(&str, &str); 2] = [
    ("witness.polisen.example", "witness-polisen"),
    ("witness.ivo.example", "witness-ivo"),
];

/// Writes a development PKI and keys for every service to `out` (the layout of the data
/// directory), and the two compose witnesses' keys, certificates and policy; existing keys
/// and certificates are kept.
pub fn pki(out: &Path, directory: Option<&Path>) -> anyhow::Result<()> {
    let registry = tryggdel_domain::LegalRegistry::embedded().context("legal-basis registry")?;
    let text = match directory {
        Some(path) => read(path)?,
        None => tryggdel_domain::DEVELOPMENT_DIRECTORY.to_owned(),
    };
    let codes = tryggdel_domain::Directory::from_toml(&text, &registry)
        .context("organisation directory")?
        .codes();
    let data = DataDirectory::new(out);
    if data.ensure(&CERTIFICATES, &codes)? {
        crate::out!("development PKI and keys written to {}", out.display());
    } else {
        crate::out!("{} already holds a complete development PKI", out.display());
    }
    tryggdel_system::witnesses::write_deployment_witnesses(&data, &COMPOSE_WITNESSES)?;
    crate::out!(
        "witness keys, certificates and the 2-of-2 policy in {}",
        out.join("witnesses").display()
    );
    Ok(())
}
