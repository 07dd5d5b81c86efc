//! Configuration of a deployed service: a TOML file plus `TRYGGDEL_…` environment variables
//! (nested keys with `__`, e.g. `TRYGGDEL_TELEMETRY__OTLP_ENDPOINT`), checked before anything
//! starts. Outside development mode, development keys and certificates and a missing
//! PostgreSQL URL are refused with the reason.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use tryggdel_auth::ClaimNames;

use crate::console::ConsoleConfig;
use crate::development::{AUDIT_ORIGIN, DEVELOPMENT_CA_NAME, ISSUER};
use crate::files::read;

/// The sections a configuration may have (environment variables outside them are ignored, so
/// that e.g. `TRYGGDEL_TOKEN`, a user's token for the CLI, is not taken for the `[token]` table).
const SECTIONS: [&str; 15] = [
    "mode",
    "database_url",
    "database",
    "directory",
    "tls",
    "token",
    "keys",
    "listen",
    "endpoints",
    "audit",
    "disclosure",
    "notification",
    "telemetry",
    "relay",
    "console",
];

/// How strict the start-up checks are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Refuses development keys and certificates and anything but PostgreSQL.
    #[default]
    Production,
    /// Allows what `tryggdel start` / `tryggdel pki` generate.
    Development,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The CA that issued every certificate of the deployment (clients and services).
    pub ca: PathBuf,
    /// This service's certificate (server and client use) and key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Whom tokens are trusted from. The keys are either one Ed25519 public key (`public_key`) or
/// the identity provider's JWK Set (`jwks`, read again when a token names an unknown key):
/// exactly one of the two.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub issuer: String,
    pub audience: String,
    /// The identity provider's Ed25519 public key (PEM); its `kid` is its RFC 7638
    /// thumbprint.
    #[serde(default)]
    pub public_key: Option<PathBuf>,
    /// The identity provider's JWK Set: a file path, or an https URL (http only to a loopback
    /// host).
    #[serde(default)]
    pub jwks: Option<String>,
    /// Which claims hold the identity, if the identity provider does not use Tryggdel's names.
    #[serde(default)]
    pub claims: ClaimsConfig,
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// The least time between two reads of `jwks`.
    #[serde(default = "default_jwks_min_refresh")]
    pub jwks_min_refresh_seconds: u64,
}

/// Where a token holds each part of the identity (`[token.claims]`); unset ones keep
/// Tryggdel's names (`sub`, `org`, `unit`, `roles`, `region`, `name`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimsConfig {
    pub user_id: String,
    pub organisation: String,
    pub unit: String,
    pub roles: String,
    pub region: String,
    pub name: String,
}

impl Default for ClaimsConfig {
    fn default() -> ClaimsConfig {
        let names = ClaimNames::default();
        ClaimsConfig {
            user_id: names.user_id,
            organisation: names.organisation,
            unit: names.unit,
            roles: names.roles,
            region: names.region,
            name: names.name,
        }
    }
}

impl ClaimsConfig {
    pub fn names(&self) -> ClaimNames {
        ClaimNames {
            user_id: self.user_id.clone(),
            organisation: self.organisation.clone(),
            unit: self.unit.clone(),
            roles: self.roles.clone(),
            region: self.region.clone(),
            name: self.name.clone(),
        }
    }
}

/// Where the token keys are configured to come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKeyLocation<'a> {
    /// `token.public_key`: one Ed25519 public key PEM file.
    PublicKey(&'a Path),
    /// `token.jwks`: a JWK Set file path or URL.
    Jwks(&'a str),
}

impl TokenConfig {
    /// Where the keys come from: exactly one of `public_key` and `jwks`.
    pub fn key_location(&self) -> anyhow::Result<TokenKeyLocation<'_>> {
        match (&self.public_key, &self.jwks) {
            (Some(path), None) => Ok(TokenKeyLocation::PublicKey(path)),
            (None, Some(jwks)) => Ok(TokenKeyLocation::Jwks(jwks)),
            (Some(_), Some(_)) => bail!(
                "token.public_key and token.jwks are both set: set exactly one (a single Ed25519 public key PEM, or the identity provider's JWK Set)"
            ),
            (None, None) => bail!(
                "neither token.public_key nor token.jwks is set: set exactly one (a single Ed25519 public key PEM, or the identity provider's JWK Set file or https URL)"
            ),
        }
    }
}

pub(crate) fn default_leeway() -> u64 {
    30
}

pub(crate) fn default_jwks_min_refresh() -> u64 {
    60
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFiles {
    /// Field encryption (disclosure).
    pub field: Option<PathBuf>,
    /// Person references (disclosure, audit).
    pub person_index: Option<PathBuf>,
    /// Checkpoint signing (audit).
    pub audit_log: Option<PathBuf>,
    /// Receipt signing (notification).
    pub receipt: Option<PathBuf>,
    /// Receipt verification (disclosure): the public half of `receipt`.
    pub receipt_public: Option<PathBuf>,
}

/// Where each service listens; a missing one keeps its default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    pub disclosure: SocketAddr,
    pub audit: SocketAddr,
    pub notification: SocketAddr,
    /// The console (HTTPS for browsers).
    pub console: SocketAddr,
}

impl Default for Listen {
    fn default() -> Listen {
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Listen {
            disclosure: local(50051),
            audit: local(50052),
            notification: local(50053),
            console: local(8443),
        }
    }
}

/// Where a service reaches the others; a missing one keeps its default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Endpoints {
    pub disclosure: String,
    pub audit: String,
    pub notification: String,
}

impl Default for Endpoints {
    fn default() -> Endpoints {
        Endpoints {
            disclosure: "https://localhost:50051".into(),
            audit: "https://localhost:50052".into(),
            notification: "https://localhost:50053".into(),
        }
    }
}

/// How long any call may wait on the database (a connection, a statement); a missing one
/// keeps its default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub deadline_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> DatabaseConfig {
        DatabaseConfig {
            deadline_ms: tryggdel_storage::DEFAULT_DEADLINE.as_millis() as u64,
        }
    }
}

impl DatabaseConfig {
    /// The options every service's database is opened with.
    pub fn options(&self) -> anyhow::Result<tryggdel_storage::DatabaseOptions> {
        if !(100..=600_000).contains(&self.deadline_ms) {
            bail!(
                "database.deadline_ms is {}: it must be between 100 and 600000",
                self.deadline_ms
            );
        }
        Ok(tryggdel_storage::DatabaseOptions {
            deadline: Duration::from_millis(self.deadline_ms),
        })
    }
}

/// The audit log's name and how often it signs; a missing one keeps its default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The log's origin: the first line of its checkpoints and the name of its key.
    pub origin: Option<String>,
    pub checkpoint_interval_ms: u64,
    /// A C2SP tlog-policy file naming the witnesses (each with its URL) and the quorum; when
    /// set, a checkpoint is published only once its cosignatures meet that quorum.
    pub witness_policy: Option<PathBuf>,
    /// A CA (PEM) the witnesses' HTTPS certificates chain to, besides the public web roots.
    pub witness_ca: Option<PathBuf>,
    /// How long one submission to a witness may take.
    pub witness_timeout_ms: u64,
    /// How soon a checkpoint short of the quorum is submitted again.
    pub witness_retry_ms: u64,
    /// The integrity scrub's pause between batches (once the pass begun at start is complete).
    pub scrub_interval_ms: u64,
    /// Entries the integrity scrub re-hashes per batch.
    pub scrub_batch: u32,
}

impl Default for AuditConfig {
    fn default() -> AuditConfig {
        AuditConfig {
            origin: None,
            checkpoint_interval_ms: 1000,
            witness_policy: None,
            witness_ca: None,
            witness_timeout_ms: 5000,
            witness_retry_ms: 1000,
            scrub_interval_ms: 10_000,
            scrub_batch: 10_000,
        }
    }
}

/// When the disclosure service expires untouched drafts and submitted disclosures; a missing
/// one keeps its default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DisclosureConfig {
    /// A draft or submitted disclosure untouched this long expires.
    pub expire_after_days: u64,
    /// Its author is warned this long before (less than `expire_after_days`).
    pub expiry_warning_days: u64,
    /// How often untouched disclosures are looked for.
    pub expiry_check_seconds: u64,
    /// An urgent request for information still open past its deadline is escalated again
    /// this often.
    pub request_urgent_repeat_minutes: u64,
    /// An ordinary one, this often.
    pub request_repeat_minutes: u64,
    /// How often open requests past their deadline are looked for.
    pub request_check_seconds: u64,
    /// The longest a hold on a disclosure may last, in days from the day it is placed or
    /// extended.
    pub hold_max_days: u32,
    /// How long organisations keep disclosures before clearing (`[disclosure.clearing]`).
    pub clearing: ClearingConfig,
}

/// `[disclosure.clearing]`: the years after its last entry an organisation keeps a disclosure
/// at least (`retention_years`, default 5), and per organisation code under
/// `[disclosure.clearing.organisations]`. A clearing decision never clears earlier.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClearingConfig {
    pub retention_years: u16,
    pub organisations: std::collections::BTreeMap<String, u16>,
}

impl Default for ClearingConfig {
    fn default() -> ClearingConfig {
        ClearingConfig {
            retention_years: tryggdel_disclosure::clearing::DEFAULT_RETENTION_YEARS,
            organisations: std::collections::BTreeMap::new(),
        }
    }
}

impl ClearingConfig {
    /// The retention, or why it cannot be.
    pub fn retention(&self) -> anyhow::Result<tryggdel_disclosure::clearing::ClearingRetention> {
        tryggdel_disclosure::clearing::ClearingRetention::new(
            self.retention_years,
            self.organisations.clone(),
        )
        .context("disclosure.clearing")
    }
}

impl Default for DisclosureConfig {
    fn default() -> DisclosureConfig {
        DisclosureConfig {
            expire_after_days: 90,
            expiry_warning_days: 14,
            expiry_check_seconds: 60,
            request_urgent_repeat_minutes: 60,
            request_repeat_minutes: 24 * 60,
            request_check_seconds: 60,
            hold_max_days: tryggdel_disclosure::holds::DEFAULT_HOLD_MAX_DAYS,
            clearing: ClearingConfig::default(),
        }
    }
}

impl DisclosureConfig {
    /// The expiry settings, or why they cannot work.
    pub fn expiry(&self) -> anyhow::Result<tryggdel_disclosure::Expiry> {
        const DAY: u64 = 24 * 60 * 60;
        tryggdel_disclosure::Expiry::new(
            Duration::from_secs(self.expire_after_days.saturating_mul(DAY)),
            Duration::from_secs(self.expiry_warning_days.saturating_mul(DAY)),
            Duration::from_secs(self.expiry_check_seconds),
        )
        .context("disclosure.expire_after_days, disclosure.expiry_warning_days, disclosure.expiry_check_seconds")
    }

    /// How open requests for information past their deadline escalate, or why that cannot
    /// work.
    pub fn request_deadlines(&self) -> anyhow::Result<tryggdel_disclosure::RequestDeadlines> {
        const MINUTE: u64 = 60;
        tryggdel_disclosure::RequestDeadlines::new(
            Duration::from_secs(self.request_urgent_repeat_minutes.saturating_mul(MINUTE)),
            Duration::from_secs(self.request_repeat_minutes.saturating_mul(MINUTE)),
            Duration::from_secs(self.request_check_seconds),
        )
        .context("disclosure.request_urgent_repeat_minutes, disclosure.request_repeat_minutes, disclosure.request_check_seconds")
    }
}

/// The audit service's log review (`[review]`); a missing key keeps its default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// Working hours on weekdays, Swedish time, e.g. "07:00-18:00": accesses outside are found
    /// (public holidays and midsummer, Christmas and New Year's Eve have none).
    pub working_hours: String,
    /// One user accessing this many different persons within `burst_minutes` is found.
    pub burst_persons: u32,
    pub burst_minutes: u32,
    /// Entries drawn at random when a run does not say how many.
    pub sample_size: u32,
    /// The most findings one rule keeps in a run (its count says how many it matched).
    pub max_findings_per_rule: u32,
}

impl Default for ReviewConfig {
    fn default() -> ReviewConfig {
        let defaults = tryggdel_audit::review::ReviewSettings::default();
        ReviewConfig {
            working_hours: defaults.working_hours().to_string(),
            burst_persons: defaults.burst_persons(),
            burst_minutes: defaults.burst_minutes(),
            sample_size: defaults.sample_size(),
            max_findings_per_rule: defaults.max_findings_per_rule(),
        }
    }
}

impl ReviewConfig {
    pub fn settings(&self) -> anyhow::Result<tryggdel_audit::review::ReviewSettings> {
        let hours = tryggdel_audit::review::WorkingHours::parse(&self.working_hours)
            .map_err(|error| anyhow::anyhow!("[review] {error}"))?;
        tryggdel_audit::review::ReviewSettings::new(
            hours,
            self.burst_persons,
            self.burst_minutes,
            self.sample_size,
            self.max_findings_per_rule,
        )
        .map_err(|error| anyhow::anyhow!("[review] {error}"))
    }
}

/// How the audit service makes subject reports.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// The organisations (codes) whose staff are named by user id in subject reports; the
    /// accesses of the others' staff show their organisation and unit only.
    pub user_names: Vec<String>,
}

/// The notification service's deadlines; a missing one keeps its default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationConfig {
    pub urgent_deadline_seconds: u64,
    pub ordinary_deadline_seconds: u64,
    pub escalation_repeat_seconds: u64,
    /// How often deadlines are checked.
    pub deadline_check_seconds: u64,
}

impl Default for NotificationConfig {
    fn default() -> NotificationConfig {
        NotificationConfig {
            urgent_deadline_seconds: 15 * 60,
            ordinary_deadline_seconds: 24 * 60 * 60,
            escalation_repeat_seconds: 15 * 60,
            deadline_check_seconds: 10,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// OTLP/gRPC endpoint of a collector, e.g. `http://otel-collector:4317`.
    pub otlp_endpoint: Option<String>,
}

/// A deployed service's configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub mode: Mode,
    pub database_url: Option<String>,
    #[serde(default)]
    pub database: DatabaseConfig,
    /// The organisations and delegations file; the development directory if unset (development
    /// mode only).
    pub directory: Option<PathBuf>,
    pub tls: Option<TlsFiles>,
    pub token: Option<TokenConfig>,
    #[serde(default)]
    pub keys: KeyFiles,
    #[serde(default)]
    pub listen: Listen,
    #[serde(default)]
    pub endpoints: Endpoints,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub report: ReportConfig,
    #[serde(default)]
    pub review: ReviewConfig,
    #[serde(default)]
    pub disclosure: DisclosureConfig,
    #[serde(default)]
    pub notification: NotificationConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub console: ConsoleConfig,
}

/// Whether an environment key (prefix stripped) belongs to the configuration.
fn is_config_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let (first, nested) = match key.split_once("__") {
        Some((first, _)) => (first.to_owned(), true),
        None => (key.clone(), false),
    };
    match first.as_str() {
        // Tables only through nested keys (TRYGGDEL_TOKEN is the CLI's user token).
        "tls" | "token" | "keys" | "listen" | "endpoints" | "audit" | "disclosure"
        | "notification" | "telemetry" | "relay" | "console" | "database" | "review" => nested,
        other => SECTIONS.contains(&other) && !nested,
    }
}

impl Config {
    /// Reads `file` (if given) and the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.is_file() {
                bail!("the configuration file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        let environment = Env::prefixed("TRYGGDEL_")
            .filter(|key| is_config_key(key.as_str()))
            .split("__");
        figment
            .merge(environment)
            .extract()
            .map_err(|error| anyhow::anyhow!("configuration: {error}"))
    }

    /// The database URL for `service`, or why there is none.
    pub fn database_url(&self) -> anyhow::Result<String> {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => Ok(url.clone()),
            _ => bail!(
                "no database URL: set database_url in the configuration file or TRYGGDEL_DATABASE_URL"
            ),
        }
    }

    pub fn tls(&self) -> anyhow::Result<&TlsFiles> {
        self.tls
            .as_ref()
            .context("no [tls] section: the service needs tls.ca, tls.cert and tls.key")
    }

    pub fn token(&self) -> anyhow::Result<&TokenConfig> {
        let token = self.token.as_ref().context(
            "no [token] section: the service needs token.issuer, token.audience and token.public_key or token.jwks",
        )?;
        token.key_location()?;
        Ok(token)
    }

    /// A key file, or why it is missing.
    pub fn key_file<'a>(&self, key: &'a Option<PathBuf>, name: &str) -> anyhow::Result<&'a Path> {
        key.as_deref().with_context(|| {
            format!(
                "no keys.{name}: set it in the configuration file or TRYGGDEL_KEYS__{}",
                name.to_ascii_uppercase()
            )
        })
    }

    /// Outside development mode: refuses what only development may use, naming it.
    pub fn check_mode(&self) -> anyhow::Result<()> {
        if self.mode == Mode::Development {
            return Ok(());
        }
        let url = self.database_url()?;
        if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
            bail!(
                "production mode needs PostgreSQL: database_url is not a postgres:// URL (set mode = \"development\" to use SQLite)"
            );
        }
        let tls = self.tls()?;
        let ca = tryggdel_tls::certificate_identity(&read(&tls.ca)?, "tls.ca")
            .with_context(|| format!("reading {}", tls.ca.display()))?;
        if ca.common_name == DEVELOPMENT_CA_NAME {
            bail!(
                "production mode refuses the development CA ({}): issue certificates from the deployment's own CA",
                tls.ca.display()
            );
        }
        let token = self.token()?;
        if token.issuer == ISSUER {
            bail!("production mode refuses the development token issuer {ISSUER}");
        }
        if self.audit.origin.as_deref() == Some(AUDIT_ORIGIN) {
            bail!("production mode refuses the development audit origin {AUDIT_ORIGIN}");
        }
        if self.directory.is_none() {
            bail!("production mode needs the deployment's organisation directory: set directory");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn only_configuration_keys_are_taken_from_the_environment() {
        assert!(is_config_key("DATABASE_URL"));
        assert!(is_config_key("TELEMETRY__OTLP_ENDPOINT"));
        assert!(is_config_key("TOKEN__ISSUER"));
        assert!(!is_config_key("TOKEN"));
        assert!(!is_config_key("DATA_DIR"));
        assert!(!is_config_key("LOG_FORMAT"));
        assert!(!is_config_key("ORG"));
        assert!(is_config_key("DISCLOSURE__EXPIRE_AFTER_DAYS"));
        assert!(!is_config_key("DISCLOSURE"));
    }

    #[test]
    fn request_deadlines_are_read_in_minutes_and_must_be_longer_than_zero() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("config.toml");
        let load = |section: &str| {
            std::fs::write(
                &file,
                format!("mode = \"development\"\n[disclosure]\n{section}"),
            )
            .unwrap();
            Config::load(Some(&file))
                .unwrap()
                .disclosure
                .request_deadlines()
        };
        assert_eq!(
            load("").unwrap(),
            tryggdel_disclosure::RequestDeadlines::default()
        );
        let set = load("request_urgent_repeat_minutes = 15\nrequest_check_seconds = 5\n").unwrap();
        assert_eq!(set.check_interval(), Duration::from_secs(5));
        assert_ne!(set, tryggdel_disclosure::RequestDeadlines::default());
        let error = format!("{:#}", load("request_repeat_minutes = 0\n").unwrap_err());
        assert!(
            error.contains("disclosure.request_repeat_minutes"),
            "{error}"
        );
        assert!(error.contains("longer than zero"), "{error}");
    }

    #[test]
    fn disclosure_expiry_is_read_in_days_and_its_warning_must_come_first() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("config.toml");
        std::fs::write(&file, "mode = \"development\"\n").unwrap();
        let defaults = Config::load(Some(&file))
            .unwrap()
            .disclosure
            .expiry()
            .unwrap();
        assert_eq!(defaults, tryggdel_disclosure::Expiry::default());
        assert_eq!(defaults.after(), Duration::from_secs(90 * 24 * 60 * 60));
        assert_eq!(defaults.warning(), Duration::from_secs(14 * 24 * 60 * 60));
        assert_eq!(defaults.check_interval(), Duration::from_secs(60));

        let load = |section: &str| {
            std::fs::write(&file, format!("[disclosure]\n{section}")).unwrap();
            Config::load(Some(&file)).unwrap().disclosure.expiry()
        };
        let set =
            load("expire_after_days = 30\nexpiry_warning_days = 7\nexpiry_check_seconds = 5\n")
                .unwrap();
        assert_eq!(set.after(), Duration::from_secs(30 * 24 * 60 * 60));
        assert_eq!(set.warning(), Duration::from_secs(7 * 24 * 60 * 60));
        assert_eq!(set.check_interval(), Duration::from_secs(5));
        for (section, expected) in [
            ("expire_after_days = 14\n", "warning must come before"),
            (
                "expire_after_days = 10\nexpiry_warning_days = 11\n",
                "warning must come before",
            ),
            ("expiry_warning_days = 0\n", "warning must come before"),
            ("expire_after_days = 0\n", "longer than zero"),
            ("expiry_check_seconds = 0\n", "check interval"),
        ] {
            let error = format!("{:#}", load(section).unwrap_err());
            assert!(error.contains(expected), "{section}: {error}");
            assert!(error.contains("disclosure.expire_after_days"), "{error}");
        }
        std::fs::write(&file, "[disclosure]\nexpire_after = 3\n").unwrap();
        let error = format!("{:#}", Config::load(Some(&file)).unwrap_err());
        assert!(error.contains("expire_after"), "{error}");
    }

    #[test]
    fn token_keys_come_from_exactly_one_of_public_key_and_jwks() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("config.toml");
        let load = |token: &str| {
            std::fs::write(
                &file,
                format!(
                    "[token]\nissuer = \"https://idp.example\"\naudience = \"tryggdel\"\n{token}"
                ),
            )
            .unwrap();
            let config = Config::load(Some(&file)).unwrap();
            config.token().cloned()
        };
        let pem = load("public_key = \"/keys/idp.pem\"\n").unwrap();
        assert_eq!(
            pem.key_location().unwrap(),
            TokenKeyLocation::PublicKey(Path::new("/keys/idp.pem"))
        );
        assert_eq!(pem.jwks_min_refresh_seconds, 60);
        assert_eq!(pem.claims.names(), ClaimNames::default());
        let jwks = load(
            "jwks = \"https://idp.example/jwks\"\njwks_min_refresh_seconds = 5\n[token.claims]\norganisation = \"hsa_org\"\n",
        )
        .unwrap();
        assert_eq!(
            jwks.key_location().unwrap(),
            TokenKeyLocation::Jwks("https://idp.example/jwks")
        );
        assert_eq!(jwks.jwks_min_refresh_seconds, 5);
        assert_eq!(jwks.claims.names().organisation, "hsa_org");
        assert_eq!(jwks.claims.names().user_id, "sub");
        for (token, expected) in [
            (
                "public_key = \"/k.pem\"\njwks = \"/jwks.json\"\n",
                "both set",
            ),
            ("", "neither token.public_key nor token.jwks"),
        ] {
            let error = format!("{:#}", load(token).unwrap_err());
            assert!(error.contains(expected), "{error}");
            assert!(error.contains("token.public_key") && error.contains("token.jwks"));
        }
    }

    #[test]
    fn a_file_with_an_unknown_key_is_refused_naming_it() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("config.toml");
        std::fs::write(&file, "mode = \"development\"\ndatabse_url = \"x\"\n").unwrap();
        let error = format!("{:#}", Config::load(Some(&file)).unwrap_err());
        assert!(error.contains("databse_url"), "{error}");
        let missing = format!(
            "{:#}",
            Config::load(Some(&directory.path().join("nope.toml"))).unwrap_err()
        );
        assert!(missing.contains("does not exist"), "{missing}");
    }

    #[test]
    fn production_refuses_sqlite_and_a_missing_database() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("config.toml");
        std::fs::write(&file, "database_url = \"sqlite://x.db\"\n").unwrap();
        let config = Config::load(Some(&file)).unwrap();
        assert_eq!(config.mode, Mode::Production);
        let error = format!("{:#}", config.check_mode().unwrap_err());
        assert!(error.contains("needs PostgreSQL"), "{error}");
        std::fs::write(&file, "mode = \"production\"\n").unwrap();
        let error = format!(
            "{:#}",
            Config::load(Some(&file)).unwrap().check_mode().unwrap_err()
        );
        assert!(error.contains("no database URL"), "{error}");
    }

    /// The deployment examples must stay loadable by the code that reads them.
    #[test]
    fn the_deployment_examples_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let compose = Config::load(Some(&root.join("deploy/compose/config/config.toml"))).unwrap();
        assert_eq!(compose.mode, Mode::Development);
        assert!(compose.telemetry.otlp_endpoint.is_some());

        let manifest =
            std::fs::read_to_string(root.join("deploy/k8s/configmap-config.yaml")).unwrap();
        let body: Vec<&str> = manifest
            .lines()
            .skip_while(|line| line.trim() != "config.toml: |")
            .skip(1)
            .take_while(|line| line.is_empty() || line.starts_with("    "))
            .map(|line| line.strip_prefix("    ").unwrap_or(line))
            .collect();
        assert!(body.len() > 10, "config.toml not found in the ConfigMap");
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("config.toml");
        std::fs::write(&file, body.join("\n")).unwrap();
        let kubernetes = Config::load(Some(&file)).unwrap();
        assert_eq!(kubernetes.mode, Mode::Production);
        assert!(kubernetes.audit.origin.is_some());
    }
}
