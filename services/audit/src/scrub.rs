//! The integrity scrub: the service re-hashes the stored entries in the background and finds an
//! entry whose bytes were changed in the database (or whose stored leaf hash was) before a
//! reader is served it, instead of only when someone runs the offline verifier.
//!
//! A pass reads the entries `0..pass_end` (`pass_end`: the durable size when the pass began)
//! in batches, in index order. Each entry's bytes are hashed as stored (RFC 9162 leaf hash) and
//! compared with the leaf the log's in-memory tree holds for that index, with the leaf hash
//! stored beside the bytes, and, for an entry covered by the latest signed checkpoint, proved
//! into that checkpoint's root. Changing an entry together with its stored leaf hash is
//! therefore found too: the tree was proved against the signed root when the log opened, and
//! the signed root cannot be forged without the log's key.
//!
//! Where a pass stands is kept in the database (`audit_scrub_progress`), so a restarted service
//! goes on from where the last scrub ended. At start the service scrubs batch after batch until
//! the pass in progress is complete; after that one batch every interval.
//!
//! Invariants:
//! - An entry found changed is *quarantined* (`audit_quarantine`): an ERROR line naming its
//!   index, `tryggdel.audit.integrity_failures`, and from then on GetInclusionProof, Query and
//!   Export refuse it with FAILED_PRECONDITION naming the index. Nothing in the service removes
//!   a quarantine mark; whoever investigated the entry does, in the database.
//! - The scrub only reads entries and writes its progress and quarantine marks; it never
//!   changes an entry, the tree or a checkpoint.
//! - While the database is down the scrub stands aside, as the log's other background work does.
//! - Several instances on one PostgreSQL database may scrub side by side; they share the
//!   progress row (the last one written wins) and a mark is written once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::metrics::Counter;
use sqlx::Row as _;
use tokio::sync::watch;
use tryggdel_merkle::{Hash, leaf_hash, verify_inclusion};
use tryggdel_service_kit::{Background, ServiceError, now_unix_ms};

use crate::log::AuditLog;
use crate::store::{StoredCheckpoint, StoredEntry};

/// How often a batch is scrubbed once the pass begun at start is complete.
pub const DEFAULT_SCRUB_INTERVAL: Duration = Duration::from_secs(10);
/// Entries per batch.
pub const DEFAULT_SCRUB_BATCH: u32 = 10_000;

/// How often, and how much at a time, the stored entries are scrubbed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScrubSettings {
    /// The pause between batches once the pass begun at start is complete.
    pub interval: Duration,
    /// Entries read and hashed per batch (at least 1).
    pub batch: u32,
}

impl Default for ScrubSettings {
    fn default() -> ScrubSettings {
        ScrubSettings {
            interval: DEFAULT_SCRUB_INTERVAL,
            batch: DEFAULT_SCRUB_BATCH,
        }
    }
}

/// What is wrong with a stored entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Its bytes no longer hash to the leaf the log holds at its index.
    BytesChanged,
    /// Its bytes hash to the log's leaf, but the leaf hash stored beside them was changed.
    StoredLeafChanged,
    /// Its bytes and the log's leaf agree, but do not prove into the signed checkpoint's root.
    NotInSignedTree { tree_size: u64 },
    /// Format 2: one of its stored openings (personal data) does not open under its key or
    /// does not match the leaf's commitment to it.
    OpeningChanged,
}

/// Where the scrub stands: the next entry to read, the end of the pass in progress, and the
/// passes completed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrubProgress {
    pub next_index: u64,
    pub pass_end: u64,
    pub passes: u64,
}

/// What one batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// The entries read, `from..until`.
    pub from: u64,
    pub until: u64,
    /// Entries found changed in this batch (whether or not already quarantined).
    pub findings: Vec<(u64, Finding)>,
    /// Whether this batch ended a pass.
    pub pass_complete: bool,
}

/// An entry the scrub quarantined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    pub index: u64,
    pub found_at: i64,
    pub finding: String,
}

/// The scrub of one log and the quarantine readers consult: cheap to clone.
#[derive(Clone)]
pub struct Integrity {
    inner: Arc<Inner>,
}

struct Inner {
    log: AuditLog,
    /// Entries this instance quarantined since it started (the metric's value here).
    failures: AtomicU64,
    counter: Counter<u64>,
}

/// The scrub running in the background; stopped with the service.
pub struct Scrubbing {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

const LOAD_PROGRESS: &str =
    "SELECT next_index, pass_end, passes FROM audit_scrub_progress WHERE id = 1";
const SAVE_PROGRESS: &str = "INSERT INTO audit_scrub_progress \
     (id, next_index, pass_end, passes, updated_at) VALUES (1, $1, $2, $3, $4) \
     ON CONFLICT (id) DO UPDATE SET next_index = excluded.next_index, \
     pass_end = excluded.pass_end, passes = excluded.passes, updated_at = excluded.updated_at";
const QUARANTINE: &str = "INSERT INTO audit_quarantine (idx, found_at, finding) \
     VALUES ($1, $2, $3) ON CONFLICT (idx) DO NOTHING";
const FIRST_QUARANTINED: &str = "SELECT idx FROM audit_quarantine \
     WHERE idx >= $1 AND idx < $2 ORDER BY idx LIMIT 1";
const QUARANTINED_BETWEEN: &str =
    "SELECT idx FROM audit_quarantine WHERE idx >= $1 AND idx <= $2 ORDER BY idx";
const ALL_QUARANTINED: &str = "SELECT idx, found_at, finding FROM audit_quarantine ORDER BY idx";

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::BytesChanged => {
                f.write_str("its stored bytes no longer hash to its leaf in the log")
            }
            Finding::StoredLeafChanged => {
                f.write_str("the leaf hash stored with it is not its leaf in the log")
            }
            Finding::NotInSignedTree { tree_size } => write!(
                f,
                "it does not prove into the signed checkpoint of size {tree_size}"
            ),
            Finding::OpeningChanged => f.write_str(
                "personal data stored for it does not match the leaf's commitment to that data",
            ),
        }
    }
}

impl ScrubProgress {
    /// Where the next batch starts and its pass ends, with `durable` entries in the log: the
    /// pass in progress goes on; after a complete one a new pass starts from 0 up to the
    /// durable size.
    pub fn next_batch(self, durable: u64) -> ScrubProgress {
        let mut progress = self;
        if progress.next_index >= progress.pass_end {
            progress = ScrubProgress {
                next_index: 0,
                pass_end: durable,
                passes: progress.passes,
            };
        }
        // A pass never reads beyond what this instance holds durable: a pass end written by
        // another instance that has read further is cut to it.
        progress.pass_end = progress.pass_end.min(durable.max(progress.next_index));
        progress
    }

    /// The end (exclusive) of the batch starting at `next_index`.
    pub fn batch_end(self, batch: u32) -> u64 {
        self.pass_end
            .min(self.next_index.saturating_add(u64::from(batch.max(1))))
    }
}

/// Examines one stored entry: `tree_leaf` is the leaf the log holds at its index, `signed`
/// the latest signed checkpoint with the entry's inclusion proof in it when it covers the entry.
pub fn examine(
    entry: &StoredEntry,
    tree_leaf: &Hash,
    signed: Option<(&StoredCheckpoint, &[Hash])>,
) -> Option<Finding> {
    let computed = leaf_hash(&entry.bytes);
    if computed != *tree_leaf {
        return Some(Finding::BytesChanged);
    }
    if entry.leaf_hash != *tree_leaf {
        return Some(Finding::StoredLeafChanged);
    }
    if let Some((checkpoint, proof)) = signed
        && verify_inclusion(
            &computed,
            entry.index,
            checkpoint.tree_size,
            proof,
            &checkpoint.root,
        )
        .is_err()
    {
        return Some(Finding::NotInSignedTree {
            tree_size: checkpoint.tree_size,
        });
    }
    None
}

/// The refusal of a quarantined entry to a reader.
pub fn quarantined_error(index: u64) -> ServiceError {
    ServiceError::FailedPrecondition(format!(
        "entry {index} of the audit log failed the integrity check (its stored bytes no longer \
         match the signed log) and is quarantined: it is not served until the operators have \
         investigated it"
    ))
}

impl Integrity {
    pub fn new(log: AuditLog) -> Integrity {
        let counter = tryggdel_service_kit::metrics::meter()
            .u64_counter("tryggdel.audit.integrity_failures")
            .with_unit("{entry}")
            .with_description(
                "Audit entries the integrity scrub found changed in the database and quarantined",
            )
            .build();
        Integrity {
            inner: Arc::new(Inner {
                log,
                failures: AtomicU64::new(0),
                counter,
            }),
        }
    }

    /// Entries this instance has quarantined since it started.
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::SeqCst)
    }

    /// Where the scrub stands (all zero before the first batch).
    pub async fn progress(&self) -> anyhow::Result<ScrubProgress> {
        let row = sqlx::query(LOAD_PROGRESS)
            .fetch_optional(self.pool())
            .await
            .context("reading the scrub's progress")?;
        let Some(row) = row else {
            return Ok(ScrubProgress::default());
        };
        Ok(ScrubProgress {
            next_index: unsigned(row.try_get("next_index")?, "next_index")?,
            pass_end: unsigned(row.try_get("pass_end")?, "pass_end")?,
            passes: unsigned(row.try_get("passes")?, "passes")?,
        })
    }

    /// Every quarantined entry, in index order.
    pub async fn quarantined(&self) -> anyhow::Result<Vec<Quarantined>> {
        let rows = sqlx::query(ALL_QUARANTINED)
            .fetch_all(self.pool())
            .await
            .context("reading the quarantined entries")?;
        rows.iter()
            .map(|row| {
                Ok(Quarantined {
                    index: unsigned(row.try_get("idx")?, "index")?,
                    found_at: row.try_get("found_at")?,
                    finding: row.try_get("finding")?,
                })
            })
            .collect()
    }

    /// Refuses a read of any quarantined entry in `from..until`, naming the first.
    pub async fn refuse_quarantined(&self, from: u64, until: u64) -> Result<(), ServiceError> {
        if from >= until {
            return Ok(());
        }
        let row = sqlx::query(FIRST_QUARANTINED)
            .bind(signed(from).map_err(ServiceError::internal)?)
            .bind(signed(until).map_err(ServiceError::internal)?)
            .fetch_optional(self.pool())
            .await?;
        match row {
            None => Ok(()),
            Some(row) => {
                let index: i64 = row.try_get("idx")?;
                Err(quarantined_error(
                    unsigned(index, "index").map_err(ServiceError::internal)?,
                ))
            }
        }
    }

    /// Refuses a read of `entries` (in index order) if any of them is quarantined, naming the
    /// first; a quarantined entry between them that is not one of them does not matter.
    pub async fn refuse_any_quarantined(
        &self,
        entries: &[StoredEntry],
    ) -> Result<(), ServiceError> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        let rows = sqlx::query(QUARANTINED_BETWEEN)
            .bind(signed(first.index).map_err(ServiceError::internal)?)
            .bind(signed(last.index).map_err(ServiceError::internal)?)
            .fetch_all(self.pool())
            .await?;
        let mut quarantined = std::collections::BTreeSet::new();
        for row in &rows {
            let index: i64 = row.try_get("idx")?;
            quarantined.insert(unsigned(index, "index").map_err(ServiceError::internal)?);
        }
        match entries
            .iter()
            .find(|entry| quarantined.contains(&entry.index))
        {
            Some(entry) => Err(quarantined_error(entry.index)),
            None => Ok(()),
        }
    }

    /// Scrubs the next batch of at most `batch` entries from where the scrub stands, and
    /// records how far it got.
    pub async fn scrub_batch(&self, batch: u32) -> anyhow::Result<BatchReport> {
        let durable = self.inner.log.durable_size();
        let progress = self.progress().await?.next_batch(durable);
        let (from, until) = (progress.next_index, progress.batch_end(batch));
        let mut report = BatchReport {
            from,
            until,
            ..BatchReport::default()
        };
        let mut next = from;
        while next < until {
            let limit = u32::try_from(until - next).unwrap_or(u32::MAX);
            let entries = self
                .inner
                .log
                .store()
                .range(next, until, limit)
                .await
                .with_context(|| format!("reading entries {next}..{until}"))?;
            if entries.first().map(|entry| entry.index) != Some(next) {
                anyhow::bail!("entry {next} is missing from the database");
            }
            next += entries.len() as u64;
            let log = self.inner.log.clone();
            let (mut found, entries) = tokio::task::spawn_blocking(move || {
                examine_all(&log, &entries).map(|found| (found, entries))
            })
            .await
            .context("hashing entries")??;
            // The openings of the entries whose leaves are intact, through the readers' one
            // reader, which checks each against its commitment.
            let intact: Vec<StoredEntry> = entries
                .into_iter()
                .filter(|entry| !found.iter().any(|(index, _)| *index == entry.index))
                .collect();
            let full = self
                .inner
                .log
                .store()
                .full_entries(intact)
                .await
                .context("reading the entries' openings")?;
            for entry in full {
                if !entry.tampered().is_empty() {
                    found.push((entry.index, Finding::OpeningChanged));
                }
            }
            found.sort_by_key(|(index, _)| *index);
            for (index, finding) in found {
                self.alarm(index, finding).await?;
                report.findings.push((index, finding));
            }
        }
        let done = ScrubProgress {
            next_index: until,
            pass_end: progress.pass_end,
            passes: progress.passes + u64::from(until >= progress.pass_end),
        };
        report.pass_complete = until >= progress.pass_end;
        self.save(done).await?;
        Ok(report)
    }

    /// Scrubs batch after batch until the pass in progress is complete.
    pub async fn scrub_pass(&self, batch: u32) -> anyhow::Result<Vec<(u64, Finding)>> {
        let mut findings = Vec::new();
        loop {
            let report = self.scrub_batch(batch).await?;
            findings.extend(report.findings);
            if report.pass_complete {
                return Ok(findings);
            }
        }
    }

    /// Starts the scrub in the background: at once a pass from where the last one ended, then
    /// a batch every interval.
    pub fn start(&self, settings: ScrubSettings) -> Scrubbing {
        let (stop, mut stopped) = watch::channel(false);
        let integrity = self.clone();
        // A zero interval would keep a connection busy for nothing.
        let interval = settings.interval.max(Duration::from_millis(10));
        let task = tokio::spawn(async move {
            let mut starting = true;
            loop {
                let pause = if integrity.inner.log.store().database().health().is_up() {
                    match integrity.scrub_batch(settings.batch).await {
                        Ok(report) => {
                            if report.pass_complete && starting {
                                starting = false;
                                tracing::info!(
                                    scrubbed_until = report.until,
                                    "audit log scrub: the pass begun at start is complete"
                                );
                            }
                            if starting { Duration::ZERO } else { interval }
                        }
                        Err(error) => {
                            tracing::warn!(
                                error = format!("{error:#}"),
                                "audit log scrub: a batch failed; it is tried again"
                            );
                            interval
                        }
                    }
                } else {
                    interval
                };
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stopped.changed() => break,
                }
                if *stopped.borrow() {
                    break;
                }
            }
        });
        Scrubbing { stop, task }
    }

    /// Quarantines `index` and raises the alarm.
    async fn alarm(&self, index: u64, finding: Finding) -> anyhow::Result<()> {
        let marked = sqlx::query(QUARANTINE)
            .bind(signed(index)?)
            .bind(now_unix_ms())
            .bind(finding.to_string())
            .execute(self.pool())
            .await
            .with_context(|| format!("quarantining entry {index}"))?
            .rows_affected();
        if marked > 0 {
            self.inner.failures.fetch_add(1, Ordering::SeqCst);
            self.inner.counter.add(1, &[]);
        }
        tracing::error!(
            index,
            finding = %finding,
            newly_quarantined = marked > 0,
            "audit log integrity failure: entry {index} was changed in the database; \
             it is quarantined and refused to readers"
        );
        Ok(())
    }

    async fn save(&self, progress: ScrubProgress) -> anyhow::Result<()> {
        sqlx::query(SAVE_PROGRESS)
            .bind(signed(progress.next_index)?)
            .bind(signed(progress.pass_end)?)
            .bind(signed(progress.passes)?)
            .bind(now_unix_ms())
            .execute(self.pool())
            .await
            .context("recording the scrub's progress")?;
        Ok(())
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.inner.log.store().database().pool()
    }
}

impl Scrubbing {
    /// Stops after the batch in flight, if any.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Background for Scrubbing {
    fn stop(self: Box<Self>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(Scrubbing::stop(*self))
    }
}

/// [`examine`] for each of `entries` against the log's tree and latest signed checkpoint.
fn examine_all(log: &AuditLog, entries: &[StoredEntry]) -> anyhow::Result<Vec<(u64, Finding)>> {
    let checkpoint = log.latest_checkpoint();
    let mut found = Vec::new();
    for entry in entries {
        let covered = entry.index < checkpoint.tree_size;
        // The proof within the checkpoint when it covers the entry; otherwise one within the
        // smallest tree holding the entry, only for the leaf.
        let size = if covered {
            checkpoint.tree_size
        } else {
            entry.index + 1
        };
        let (tree_leaf, proof) = log
            .inclusion_proof(entry.index, size)
            .with_context(|| format!("the log's leaf at index {}", entry.index))?;
        let signed = covered.then_some((&checkpoint, proof.as_slice()));
        if let Some(finding) = examine(entry, &tree_leaf, signed) {
            found.push((entry.index, finding));
        }
    }
    Ok(found)
}

fn signed(value: u64) -> anyhow::Result<i64> {
    i64::try_from(value).with_context(|| format!("{value} is out of range"))
}

fn unsigned(value: i64, what: &str) -> anyhow::Result<u64> {
    u64::try_from(value).with_context(|| format!("negative {what} {value}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tryggdel_merkle::MerkleTree;

    use super::*;

    fn stored(index: u64, bytes: &[u8]) -> StoredEntry {
        StoredEntry {
            index,
            bytes: bytes.to_vec(),
            leaf_hash: leaf_hash(bytes),
        }
    }

    /// Seven entries, their tree, and a checkpoint of the tree (unsigned: `examine` reads only
    /// its size and root, the signature having been checked when the log adopted it).
    fn log_of_seven() -> (Vec<StoredEntry>, MerkleTree, StoredCheckpoint) {
        let entries: Vec<StoredEntry> = (0..7)
            .map(|index| stored(index, format!("{{\"entry\":{index}}}").as_bytes()))
            .collect();
        let tree = MerkleTree::from_leaf_hashes(entries.iter().map(|entry| entry.leaf_hash));
        let checkpoint = StoredCheckpoint {
            tree_size: 7,
            root: tree.root(),
            note: String::new(),
            signed_at: 0,
        };
        (entries, tree, checkpoint)
    }

    fn examine_in(
        entry: &StoredEntry,
        tree: &MerkleTree,
        checkpoint: &StoredCheckpoint,
    ) -> Option<Finding> {
        let proof = tree
            .inclusion_proof(entry.index, checkpoint.tree_size)
            .unwrap();
        examine(
            entry,
            &tree.leaf_hash(entry.index).unwrap(),
            Some((checkpoint, &proof)),
        )
    }

    #[test]
    fn intact_entries_pass() {
        let (entries, tree, checkpoint) = log_of_seven();
        for entry in &entries {
            assert_eq!(examine_in(entry, &tree, &checkpoint), None);
            assert_eq!(
                examine(entry, &tree.leaf_hash(entry.index).unwrap(), None),
                None
            );
        }
    }

    #[test]
    fn changed_bytes_are_found_with_or_without_the_stored_leaf_hash_changed() {
        let (entries, tree, checkpoint) = log_of_seven();
        let mut changed = entries[3].clone();
        changed.bytes = b"{\"entry\":33}".to_vec();
        assert_eq!(
            examine_in(&changed, &tree, &checkpoint),
            Some(Finding::BytesChanged)
        );
        // The attacker who rewrites the stored leaf hash too is found all the same.
        changed.leaf_hash = leaf_hash(&changed.bytes);
        assert_eq!(
            examine_in(&changed, &tree, &checkpoint),
            Some(Finding::BytesChanged)
        );
        // One flipped bit is enough.
        let mut flipped = entries[6].clone();
        flipped.bytes[2] ^= 1;
        assert_eq!(
            examine_in(&flipped, &tree, &checkpoint),
            Some(Finding::BytesChanged)
        );
    }

    #[test]
    fn a_changed_stored_leaf_hash_alone_is_found() {
        let (entries, tree, checkpoint) = log_of_seven();
        let mut changed = entries[0].clone();
        changed.leaf_hash = [7; 32];
        assert_eq!(
            examine_in(&changed, &tree, &checkpoint),
            Some(Finding::StoredLeafChanged)
        );
    }

    #[test]
    fn a_tree_that_disagrees_with_the_signed_root_is_found() {
        // The tree and the stored entry agree, both rewritten, but the signed root is the
        // original one.
        let (mut entries, _, checkpoint) = log_of_seven();
        entries[4] = stored(4, b"{\"entry\":44}");
        let rewritten = MerkleTree::from_leaf_hashes(entries.iter().map(|entry| entry.leaf_hash));
        assert_eq!(
            examine_in(&entries[4], &rewritten, &checkpoint),
            Some(Finding::NotInSignedTree { tree_size: 7 })
        );
    }

    #[test]
    fn findings_read_plainly() {
        assert_eq!(
            Finding::NotInSignedTree { tree_size: 9 }.to_string(),
            "it does not prove into the signed checkpoint of size 9"
        );
        let status: tonic::Status = quarantined_error(12).into();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(
            status.message().contains("entry 12 "),
            "{}",
            status.message()
        );
    }

    #[test]
    fn a_pass_runs_to_the_size_it_began_at_then_starts_again() {
        let start = ScrubProgress::default();
        // The first batch of an empty record begins a pass over what is durable.
        let first = start.next_batch(25);
        assert_eq!(
            first,
            ScrubProgress {
                next_index: 0,
                pass_end: 25,
                passes: 0
            }
        );
        assert_eq!(first.batch_end(10), 10);
        // Mid-pass the end stays where the pass began, however much the log grew.
        let middle = ScrubProgress {
            next_index: 20,
            pass_end: 25,
            passes: 0,
        }
        .next_batch(1000);
        assert_eq!(middle.next_index, 20);
        assert_eq!(middle.batch_end(10), 25);
        // A complete pass starts again from 0 over the log as it now is.
        let again = ScrubProgress {
            next_index: 25,
            pass_end: 25,
            passes: 1,
        }
        .next_batch(1000);
        assert_eq!(
            again,
            ScrubProgress {
                next_index: 0,
                pass_end: 1000,
                passes: 1
            }
        );
        // A pass end beyond what this instance holds is cut to it.
        let behind = ScrubProgress {
            next_index: 5,
            pass_end: 50,
            passes: 0,
        }
        .next_batch(30);
        assert_eq!(behind.batch_end(100), 30);
        // An empty log has an empty pass.
        let empty = start.next_batch(0);
        assert_eq!(empty.batch_end(10), 0);
    }
}
