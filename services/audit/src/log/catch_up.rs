//! Reading into the tree what the database holds beyond it: the entries other instances
//! committed (and, at start, the whole log), and on PostgreSQL a tail that does so every
//! [`TAIL_INTERVAL`] unasked.
//!
//! Invariant: the tree only ever grows here by the stored leaves that follow exactly its
//! durable size, read in index order without a gap, and only with the writer lock held.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};

use super::{Shared, WriterState, within};
use crate::store::{self, AuditStore, LogConnection};

/// How often an instance on PostgreSQL reads what other instances committed, unasked.
pub const TAIL_INTERVAL: Duration = Duration::from_millis(250);
/// Leaf hashes read per query when loading or catching up.
const LEAF_PAGE: u32 = 100_000;

impl Shared {
    /// Reads the entries committed beyond the tree (by any instance) into it; `true` if it
    /// grew. Only with the writer lock held, when the tree holds exactly the durable entries.
    pub(super) async fn catch_up_entries(
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
}

/// Reads into the tree whatever the database holds beyond it, and adopts the latest
/// checkpoint, on a connection of the pool (outside the log's lock), within the write deadline.
pub(super) async fn catch_up(shared: &Shared, store: &AuditStore) -> anyhow::Result<()> {
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

/// Reads what other instances commit, every [`TAIL_INTERVAL`] while the database is up, until
/// the log is dropped or its database closed.
pub(super) async fn tail(shared: std::sync::Weak<Shared>, store: AuditStore) {
    let mut ticker = tokio::time::interval(TAIL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(shared) = shared.upgrade() else {
            break;
        };
        if store.database().is_closed() {
            break;
        }
        // Stands aside while the database is down: the writer mutex stays free for the
        // callers, who are told at once.
        if !store.database().health().is_up() {
            continue;
        }
        if let Err(error) = catch_up(&shared, &store).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "reading the shared log failed"
            );
        }
    }
}
