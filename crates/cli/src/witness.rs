//! `tryggdel witness …`: the witness another agency runs for the audit log (C2SP
//! tlog-witness over HTTPS), and its key.
//!
//! `witness key` creates the agency's Ed25519 witness key (PKCS#8 PEM, 0600, never
//! overwritten) and prints its verifier key, which goes into the log operator's policy;
//! `witness serve` runs the witness for the logs it is given (each a verifier key
//! `<origin>+<key id>+<key>` or a file holding one).

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use tryggdel_merkle::checkpoint::{CheckpointVerifier, Cosigner};
use tryggdel_system::read;
use tryggdel_witness::server::WitnessSettings;

/// What `tryggdel witness serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The witness's key name, e.g. `witness.polisen.se/tryggdel`.
    pub name: String,
    /// Its Ed25519 key (PKCS#8 PEM).
    pub key_file: PathBuf,
    /// The logs it witnesses: verifier keys, or files holding one.
    pub logs: Vec<String>,
    pub listen: SocketAddr,
    /// Where it keeps what it cosigned (one file per log).
    pub state_dir: PathBuf,
    /// Its HTTPS certificate chain and key (PEM).
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
}

/// Creates a witness key at `out` for `name` and returns its verifier key.
pub fn create_key(name: &str, out: &Path) -> anyhow::Result<String> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let vkey = Cosigner::new(key.clone(), name)
        .with_context(|| format!("witness name {name:?}"))?
        .verifier()
        .to_vkey_string();
    let pem = tryggdel_auth::ed25519_private_key_pem(&key).context("encoding the key")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| {
            format!(
                "creating {} (an existing key is never replaced)",
                out.display()
            )
        })?;
    file.write_all(pem.as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(vkey)
}

/// The verifier key of the witness key at `key_file` under `name`.
pub fn verifier_key(name: &str, key_file: &Path) -> anyhow::Result<String> {
    Ok(Cosigner::new(read_key(key_file)?, name)
        .with_context(|| format!("witness name {name:?}"))?
        .verifier()
        .to_vkey_string())
}

/// Runs the witness until `stop` completes.
pub async fn serve(
    options: ServeOptions,
    stop: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let logs = options
        .logs
        .iter()
        .map(|log| log_key(log))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!logs.is_empty(), "give at least one --log to witness");
    let listener = std::net::TcpListener::bind(options.listen)
        .with_context(|| format!("binding {}", options.listen))?;
    let witness = tryggdel_witness::server::start(
        WitnessSettings {
            name: options.name.clone(),
            signing_key: read_key(&options.key_file)?,
            logs,
            state_directory: options.state_dir.clone(),
            cert_chain_pem: read(&options.tls_cert)?,
            key_pem: read(&options.tls_key)?,
            after_persist: None,
        },
        listener,
    )
    .await?;
    crate::out!(
        "witness {} listening on https://{}\nverifier key: {}",
        options.name,
        witness.local_addr(),
        witness.verifier().to_vkey_string()
    );
    stop.await?;
    witness.shutdown().await
}

fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    SigningKey::from_pkcs8_pem(&read(path)?).with_context(|| {
        format!(
            "witness key {} (expected Ed25519 PKCS#8 PEM)",
            path.display()
        )
    })
}

/// A log's verifier key, given as text or as a file holding it.
fn log_key(text: &str) -> anyhow::Result<CheckpointVerifier> {
    let vkey = if Path::new(text).is_file() {
        read(Path::new(text))?
    } else {
        text.to_owned()
    };
    CheckpointVerifier::parse_vkey(vkey.trim())
        .with_context(|| format!("log key {text:?} (expected <origin>+<key id>+<key>)"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_is_read_back_with_the_same_verifier_key_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("witness.pem");
        let vkey = create_key("witness.polisen.example", &path).unwrap();
        assert_eq!(
            verifier_key("witness.polisen.example", &path).unwrap(),
            vkey
        );
        assert!(create_key("witness.polisen.example", &path).is_err());
        tryggdel_merkle::checkpoint::CosignatureVerifier::parse_vkey(&vkey).unwrap();
    }
}
