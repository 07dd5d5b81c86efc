//! The development data directory: a CA, server and per-organisation client certificates, the
//! token-signing key pair and the field-encryption key, created on first start and reused.
//!
//! Nothing here is for production: the keys sit unencrypted on disk (mode 0600). Ed25519
//! private keys are written as PKCS#8 v1 (RFC 8410, [`tryggdel_auth::ed25519_private_key_pem`]),
//! which OpenSSL and Python's `cryptography` read; keys an older version wrote in the v2 form
//! are kept and still read.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use rand::RngCore as _;
use tryggdel_merkle::checkpoint::CheckpointSigner;

use tryggdel_tls::{CertificateAuthority, ClientIdentitySpec};

use crate::config::{
    AuditConfig, ClaimsConfig, Config, DisclosureConfig, Endpoints, KeyFiles, Listen, Mode,
    NotificationConfig, TelemetryConfig, TlsFiles, TokenConfig, default_jwks_min_refresh,
    default_leeway,
};
use crate::console::ConsoleConfig;
use crate::development::{
    AUDIENCE, AUDIT_ORIGIN, DEVELOPMENT_CA_NAME, DEVELOPMENT_CONSOLE_ORIGIN, ISSUER,
};
use crate::files::{read, write_public, write_secret};

/// Paths inside a development data directory.
pub struct DataDirectory {
    pub root: PathBuf,
}

impl DataDirectory {
    pub fn new(root: impl Into<PathBuf>) -> DataDirectory {
        DataDirectory { root: root.into() }
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("pki/ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("pki/ca-key.pem")
    }
    pub fn server_cert(&self, service: &str) -> PathBuf {
        self.root.join(format!("pki/{service}.pem"))
    }
    pub fn server_key(&self, service: &str) -> PathBuf {
        self.root.join(format!("pki/{service}-key.pem"))
    }
    pub fn client_cert(&self, organisation: &str) -> PathBuf {
        self.root.join(format!("pki/clients/{organisation}.pem"))
    }
    pub fn client_key(&self, organisation: &str) -> PathBuf {
        self.root
            .join(format!("pki/clients/{organisation}-key.pem"))
    }
    pub fn signing_key(&self) -> PathBuf {
        self.root.join("keys/token-signing-key.pem")
    }
    pub fn verifying_key(&self) -> PathBuf {
        self.root.join("keys/token-signing-public.pem")
    }
    pub fn field_key(&self) -> PathBuf {
        self.root.join("keys/field-encryption.key")
    }
    pub fn person_key(&self) -> PathBuf {
        self.root.join("keys/person-index.key")
    }
    /// The audit log's checkpoint-signing key (Ed25519, PKCS#8 v1 PEM).
    pub fn audit_log_key(&self) -> PathBuf {
        self.root.join("keys/audit-log-key.pem")
    }
    /// The audit log's public key as a signed-note verifier key, for compliance officers.
    pub fn audit_log_vkey(&self) -> PathBuf {
        self.root.join("keys/audit-log.vkey")
    }
    /// The notification service's receipt-signing key (Ed25519, PKCS#8 v1 PEM).
    pub fn receipt_key(&self) -> PathBuf {
        self.root.join("keys/receipt-signing-key.pem")
    }
    /// The public half of the receipt key (Ed25519 public key PEM), for the disclosure service.
    pub fn receipt_public_key(&self) -> PathBuf {
        self.root.join("keys/receipt-public.pem")
    }
    pub fn sqlite_url(&self, service: &str) -> String {
        format!(
            "sqlite://{}",
            self.root.join(format!("{service}.db")).display()
        )
    }

    /// Creates whatever is missing; returns true when anything was created.
    pub fn ensure(&self, services: &[&str], organisations: &[String]) -> anyhow::Result<bool> {
        let mut created = false;
        fs::create_dir_all(self.root.join("pki/clients"))
            .with_context(|| format!("creating {}", self.root.display()))?;
        fs::create_dir_all(self.root.join("keys"))?;
        let ca = if self.ca_cert().exists() && self.ca_key().exists() {
            CertificateAuthority::from_pem(&read(&self.ca_cert())?, &read(&self.ca_key())?)
                .context("loading the development CA")?
        } else {
            let ca = CertificateAuthority::generate(DEVELOPMENT_CA_NAME)?;
            write_public(&self.ca_cert(), ca.cert_pem())?;
            write_secret(&self.ca_key(), &ca.key_pem())?;
            created = true;
            ca
        };
        for service in services {
            created |= ensure_pair(
                &self.server_key(service),
                &self.server_cert(service),
                || {
                    let issued = ca.issue_server(
                        service,
                        &["localhost".to_owned(), (*service).to_owned()],
                        &["127.0.0.1".parse()?, "::1".parse()?],
                    )?;
                    Ok((issued.key_pem, issued.cert_pem))
                },
            )?;
        }
        for organisation in organisations {
            let (key, cert) = (
                self.client_key(organisation),
                self.client_cert(organisation),
            );
            created |= ensure_pair(&key, &cert, || {
                let issued = ca.issue_client(&ClientIdentitySpec {
                    common_name: format!("dev-client.{organisation}"),
                    organisation: organisation.clone(),
                })?;
                Ok((issued.key_pem, issued.cert_pem))
            })?;
        }
        created |= ensure_pair(&self.signing_key(), &self.verifying_key(), || {
            let pair = tryggdel_auth::generate_ed25519_key_pair()?;
            Ok((pair.private_key_pem, pair.public_key_pem))
        })?;
        if !self.person_key().exists() {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            write_secret(&self.person_key(), &STANDARD.encode(bytes))?;
            created = true;
        }
        created |= ensure_pair(&self.audit_log_key(), &self.audit_log_vkey(), || {
            let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
            let pem = tryggdel_auth::ed25519_private_key_pem(&key)
                .context("encoding the audit log key")?;
            let vkey = CheckpointSigner::new(key, AUDIT_ORIGIN)?
                .verifier()
                .to_vkey_string();
            Ok((pem.to_string(), format!("{vkey}\n")))
        })?;
        created |= ensure_pair(&self.receipt_key(), &self.receipt_public_key(), || {
            let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
            let pem =
                tryggdel_auth::ed25519_private_key_pem(&key).context("encoding the receipt key")?;
            let public = key
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .context("encoding the receipt public key")?;
            Ok((pem.to_string(), public))
        })?;
        if !self.field_key().exists() {
            write_secret(
                &self.field_key(),
                &tryggdel_storage::FieldKey::generate_base64(),
            )?;
            created = true;
        }
        Ok(created)
    }
}

/// Writes the secret and the public half `make` answers, unless both files exist already;
/// answers whether it wrote them.
fn ensure_pair(
    secret: &Path,
    public: &Path,
    make: impl FnOnce() -> anyhow::Result<(String, String)>,
) -> anyhow::Result<bool> {
    if secret.exists() && public.exists() {
        return Ok(false);
    }
    let (secret_contents, public_contents) = make()?;
    write_secret(secret, &secret_contents)?;
    write_public(public, &public_contents)?;
    Ok(true)
}

impl DataDirectory {
    /// The configuration `tryggdel start` runs every service with: development mode, this
    /// directory's certificates and keys, `service`'s certificate; endpoints are set once the
    /// listeners are bound.
    pub fn development_config(&self, service: &str, directory: Option<PathBuf>) -> Config {
        Config {
            mode: Mode::Development,
            database_url: None,
            database: crate::config::DatabaseConfig::default(),
            directory,
            tls: Some(TlsFiles {
                ca: self.ca_cert(),
                cert: self.server_cert(service),
                key: self.server_key(service),
            }),
            token: Some(TokenConfig {
                issuer: ISSUER.to_owned(),
                audience: AUDIENCE.to_owned(),
                public_key: Some(self.verifying_key()),
                jwks: None,
                claims: ClaimsConfig::default(),
                leeway_seconds: default_leeway(),
                jwks_min_refresh_seconds: default_jwks_min_refresh(),
            }),
            keys: KeyFiles {
                field: Some(self.field_key()),
                person_index: Some(self.person_key()),
                audit_log: Some(self.audit_log_key()),
                receipt: Some(self.receipt_key()),
                receipt_public: Some(self.receipt_public_key()),
            },
            listen: Listen::default(),
            endpoints: Endpoints::default(),
            audit: AuditConfig {
                origin: Some(AUDIT_ORIGIN.to_owned()),
                ..AuditConfig::default()
            },
            review: crate::config::ReviewConfig::default(),
            report: crate::config::ReportConfig::default(),
            disclosure: DisclosureConfig::default(),
            notification: NotificationConfig::default(),
            telemetry: TelemetryConfig::default(),
            console: ConsoleConfig {
                public_origin: Some(DEVELOPMENT_CONSOLE_ORIGIN.to_owned()),
                audit_log_public_key: Some(self.audit_log_vkey()),
                development_signing_key: Some(self.signing_key()),
                ..ConsoleConfig::default()
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let directory = tempfile::tempdir().unwrap();
        let data = DataDirectory::new(directory.path());
        let organisations = vec!["bollnas-kommun".to_owned()];
        assert!(data.ensure(&["disclosure"], &organisations).unwrap());
        let ca_before = read(&data.ca_cert()).unwrap();
        let key_before = read(&data.signing_key()).unwrap();
        assert!(!data.ensure(&["disclosure"], &organisations).unwrap());
        assert_eq!(read(&data.ca_cert()).unwrap(), ca_before);
        assert_eq!(read(&data.signing_key()).unwrap(), key_before);
        let mode = fs::metadata(data.signing_key()).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        assert!(data.client_cert("bollnas-kommun").exists());
    }

    /// Whether `openssl pkey -in <path> -noout` reads the key; None without openssl.
    fn openssl_reads(path: &Path) -> Option<bool> {
        std::process::Command::new("openssl")
            .args(["pkey", "-noout", "-in"])
            .arg(path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()
            .map(|status| status.success())
    }

    #[test]
    fn ed25519_private_keys_are_written_as_plain_rfc_8410() {
        // PKCS#8 v1: SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING {
        // OCTET STRING (32 bytes) } }, 48 bytes, nothing after the private key.
        const PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let directory = tempfile::tempdir().unwrap();
        let data = DataDirectory::new(directory.path());
        data.ensure(&["audit", "notification"], &[]).unwrap();
        for path in [data.signing_key(), data.audit_log_key(), data.receipt_key()] {
            let pem = read(&path).unwrap();
            let body: String = pem
                .lines()
                .filter(|line| !line.starts_with("-----"))
                .collect();
            let der = STANDARD.decode(body).unwrap();
            assert_eq!(der.len(), 48, "{}", path.display());
            assert_eq!(der[..16], PREFIX, "{}", path.display());
            match openssl_reads(&path) {
                Some(read) => assert!(read, "openssl pkey refused {}", path.display()),
                None => eprintln!("openssl is not installed: checked the DER only"),
            }
        }
    }

    #[test]
    fn keys_an_older_version_wrote_in_the_v2_form_are_kept_and_read() {
        use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
        let directory = tempfile::tempdir().unwrap();
        let data = DataDirectory::new(directory.path());
        data.ensure(&["audit", "notification"], &[]).unwrap();
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let v2 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        fs::remove_file(data.receipt_key()).unwrap();
        write_secret(&data.receipt_key(), &v2).unwrap();
        data.ensure(&["audit", "notification"], &[]).unwrap();
        let kept = read(&data.receipt_key()).unwrap();
        assert_eq!(kept, v2.as_str());
        assert_eq!(
            ed25519_dalek::SigningKey::from_pkcs8_pem(&kept).unwrap(),
            key
        );
    }
}
