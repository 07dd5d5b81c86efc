//! The log's side of C2SP tlog-witness: submitting a signed checkpoint to a witness with the
//! consistency proof from the size the witness last cosigned, over a kept-alive HTTPS
//! connection, and checking the cosignature it returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tryggdel_merkle::Hash;
use tryggdel_merkle::checkpoint::{Checkpoint, CosignatureVerifier, NoteSignature};

use crate::protocol::{AddCheckpoint, SIZE_CONTENT_TYPE, parse_decimal};

/// The consistency proof between two sizes of the log's tree.
pub type ProofSource<'a> = &'a (dyn Fn(u64, u64) -> anyhow::Result<Vec<Hash>> + Sync);

/// What the witness did with a submission.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The witness could not be reached or did not answer in time.
    #[error("witness {witness} unreachable: {source}")]
    Unreachable {
        witness: String,
        #[source]
        source: reqwest::Error,
    },
    /// The witness refused the checkpoint (a status other than 200 and a 409 it recovered from).
    #[error("witness {witness} refused the checkpoint with {status}: {body}")]
    Refused {
        witness: String,
        status: u16,
        body: String,
    },
    /// The witness answered 200 without a valid cosignature from its key.
    #[error("witness {witness} answered without a valid cosignature")]
    BadCosignature { witness: String },
    /// The proof for the witness's size could not be made.
    #[error("no consistency proof for witness {witness}: {source:#}")]
    Proof {
        witness: String,
        #[source]
        source: anyhow::Error,
    },
}

/// One witness the log submits to.
#[derive(Debug)]
pub struct WitnessClient {
    name: String,
    add_checkpoint_url: String,
    verifier: CosignatureVerifier,
    http: reqwest::Client,
    /// The size the witness last cosigned, as far as the log knows (`u64::MAX`: unknown).
    known_size: AtomicU64,
}

const UNKNOWN: u64 = u64::MAX;

/// The HTTPS client for witnesses: rustls on ring, the public web roots plus `extra_ca_pem`,
/// HTTP/1.1 kept alive, no redirects, a deadline per request.
pub fn http_client(
    extra_ca_pem: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<reqwest::Client> {
    tryggdel_tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca_pem {
        for certificate in
            tryggdel_tls::parse_certificates(pem, "witness CA").context("the witnesses' CA")?
        {
            roots.add(certificate).context("the witnesses' CA")?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions for witnesses")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .context("the HTTP client for witnesses")
}

impl WitnessClient {
    /// A client for the witness `name` (its policy name) with key `verifier`, whose
    /// submission prefix is `url` (`add-checkpoint` is appended).
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        url: &str,
        verifier: CosignatureVerifier,
        http: reqwest::Client,
    ) -> Self {
        Self {
            name: name.into(),
            add_checkpoint_url: format!("{}/add-checkpoint", url.trim_end_matches('/')),
            verifier,
            http,
            known_size: AtomicU64::new(UNKNOWN),
        }
    }

    /// The witness's policy name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The witness's key.
    #[must_use]
    pub fn verifier(&self) -> &CosignatureVerifier {
        &self.verifier
    }

    /// The size the witness last cosigned, if known.
    #[must_use]
    pub fn known_size(&self) -> Option<u64> {
        match self.known_size.load(Ordering::Acquire) {
            UNKNOWN => None,
            size => Some(size),
        }
    }

    /// Submits `note_text` (the log-signed note of `checkpoint`) with the proof from the
    /// size the witness last cosigned; after a 409 it resends once from the size the witness
    /// names. Returns the witness's verified cosignature.
    pub async fn cosign(
        &self,
        note_text: &str,
        checkpoint: &Checkpoint,
        proofs: ProofSource<'_>,
    ) -> Result<NoteSignature, SubmitError> {
        let mut old_size = self.known_size().unwrap_or(0);
        for attempt in 0..2 {
            if old_size > checkpoint.size() {
                return Err(SubmitError::Refused {
                    witness: self.name.clone(),
                    status: 409,
                    body: format!("the witness is at size {old_size}, ahead of the log"),
                });
            }
            let proof = if old_size == 0 || old_size == checkpoint.size() {
                Vec::new()
            } else {
                proofs(old_size, checkpoint.size()).map_err(|source| SubmitError::Proof {
                    witness: self.name.clone(),
                    source,
                })?
            };
            let request = AddCheckpoint {
                old_size,
                proof,
                note: note_text.to_owned(),
            };
            let unreachable = |source| SubmitError::Unreachable {
                witness: self.name.clone(),
                source,
            };
            let response = self
                .http
                .post(&self.add_checkpoint_url)
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(request.to_text())
                .send()
                .await
                .map_err(unreachable)?;
            let status = response.status();
            let is_size = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with(SIZE_CONTENT_TYPE));
            let body = response.text().await.map_err(unreachable)?;
            if status == reqwest::StatusCode::CONFLICT
                && is_size
                && attempt == 0
                && let Some(size) = body.strip_suffix('\n').and_then(parse_decimal)
            {
                tracing::info!(witness = %self.name, size, "the witness is at another size, resending from it");
                self.known_size.store(size, Ordering::Release);
                old_size = size;
                continue;
            }
            if !status.is_success() {
                return Err(SubmitError::Refused {
                    witness: self.name.clone(),
                    status: status.as_u16(),
                    body: body.chars().take(200).collect(),
                });
            }
            let bad = || SubmitError::BadCosignature {
                witness: self.name.clone(),
            };
            let lines = NoteSignature::parse_lines(&body).map_err(|_| bad())?;
            let cosignature = lines
                .into_iter()
                .find(|line| self.verifier.is_signer_of(line))
                .ok_or_else(bad)?;
            self.verifier
                .verify(&checkpoint.body_text(), &cosignature)
                .map_err(|_| bad())?;
            self.known_size.store(checkpoint.size(), Ordering::Release);
            return Ok(cosignature);
        }
        Err(SubmitError::Refused {
            witness: self.name.clone(),
            status: 409,
            body: "the witness's size changed again".to_owned(),
        })
    }
}
