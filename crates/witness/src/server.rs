//! The witness server: C2SP tlog-witness over HTTPS.
//!
//! `POST /add-checkpoint` answers 400 (malformed, or an old size above the checkpoint's),
//! 404 (a log it does not witness), 403 (no valid signature from that log's pinned key),
//! 409 with a `text/x.tlog.size` body (the old size is not the size it last cosigned),
//! 422 (the proof does not show the checkpoint consistent with what it cosigned before)
//! or 200 with its cosignature line. `GET /checkpoint/<origin>` serves the latest
//! checkpoint it cosigned for a log, with its cosignature, for monitors.
//!
//! Per log, checking against the stored state, persisting the new state and answering
//! happen under one lock, and the new state is on disk before the answer leaves: two racing
//! submissions cannot both win, and a crash at any point never lets the witness cosign a
//! checkpoint inconsistent with one it cosigned before.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use tokio::sync::Mutex;
use tryggdel_merkle::checkpoint::{
    Checkpoint, CheckpointVerifier, CosignatureVerifier, Cosigner, SignedNote,
};
use tryggdel_merkle::verify_consistency;

use crate::protocol::{AddCheckpoint, MAX_REQUEST_BYTES, SIZE_CONTENT_TYPE};
use crate::state::{StateDirectory, Witnessed};

/// A hook run after the new state is persisted and before the answer is sent, with the
/// origin and the new size. Only for tests that kill the witness at that point; nothing in
/// a configuration file or the environment sets it.
pub type AfterPersist = Arc<dyn Fn(&str, u64) + Send + Sync>;

/// Everything a witness needs, already loaded.
pub struct WitnessSettings {
    /// The witness's key name, e.g. `witness.polisen.example/tryggdel`.
    pub name: String,
    /// The witness's own Ed25519 key.
    pub signing_key: SigningKey,
    /// The logs it witnesses: each pinned origin (= key name) and key.
    pub logs: Vec<CheckpointVerifier>,
    /// Where its state lives (one file per log).
    pub state_directory: PathBuf,
    /// Its HTTPS certificate chain (PEM).
    pub cert_chain_pem: String,
    /// Its HTTPS private key (PEM).
    pub key_pem: String,
    /// Test-only: see [`AfterPersist`].
    pub after_persist: Option<AfterPersist>,
}

impl std::fmt::Debug for WitnessSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessSettings")
            .field("name", &self.name)
            .field(
                "logs",
                &self.logs.iter().map(|l| l.name()).collect::<Vec<_>>(),
            )
            .field("state_directory", &self.state_directory)
            .finish_non_exhaustive()
    }
}

/// A witness serving on its listener until shut down.
pub struct RunningWitness {
    local_addr: SocketAddr,
    verifier: CosignatureVerifier,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningWitness {
    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Its cosignature verifier key.
    #[must_use]
    pub fn verifier(&self) -> &CosignatureVerifier {
        &self.verifier
    }

    /// Stops accepting, lets requests in flight finish (up to five seconds) and waits.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.handle.graceful_shutdown(Some(Duration::from_secs(5)));
        self.task
            .await
            .context("the witness task")?
            .context("the witness server")
    }

    /// Serves until the server stops.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task
            .await
            .context("the witness task")?
            .context("the witness server")
    }
}

struct Witness {
    cosigner: Cosigner,
    logs: HashMap<String, Arc<WitnessedLog>>,
    states: StateDirectory,
    after_persist: Option<AfterPersist>,
}

struct WitnessedLog {
    verifier: CheckpointVerifier,
    /// The latest cosigned checkpoint; the lock is held from the check to the answer.
    latest: Mutex<Option<Witnessed>>,
}

/// Why a submission was refused, as the protocol's status.
enum Refusal {
    BadRequest(&'static str),
    UnknownLog,
    BadLogSignature,
    Conflict(u64),
    Inconsistent,
    Internal,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let text = |status: StatusCode, message: &str| {
            (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{message}\n"),
            )
                .into_response()
        };
        match self {
            Refusal::BadRequest(reason) => text(StatusCode::BAD_REQUEST, reason),
            Refusal::UnknownLog => text(StatusCode::NOT_FOUND, "unknown log"),
            Refusal::BadLogSignature => text(
                StatusCode::FORBIDDEN,
                "no valid signature from the log's key",
            ),
            Refusal::Conflict(size) => (
                StatusCode::CONFLICT,
                [(header::CONTENT_TYPE, SIZE_CONTENT_TYPE)],
                format!("{size}\n"),
            )
                .into_response(),
            Refusal::Inconsistent => text(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the checkpoint is not consistent with the one cosigned before",
            ),
            Refusal::Internal => text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        }
    }
}

/// Loads the state of every configured log and starts serving on `listener` (HTTPS, TLS
/// 1.3, no client certificate: anyone may submit, the log's signature is the admission).
pub async fn start(
    settings: WitnessSettings,
    listener: std::net::TcpListener,
) -> anyhow::Result<RunningWitness> {
    tryggdel_tls::install_crypto_provider();
    let local_addr = listener.local_addr().context("the witness's address")?;
    let tls = server_tls(&settings.cert_chain_pem, &settings.key_pem)?;
    let cosigner =
        Cosigner::new(settings.signing_key, settings.name.clone()).context("the witness's name")?;
    let verifier = cosigner.verifier();
    let states = StateDirectory::open(&settings.state_directory, &verifier.to_vkey_string())?;
    let mut logs = HashMap::new();
    for log in settings.logs {
        let latest = states.load(log.name())?;
        if let Some(latest) = &latest {
            tracing::info!(
                origin = log.name(),
                size = latest.size,
                "witnessed log state loaded"
            );
        }
        anyhow::ensure!(
            !logs.contains_key(log.name()),
            "log {} is configured twice",
            log.name()
        );
        logs.insert(
            log.name().to_owned(),
            Arc::new(WitnessedLog {
                verifier: log,
                latest: Mutex::new(latest),
            }),
        );
    }
    let witness = Arc::new(Witness {
        cosigner,
        logs,
        states,
        after_persist: settings.after_persist,
    });
    let app = Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/checkpoint/{*origin}", get(latest_checkpoint))
        // Requests are small: `old`, at most 63 hashes and a note.
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(witness);
    listener
        .set_nonblocking(true)
        .context("making the witness's listener non-blocking")?;
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, tls)
        .context("the witness's listener")?
        .handle(handle.clone());
    let task = tokio::spawn(async move { server.serve(app.into_make_service()).await });
    tracing::info!(address = %local_addr, witness = verifier.name(), vkey = %verifier.to_vkey_string(), "witness listening");
    Ok(RunningWitness {
        local_addr,
        verifier,
        handle,
        task,
    })
}

/// TLS 1.3 with the witness's certificate, ALPN h2 and http/1.1, no client certificate.
fn server_tls(
    cert_chain_pem: &str,
    key_pem: &str,
) -> anyhow::Result<axum_server::tls_rustls::RustlsConfig> {
    let chain = tryggdel_tls::parse_certificates(cert_chain_pem, "witness certificate")
        .context("the witness's certificate")?;
    let key = tryggdel_tls::parse_private_key(key_pem, "witness private key")
        .context("the witness's private key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("the witness's TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the witness's certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(axum_server::tls_rustls::RustlsConfig::from_config(
        Arc::new(config),
    ))
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: String) -> Response {
    match witness.add_checkpoint(&body).await {
        Ok(line) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            line,
        )
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn latest_checkpoint(
    State(witness): State<Arc<Witness>>,
    Path(origin): Path<String>,
) -> Response {
    let Some(log) = witness.logs.get(&origin) else {
        return Refusal::UnknownLog.into_response();
    };
    match &*log.latest.lock().await {
        Some(latest) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            latest.note.clone(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "nothing cosigned yet\n").into_response(),
    }
}

impl Witness {
    async fn add_checkpoint(&self, body: &str) -> Result<String, Refusal> {
        let request = AddCheckpoint::parse(body).map_err(|e| {
            tracing::debug!(error = %e, "malformed add-checkpoint");
            Refusal::BadRequest("malformed request")
        })?;
        let note = SignedNote::parse(&request.note)
            .map_err(|_| Refusal::BadRequest("malformed checkpoint note"))?;
        let checkpoint = Checkpoint::parse_body(note.body())
            .map_err(|_| Refusal::BadRequest("malformed checkpoint"))?;
        let log = self
            .logs
            .get(checkpoint.origin())
            .ok_or(Refusal::UnknownLog)?;
        if let Err(error) = log.verifier.verify_note(&note) {
            tracing::warn!(origin = checkpoint.origin(), size = checkpoint.size(), %error, note = ?request.note, "refused a checkpoint without a valid signature from the log's key");
            return Err(Refusal::BadLogSignature);
        }
        if request.old_size > checkpoint.size() {
            return Err(Refusal::BadRequest(
                "old size is above the checkpoint's size",
            ));
        }

        let mut latest = log.latest.lock().await;
        let (stored_size, stored_root) = latest
            .as_ref()
            .map_or((0, None), |l| (l.size, Some(l.root)));
        if request.old_size != stored_size {
            return Err(Refusal::Conflict(stored_size));
        }
        if stored_size == 0 {
            // Every tree extends the empty one: the proof from size 0 is empty.
            if !request.proof.is_empty() {
                return Err(Refusal::BadRequest("a proof from size 0 must be empty"));
            }
        } else if let Some(stored_root) = stored_root {
            let consistent = verify_consistency(
                stored_size,
                checkpoint.size(),
                &stored_root,
                checkpoint.root(),
                &request.proof,
            );
            if let Err(error) = consistent {
                tracing::warn!(
                    origin = checkpoint.origin(),
                    cosigned_size = stored_size,
                    cosigned_root = %STANDARD.encode(stored_root),
                    size = checkpoint.size(),
                    root = %STANDARD.encode(checkpoint.root()),
                    proof = %request.proof.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>().join(" "),
                    note = ?request.note,
                    %error,
                    "refused a checkpoint inconsistent with the one cosigned before: evidence of a fork or a rewritten log"
                );
                return Err(Refusal::Inconsistent);
            }
        }

        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .max(1);
        let cosignature = self
            .cosigner
            .cosign(&checkpoint, time)
            .map_err(|_| Refusal::Internal)?;
        let mut cosigned = note;
        cosigned
            .add_signature(cosignature.clone())
            .map_err(|_| Refusal::BadRequest("the note has too many signatures"))?;
        let next = Witnessed {
            size: checkpoint.size(),
            root: *checkpoint.root(),
            note: cosigned.to_text(),
        };
        let unchanged = latest
            .as_ref()
            .is_some_and(|l| l.size == next.size && l.root == next.root);
        if !unchanged {
            let states = self.states.clone();
            let origin = checkpoint.origin().to_owned();
            let to_store = next.clone();
            tokio::task::spawn_blocking(move || states.persist(&origin, &to_store))
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "the witness state write did not finish");
                    Refusal::Internal
                })?
                .map_err(|e| {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "could not persist the witness state"
                    );
                    Refusal::Internal
                })?;
            if let Some(hook) = &self.after_persist {
                hook(checkpoint.origin(), checkpoint.size());
            }
        }
        *latest = Some(next);
        drop(latest);
        tracing::debug!(
            origin = checkpoint.origin(),
            size = checkpoint.size(),
            "cosigned"
        );
        Ok(cosignature.to_line())
    }
}
