//! `tryggdel audit …`: fetch checkpoints, exports and proof bundles from the audit service,
//! and verify an export offline with nothing but the export, checkpoints and the log's public
//! key, or with a witness policy (C2SP tlog-policy) whose quorum the checkpoint must meet.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tryggdel_audit_verify::{
    CheckpointVerifier, ExportEntry, ExportHeader, ExportOpening, ExportReader, ExportWriter,
    Report, VerifyOptions, verify_export,
};
use tryggdel_merkle::hash_from_slice;
use tryggdel_proto::audit::v1::{
    ExportRequest, GetCheckpointRequest, GetInclusionProofRequest, SignedCheckpoint, export_chunk,
    get_inclusion_proof_request,
};
use tryggdel_witness::bundle::{ProofBundle, VerifiedBundle};
use tryggdel_witness::policy::{CosignedCheckpoint, Policy};
use tryggdel_witness::{BundleError, PolicyError};

use tryggdel_supervisor_export::{Converted, ExportError, Format};
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
            // Format-2 entries come with their openings (the personal data not cleared),
            // which the verifier checks against the leaves' commitments.
            let openings: Vec<ExportOpening> = entry
                .openings
                .into_iter()
                .map(|opening| ExportOpening {
                    key: opening.key,
                    salt: opening.salt,
                    data: opening.data,
                })
                .collect();
            writer.write_entry_with_openings(
                &ExportEntry {
                    index: entry.index,
                    recorded_leaf_hash: hash_from_slice(&entry.leaf_hash)
                        .with_context(|| format!("entry {}: leaf hash", entry.index))?,
                    entry: entry.entry,
                },
                &openings,
            )?;
            written += 1;
        }
        progress(written, total);
    }
    writer.finish()?;
    Ok(written)
}

/// An entry as a reader sees it: its leaf's JSON with the personal data of its openings
/// (format 2) merged in, and `cleared_openings` when parts of it were cleared.
pub fn merged_entry(entry: &tryggdel_proto::audit::v1::Entry) -> serde_json::Value {
    let mut value: serde_json::Value =
        serde_json::from_slice(&entry.entry).unwrap_or(serde_json::Value::Null);
    let Some(object) = value.as_object_mut() else {
        return value;
    };
    for opening in &entry.openings {
        let Ok(serde_json::Value::Object(data)) = serde_json::from_slice(&opening.data) else {
            continue;
        };
        for (field, part) in data {
            match (object.get_mut(&field), part) {
                (Some(serde_json::Value::Array(list)), serde_json::Value::Array(more)) => {
                    list.extend(more);
                }
                (Some(serde_json::Value::Object(map)), serde_json::Value::Object(more)) => {
                    map.extend(more);
                }
                (_, part) => {
                    object.insert(field, part);
                }
            }
        }
    }
    if entry.cleared_openings > 0 {
        object.insert(
            "cleared_openings".into(),
            serde_json::Value::from(entry.cleared_openings),
        );
    }
    value
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

/// Reads a C2SP tlog-policy file.
pub fn read_policy(path: &Path) -> anyhow::Result<Policy> {
    Policy::parse(&read(path)?).with_context(|| format!("the policy {}", path.display()))
}

/// The log key to verify with: `--key` if given, else the policy's one log.
pub fn key_from(key: Option<&str>, policy: Option<&Policy>) -> anyhow::Result<String> {
    if let Some(key) = key {
        return Ok(key.to_owned());
    }
    match policy.map(Policy::logs) {
        Some([log]) => Ok(log.verifier().to_vkey_string()),
        Some([]) | None => bail!("give the log's key with --key, or a policy with its log line"),
        Some(_) => bail!("the policy names several logs: say which with --key"),
    }
}

/// What a policy says of a checkpoint note: the witnesses that cosigned it, or why it does
/// not count.
pub struct PolicyVerdict {
    pub result: Result<CosignedCheckpoint, PolicyError>,
    pub now: u64,
}

impl std::fmt::Display for PolicyVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.result {
            Ok(cosigned) => {
                let names: Vec<&str> = cosigned.cosigned_by.keys().map(String::as_str).collect();
                write!(
                    f,
                    "witness policy: met, cosigned by {} ({}); newest cosignature {} s old",
                    names.len(),
                    names.join(", "),
                    self.now
                        .saturating_sub(cosigned.newest_cosignature().unwrap_or(self.now))
                )
            }
            Err(error) => write!(f, "witness policy: NOT MET: {error}"),
        }
    }
}

/// Checks the checkpoint an export was taken at against `policy`.
pub fn verify_export_policy(
    export: &Path,
    policy: &Policy,
    max_age_seconds: u64,
) -> anyhow::Result<PolicyVerdict> {
    let file = std::fs::File::open(export)
        .with_context(|| format!("opening the export {}", export.display()))?;
    let reader = ExportReader::new(BufReader::new(file))
        .with_context(|| format!("reading the export {}", export.display()))?;
    let now = unix_now();
    Ok(PolicyVerdict {
        result: policy.verify_checkpoint(&reader.header().checkpoint_note, now, max_age_seconds),
        now,
    })
}

/// Fetches the entry at `index`, its inclusion proof and the published (cosigned) checkpoint
/// it leads to, as one C2SP tlog-proof bundle. The entry's bytes come only to compliance
/// officers.
pub async fn proof_bundle(connection: &Connection, index: u64) -> anyhow::Result<ProofBundle> {
    let mut client = connection.audit().await?;
    let checkpoint = client
        .get_checkpoint(GetCheckpointRequest { tree_size: 0 })
        .await
        .map_err(crate::client::refused)?
        .into_inner();
    let proof = client
        .get_inclusion_proof(GetInclusionProofRequest {
            entry: Some(get_inclusion_proof_request::Entry::Index(index)),
            tree_size: checkpoint.tree_size,
        })
        .await
        .map_err(crate::client::refused)?
        .into_inner();
    if proof.entry.is_empty() {
        bail!("the audit service sent no entry bytes: a proof bundle needs a compliance officer");
    }
    let hashes = proof
        .hashes
        .iter()
        .map(|h| hash_from_slice(h).context("a proof hash"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(ProofBundle {
        entry: proof.entry,
        index: proof.index,
        proof: hashes,
        checkpoint_note: checkpoint.note,
    })
}

/// Verifies a proof bundle offline with nothing but `policy`.
pub fn verify_proof_bundle(
    bundle: &Path,
    policy: &Policy,
    max_age_seconds: u64,
) -> anyhow::Result<Result<VerifiedBundle, BundleError>> {
    let text = read(bundle)?;
    let parsed = match ProofBundle::parse(&text) {
        Ok(parsed) => parsed,
        Err(error) => return Ok(Err(BundleError::Format(error))),
    };
    Ok(parsed.verify(policy, unix_now(), max_age_seconds))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Converts the export at `export` into `format` at `out` for a supervisor, after verifying it
/// against the log's key (`<origin>+<key id>+<key>` or a file holding it). The output is
/// written beside `out` and renamed into place only when the conversion succeeded, so a
/// refused export leaves no file. `Ok(Err(_))`: the export does not verify (or changed while
/// being converted); `Err(_)`: the conversion could not run.
pub fn convert(
    export: &Path,
    key: &str,
    format: Format,
    out: &Path,
) -> anyhow::Result<Result<Converted, ExportError>> {
    let verifier = verifier_key(key)?;
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let result = tryggdel_supervisor_export::convert(
        || std::fs::File::open(export).map(BufReader::new),
        &verifier,
        format,
        time::OffsetDateTime::now_utc(),
        std::io::BufWriter::new(file),
    );
    let converted = match result {
        Ok((converted, writer)) => {
            writer
                .into_inner()
                .map_err(std::io::IntoInnerError::into_error)
                .and_then(|file| file.sync_all())
                .with_context(|| format!("writing {}", partial.display()))?;
            converted
        }
        Err(error) => {
            // Best effort: the partial output of a refused conversion must not stay behind.
            let _ = std::fs::remove_file(&partial);
            return match error {
                ExportError::NotVerified { .. } | ExportError::ChangedSinceVerified { .. } => {
                    Ok(Err(error))
                }
                other => Err(anyhow::Error::new(other)
                    .context(format!("converting the export {}", export.display()))),
            };
        }
    };
    std::fs::rename(&partial, out)
        .with_context(|| format!("renaming {} to {}", partial.display(), out.display()))?;
    Ok(Ok(converted))
}
