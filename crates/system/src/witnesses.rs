//! The two development witnesses `tryggdel start` runs beside the services, with a 2-of-2
//! policy, so that a newcomer sees cosigned checkpoints. In a deployment witnesses are run by
//! other agencies (`tryggdel witness serve`) and the policy is theirs to agree on.
//!
//! Each witness keeps its key (created once, 0600) and its state under
//! `<data dir>/witnesses/<name>/`; its HTTPS certificate is issued by the development CA at
//! each start, and the policy (with this start's addresses) is written to
//! `<data dir>/witnesses/policy.txt`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use tryggdel_merkle::checkpoint::{CheckpointVerifier, Cosigner};
use tryggdel_tls::CertificateAuthority;
use tryggdel_witness::policy::Policy;
use tryggdel_witness::server::{RunningWitness, WitnessSettings};

use crate::data_directory::DataDirectory;
use crate::files::{read, write_public, write_secret};

/// The development witnesses' names, as two agencies would run them.
pub const DEVELOPMENT_WITNESSES: [&str; 2] = ["witness.polisen.example", "witness.ivo.example"];

/// The running development witnesses.
pub struct DevelopmentWitnesses {
    running: Vec<RunningWitness>,
    /// The policy file the audit log and `tryggdel audit verify --policy` use.
    pub policy_path: PathBuf,
}

impl DevelopmentWitnesses {
    /// Starts both witnesses on 127.0.0.1 (free ports) for the log `log`, writes the 2-of-2
    /// policy and returns the witnessing the audit service is to use.
    pub async fn start(
        data: &DataDirectory,
        log: &CheckpointVerifier,
    ) -> anyhow::Result<(
        DevelopmentWitnesses,
        tryggdel_audit::witnessing::WitnessingSettings,
    )> {
        let root = data.root.join("witnesses");
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let ca = CertificateAuthority::from_pem(&read(&data.ca_cert())?, &read(&data.ca_key())?)
            .context("the development CA")?;
        let mut policy = format!(
            "# The development witnesses' policy: both must cosign (written at each start).\nlog {}\n",
            log.to_vkey_string()
        );
        let mut running = Vec::new();
        for (i, name) in DEVELOPMENT_WITNESSES.iter().enumerate() {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let key = witness_key(&dir.join("key.pem"))?;
            let issued = ca
                .issue_server(
                    &format!("witness-{i}"),
                    &["localhost".to_owned()],
                    &[std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)],
                )
                .context("a development witness certificate")?;
            let listener = std::net::TcpListener::bind("127.0.0.1:0")
                .context("binding a development witness")?;
            let address = listener.local_addr().context("a witness's address")?;
            let vkey = Cosigner::new(key.clone(), *name)?
                .verifier()
                .to_vkey_string();
            policy.push_str(&format!("witness {name} {vkey} https://{address}/\n"));
            running.push(
                tryggdel_witness::server::start(
                    WitnessSettings {
                        name: (*name).to_owned(),
                        signing_key: key,
                        logs: vec![log.clone()],
                        state_directory: dir.join("state"),
                        cert_chain_pem: issued.cert_pem,
                        key_pem: issued.key_pem,
                        after_persist: None,
                    },
                    listener,
                )
                .await?,
            );
        }
        policy.push_str(&format!(
            "group development all {}\nquorum development\n",
            DEVELOPMENT_WITNESSES.join(" ")
        ));
        let policy_path = root.join("policy.txt");
        write_public(&policy_path, &policy)?;
        let settings = tryggdel_audit::witnessing::WitnessingSettings {
            policy: Policy::parse(&policy).context("the development witness policy")?,
            ca_pem: Some(read(&data.ca_cert())?),
            timeout: Duration::from_secs(5),
            retry_interval: Duration::from_secs(1),
        };
        Ok((
            DevelopmentWitnesses {
                running,
                policy_path,
            },
            settings,
        ))
    }

    /// Each witness's name and address.
    pub fn addresses(&self) -> Vec<(String, std::net::SocketAddr)> {
        self.running
            .iter()
            .map(|w| (w.verifier().name().to_owned(), w.local_addr()))
            .collect()
    }

    /// Stops both witnesses.
    pub async fn stop(self) -> anyhow::Result<()> {
        for witness in self.running {
            witness.shutdown().await?;
        }
        Ok(())
    }
}

/// What `tryggdel pki` writes for the compose deployment's two witnesses (each as another
/// agency would run it, reachable as `https://<host>:7380/`): per witness in
/// `<out>/witnesses/<name>/` its key (0600, kept), its HTTPS certificate and key for `host`
/// from the development CA (kept), an empty `state/`; and `<out>/witnesses/policy.txt`, the
/// 2-of-2 policy naming the log (`keys/audit-log.vkey`) and both witnesses (rewritten).
pub fn write_deployment_witnesses(
    data: &DataDirectory,
    hosts: &[(&str, &str)],
) -> anyhow::Result<()> {
    let root = data.root.join("witnesses");
    let ca = CertificateAuthority::from_pem(&read(&data.ca_cert())?, &read(&data.ca_key())?)
        .context("the development CA")?;
    let log = CheckpointVerifier::parse_vkey(read(&data.audit_log_vkey())?.trim())
        .context("the audit log's verifier key")?;
    let mut policy = format!(
        "# The compose deployment's witnesses: both must cosign (written by `tryggdel pki`).\nlog {}\n",
        log.to_vkey_string()
    );
    for (name, host) in hosts {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("state"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let key = witness_key(&dir.join("key.pem"))?;
        let (cert, tls_key) = (dir.join("tls.pem"), dir.join("tls-key.pem"));
        if !cert.exists() || !tls_key.exists() {
            let issued = ca
                .issue_server(
                    host,
                    &[(*host).to_owned(), "localhost".to_owned()],
                    &[std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)],
                )
                .context("a witness certificate")?;
            write_secret(&tls_key, &issued.key_pem)?;
            write_public(&cert, &issued.cert_pem)?;
        }
        let vkey = Cosigner::new(key, *name)?.verifier().to_vkey_string();
        write_public(&dir.join("witness.vkey"), &format!("{vkey}\n"))?;
        policy.push_str(&format!("witness {name} {vkey} https://{host}:7380/\n"));
    }
    let names: Vec<&str> = hosts.iter().map(|(name, _)| *name).collect();
    policy.push_str(&format!(
        "group agencies all {}\nquorum agencies\n",
        names.join(" ")
    ));
    Policy::parse(&policy).context("the witness policy")?;
    let path = root.join("policy.txt");
    write_public(&path, &policy)
}

/// The witness key at `path`, created (PKCS#8, 0600) if missing.
fn witness_key(path: &std::path::Path) -> anyhow::Result<SigningKey> {
    if !path.exists() {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let pem = tryggdel_auth::ed25519_private_key_pem(&key).context("encoding a witness key")?;
        write_secret(path, &pem)?;
    }
    SigningKey::from_pkcs8_pem(&read(path)?).with_context(|| {
        format!(
            "witness key {} (expected Ed25519 PKCS#8 PEM)",
            path.display()
        )
    })
}
