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
//! This module holds the handle ([`AuditLog`]), the state its parts share (`Shared`), the
//! configuration and the errors; the batch writer is in `sequencer`, reading what the
//! database holds beyond the tree in `catch_up`, and signing and adopting checkpoints in
//! `checkpoints`.
//!
//! Invariants:
//! - While the database is down (its probe's finding) the log's background work (the tail,
//!   checkpoints between batches) stands aside and appends are refused at once, so nothing
//!   waits on a database that cannot answer; no caller waits longer than the write deadline.
//! - Only the holder of the writer lock (`Shared::writer`: the sequencer in a batch, or a
//!   reader catching up) changes the tree, and outside a step of the holder the tree holds
//!   exactly the durable entries.
//! - Proofs and checkpoints are served only for sizes up to the durable size.

mod catch_up;
mod checkpoints;
mod sequencer;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::sync::{mpsc, oneshot};
use tryggdel_merkle::checkpoint::{CheckpointSigner, CheckpointVerifier};
use tryggdel_merkle::{Hash, MerkleTree, empty_root, leaf_hash};
use tryggdel_service_kit::now_unix_ms;
use tryggdel_storage::Backend;

use std::collections::HashMap;

use crate::entry::{EntryBody, KeyScope};
use crate::store::{AuditStore, LogConnection, PersonalKey, SealedOpening, StoredCheckpoint};

pub use catch_up::TAIL_INTERVAL;

/// Appends waiting for the sequencer before callers are pushed back.
const QUEUE_DEPTH: usize = 1024;
/// What the log needs to sign and pace checkpoints.
#[derive(Clone)]
pub struct LogConfig {
    pub signer: Arc<CheckpointSigner>,
    /// How often, at most, a checkpoint is signed while the log grows (zero: after every batch).
    pub checkpoint_interval: Duration,
    /// How long one of the log's steps on the database may take (a batch's transaction from
    /// asking for the lock to its commit, a checkpoint's, a catch-up) before it is abandoned and
    /// its connection closed, and how long a caller waits for its append. A batch takes
    /// milliseconds; this only ever ends one that has stalled. The service runs with its
    /// database deadline (`[database] deadline_ms`, [`tryggdel_storage::DEFAULT_DEADLINE`]).
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
    /// The log's database is down: nothing was queued.
    #[error("the audit log's database is unavailable")]
    DatabaseDown,
    /// No answer within the deadline: the entries may or may not be logged.
    #[error("the audit log did not commit within {} ms", .0.as_millis())]
    NotWithinDeadline(Duration),
}

/// See [`AuditLog::probe`]: answers None once the log has stopped.
#[derive(Clone)]
pub struct LogProbe(std::sync::Weak<Shared>);

/// A handle on the log: cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    shared: Arc<Shared>,
    store: AuditStore,
    jobs: mpsc::Sender<AppendJob>,
}

/// One call's appends, on their way to the sequencer.
struct AppendJob {
    /// Each body ready to be written, prepared by the caller's task rather than by the
    /// sequencer, whose work all appends wait for.
    bodies: Vec<Prepared>,
    /// When the log accepted the call: the `recorded_at` of its records.
    recorded_at: i64,
    reply: oneshot::Sender<Result<Vec<Appended>, AppendError>>,
}

/// A body with what only it decides: its fingerprint, and its record's bytes and leaf hash.
/// The sequencer adds the index, or answers with the entry already logged under the event id.
struct Prepared {
    body: EntryBody,
    fingerprint: String,
    bytes: Vec<u8>,
    leaf_hash: Hash,
    /// Format 2: the record's openings, sealed.
    openings: Vec<SealedOpening>,
}

/// What only the holder of [`Shared::writer`] touches.
struct WriterState {
    /// When this instance last signed or adopted a checkpoint.
    last_checkpoint: tokio::time::Instant,
}

/// What the handles, the sequencer and the tail share.
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
    /// The size of the latest checkpoint, for whoever waits for a new one (witnessing).
    signed: tokio::sync::watch::Sender<u64>,
}

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
            signed: tokio::sync::watch::Sender::new(0),
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
            shared
                .open_checkpoints(&mut state, writer, &config.signer)
                .await?;
        }
        tracing::info!(
            tree_size = shared.durable(),
            origin = %config.signer.name(),
            "audit log opened"
        );
        let (jobs, receiver) = mpsc::channel(QUEUE_DEPTH);
        if store.database().backend() == Backend::Postgres {
            tokio::spawn(catch_up::tail(Arc::downgrade(&shared), store.clone()));
        }
        let sequencer = sequencer::Sequencer::new(shared.clone(), store.clone(), config);
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
        if !self.store.database().health().is_up() {
            return Err(AppendError::DatabaseDown);
        }
        // The keys of the bodies' personal data, created on first use (outside the log's lock).
        let scopes: Vec<KeyScope> = bodies.iter().flat_map(EntryBody::key_scopes).collect();
        let keys = if scopes.is_empty() {
            HashMap::new()
        } else {
            within(
                self.shared.write_deadline,
                "reading the entries' keys",
                async {
                    self.store
                        .personal_keys(&scopes)
                        .await
                        .context("reading the personal data's keys")
                },
            )
            .await
            .map_err(AppendError::Unavailable)?
        };
        let bodies = bodies
            .into_iter()
            .map(|body| Prepared::new(body, recorded_at, &keys))
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(AppendError::Unavailable)?;
        let (reply, answer) = oneshot::channel();
        // The caller waits no longer than a step of the log may take: a batch still in flight
        // at that point may yet commit, and a retry of the same events finds them logged.
        let answered = tokio::time::timeout(self.shared.write_deadline, async {
            self.jobs
                .send(AppendJob {
                    bodies,
                    recorded_at,
                    reply,
                })
                .await
                .map_err(|_| AppendError::Stopped)?;
            answer.await.map_err(|_| AppendError::Stopped)?
        });
        match answered.await {
            Ok(appended) => appended,
            Err(_) => Err(AppendError::NotWithinDeadline(self.shared.write_deadline)),
        }
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

    /// Reads into the tree whatever the database holds beyond it, and the latest checkpoint;
    /// fails at once while the database is down.
    pub async fn catch_up(&self) -> anyhow::Result<()> {
        if !self.store.database().health().is_up() {
            anyhow::bail!("the audit log's database is unavailable");
        }
        catch_up::catch_up(&self.shared, &self.store).await
    }

    /// The latest signed checkpoint.
    pub fn latest_checkpoint(&self) -> StoredCheckpoint {
        self.shared.checkpoint()
    }

    /// Changes whenever a checkpoint is signed or adopted (its value: the tree size).
    pub fn watch_checkpoints(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.signed.subscribe()
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

/// The stored row of `body` at `index`, recorded at `recorded_at`, exactly as the sequencer
/// writes it: format 2, its personal data sealed under `keys`, which must hold a key for each
/// of [`EntryBody::key_scopes`] ([`AuditStore::personal_keys`] makes them). For loading a log
/// in bulk.
pub fn sealed_entry(
    body: EntryBody,
    index: u64,
    recorded_at: i64,
    keys: &HashMap<KeyScope, PersonalKey>,
) -> anyhow::Result<crate::store::NewEntry> {
    let prepared = Prepared::new(body, recorded_at, keys)?;
    Ok(prepared.body.new_entry(
        index,
        prepared.fingerprint,
        prepared.bytes,
        prepared.leaf_hash,
        recorded_at,
        prepared.openings,
    ))
}

impl Prepared {
    /// The format-2 record of `body`, its personal data sealed under `keys`.
    fn new(
        body: EntryBody,
        recorded_at: i64,
        keys: &HashMap<KeyScope, PersonalKey>,
    ) -> anyhow::Result<Prepared> {
        let fingerprint = body.fingerprint()?;
        let (record, openings) = body.split_record(
            recorded_at,
            |scope| keys.get(scope).map(|key| key.key_id.clone()),
            || {
                let mut salt = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
                salt
            },
        )?;
        // This entry's own keys by id (a batch's `keys` may hold many thousands).
        let own: HashMap<&str, &PersonalKey> = body
            .key_scopes()
            .iter()
            .filter_map(|scope| keys.get(scope))
            .map(|key| (key.key_id.as_str(), key))
            .collect();
        let sealed = openings
            .iter()
            .map(|opening| {
                own.get(opening.key.as_str())
                    .ok_or_else(|| anyhow!("no key for an opening"))
                    .and_then(|key| Ok(key.seal(&body.event_id, opening)?))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let bytes = record.to_bytes()?;
        let leaf_hash = leaf_hash(&bytes);
        Ok(Prepared {
            body,
            fingerprint,
            bytes,
            leaf_hash,
            openings: sealed,
        })
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
        let tree_size = checkpoint.tree_size;
        match self.checkpoint.write() {
            Ok(mut current) => *current = checkpoint,
            Err(poisoned) => *poisoned.into_inner() = checkpoint,
        }
        self.signed.send_replace(tree_size);
        state.last_checkpoint = tokio::time::Instant::now();
    }

    fn durable(&self) -> u64 {
        self.durable_size.load(Ordering::SeqCst)
    }

    fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    /// Stops the log taking appends: it found its tree or the stored checkpoints inconsistent.
    fn stop_appends(&self) {
        self.healthy.store(false, Ordering::SeqCst);
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
}

/// Runs `step` (one of the log's steps on the database) for at most `deadline`. A step that
/// overruns is dropped where it waits, which rolls its transaction back by closing the
/// connection (see [`crate::store::LogWriter`]), so a stalled connection cannot keep the log's
/// lock or the writer mutex for longer than that.
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
