//! Signed checkpoints: signing a tree, proving it consistent with the latest stored checkpoint
//! before it is signed, checking the stored checkpoints at start, and adopting one that
//! another instance signed.
//!
//! Invariants:
//! - A checkpoint is signed only after the new tree has been proved consistent with the latest
//!   stored checkpoint, whoever signed it ([`check_consistent`]).
//! - One signed by another instance is adopted only if its signature verifies with this log's
//!   key, it states the stored size and root, and this tree reproduces that root.
//! - At start the stored leaves must reproduce the latest checkpoint, or the log refuses to
//!   open; any inconsistency found later stops the log taking appends.

use anyhow::{Context, anyhow, bail};
use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointSigner};
use tryggdel_merkle::{Hash, MerkleTree, verify_consistency};
use tryggdel_service_kit::now_unix_ms;

use super::{Shared, WriterState};
use crate::store::{self, LogConnection, LogWriter, StoredCheckpoint};

/// The checkpoint of the tree of `tree_size` entries with `root`, signed now.
pub(super) fn sign(
    signer: &CheckpointSigner,
    tree_size: u64,
    root: Hash,
) -> anyhow::Result<StoredCheckpoint> {
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
pub(super) fn check_consistent(
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

impl Shared {
    /// At start, with the whole log read under the log's lock (`writer`): the latest stored
    /// checkpoint must be one this log signed over exactly the stored leaves; the tree is then
    /// signed at its size if it grew beyond that checkpoint, or if there is none. A writer
    /// that signed nothing is dropped, which ends it (see [`LogWriter`]).
    pub(super) async fn open_checkpoints(
        &self,
        state: &mut WriterState,
        mut writer: LogWriter,
        signer: &CheckpointSigner,
    ) -> anyhow::Result<()> {
        let size = self.durable();
        let latest = store::latest_checkpoint(&mut writer.connection()?)
            .await
            .context("loading checkpoints")?;
        let next = match latest {
            Some(latest) => {
                self.check_checkpoint(&latest)?;
                let root = self.read_tree().root();
                let next = if size > latest.tree_size {
                    check_consistent(&self.read_tree(), &latest, size, &root)?;
                    Some(sign(signer, size, root)?)
                } else {
                    None
                };
                self.set_checkpoint(state, latest);
                next
            }
            None => Some(sign(signer, size, self.read_tree().root())?),
        };
        if let Some(next) = next {
            writer
                .insert_checkpoint(&next)
                .await
                .context("storing a checkpoint")?;
            writer.commit().await.context("storing a checkpoint")?;
            self.set_checkpoint(state, next);
        }
        Ok(())
    }

    /// Adopts the latest stored checkpoint if it is newer than the one held: its note must
    /// verify with this log's key and state the stored size and root, and the tree must
    /// reproduce that root. A checkpoint beyond the tree waits for the next catch-up.
    pub(super) async fn catch_up_checkpoint(
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
            self.stop_appends();
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
            self.stop_appends();
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
