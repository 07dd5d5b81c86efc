//! The console's settings from a [`Config`]: its public origin, its browser-facing
//! certificate, how it reaches the services (with its own service certificate), how users
//! sign in (OpenID Connect from `[console.oidc]`, or development sign-in), and how long
//! sessions last.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use tryggdel_console::sign_in::{OidcSettings, TokenToForward};
use tryggdel_console::{SessionSettings, SignInSettings};

use crate::config::{Config, Mode};
use crate::files::read;
use crate::settings::{Common, endpoint, token_settings};

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
    /// Sign-in with OpenID Connect (`[console.oidc]`).
    pub oidc: Option<OidcConfig>,
    /// The proxies in front of the console (e.g. the ingress controller's pod network), as
    /// addresses or CIDR networks: from them, `X-Forwarded-For` names the client for the
    /// sign-in rate limit. Empty: every client is its TCP peer.
    pub trusted_proxies: Vec<String>,
}

/// The `[console.oidc]` section: the identity provider users sign in with. The token the
/// console forwards is verified with the `[token]` section, as the services verify it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer, found by discovery: https (http only to a loopback host, and only in
    /// development mode).
    pub issuer: String,
    /// The console's client id at the provider.
    pub client_id: String,
    /// A file holding the client secret; none for a public client (PKCE still protects it).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// The scopes asked for; `openid` is always among them.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The CA (PEM) of the provider's certificate, when it is not a public one.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Which of the user's tokens the console forwards to the services.
    #[serde(default)]
    pub forward: Forward,
}

/// `console.oidc.forward`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Forward {
    /// The access token (a JWT for the services' audience).
    #[default]
    AccessToken,
    /// The ID token (its audience is the console's client id).
    IdToken,
}

fn default_scopes() -> Vec<String> {
    vec!["openid".to_owned()]
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
            oidc: None,
            trusted_proxies: Vec::new(),
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
        trusted_proxies: trusted_proxies(&console.trusted_proxies)?,
    })
}

/// `console.trusted_proxies` read: each an address (a one-address network) or a CIDR network.
fn trusted_proxies(entries: &[String]) -> anyhow::Result<Vec<ipnet::IpNet>> {
    entries
        .iter()
        .map(|entry| {
            let entry = entry.trim();
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .with_context(|| {
                    format!(
                        "console.trusted_proxies: {entry:?} is neither an IP address nor a CIDR network"
                    )
                })
        })
        .collect()
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

/// How the console signs users in, from its configuration: OpenID Connect with
/// `[console.oidc]`; development sign-in in development mode with
/// `console.development_signing_key`; never both.
pub fn sign_in(config: &Config) -> anyhow::Result<SignInSettings> {
    let console = &config.console;
    match (&console.oidc, &console.development_signing_key, config.mode) {
        (Some(_), Some(_), _) => bail!(
            "console.oidc and console.development_signing_key are both set: users sign in one way, remove one of them"
        ),
        (Some(oidc), None, _) => oidc_sign_in(config, oidc),
        (None, Some(key), Mode::Development) => development_sign_in(config, key),
        (None, Some(_), Mode::Production) => bail!(
            "production mode refuses console.development_signing_key: users sign in with OpenID Connect ([console.oidc])"
        ),
        (None, None, _) => bail!(
            "no sign-in configured for the console: set [console.oidc] (issuer, client_id) or, in development mode, console.development_signing_key"
        ),
    }
}

/// OpenID Connect sign-in: the provider of `oidc`, the forwarded token verified with the
/// `[token]` section the services use.
pub fn oidc_sign_in(config: &Config, oidc: &OidcConfig) -> anyhow::Result<SignInSettings> {
    if config.mode == Mode::Production && !oidc.issuer.starts_with("https://") {
        bail!(
            "production mode needs an https console.oidc.issuer, not {:?}",
            oidc.issuer
        );
    }
    if oidc.client_id.trim().is_empty() {
        bail!("console.oidc.client_id is empty");
    }
    if let Some(scope) = oidc
        .scopes
        .iter()
        .find(|scope| scope.is_empty() || scope.contains(char::is_whitespace))
    {
        bail!("console.oidc.scopes: {scope:?} is not a scope (one word each)");
    }
    let client_secret = oidc
        .client_secret_file
        .as_deref()
        .map(client_secret)
        .transpose()?;
    let extra_ca_pem = oidc.ca.as_deref().map(read).transpose()?;
    let verifier = token_settings(config.token()?)?;
    Ok(SignInSettings::OpenIdConnect(OidcSettings {
        issuer: oidc.issuer.clone(),
        client_id: oidc.client_id.clone(),
        client_secret,
        scopes: oidc.scopes.clone(),
        extra_ca_pem,
        token: match oidc.forward {
            Forward::AccessToken => TokenToForward::AccessToken,
            Forward::IdToken => TokenToForward::IdToken,
        },
        verifier,
    }))
}

/// The client secret in `path`, without the line end a file usually has.
fn client_secret(path: &Path) -> anyhow::Result<String> {
    let secret = read(path)?.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        bail!(
            "console.oidc.client_secret_file {} is empty",
            path.display()
        );
    }
    Ok(secret)
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tryggdel_service_kit::KeySource;

    use super::*;

    /// A configuration of `mode` with a `[token]` section from a JWK Set URL (not fetched
    /// here) and the console section `console`.
    fn config(directory: &Path, mode: &str, console: &str) -> anyhow::Result<Config> {
        let file = directory.join("config.toml");
        std::fs::write(
            &file,
            format!(
                "mode = \"{mode}\"\n\
                 [token]\n\
                 issuer = \"https://idp.example.se\"\n\
                 audience = \"tryggdel\"\n\
                 jwks = \"https://idp.example.se/jwks\"\n\
                 [token.claims]\n\
                 organisation = \"hsa_org\"\n\
                 {console}"
            ),
        )?;
        Config::load(Some(&file))
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let proxies =
            trusted_proxies(&["10.0.0.0/8".into(), " 192.0.2.7 ".into(), "::1".into()]).unwrap();
        assert_eq!(proxies.len(), 3);
        assert!(proxies[1].contains(&"192.0.2.7".parse::<std::net::IpAddr>().unwrap()));
        let error = trusted_proxies(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(format!("{error:#}").contains("10.0.0.0/33"), "{error:#}");
    }

    fn oidc(settings: SignInSettings) -> OidcSettings {
        match settings {
            SignInSettings::OpenIdConnect(oidc) => oidc,
            SignInSettings::Development(_) => panic!("expected OpenID Connect sign-in"),
        }
    }

    #[test]
    fn console_oidc_gives_openid_connect_sign_in_verified_with_the_token_section() {
        let directory = tempfile::tempdir().unwrap();
        let secret = directory.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let ca = directory.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let config = config(
            directory.path(),
            "production",
            &format!(
                "[console.oidc]\n\
                 issuer = \"https://idp.example.se\"\n\
                 client_id = \"tryggdel-console\"\n\
                 client_secret_file = {secret:?}\n\
                 ca = {ca:?}\n\
                 scopes = [\"openid\", \"profile\"]\n\
                 forward = \"id_token\"\n"
            ),
        )
        .unwrap();
        let settings = oidc(sign_in(&config).unwrap());
        assert_eq!(settings.issuer, "https://idp.example.se");
        assert_eq!(settings.client_id, "tryggdel-console");
        assert_eq!(settings.client_secret.as_deref(), Some("s3cret"));
        assert_eq!(settings.scopes, ["openid", "profile"]);
        assert_eq!(
            settings.extra_ca_pem.as_deref(),
            Some("-----BEGIN CERTIFICATE-----\n")
        );
        assert_eq!(settings.token, TokenToForward::IdToken);
        assert_eq!(settings.verifier.issuer, "https://idp.example.se");
        assert_eq!(settings.verifier.audience, "tryggdel");
        assert_eq!(settings.verifier.claims.organisation, "hsa_org");
        assert!(matches!(settings.verifier.keys, KeySource::JwksUrl(_)));
    }

    #[test]
    fn the_defaults_are_the_openid_scope_the_access_token_and_a_public_client() {
        let directory = tempfile::tempdir().unwrap();
        let config = config(
            directory.path(),
            "development",
            "[console.oidc]\nissuer = \"http://127.0.0.1:8080\"\nclient_id = \"console\"\n",
        )
        .unwrap();
        let settings = oidc(sign_in(&config).unwrap());
        assert_eq!(settings.scopes, ["openid"]);
        assert_eq!(settings.token, TokenToForward::AccessToken);
        assert_eq!(settings.client_secret, None);
        assert_eq!(settings.extra_ca_pem, None);
    }

    #[test]
    fn oidc_and_development_sign_in_together_are_refused() {
        let directory = tempfile::tempdir().unwrap();
        let config = config(
            directory.path(),
            "development",
            "[console]\ndevelopment_signing_key = \"/keys/idp.pem\"\n\
             [console.oidc]\nissuer = \"https://idp.example.se\"\nclient_id = \"console\"\n",
        )
        .unwrap();
        let error = format!("{:#}", sign_in(&config).err().unwrap());
        assert!(error.contains("both set"), "{error}");
        assert!(error.contains("console.oidc") && error.contains("development_signing_key"));
    }

    #[test]
    fn production_refuses_development_sign_in_a_plain_http_issuer_and_no_sign_in() {
        let directory = tempfile::tempdir().unwrap();
        let development = config(
            directory.path(),
            "production",
            "[console]\ndevelopment_signing_key = \"/keys/idp.pem\"\n",
        )
        .unwrap();
        let error = format!("{:#}", sign_in(&development).err().unwrap());
        assert!(error.contains("production mode refuses"), "{error}");

        let http = config(
            directory.path(),
            "production",
            "[console.oidc]\nissuer = \"http://127.0.0.1:8080\"\nclient_id = \"console\"\n",
        )
        .unwrap();
        let error = format!("{:#}", sign_in(&http).err().unwrap());
        assert!(error.contains("https console.oidc.issuer"), "{error}");

        let none = config(directory.path(), "production", "").unwrap();
        let error = format!("{:#}", sign_in(&none).err().unwrap());
        assert!(error.contains("no sign-in configured"), "{error}");
    }

    #[test]
    fn bad_oidc_values_are_refused_naming_them() {
        let directory = tempfile::tempdir().unwrap();
        let empty = directory.path().join("empty-secret");
        std::fs::write(&empty, "\n").unwrap();
        for (oidc, expected) in [
            (
                format!("client_id = \"console\"\nclient_secret_file = {empty:?}\n"),
                "is empty",
            ),
            ("client_id = \" \"\n".to_owned(), "client_id is empty"),
            (
                "client_id = \"console\"\nscopes = [\"openid profile\"]\n".to_owned(),
                "is not a scope",
            ),
        ] {
            let config = config(
                directory.path(),
                "production",
                &format!("[console.oidc]\nissuer = \"https://idp.example.se\"\n{oidc}"),
            )
            .unwrap();
            let error = format!("{:#}", sign_in(&config).err().unwrap());
            assert!(error.contains(expected), "{error}");
        }
        let unknown = config(
            directory.path(),
            "production",
            "[console.oidc]\nissuer = \"https://idp.example.se\"\nclient_id = \"c\"\nforward = \"refresh_token\"\n",
        );
        assert!(unknown.is_err());
    }
}
