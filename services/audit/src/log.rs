//! The log itself: one sequencer task assigns indices and commits appends in batches (group
//! commit); readers prove against the in-memory Merkle tree, which only ever holds what the
//! database holds.
//!
//! Invariants:
//! - Only the sequencer task writes. It answers an append only after the batch holding it has
//!   committed; a batch that fails to commit is dropped from the tree again and every append in
//!   it is told so.
//! - Proofs and checkpoints are served only for sizes up to the durable size.
//! - A checkpoint is signed only after the new tree has been proved consistent with the
//!   previous checkpoint; at start the stored leaves must reproduce the latest checkpoint, or
//!   the log refuses to open.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointSigner, CheckpointVerifier};
use tryggdel_merkle::{Hash, MerkleTree, leaf_hash, verify_consistency};

use crate::entry::EntryBody;
use crate::store::{AuditStore, NewEntry, StoreError, StoredCheckpoint};

/// The most events one commit takes.
const MAX_BATCH_EVENTS: usize = 4096;
/// Appends waiting for the sequencer before callers are pushed back.
const QUEUE_DEPTH: usize = 1024;

/// What the log needs to sign and pace checkpoints.
#[derive(Clone)]
pub struct LogConfig {
    pub signer: Arc<CheckpointSigner>,
    /// How often, at most, a checkpoint is signed while the log grows (zero: after every batch).
    pub checkpoint_interval: Duration,
}

/// Where an appended event landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub event_id: String,
    pub index: u64,
    pub duplicate: bool,
    pub leaf_hash: Hash,
}

/// Why an append was not done.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("event {event_id} is already in the log with other content")]
    Conflict { event_id: String },
    #[error("the audit log could not make the entries durable")]
    Unavailable(#[source] anyhow::Error),
    #[error("the audit log has stopped")]
    Stopped,
}

struct AppendJob {
    bodies: Vec<EntryBody>,
    reply: oneshot::Sender<Result<Vec<Appended>, AppendError>>,
}

struct Shared {
    tree: RwLock<MerkleTree>,
    durable_size: AtomicU64,
    checkpoint: RwLock<StoredCheckpoint>,
    healthy: AtomicBool,
}

/// See [`AuditLog::probe`]: answers None once the log has stopped.
#[derive(Clone)]
pub struct LogProbe(std::sync::Weak<Shared>);

impl LogProbe {
    /// Entries that are durable.
    pub fn tree_size(&self) -> Option<u64> {
        let shared = self.0.upgrade()?;
        Some(shared.durable_size.load(Ordering::SeqCst))
    }

    /// When the latest checkpoint was signed (unix milliseconds).
    pub fn checkpoint_signed_at(&self) -> Option<i64> {
        let shared = self.0.upgrade()?;
        let signed_at = match shared.checkpoint.read() {
            Ok(checkpoint) => checkpoint.signed_at,
            Err(poisoned) => poisoned.into_inner().signed_at,
        };
        Some(signed_at)
    }
}

/// A handle on the log: cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    shared: Arc<Shared>,
    store: AuditStore,
    jobs: mpsc::Sender<AppendJob>,
    verifier: CheckpointVerifier,
}

fn now_unix_ms() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

fn sign(signer: &CheckpointSigner, tree_size: u64, root: Hash) -> anyhow::Result<StoredCheckpoint> {
    let checkpoint = Checkpoint::new(signer.name(), tree_size, root).context("checkpoint")?;
    let note = signer.sign(&checkpoint).context("signing the checkpoint")?;
    Ok(StoredCheckpoint {
        tree_size,
        root,
        note,
        signed_at: now_unix_ms(),
    })
}

/// Refuses to sign a tree that is not an extension of the previous checkpoint's.
fn check_consistent(
    tree: &MerkleTree,
    previous: &StoredCheckpoint,
    size: u64,
    root: &Hash,
) -> anyhow::Result<()> {
    if previous.tree_size == 0 || previous.tree_size == size {
        if previous.tree_size == size && previous.root != *root {
            bail!("the tree at size {size} no longer has the signed root");
        }
        return Ok(());
    }
    let proof = tree
        .consistency_proof(previous.tree_size, size)
        .context("consistency proof")?;
    verify_consistency(previous.tree_size, size, &previous.root, root, &proof).map_err(|error| {
        anyhow!(
            "the tree at size {size} is not consistent with the checkpoint at size {}: {error}",
            previous.tree_size
        )
    })
}

impl AuditLog {
    /// Opens the log: loads the tree, checks it against the latest signed checkpoint, signs one
    /// for the current size if needed, and starts the sequencer.
    pub async fn open(store: AuditStore, config: LogConfig) -> anyhow::Result<AuditLog> {
        let leaves = store.leaf_hashes().await.context("loading the log")?;
        let tree = MerkleTree::from_leaf_hashes(leaves);
        let verifier = config.signer.verifier();
        let size = tree.len();
        let checkpoint = match store
            .latest_checkpoint()
            .await
            .context("loading checkpoints")?
        {
            Some(latest) => {
                verifier.verify(&latest.note).map_err(|error| {
                    anyhow!(
                        "the latest checkpoint (size {}) does not verify with this log's key: {error}",
                        latest.tree_size
                    )
                })?;
                if latest.tree_size > size {
                    bail!(
                        "the latest checkpoint covers {} entries but only {size} are stored: \
                         entries were removed outside the service",
                        latest.tree_size
                    );
                }
                let root = tree.root_at(latest.tree_size).context("root")?;
                if root != latest.root {
                    bail!(
                        "the stored entries do not reproduce the signed root at size {}: \
                         the log was changed outside the service",
                        latest.tree_size
                    );
                }
                if size > latest.tree_size {
                    let root = tree.root();
                    check_consistent(&tree, &latest, size, &root)?;
                    let next = sign(&config.signer, size, root)?;
                    store
                        .insert_checkpoint(&next)
                        .await
                        .context("storing a checkpoint")?;
                    next
                } else {
                    latest
                }
            }
            None => {
                let first = sign(&config.signer, size, tree.root())?;
                store
                    .insert_checkpoint(&first)
                    .await
                    .context("storing a checkpoint")?;
                first
            }
        };
        tracing::info!(
            tree_size = size,
            origin = %config.signer.name(),
            "audit log opened"
        );
        let shared = Arc::new(Shared {
            tree: RwLock::new(tree),
            durable_size: AtomicU64::new(size),
            checkpoint: RwLock::new(checkpoint),
            healthy: AtomicBool::new(true),
        });
        let (jobs, receiver) = mpsc::channel(QUEUE_DEPTH);
        let sequencer = Sequencer {
            shared: shared.clone(),
            store: store.clone(),
            config,
            last_signed: tokio::time::Instant::now(),
            needs_resync: false,
        };
        tokio::spawn(sequencer.run(receiver));
        Ok(AuditLog {
            shared,
            store,
            jobs,
            verifier,
        })
    }

    pub fn store(&self) -> &AuditStore {
        &self.store
    }

    /// The key and origin checkpoints verify under.
    pub fn verifier(&self) -> &CheckpointVerifier {
        &self.verifier
    }

    /// Whether the sequencer is running and has never found the tree inconsistent.
    pub fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::SeqCst)
    }

    /// Appends `bodies` in order; answers once they are durable.
    pub async fn append(&self, bodies: Vec<EntryBody>) -> Result<Vec<Appended>, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(AppendJob { bodies, reply })
            .await
            .map_err(|_| AppendError::Stopped)?;
        answer.await.map_err(|_| AppendError::Stopped)?
    }

    /// A view of the log's size and latest checkpoint that does not keep the log alive (for
    /// metrics callbacks, which outlive the service).
    pub fn probe(&self) -> LogProbe {
        LogProbe(Arc::downgrade(&self.shared))
    }

    /// Entries that are durable (and provable).
    pub fn durable_size(&self) -> u64 {
        self.shared.durable_size.load(Ordering::SeqCst)
    }

    /// The latest signed checkpoint.
    pub fn latest_checkpoint(&self) -> StoredCheckpoint {
        match self.shared.checkpoint.read() {
            Ok(checkpoint) => checkpoint.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn with_tree<R>(&self, f: impl FnOnce(&MerkleTree) -> R) -> R {
        match self.shared.tree.read() {
            Ok(tree) => f(&tree),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// RFC 9162 inclusion proof of `index` in the tree of `size` (both checked by the caller
    /// against [`Self::durable_size`]).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> anyhow::Result<(Hash, Vec<Hash>)> {
        self.with_tree(|tree| {
            let leaf = tree.leaf_hash(index)?;
            let proof = tree.inclusion_proof(index, size)?;
            Ok((leaf, proof))
        })
    }

    /// RFC 9162 consistency proof from `first` to `second` entries.
    pub fn consistency_proof(&self, first: u64, second: u64) -> anyhow::Result<Vec<Hash>> {
        self.with_tree(|tree| Ok(tree.consistency_proof(first, second)?))
    }
}

struct Sequencer {
    shared: Arc<Shared>,
    store: AuditStore,
    config: LogConfig,
    last_signed: tokio::time::Instant,
    /// Set when a commit failed: whether it reached the database is unknown until the tree is
    /// reloaded from it.
    needs_resync: bool,
}

impl Sequencer {
    async fn run(mut self, mut jobs: mpsc::Receiver<AppendJob>) {
        let tick = self
            .config
            .checkpoint_interval
            .max(Duration::from_millis(50));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                job = jobs.recv() => {
                    let Some(job) = job else { break };
                    let mut batch = vec![job];
                    let mut events = batch[0].bodies.len();
                    while events < MAX_BATCH_EVENTS {
                        match jobs.try_recv() {
                            Ok(job) => {
                                events += job.bodies.len();
                                batch.push(job);
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit(batch).await;
                }
                _ = ticker.tick() => {
                    if let Err(error) = self.checkpoint_if_due().await {
                        tracing::error!(error = format!("{error:#}"), "signing a checkpoint failed");
                    }
                }
            }
        }
        tracing::info!("audit sequencer stopped");
    }

    fn checkpoint_due(&self) -> bool {
        self.last_signed.elapsed() >= self.config.checkpoint_interval
    }

    fn current_checkpoint(&self) -> StoredCheckpoint {
        match self.shared.checkpoint.read() {
            Ok(checkpoint) => checkpoint.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_checkpoint(&mut self, checkpoint: StoredCheckpoint) {
        match self.shared.checkpoint.write() {
            Ok(mut current) => *current = checkpoint,
            Err(poisoned) => *poisoned.into_inner() = checkpoint,
        }
        self.last_signed = tokio::time::Instant::now();
    }

    /// Signs the durable tree if it grew since the last checkpoint and the interval passed.
    async fn checkpoint_if_due(&mut self) -> anyhow::Result<()> {
        let size = self.shared.durable_size.load(Ordering::SeqCst);
        let previous = self.current_checkpoint();
        if size == previous.tree_size || !self.checkpoint_due() || !self.is_healthy() {
            return Ok(());
        }
        let next = {
            let tree = self.read_tree();
            let root = tree.root_at(size)?;
            check_consistent(&tree, &previous, size, &root)?;
            sign(&self.config.signer, size, root)?
        };
        self.store.insert_checkpoint(&next).await?;
        self.set_checkpoint(next);
        Ok(())
    }

    fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::SeqCst)
    }

    fn read_tree(&self) -> std::sync::RwLockReadGuard<'_, MerkleTree> {
        match self.shared.tree.read() {
            Ok(tree) => tree,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn write_tree(&self) -> std::sync::RwLockWriteGuard<'_, MerkleTree> {
        match self.shared.tree.write() {
            Ok(tree) => tree,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    async fn commit(&mut self, batch: Vec<AppendJob>) {
        if !self.is_healthy() {
            for job in batch {
                let _ = job.reply.send(Err(AppendError::Unavailable(anyhow!(
                    "the log found its tree inconsistent and stopped taking appends"
                ))));
            }
            return;
        }
        if self.needs_resync
            && let Err(error) = self.resync().await
        {
            for job in batch {
                let _ = job
                    .reply
                    .send(Err(AppendError::Unavailable(anyhow!("{error:#}"))));
            }
            return;
        }
        match self.prepare(&batch).await {
            Ok((plans, entries)) => {
                let answers = self.write(entries).await;
                for (job, plan) in batch.into_iter().zip(plans) {
                    let reply = match (&answers, plan) {
                        (_, Err(error)) => Err(error),
                        (Ok(()), Ok(appended)) => Ok(appended),
                        (Err(error), Ok(_)) => Err(AppendError::Unavailable(anyhow!("{error:#}"))),
                    };
                    let _ = job.reply.send(reply);
                }
            }
            Err(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "preparing an audit batch failed"
                );
                for job in batch {
                    let _ = job
                        .reply
                        .send(Err(AppendError::Unavailable(anyhow!("{error:#}"))));
                }
            }
        }
    }

    /// Reloads the tree from the database after a commit whose outcome is unknown, and checks
    /// it still reproduces the latest checkpoint.
    async fn resync(&mut self) -> anyhow::Result<()> {
        let leaves = self
            .store
            .leaf_hashes()
            .await
            .context("reloading the log")?;
        let tree = MerkleTree::from_leaf_hashes(leaves);
        let checkpoint = self.current_checkpoint();
        let root = tree.root_at(checkpoint.tree_size).context("root")?;
        if root != checkpoint.root {
            self.shared.healthy.store(false, Ordering::SeqCst);
            bail!(
                "the stored entries no longer reproduce the checkpoint at size {}",
                checkpoint.tree_size
            );
        }
        let size = tree.len();
        *self.write_tree() = tree;
        self.shared.durable_size.store(size, Ordering::SeqCst);
        self.needs_resync = false;
        tracing::info!(tree_size = size, "audit log reloaded after a failed commit");
        Ok(())
    }

    /// Decides, job by job, which events are new (and their indices) and which are repeats.
    #[allow(clippy::type_complexity)]
    async fn prepare(
        &self,
        batch: &[AppendJob],
    ) -> Result<(Vec<Result<Vec<Appended>, AppendError>>, Vec<NewEntry>), StoreError> {
        let ids: Vec<String> = batch
            .iter()
            .flat_map(|job| job.bodies.iter().map(|body| body.event_id.clone()))
            .collect();
        let mut known = self.store.existing(&ids).await?;
        let mut next_index = self.shared.durable_size.load(Ordering::SeqCst);
        let recorded_at = now_unix_ms();
        let mut entries = Vec::new();
        let mut plans = Vec::with_capacity(batch.len());
        for job in batch {
            let mut job_entries = Vec::new();
            let mut job_known: HashMap<String, crate::store::ExistingEntry> = HashMap::new();
            let plan = (|| {
                let mut appended = Vec::with_capacity(job.bodies.len());
                for body in &job.bodies {
                    let fingerprint = body
                        .fingerprint()
                        .map_err(|error| AppendError::Unavailable(error.into()))?;
                    let existing = known
                        .get(&body.event_id)
                        .or_else(|| job_known.get(&body.event_id));
                    if let Some(existing) = existing {
                        if existing.fingerprint != fingerprint {
                            return Err(AppendError::Conflict {
                                event_id: body.event_id.clone(),
                            });
                        }
                        appended.push(Appended {
                            event_id: body.event_id.clone(),
                            index: existing.index,
                            duplicate: true,
                            leaf_hash: existing.leaf_hash,
                        });
                        continue;
                    }
                    let index = next_index + job_entries.len() as u64;
                    let bytes = body
                        .clone()
                        .record(recorded_at)
                        .to_bytes()
                        .map_err(|error| AppendError::Unavailable(error.into()))?;
                    let leaf = leaf_hash(&bytes);
                    job_known.insert(
                        body.event_id.clone(),
                        crate::store::ExistingEntry {
                            index,
                            fingerprint: fingerprint.clone(),
                            leaf_hash: leaf,
                        },
                    );
                    job_entries.push(NewEntry {
                        index,
                        event_id: body.event_id.clone(),
                        fingerprint,
                        bytes,
                        leaf_hash: leaf,
                        recorded_at,
                        occurred_at: body.occurred_at_unix_ms,
                        organisation: body.organisation.clone(),
                        actor_organisation: body.actor.organisation.clone(),
                        actor_user_id: body.actor.user_id.clone(),
                        action: body.action.clone(),
                        legal_basis_id: body.purpose.legal_basis_id.clone(),
                        disclosure_id: body.disclosure_id.clone(),
                        person_refs: body.person_refs.clone(),
                    });
                    appended.push(Appended {
                        event_id: body.event_id.clone(),
                        index,
                        duplicate: false,
                        leaf_hash: leaf,
                    });
                }
                Ok(appended)
            })();
            if plan.is_ok() {
                // Later jobs in the batch see this job's events as already logged.
                next_index += job_entries.len() as u64;
                known.extend(job_known);
                entries.extend(job_entries);
            }
            plans.push(plan);
        }
        Ok((plans, entries))
    }

    /// Extends the tree, signs a checkpoint if one is due, and commits it all in one
    /// transaction; on failure the tree is cut back to what is durable.
    async fn write(&mut self, entries: Vec<NewEntry>) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let durable = self.shared.durable_size.load(Ordering::SeqCst);
        let new_size = durable + entries.len() as u64;
        let previous = self.current_checkpoint();
        let signed = {
            let mut tree = self.write_tree();
            for entry in &entries {
                tree.push(entry.leaf_hash);
            }
            if self.checkpoint_due() {
                let root = tree.root();
                match check_consistent(&tree, &previous, new_size, &root) {
                    Ok(()) => Some(sign(&self.config.signer, new_size, root)),
                    Err(error) => {
                        tree.truncate(durable);
                        self.shared.healthy.store(false, Ordering::SeqCst);
                        tracing::error!(error = format!("{error:#}"), "refusing to sign");
                        return Err(error);
                    }
                }
            } else {
                None
            }
        };
        let signed = match signed.transpose() {
            Ok(signed) => signed,
            Err(error) => {
                self.write_tree().truncate(durable);
                return Err(error);
            }
        };
        match self.store.append(&entries, signed.as_ref()).await {
            Ok(()) => {
                self.shared.durable_size.store(new_size, Ordering::SeqCst);
                if let Some(checkpoint) = signed {
                    self.set_checkpoint(checkpoint);
                }
                tracing::debug!(
                    entries = entries.len(),
                    tree_size = new_size,
                    "audit batch committed"
                );
                Ok(())
            }
            Err(error) => {
                self.write_tree().truncate(durable);
                self.needs_resync = true;
                tracing::error!(
                    error = format!("{error:#}"),
                    "committing an audit batch failed"
                );
                Err(anyhow::Error::new(error).context("committing the batch"))
            }
        }
    }
}
