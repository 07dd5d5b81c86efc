//! The sequencer: the one task per instance that owns its writes. It takes every append
//! waiting in its queue (up to [`MAX_BATCH_EVENTS`] events) and commits them as one batch under
//! the log's lock: catches up, dedupes by event id against the database and the batch, assigns
//! the next indices, extends the tree, signs a checkpoint if one is due, and commits. Between
//! batches it signs a checkpoint when one is due.
//!
//! Invariants:
//! - An append is answered only after the batch holding it has committed.
//! - A batch that fails to commit, or is abandoned at its deadline, is cut from the tree
//!   again and every append in it is told so; the next catch-up (under the lock, before the
//!   next batch) reads whatever of it did reach the database.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::sync::mpsc;

use super::checkpoints::{check_consistent, sign};
use super::{AppendError, AppendJob, Appended, LogConfig, Shared, WriterState, within};
use crate::store::{self, AuditStore, ExistingEntry, NewEntry};

/// The most events one commit takes.
const MAX_BATCH_EVENTS: usize = 4096;

/// What one append job of a batch comes to.
type Plan = Result<Vec<Appended>, AppendError>;

/// The writer of one instance; see the module's documentation.
pub(super) struct Sequencer {
    shared: Arc<Shared>,
    store: AuditStore,
    config: LogConfig,
}

/// The failure of a batch, told to every append that waited on it. An `anyhow::Error` cannot
/// be cloned, so the batch's one error is shared: each waiter's error shows its message and
/// has its chain of causes (`source`), so `{:#}` prints the same full text for each.
#[derive(Clone, Debug)]
struct BatchFailed(Arc<anyhow::Error>);

impl Sequencer {
    pub(super) fn new(shared: Arc<Shared>, store: AuditStore, config: LogConfig) -> Sequencer {
        Sequencer {
            shared,
            store,
            config,
        }
    }

    pub(super) async fn run(self, mut jobs: mpsc::Receiver<AppendJob>) {
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
                    if self.store.database().is_closed() {
                        break;
                    }
                    // Nothing to sign on a database that is down.
                    if !self.store.database().health().is_up() {
                        continue;
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
        // Queued before the database went down: told at once, not after a wait for the lock.
        if !self.store.database().health().is_up() {
            for job in batch {
                let _ = job.reply.send(Err(AppendError::DatabaseDown));
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
                let failed = BatchFailed(Arc::new(error));
                for job in batch {
                    let _ = job.reply.send(Err(failed.to_append_error()));
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
                        self.shared.stop_appends();
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
                let failed = BatchFailed(Arc::new(
                    anyhow::Error::new(error).context("committing the batch"),
                ));
                Ok(plans
                    .into_iter()
                    .map(|plan| plan.and_then(|_| Err(failed.to_append_error())))
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
                    job_entries.push(body.new_entry(
                        index,
                        fingerprint,
                        prepared.bytes.clone(),
                        leaf,
                        job.recorded_at,
                        prepared.openings.clone(),
                    ));
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

impl BatchFailed {
    /// The error each waiter gets.
    fn to_append_error(&self) -> AppendError {
        AppendError::Unavailable(anyhow::Error::new(self.clone()))
    }
}

impl fmt::Display for BatchFailed {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The outermost message alone; the causes follow through `source`.
        write!(formatter, "{}", self.0)
    }
}

impl std::error::Error for BatchFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_waiter_of_a_failed_batch_gets_the_whole_chain() {
        let failure = anyhow::Error::new(std::io::Error::other("connection reset"))
            .context("committing the batch");
        let text = format!("{failure:#}");
        let failed = BatchFailed(Arc::new(failure));
        for _ in 0..2 {
            let AppendError::Unavailable(cause) = failed.to_append_error() else {
                panic!("a failed batch is unavailable");
            };
            assert_eq!(format!("{cause:#}"), text);
            assert_eq!(text, "committing the batch: connection reset");
            assert_eq!(cause.chain().count(), 2);
            assert!(
                cause
                    .chain()
                    .any(|error| error.downcast_ref::<std::io::Error>().is_some())
            );
        }
    }
}
