//! Witnessing: each new signed checkpoint is submitted to every configured witness in
//! parallel (C2SP tlog-witness, kept-alive HTTPS), their cosignatures are collected, and a
//! checkpoint is *published* (served as the log's checkpoint) only once they meet the policy.
//!
//! Invariants:
//! - The published checkpoint carries the log's signature and cosignatures meeting the
//!   policy's quorum; nothing else is ever served as the latest checkpoint while witnessing
//!   is configured.
//! - Appends do not wait for witnesses: they are acknowledged when durable, and the cosigned
//!   checkpoint follows.
//! - While the quorum is not met the last published checkpoint stays, and
//!   `tryggdel.audit.witness_quorum_met` (0) and `tryggdel.audit.cosigned_lag` (entries the
//!   published checkpoint trails the signed one) say so, with a WARN line per attempt.
//! - Each witness's size is remembered between rounds; after a 409 the submission is resent
//!   with the proof from the size the witness names.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointVerifier, SignedNote};
use tryggdel_witness::client::{WitnessClient, http_client};
use tryggdel_witness::policy::Policy;

use crate::log::AuditLog;
use crate::store::StoredCheckpoint;

/// How the log is witnessed.
#[derive(Clone, Debug)]
pub struct WitnessingSettings {
    /// The policy: the witnesses (each with its submission URL) and the quorum.
    pub policy: Policy,
    /// A CA the witnesses' certificates chain to, besides the public web roots.
    pub ca_pem: Option<String>,
    /// How long one submission to a witness may take.
    pub timeout: Duration,
    /// How soon a round that did not meet the quorum is tried again.
    pub retry_interval: Duration,
}

/// The witnessing of one log: the witnesses, the policy and the published checkpoint.
pub struct Witnessing {
    policy: Policy,
    witnesses: Vec<WitnessClient>,
    retry_interval: Duration,
    published: RwLock<Option<StoredCheckpoint>>,
    quorum_met: AtomicBool,
    lag: AtomicU64,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for Witnessing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witnessing")
            .field(
                "witnesses",
                &self.witnesses.iter().map(|w| w.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Witnessing {
    /// The witnessing of the log whose key is `log_key`: every witness of the policy needs a
    /// URL, and a policy that names logs must name this one with this key.
    pub fn new(
        settings: &WitnessingSettings,
        log_key: &CheckpointVerifier,
    ) -> anyhow::Result<Self> {
        let policy = &settings.policy;
        if !policy.logs().is_empty() && !policy.logs().iter().any(|l| l.verifier() == log_key) {
            anyhow::bail!(
                "the witness policy does not name this log ({}) with its key",
                log_key.to_vkey_string()
            );
        }
        anyhow::ensure!(
            !policy.witnesses().is_empty(),
            "the witness policy names no witness"
        );
        let http = http_client(settings.ca_pem.as_deref(), settings.timeout)?;
        let witnesses = policy
            .witnesses()
            .iter()
            .map(|w| {
                let url = w
                    .url()
                    .with_context(|| format!("witness {} has no URL in the policy", w.name()))?;
                Ok(WitnessClient::new(
                    w.name(),
                    url,
                    w.verifier().clone(),
                    http.clone(),
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            policy: policy.clone(),
            witnesses,
            retry_interval: settings.retry_interval,
            published: RwLock::new(None),
            quorum_met: AtomicBool::new(false),
            lag: AtomicU64::new(0),
            task: Mutex::new(None),
        })
    }

    /// The latest checkpoint whose cosignatures met the policy, if any yet.
    pub fn published(&self) -> Option<StoredCheckpoint> {
        match self.published.read() {
            Ok(published) => published.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether the latest round met the quorum.
    pub fn quorum_met(&self) -> bool {
        self.quorum_met.load(Ordering::Acquire)
    }

    /// Entries the published checkpoint trails the latest signed one.
    pub fn lag(&self) -> u64 {
        self.lag.load(Ordering::Acquire)
    }

    /// One round: submits `signed` to every witness at once and publishes it if their
    /// cosignatures meet the policy. Returns whether it was published.
    pub async fn cosign(&self, log: &AuditLog, signed: &StoredCheckpoint) -> bool {
        let mut note = match SignedNote::parse(&signed.note) {
            Ok(note) => note,
            Err(error) => {
                tracing::error!(%error, "the log's own checkpoint note does not parse");
                return false;
            }
        };
        let checkpoint = match Checkpoint::parse_body(note.body()) {
            Ok(checkpoint) => checkpoint,
            Err(error) => {
                tracing::error!(%error, "the log's own checkpoint does not parse");
                return false;
            }
        };
        let proofs = |old: u64, new: u64| log.consistency_proof(old, new);
        let submissions = self
            .witnesses
            .iter()
            .map(|witness| witness.cosign(&signed.note, &checkpoint, &proofs));
        let answers = futures::future::join_all(submissions).await;
        let mut cosigned_by = Vec::new();
        for (witness, answer) in self.witnesses.iter().zip(answers) {
            match answer {
                Ok(cosignature) => match note.add_signature(cosignature) {
                    Ok(()) => cosigned_by.push(witness.name()),
                    Err(error) => tracing::error!(%error, "could not add a cosignature"),
                },
                Err(error) => tracing::warn!(
                    witness = witness.name(),
                    tree_size = signed.tree_size,
                    error = %error,
                    "a witness did not cosign"
                ),
            }
        }
        let published_size = self.published().map_or(0, |p| p.tree_size);
        if self.policy.is_met_by(cosigned_by.iter().copied()) {
            let mut cosigned = signed.clone();
            cosigned.note = note.to_text();
            match self.published.write() {
                Ok(mut published) => *published = Some(cosigned),
                Err(poisoned) => *poisoned.into_inner() = Some(cosigned),
            }
            self.quorum_met.store(true, Ordering::Release);
            self.lag.store(0, Ordering::Release);
            tracing::info!(tree_size = signed.tree_size, cosigned_by = ?cosigned_by, "checkpoint cosigned and published");
            true
        } else {
            self.quorum_met.store(false, Ordering::Release);
            let lag = signed.tree_size.saturating_sub(published_size);
            self.lag.store(lag, Ordering::Release);
            tracing::warn!(
                tree_size = signed.tree_size,
                published_tree_size = published_size,
                lag,
                cosigned_by = ?cosigned_by,
                "the witness quorum is not met: the last cosigned checkpoint is still served"
            );
            false
        }
    }

    /// Starts witnessing `log` in the background: each checkpoint the log signs (or adopts)
    /// beyond the published one is submitted; a round short of the quorum is retried.
    pub fn start(self: &Arc<Self>, log: AuditLog) {
        let witnessing = Arc::downgrade(self);
        let mut signed = log.watch_checkpoints();
        let task = tokio::spawn(async move {
            loop {
                let Some(this) = witnessing.upgrade() else {
                    return;
                };
                let latest = log.latest_checkpoint();
                let published_size = this.published().map(|p| p.tree_size);
                let due = published_size.is_none_or(|size| latest.tree_size > size);
                let done = !due || this.cosign(&log, &latest).await;
                let retry = this.retry_interval;
                drop(this);
                if done {
                    if signed.changed().await.is_err() {
                        return;
                    }
                } else {
                    tokio::select! {
                        changed = signed.changed() => if changed.is_err() { return },
                        () = tokio::time::sleep(retry) => {}
                    }
                }
            }
        });
        if let Ok(mut slot) = self.task.lock() {
            *slot = Some(task.abort_handle());
        }
    }

    /// Stops the background witnessing.
    pub fn stop(&self) {
        if let Ok(mut slot) = self.task.lock()
            && let Some(task) = slot.take()
        {
            task.abort();
        }
    }
}

impl Drop for Witnessing {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `tryggdel.audit.witness_quorum_met` and `tryggdel.audit.cosigned_lag`.
pub(crate) fn register_metrics(witnessing: &Arc<Witnessing>) {
    let meter = tryggdel_service_kit::metrics::meter();
    let met = Arc::downgrade(witnessing);
    meter
        .u64_observable_gauge("tryggdel.audit.witness_quorum_met")
        .with_description("1 when the latest checkpoint met the witness quorum, else 0")
        .with_callback(move |observer| {
            if let Some(w) = met.upgrade() {
                observer.observe(u64::from(w.quorum_met()), &[]);
            }
        })
        .build();
    let lag = Arc::downgrade(witnessing);
    meter
        .u64_observable_gauge("tryggdel.audit.cosigned_lag")
        .with_unit("{entry}")
        .with_description("Entries the published (cosigned) checkpoint trails the signed one")
        .with_callback(move |observer| {
            if let Some(w) = lag.upgrade() {
                observer.observe(w.lag(), &[]);
            }
        })
        .build();
}
