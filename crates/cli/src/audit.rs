//! `tryggdel audit …`: fetch checkpoints and exports from the audit service, and verify an
//! export offline with nothing but the export, checkpoints and the log's public key.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tryggdel_audit_verify::{
    CheckpointVerifier, ExportEntry, ExportHeader, ExportWriter, Report, VerifyOptions,
    verify_export,
};
use tryggdel_merkle::hash_from_slice;
use tryggdel_proto::audit::v1::{
    ExportRequest, GetCheckpointRequest, SignedCheckpoint, export_chunk,
};

use tryggdel_system::read;

pub use crate::client::Connection;

/// Fetches the signed checkpoint at `tree_size` (0: the latest).
pub async fn checkpoint(
    connection: &Connection,
    tree_size: u64,
) -> anyhow::Result<SignedCheckpoint> {
    let mut client = connection.audit().await?;
    Ok(client
        .get_checkpoint(GetCheckpointRequest { tree_size })
        .await
        .map_err(crate::client::refused)?
        .into_inner())
}

/// Streams the export at `tree_size` (0: the latest checkpoint) into `out`; returns the number
/// of entries written. `progress` gets (done, total).
pub async fn export(
    connection: &Connection,
    tree_size: u64,
    out: impl Write,
    progress: &mut dyn FnMut(u64, u64),
) -> anyhow::Result<u64> {
    let mut client = connection.audit().await?;
    let mut stream = client
        .export(ExportRequest { tree_size })
        .await
        .map_err(crate::client::refused)?
        .into_inner();
    let first = stream
        .message()
        .await
        .map_err(crate::client::refused)?
        .context("the audit service sent an empty export")?;
    let Some(export_chunk::Part::Checkpoint(checkpoint)) = first.part else {
        bail!("the export did not start with its checkpoint");
    };
    let total = checkpoint.tree_size;
    let mut writer = ExportWriter::new(
        out,
        &ExportHeader {
            origin: checkpoint.origin.clone(),
            tree_size: total,
            checkpoint_note: checkpoint.note.clone(),
        },
    )?;
    let mut written = 0;
    while let Some(chunk) = stream.message().await.map_err(crate::client::refused)? {
        let Some(export_chunk::Part::Entries(batch)) = chunk.part else {
            bail!("the export holds a second checkpoint");
        };
        for entry in batch.entries {
            writer.write_entry(&ExportEntry {
                index: entry.index,
                recorded_leaf_hash: hash_from_slice(&entry.leaf_hash)
                    .with_context(|| format!("entry {}: leaf hash", entry.index))?,
                entry: entry.entry,
            })?;
            written += 1;
        }
        progress(written, total);
    }
    writer.finish()?;
    Ok(written)
}

/// Reads a verifier key: the file's content if `key` names a file, else `key` itself
/// (`<origin>+<key id>+<base64 key>`).
pub fn verifier_key(key: &str) -> anyhow::Result<CheckpointVerifier> {
    let text = if Path::new(key).is_file() {
        read(Path::new(key))?
    } else {
        key.to_owned()
    };
    CheckpointVerifier::parse_vkey(text.trim()).with_context(|| {
        format!(
            "the log's public key {key:?} is not a verifier key (<origin>+<key id>+<base64 key>)"
        )
    })
}

/// Verifies `export` offline against the pinned key, optionally older checkpoints and one
/// entry's inclusion.
pub fn verify(
    export: &Path,
    key: &str,
    checkpoints: &[PathBuf],
    inclusion_of: Option<u64>,
    progress: &mut dyn FnMut(u64, u64),
) -> anyhow::Result<Report> {
    let mut options = VerifyOptions::new(verifier_key(key)?);
    options.inclusion_of = inclusion_of;
    for path in checkpoints {
        options.older_checkpoints.push(read(path)?);
    }
    let file = std::fs::File::open(export)
        .with_context(|| format!("opening the export {}", export.display()))?;
    let report = verify_export(BufReader::new(file), &options, &mut |step| {
        progress(step.entries_done, step.entries_total)
    })
    .with_context(|| format!("reading the export {}", export.display()))?;
    Ok(report)
}

/// A progress bar on stderr when it is a terminal; nothing otherwise.
pub fn progress_printer(what: &'static str) -> impl FnMut(u64, u64) {
    // indicatif draws nothing when stderr is not a terminal (scripts, CI).
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} {bar:40} {pos}/{len} entries ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style);
    }
    bar.set_message(what);
    move |done, total| {
        bar.set_length(total);
        bar.set_position(done);
        if done >= total {
            bar.finish();
        }
    }
}
