//! Each service's settings built from a [`Config`]: the one place where configuration becomes
//! a running service's keys, certificates, directory and endpoints, for `tryggdel serve` (one
//! service, as deployed), `tryggdel start`, the tests and the benchmarks (all of them, through
//! [`crate::SystemBuilder`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use tryggdel_auth::KeySet;
use tryggdel_disclosure::{DEVELOPMENT_DIRECTORY, Directory, RelayConfig};
use tryggdel_domain::{LegalRegistry, PersonKey};
use tryggdel_service_kit::{ClientTls, KeySource, ServerTls, ServiceEndpoint, TokenSettings};

use crate::config::{Config, TokenConfig, TokenKeyLocation};
use crate::files::read;

/// How long a call to another service may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The services, as named on the command line and in certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Service {
    Disclosure,
    Audit,
    Notification,
    /// The web console (not a gRPC service; it calls the three).
    Console,
}

impl Service {
    /// Every service, in start order: each one's dependencies first.
    pub const ALL: [Service; 3] = [Service::Audit, Service::Notification, Service::Disclosure];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Disclosure => "disclosure",
            Service::Audit => "audit",
            Service::Notification => "notification",
            Service::Console => "console",
        }
    }

    /// The gRPC service name its health status is reported under.
    pub fn grpc_name(self) -> &'static str {
        match self {
            Service::Disclosure => "tryggdel.disclosure.v1.DisclosureService",
            Service::Audit => "tryggdel.audit.v1.AuditService",
            Service::Notification => "tryggdel.notification.v1.NotificationService",
            Service::Console => "tryggdel.console",
        }
    }
}

/// What every service reads the same way.
pub struct Common {
    pub registry: Arc<LegalRegistry>,
    pub directory: Arc<Directory>,
    pub token: TokenSettings,
    pub server_tls: ServerTls,
    pub client_tls: ClientTls,
}

pub fn common(config: &Config) -> anyhow::Result<Common> {
    let registry = Arc::new(LegalRegistry::embedded().context("legal-basis registry")?);
    let directory_text = match &config.directory {
        Some(path) => read(path)?,
        None => DEVELOPMENT_DIRECTORY.to_owned(),
    };
    let directory = Arc::new(
        Directory::from_toml(&directory_text, &registry).context("organisation directory")?,
    );
    let token = config.token()?;
    let tls = config.tls()?;
    let ca_pem = read(&tls.ca)?;
    let cert_pem = read(&tls.cert)?;
    let key_pem = read(&tls.key)?;
    Ok(Common {
        registry,
        directory,
        token: token_settings(token)?,
        server_tls: ServerTls {
            cert_chain_pem: cert_pem.clone(),
            key_pem: key_pem.clone(),
            client_ca_pem: ca_pem.clone(),
        },
        client_tls: ClientTls {
            ca_pem,
            cert_pem,
            key_pem,
        },
    })
}

/// Whom tokens are trusted from: a configured public key is read now; a JWK Set is read when
/// the service starts ([`tryggdel_service_kit::TokenKeys::load`]), and again when a token
/// names an unknown key.
pub(crate) fn token_settings(token: &TokenConfig) -> anyhow::Result<TokenSettings> {
    let keys = match token.key_location()? {
        TokenKeyLocation::PublicKey(path) => {
            KeySource::Fixed(KeySet::single_ed25519_pem(&read(path)?).with_context(|| {
                format!(
                    "token.public_key {} (expected an Ed25519 public key PEM)",
                    path.display()
                )
            })?)
        }
        TokenKeyLocation::Jwks(location) => KeySource::jwks(location).context("token.jwks")?,
    };
    let claims = token.claims.names();
    claims.check().context("token.claims")?;
    Ok(TokenSettings {
        issuer: token.issuer.clone(),
        audience: token.audience.clone(),
        keys,
        claims,
        leeway_seconds: token.leeway_seconds,
        min_refresh_interval: Duration::from_secs(token.jwks_min_refresh_seconds),
    })
}

/// How this service reaches another at `uri`; the certificate must name the URI's host.
pub fn endpoint(common: &Common, uri: &str) -> anyhow::Result<ServiceEndpoint> {
    let parsed: http::Uri = uri
        .parse()
        .with_context(|| format!("endpoint {uri:?} is not a URI"))?;
    let host = parsed
        .host()
        .with_context(|| format!("endpoint {uri:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok(ServiceEndpoint {
        uri: uri.to_owned(),
        server_name: host,
        tls: common.client_tls.clone(),
        timeout: CALL_TIMEOUT,
    })
}

fn person_key(config: &Config) -> anyhow::Result<PersonKey> {
    let path = config.key_file(&config.keys.person_index, "person_index")?;
    PersonKey::from_base64(&read(path)?)
        .with_context(|| format!("person index key {}", path.display()))
}

fn field_key(config: &Config) -> anyhow::Result<tryggdel_storage::FieldKey> {
    let path = config.key_file(&config.keys.field, "field")?;
    tryggdel_disclosure::field_key(&read(path)?)
}

fn signing_key(path: &Path, what: &str) -> anyhow::Result<ed25519_dalek::SigningKey> {
    ed25519_dalek::SigningKey::from_pkcs8_pem(&read(path)?)
        .with_context(|| format!("{what} {} (expected Ed25519 PKCS#8 PEM)", path.display()))
}

/// The public half of the receipt key, with which the disclosure service checks receipts.
fn receipt_public_key(config: &Config) -> anyhow::Result<ed25519_dalek::VerifyingKey> {
    let path = config.key_file(&config.keys.receipt_public, "receipt_public")?;
    ed25519_dalek::VerifyingKey::from_public_key_pem(&read(path)?).with_context(|| {
        format!(
            "receipt public key {} (expected Ed25519 public key PEM)",
            path.display()
        )
    })
}

pub fn disclosure_settings(
    config: &Config,
    common: &Common,
    database_url: String,
) -> anyhow::Result<tryggdel_disclosure::Settings> {
    Ok(tryggdel_disclosure::Settings {
        database_url,
        database: config.database.options()?,
        tls: common.server_tls.clone(),
        token: common.token.clone(),
        field_key: field_key(config)?,
        person_key: person_key(config)?,
        registry: common.registry.clone(),
        directory: common.directory.clone(),
        audit: endpoint(common, &config.endpoints.audit)?,
        notification: endpoint(common, &config.endpoints.notification)?,
        receipt_key: receipt_public_key(config)?,
        relay: RelayConfig::default(),
        expiry: config.disclosure.expiry()?,
        request_deadlines: config.disclosure.request_deadlines()?,
        hold_max_days: config.disclosure.hold_max_days,
        clearing_retention: config.disclosure.clearing.retention()?,
    })
}

pub fn audit_settings(
    config: &Config,
    common: &Common,
    database_url: String,
) -> anyhow::Result<tryggdel_audit::Settings> {
    let origin = config
        .audit
        .origin
        .clone()
        .context("no audit.origin: the log's name, e.g. audit.example.se/log")?;
    let key = config.key_file(&config.keys.audit_log, "audit_log")?;
    Ok(tryggdel_audit::Settings {
        database_url,
        database: config.database.options()?,
        tls: common.server_tls.clone(),
        token: common.token.clone(),
        directory: common.directory.clone(),
        person_key: person_key(config)?,
        origin,
        signing_key: signing_key(key, "audit log key")?,
        checkpoint_interval: Duration::from_millis(config.audit.checkpoint_interval_ms),
        appenders: tryggdel_audit::DEFAULT_APPENDERS
            .iter()
            .map(|name| (*name).to_owned())
            .collect(),
        witnessing: witnessing_settings(config)?,
        scrub: tryggdel_audit::scrub::ScrubSettings {
            interval: Duration::from_millis(config.audit.scrub_interval_ms),
            batch: config.audit.scrub_batch,
        },
        report: tryggdel_audit::report::ReportSettings {
            named_organisations: config.report.user_names.iter().cloned().collect(),
            ..tryggdel_audit::report::ReportSettings::default()
        },
        review: config.review.settings()?,
    })
}

/// `[audit] witness_policy` and the rest: the witnesses the log submits to, or None.
fn witnessing_settings(
    config: &Config,
) -> anyhow::Result<Option<tryggdel_audit::witnessing::WitnessingSettings>> {
    let Some(path) = &config.audit.witness_policy else {
        return Ok(None);
    };
    let policy = tryggdel_witness::policy::Policy::parse(&read(path)?)
        .with_context(|| format!("the witness policy {}", path.display()))?;
    let ca_pem = config.audit.witness_ca.as_deref().map(read).transpose()?;
    Ok(Some(tryggdel_audit::witnessing::WitnessingSettings {
        policy,
        ca_pem,
        timeout: Duration::from_millis(config.audit.witness_timeout_ms.max(1)),
        retry_interval: Duration::from_millis(config.audit.witness_retry_ms.max(1)),
    }))
}

pub fn notification_settings(
    config: &Config,
    common: &Common,
    database_url: String,
) -> anyhow::Result<tryggdel_notification::Settings> {
    let deadlines = &config.notification;
    Ok(tryggdel_notification::Settings {
        database_url,
        database: config.database.options()?,
        tls: common.server_tls.clone(),
        token: common.token.clone(),
        directory: common.directory.clone(),
        field_key: field_key(config)?,
        receipt_signing_key: signing_key(
            config.key_file(&config.keys.receipt, "receipt")?,
            "receipt signing key",
        )?,
        urgent_deadline: Duration::from_secs(deadlines.urgent_deadline_seconds),
        ordinary_deadline: Duration::from_secs(deadlines.ordinary_deadline_seconds),
        escalation_repeat: Duration::from_secs(deadlines.escalation_repeat_seconds),
        deadline_check_interval: Duration::from_secs(deadlines.deadline_check_seconds),
        senders: tryggdel_notification::DEFAULT_SENDERS
            .iter()
            .map(|name| (*name).to_owned())
            .collect(),
        audit: endpoint(common, &config.endpoints.audit)?,
        disclosure: endpoint(common, &config.endpoints.disclosure)?,
        relay: RelayConfig::default(),
    })
}
