//! The log itself: a sequencer task per instance assigns indices and commits appends in
//! batches (group commit); readers prove against the in-memory Merkle tree, which only ever
//! holds what the database holds.
//!
//! Several instances may share one PostgreSQL database. Each batch is one transaction that
//! first takes the log's advisory lock (see [`crate::store::LogWriter`]); holding it, the
//! instance catches its tree up with what the others committed, dedupes against the database,
//! assigns the next indices, inserts, signs a checkpoint if due, and commits, which lets the
//! lock go. An instance that dies loses the lock with its connection, so the others carry on
//! at once: whatever it answered is committed, whatever it did not answer its callers retry.
//! Readers catch up when asked for more than the tree holds, and a tail does every
//! [`TAIL_INTERVAL`], so every instance serves current proofs and checkpoints. A SQLite file
//! has one instance.
//!
//! Invariants:
//! - Only the holder of the writer lock (the sequencer in a batch, or a reader catching up)
//!   changes the tree. An append is answered only after the batch holding it has committed; a
//!   batch that fails to commit is cut from the tree again, every append in it is told so, and
//!   the next catch-up reads whatever of it did reach the database.
//! - Proofs and checkpoints are served only for sizes up to the durable size.
//! - A checkpoint is signed only after the new tree has been proved consistent with the latest
//!   stored checkpoint, whoever signed it; one signed by another instance is adopted only if
//!   its signature verifies and this tree reproduces its root. At start the stored leaves must
//!   reproduce the latest checkpoint, or the log refuses to open.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointSigner, CheckpointVerifier};
use tryggdel_merkle::{Hash, MerkleTree, empty_root, leaf_hash, verify_consistency};
use tryggdel_storage::Backend;

use crate::entry::EntryBody;
use crate::store::{self, AuditStore, ExistingEntry, LogConnection, NewEntry, StoredCheckpoint};

/// The most events one commit takes.
const MAX_BATCH_EVENTS: usize = 4096;
/// Appends waiting for the sequencer before callers are pushed back.
const QUEUE_DEPTH: usize = 1024;
/// Leaf hashes read per query when loading or catching up.
const LEAF_PAGE: u32 = 100_000;
/// How often an instance on PostgreSQL reads what other instances committed, unasked.
pub const TAIL_INTERVAL: Duration = Duration::from_millis(250);
/// How long one of the log's steps on the database may take (a batch's transaction from asking
/// for the lock to its commit, a checkpoint's, a catch-up) before it is abandoned and its
/// connection closed. A batch takes milliseconds; this only ever ends one that has stalled.
pub const DEFAULT_WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// What the log needs to sign and pace checkpoints.
#[derive(Clone)]
pub struct LogConfig {
    pub signer: Arc<CheckpointSigner>,
    /// How often, at most, a checkpoint is signed while the log grows (zero: after every batch).
    pub checkpoint_interval: Duration,
    /// See [`DEFAULT_WRITE_DEADLINE`].
    pub write_deadline: Duration,
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

/// What one append job of a batch comes to.
type Plan = Result<Vec<Appended>, AppendError>;

struct AppendJob {
    /// Each body ready to be written, prepared by the caller's task rather than by the
    /// sequencer, whose work all appends wait for.
    bodies: Vec<Prepared>,
    /// When the log accepted the call: the `recorded_at` of its records.
    recorded_at: i64,
    reply: oneshot::Sender<Plan>,
}

/// A body with what only it decides: its fingerprint, and its record's bytes and leaf hash.
/// The sequencer adds the index, or answers with the entry already logged under the event id.
struct Prepared {
    body: EntryBody,
    fingerprint: String,
    bytes: Vec<u8>,
    leaf_hash: Hash,
}

impl Prepared {
    fn new(body: EntryBody, recorded_at: i64) -> Result<Prepared, serde_json::Error> {
        let fingerprint = body.fingerprint()?;
        let record = body.record(recorded_at);
        let bytes = record.to_bytes()?;
        let leaf_hash = leaf_hash(&bytes);
        Ok(Prepared {
            body: record.body,
            fingerprint,
            bytes,
            leaf_hash,
        })
    }
}

/// What only the holder of [`Shared::writer`] touches.
struct WriterState {
    /// When this instance last signed or adopted a checkpoint.
    last_checkpoint: tokio::time::Instant,
}

struct Shared {
    tree: RwLock<MerkleTree>,
    durable_size: AtomicU64,
    checkpoint: RwLock<StoredCheckpoint>,
    healthy: AtomicBool,
    /// Held by whoever changes the tree: the sequencer for a batch, a reader catching up.
    writer: tokio::sync::Mutex<WriterState>,
    verifier: CheckpointVerifier,
    /// See [`LogConfig::write_deadline`].
    write_deadline: Duration,
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
        Some(shared.checkpoint().signed_at)
    }
}

/// A handle on the log: cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    shared: Arc<Shared>,
    store: AuditStore,
    jobs: mpsc::Sender<AppendJob>,
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

/// Runs `step` (one of the log's steps on the database) for at most `deadline`. A step that
/// overruns is dropped where it waits, which rolls its transaction back by closing the
/// connection (see [`store::LogWriter`]), so a stalled connection cannot keep the log's lock
/// or the writer mutex for longer than that.
async fn within<T>(
    deadline: Duration,
    what: &str,
    step: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(deadline, step).await {
        Ok(result) => result,
        Err(_) => Err(anyhow!(
            "{what} did not finish within {} ms and was abandoned",
            deadline.as_millis()
        )),
    }
}

impl Shared {
    fn checkpoint(&self) -> StoredCheckpoint {
        match self.checkpoint.read() {
            Ok(checkpoint) => checkpoint.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_checkpoint(&self, state: &mut WriterState, checkpoint: StoredCheckpoint) {
        match self.checkpoint.write() {
            Ok(mut current) => *current = checkpoint,
            Err(poisoned) => *poisoned.into_inner() = checkpoint,
        }
        state.last_checkpoint = tokio::time::Instant::now();
    }

    fn durable(&self) -> u64 {
        self.durable_size.load(Ordering::SeqCst)
    }

    fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    fn read_tree(&self) -> std::sync::RwLockReadGuard<'_, MerkleTree> {
        match self.tree.read() {
            Ok(tree) => tree,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn write_tree(&self) -> std::sync::RwLockWriteGuard<'_, MerkleTree> {
        match self.tree.write() {
            Ok(tree) => tree,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Reads the entries committed beyond the tree (by any instance) into it; `true` if it
    /// grew. Only with the writer lock held, when the tree holds exactly the durable entries.
    async fn catch_up_entries(
        &self,
        _state: &mut WriterState,
        connection: &mut LogConnection<'_>,
    ) -> anyhow::Result<bool> {
        let start = self.durable();
        loop {
            let from = self.durable();
            let leaves = store::leaves_from(connection, from, LEAF_PAGE)
                .await
                .with_context(|| format!("reading the log from entry {from}"))?;
            let complete = leaves.len() < LEAF_PAGE as usize;
            {
                let mut tree = self.write_tree();
                if tree.len() != from {
                    bail!(
                        "the tree holds {} entries where {from} are durable",
                        tree.len()
                    );
                }
                for leaf in leaves {
                    tree.push(leaf);
                }
                self.durable_size.store(tree.len(), Ordering::SeqCst);
            }
            if complete {
                break;
            }
        }
        Ok(self.durable() > start)
    }

    /// Adopts the latest stored checkpoint if it is newer than the one held: its note must
    /// verify with this log's key and state the stored size and root, and the tree must
    /// reproduce that root. A checkpoint beyond the tree waits for the next catch-up.
    async fn catch_up_checkpoint(
        &self,
        state: &mut WriterState,
        connection: &mut LogConnection<'_>,
    ) -> anyhow::Result<()> {
        let Some(latest) = store::latest_checkpoint(connection)
            .await
            .context("reading the latest checkpoint")?
        else {
            return Ok(());
        };
        let current = self.checkpoint();
        if latest.tree_size < current.tree_size {
            self.healthy.store(false, Ordering::SeqCst);
            bail!(
                "the latest stored checkpoint has size {} but one of size {} was seen: \
                 checkpoints were removed outside the service",
                latest.tree_size,
                current.tree_size
            );
        }
        if latest.tree_size == current.tree_size && latest.note == current.note {
            return Ok(());
        }
        if latest.tree_size > self.durable() {
            return Ok(());
        }
        if let Err(error) = self.check_checkpoint(&latest) {
            self.healthy.store(false, Ordering::SeqCst);
            return Err(error);
        }
        self.set_checkpoint(state, latest);
        Ok(())
    }

    /// Whether `checkpoint` is one this log signed over exactly the tree it holds.
    fn check_checkpoint(&self, checkpoint: &StoredCheckpoint) -> anyhow::Result<()> {
        let signed = self.verifier.verify(&checkpoint.note).map_err(|error| {
            anyhow!(
                "the latest checkpoint (size {}) does not verify with this log's key: {error}",
                checkpoint.tree_size
            )
        })?;
        if signed.size() != checkpoint.tree_size || *signed.root() != checkpoint.root {
            bail!(
                "the checkpoint stored at size {} signs size {} and another root",
                checkpoint.tree_size,
                signed.size()
            );
        }
        let tree = self.read_tree();
        if checkpoint.tree_size > tree.len() {
            bail!(
                "the latest checkpoint covers {} entries but only {} are stored: \
                 entries were removed outside the service",
                checkpoint.tree_size,
                tree.len()
            );
        }
        if tree.root_at(checkpoint.tree_size).context("root")? != checkpoint.root {
            bail!(
                "the stored entries do not reproduce the signed root at size {}: \
                 the log was changed outside the service",
                checkpoint.tree_size
            );
        }
        Ok(())
    }
}

impl AuditLog {
    /// Opens the log: loads the tree, checks it against the latest signed checkpoint, signs one
    /// for the current size if needed, and starts the sequencer (and, on PostgreSQL, the tail).
    pub async fn open(store: AuditStore, config: LogConfig) -> anyhow::Result<AuditLog> {
        let verifier = config.signer.verifier();
        let shared = Arc::new(Shared {
            tree: RwLock::new(MerkleTree::new()),
            durable_size: AtomicU64::new(0),
            checkpoint: RwLock::new(StoredCheckpoint {
                tree_size: 0,
                root: empty_root(),
                note: String::new(),
                signed_at: 0,
            }),
            healthy: AtomicBool::new(true),
            writer: tokio::sync::Mutex::new(WriterState {
                last_checkpoint: tokio::time::Instant::now(),
            }),
            verifier,
            write_deadline: config.write_deadline,
        });
        {
            let mut state = shared.writer.lock().await;
            // The bulk of the log is read without the log's lock, so other instances keep
            // appending meanwhile; the rest is read under it.
            let mut connection = store.connection().await.context("loading the log")?;
            shared
                .catch_up_entries(&mut state, &mut LogConnection::Any(connection.get()?))
                .await
                .context("loading the log")?;
            connection.release();
            let mut writer = store.begin_write().await.context("loading the log")?;
            shared
                .catch_up_entries(&mut state, &mut writer.connection()?)
                .await
                .context("loading the log")?;
            let size = shared.durable();
            let latest = store::latest_checkpoint(&mut writer.connection()?)
                .await
                .context("loading checkpoints")?;
            let next = match latest {
                Some(latest) => {
                    shared.check_checkpoint(&latest)?;
                    let root = shared.read_tree().root();
                    let next = if size > latest.tree_size {
                        check_consistent(&shared.read_tree(), &latest, size, &root)?;
                        Some(sign(&config.signer, size, root)?)
                    } else {
                        None
                    };
                    shared.set_checkpoint(&mut state, latest);
                    next
                }
                None => Some(sign(&config.signer, size, shared.read_tree().root())?),
            };
            if let Some(next) = next {
                writer
                    .insert_checkpoint(&next)
                    .await
                    .context("storing a checkpoint")?;
                writer.commit().await.context("storing a checkpoint")?;
                shared.set_checkpoint(&mut state, next);
            }
        }
        tracing::info!(
            tree_size = shared.durable(),
            origin = %config.signer.name(),
            "audit log opened"
        );
        let (jobs, receiver) = mpsc::channel(QUEUE_DEPTH);
        if store.database().backend() == Backend::Postgres {
            tokio::spawn(tail(Arc::downgrade(&shared), store.clone()));
        }
        let sequencer = Sequencer {
            shared: shared.clone(),
            store: store.clone(),
            config,
        };
        tokio::spawn(sequencer.run(receiver));
        Ok(AuditLog {
            shared,
            store,
            jobs,
        })
    }

    pub fn store(&self) -> &AuditStore {
        &self.store
    }

    /// The key and origin checkpoints verify under.
    pub fn verifier(&self) -> &CheckpointVerifier {
        &self.shared.verifier
    }

    /// Whether the sequencer is running and has never found the tree inconsistent.
    pub fn is_healthy(&self) -> bool {
        self.shared.is_healthy()
    }

    /// Appends `bodies` in order; answers once they are durable.
    pub async fn append(&self, bodies: Vec<EntryBody>) -> Result<Vec<Appended>, AppendError> {
        let recorded_at = now_unix_ms();
        let bodies = bodies
            .into_iter()
            .map(|body| Prepared::new(body, recorded_at))
            .collect::<Result<Vec<_>, serde_json::Error>>()
            .map_err(|error| AppendError::Unavailable(error.into()))?;
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(AppendJob {
                bodies,
                recorded_at,
                reply,
            })
            .await
            .map_err(|_| AppendError::Stopped)?;
        answer.await.map_err(|_| AppendError::Stopped)?
    }

    /// A view of the log's size and latest checkpoint that does not keep the log alive (for
    /// metrics callbacks, which outlive the service).
    pub fn probe(&self) -> LogProbe {
        LogProbe(Arc::downgrade(&self.shared))
    }

    /// Entries that are durable (and provable) as far as this instance has read.
    pub fn durable_size(&self) -> u64 {
        self.shared.durable()
    }

    /// The durable size once it is at least `size`, if the database has that many entries:
    /// reads what other instances committed when the tree holds fewer.
    pub async fn durable_size_at_least(&self, size: u64) -> anyhow::Result<u64> {
        if self.shared.durable() < size {
            self.catch_up().await?;
        }
        Ok(self.shared.durable())
    }

    /// Reads into the tree whatever the database holds beyond it, and the latest checkpoint.
    pub async fn catch_up(&self) -> anyhow::Result<()> {
        catch_up(&self.shared, &self.store).await
    }

    /// The latest signed checkpoint.
    pub fn latest_checkpoint(&self) -> StoredCheckpoint {
        self.shared.checkpoint()
    }

    /// RFC 9162 inclusion proof of `index` in the tree of `size` (both checked by the caller
    /// against [`Self::durable_size`]).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> anyhow::Result<(Hash, Vec<Hash>)> {
        let tree = self.shared.read_tree();
        let leaf = tree.leaf_hash(index)?;
        let proof = tree.inclusion_proof(index, size)?;
        Ok((leaf, proof))
    }

    /// RFC 9162 consistency proof from `first` to `second` entries.
    pub fn consistency_proof(&self, first: u64, second: u64) -> anyhow::Result<Vec<Hash>> {
        Ok(self.shared.read_tree().consistency_proof(first, second)?)
    }
}

async fn catch_up(shared: &Shared, store: &AuditStore) -> anyhow::Result<()> {
    let mut state = shared.writer.lock().await;
    within(shared.write_deadline, "reading the shared log", async {
        let mut connection = store.connection().await.context("reading the log")?;
        let mut reads = LogConnection::Any(connection.get()?);
        shared.catch_up_entries(&mut state, &mut reads).await?;
        shared.catch_up_checkpoint(&mut state, &mut reads).await?;
        connection.release();
        Ok(())
    })
    .await
}

/// Reads what other instances commit, every [`TAIL_INTERVAL`], until the log is dropped or its
/// database closed.
async fn tail(shared: std::sync::Weak<Shared>, store: AuditStore) {
    let mut ticker = tokio::time::interval(TAIL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(shared) = shared.upgrade() else {
            break;
        };
        if store.database().pool().is_closed() {
            break;
        }
        if let Err(error) = catch_up(&shared, &store).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "reading the shared log failed"
            );
        }
    }
}

struct Sequencer {
    shared: Arc<Shared>,
    store: AuditStore,
    config: LogConfig,
}

impl Sequencer {
    async fn run(self, mut jobs: mpsc::Receiver<AppendJob>) {
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
                    // The service closes the database when it stops: nothing left to sign.
                    if self.store.database().pool().is_closed() {
                        break;
                    }
                    if let Err(error) = self.checkpoint_if_due().await {
                        tracing::error!(error = format!("{error:#}"), "signing a checkpoint failed");
                    }
                }
            }
        }
        tracing::info!("audit sequencer stopped");
    }

    fn checkpoint_due(&self, state: &WriterState) -> bool {
        state.last_checkpoint.elapsed() >= self.config.checkpoint_interval
    }

    /// Signs the durable tree if it grew since the latest checkpoint and the interval passed.
    async fn checkpoint_if_due(&self) -> anyhow::Result<()> {
        if !self.shared.is_healthy() {
            return Ok(());
        }
        let mut state = self.shared.writer.lock().await;
        if !self.checkpoint_due(&state)
            || self.shared.durable() == self.shared.checkpoint().tree_size
        {
            return Ok(());
        }
        within(
            self.shared.write_deadline,
            "signing a checkpoint",
            self.sign_checkpoint(&mut state),
        )
        .await
    }

    /// [`Self::checkpoint_if_due`] under the log's lock.
    async fn sign_checkpoint(&self, state: &mut WriterState) -> anyhow::Result<()> {
        let mut writer = self.store.begin_write().await?;
        self.shared
            .catch_up_entries(state, &mut writer.connection()?)
            .await?;
        self.shared
            .catch_up_checkpoint(state, &mut writer.connection()?)
            .await?;
        let size = self.shared.durable();
        let previous = self.shared.checkpoint();
        if size == previous.tree_size || !self.checkpoint_due(state) {
            writer.rollback().await?;
            return Ok(());
        }
        let next = {
            let tree = self.shared.read_tree();
            let root = tree.root_at(size)?;
            check_consistent(&tree, &previous, size, &root)?;
            sign(&self.config.signer, size, root)?
        };
        writer.insert_checkpoint(&next).await?;
        writer.commit().await?;
        self.shared.set_checkpoint(state, next);
        Ok(())
    }

    async fn commit(&self, batch: Vec<AppendJob>) {
        if !self.shared.is_healthy() {
            for job in batch {
                let _ = job.reply.send(Err(AppendError::Unavailable(anyhow!(
                    "the log found its tree inconsistent and stopped taking appends"
                ))));
            }
            return;
        }
        let mut state = self.shared.writer.lock().await;
        let written = within(
            self.shared.write_deadline,
            "the batch's transaction",
            self.write(&mut state, &batch),
        )
        .await;
        if written.is_err() {
            // Abandoned at its deadline, a batch may have extended the tree before its commit:
            // whatever of it reached the database, the next catch-up reads.
            let durable = self.shared.durable();
            self.shared.write_tree().truncate(durable);
        }
        match written {
            Ok(plans) => {
                for (job, plan) in batch.into_iter().zip(plans) {
                    let _ = job.reply.send(plan);
                }
            }
            Err(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "committing an audit batch failed"
                );
                for job in batch {
                    let _ = job
                        .reply
                        .send(Err(AppendError::Unavailable(anyhow!("{error:#}"))));
                }
            }
        }
    }

    /// One batch under the log's lock: catches up, dedupes against the database, extends the
    /// tree, signs a checkpoint if one is due, and commits it all in one transaction. If the
    /// commit fails the tree is cut back to what is durable, and the appends that were new are
    /// answered with the failure.
    async fn write(
        &self,
        state: &mut WriterState,
        batch: &[AppendJob],
    ) -> anyhow::Result<Vec<Plan>> {
        let mut writer = self
            .store
            .begin_write()
            .await
            .context("taking the log's lock")?;
        let grew = self
            .shared
            .catch_up_entries(state, &mut writer.connection()?)
            .await?;
        let due = self.checkpoint_due(state);
        if grew || due {
            self.shared
                .catch_up_checkpoint(state, &mut writer.connection()?)
                .await?;
        }
        let ids: Vec<String> = batch
            .iter()
            .flat_map(|job| {
                job.bodies
                    .iter()
                    .map(|prepared| prepared.body.event_id.clone())
            })
            .collect();
        let known = store::existing(&mut writer.connection()?, &ids)
            .await
            .context("looking up the batch's event ids")?;
        let durable = self.shared.durable();
        let (plans, entries) = Self::plan(batch, known, durable);
        if entries.is_empty() {
            // Nothing to write: the answers stand whether or not the rollback is heard (a
            // writer that fails to end is closed instead).
            if let Err(error) = writer.rollback().await {
                tracing::warn!(error = %error, "ending a read-only audit batch failed");
            }
            return Ok(plans);
        }
        let new_size = durable + entries.len() as u64;
        let previous = self.shared.checkpoint();
        let signed = {
            let mut tree = self.shared.write_tree();
            for entry in &entries {
                tree.push(entry.leaf_hash);
            }
            if self.checkpoint_due(state) {
                let root = tree.root();
                let signed = check_consistent(&tree, &previous, new_size, &root)
                    .map_err(|error| {
                        self.shared.healthy.store(false, Ordering::SeqCst);
                        tracing::error!(error = format!("{error:#}"), "refusing to sign");
                        error
                    })
                    .and_then(|()| sign(&self.config.signer, new_size, root));
                match signed {
                    Ok(signed) => Some(signed),
                    Err(error) => {
                        tree.truncate(durable);
                        return Err(error);
                    }
                }
            } else {
                None
            }
        };
        let written = async {
            writer.insert_entries(&entries).await?;
            if let Some(checkpoint) = &signed {
                writer.insert_checkpoint(checkpoint).await?;
            }
            writer.commit().await
        }
        .await;
        match written {
            Ok(()) => {
                self.shared.durable_size.store(new_size, Ordering::SeqCst);
                if let Some(checkpoint) = signed {
                    self.shared.set_checkpoint(state, checkpoint);
                }
                tracing::debug!(
                    entries = entries.len(),
                    tree_size = new_size,
                    "audit batch committed"
                );
                Ok(plans)
            }
            Err(error) => {
                // Whether the commit reached the database is unknown: the next catch-up
                // (under the lock, before the next batch) reads whatever did.
                self.shared.write_tree().truncate(durable);
                tracing::error!(
                    error = format!("{error:#}"),
                    "committing an audit batch failed"
                );
                Ok(plans
                    .into_iter()
                    .map(|plan| {
                        plan.and_then(|_| {
                            Err(AppendError::Unavailable(anyhow!(
                                "committing the batch: {error:#}"
                            )))
                        })
                    })
                    .collect())
            }
        }
    }

    /// Decides, job by job, which events are new (and their indices from `next_index` on) and
    /// which are repeats of the `known` entries or of earlier jobs of the batch.
    fn plan(
        batch: &[AppendJob],
        mut known: HashMap<String, ExistingEntry>,
        mut next_index: u64,
    ) -> (Vec<Plan>, Vec<NewEntry>) {
        let mut entries = Vec::new();
        let mut plans = Vec::with_capacity(batch.len());
        for job in batch {
            let mut job_entries = Vec::new();
            let mut job_known: HashMap<String, ExistingEntry> = HashMap::new();
            let plan = (|| {
                let mut appended = Vec::with_capacity(job.bodies.len());
                for prepared in &job.bodies {
                    let body = &prepared.body;
                    let fingerprint = prepared.fingerprint.clone();
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
                    let leaf = prepared.leaf_hash;
                    job_known.insert(
                        body.event_id.clone(),
                        ExistingEntry {
                            index,
                            fingerprint: fingerprint.clone(),
                            leaf_hash: leaf,
                        },
                    );
                    job_entries.push(NewEntry {
                        index,
                        event_id: body.event_id.clone(),
                        fingerprint,
                        bytes: prepared.bytes.clone(),
                        leaf_hash: leaf,
                        recorded_at: job.recorded_at,
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
        (plans, entries)
    }
}
