//! The console's settings from a [`Config`]: its public origin, its browser-facing
//! certificate, how it reaches the services (with its own service certificate), how users
//! sign in, and how long sessions last.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use tryggdel_console::{SessionSettings, SignInSettings};

use crate::config::{Config, Mode};
use crate::files::read;
use crate::settings::{Common, endpoint};

/// The `[console]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// The origin users open, e.g. `https://tryggdel.example.se`.
    pub public_origin: Option<String>,
    /// The browser-facing certificate and key (PEM); the service certificate (`tls.cert`,
    /// `tls.key`) when unset. In production a certificate browsers trust.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The audit log's verifier key (the note verifier key line `tryggdel pki` writes), to
    /// check inclusion proofs.
    pub audit_log_public_key: Option<PathBuf>,
    pub idle_timeout_seconds: u64,
    pub absolute_timeout_seconds: u64,
    /// Development mode only: the development identity provider's signing key, with which
    /// the console's development sign-in mints tokens.
    pub development_signing_key: Option<PathBuf>,
}

impl Default for ConsoleConfig {
    fn default() -> ConsoleConfig {
        let sessions = SessionSettings::default();
        ConsoleConfig {
            public_origin: None,
            cert: None,
            key: None,
            audit_log_public_key: None,
            idle_timeout_seconds: sessions.idle.as_secs(),
            absolute_timeout_seconds: sessions.absolute.as_secs(),
            development_signing_key: None,
        }
    }
}

/// The console's settings for `config`, signing users in with `sign_in`.
pub fn console_settings(
    config: &Config,
    common: &Common,
    sign_in: SignInSettings,
) -> anyhow::Result<tryggdel_console::Settings> {
    let console = &config.console;
    let tls = config.tls()?;
    let public_origin = console
        .public_origin
        .clone()
        .context("no console.public_origin: set the https:// origin users open the console at")?;
    let cert = console.cert.as_ref().unwrap_or(&tls.cert);
    let key = console.key.as_ref().unwrap_or(&tls.key);
    let vkey = console
        .audit_log_public_key
        .as_ref()
        .context("no console.audit_log_public_key: the console checks inclusion proofs against the log's key")?;
    if console.idle_timeout_seconds == 0 || console.absolute_timeout_seconds == 0 {
        bail!("console.idle_timeout_seconds and console.absolute_timeout_seconds must be positive");
    }
    if sign_in.is_development() && config.mode != Mode::Development {
        bail!("development sign-in is refused in production mode: configure OpenID Connect");
    }
    Ok(tryggdel_console::Settings {
        public_origin,
        cert_chain_pem: read(cert)?,
        key_pem: read(key)?,
        disclosure: endpoint(common, &config.endpoints.disclosure)?,
        audit: endpoint(common, &config.endpoints.audit)?,
        notification: endpoint(common, &config.endpoints.notification)?,
        sign_in,
        sessions: SessionSettings {
            idle: Duration::from_secs(console.idle_timeout_seconds),
            absolute: Duration::from_secs(console.absolute_timeout_seconds),
        },
        registry: common.registry.clone(),
        directory: common.directory.clone(),
        audit_log_vkey: read(vkey)?,
        development: config.mode == Mode::Development,
    })
}

impl Config {
    /// Outside development mode: refuses for the console what only development may use.
    pub fn check_console_mode(&self) -> anyhow::Result<()> {
        if self.mode == Mode::Development {
            return Ok(());
        }
        if self.console.development_signing_key.is_some() {
            bail!(
                "production mode refuses console.development_signing_key: users sign in with OpenID Connect"
            );
        }
        let tls = self.tls()?;
        let ca = tryggdel_tls::certificate_identity(&read(&tls.ca)?, "tls.ca")
            .with_context(|| format!("reading {}", tls.ca.display()))?;
        if ca.common_name == crate::development::DEVELOPMENT_CA_NAME {
            bail!(
                "production mode refuses the development CA ({}): issue certificates from the deployment's own CA",
                tls.ca.display()
            );
        }
        if self.directory.is_none() {
            bail!("production mode needs the deployment's organisation directory: set directory");
        }
        Ok(())
    }
}

/// How the console signs users in, from its configuration: development sign-in in
/// development mode with `console.development_signing_key`, OpenID Connect otherwise.
pub fn sign_in(config: &Config) -> anyhow::Result<SignInSettings> {
    match (&config.console.development_signing_key, config.mode) {
        (Some(key), Mode::Development) => development_sign_in(config, key),
        (Some(_), Mode::Production) => bail!(
            "production mode refuses console.development_signing_key: users sign in with OpenID Connect"
        ),
        (None, _) => bail!(
            "no sign-in configured for the console: set [console.oidc] (issuer, client_id, redirect) or, in development mode, console.development_signing_key"
        ),
    }
}

/// Development sign-in: the development directory's users, tokens minted with the
/// development identity provider's key in `signing_key`.
pub fn development_sign_in(
    config: &Config,
    signing_key: &std::path::Path,
) -> anyhow::Result<SignInSettings> {
    let token = config.token()?;
    let signer = tryggdel_auth::TokenSigner::new(tryggdel_auth::SignerConfig {
        issuer: token.issuer.clone(),
        audience: token.audience.clone(),
        private_key_pem: read(signing_key)?,
    })
    .with_context(|| format!("the development signing key {}", signing_key.display()))?;
    Ok(SignInSettings::development(
        signer,
        tryggdel_console::development_users(),
    ))
}
