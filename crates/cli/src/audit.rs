//! `tryggdel audit …`: fetch checkpoints and exports from the audit service, and verify an
//! export offline with nothing but the export, checkpoints and the log's public key.

use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tryggdel_audit_verify::{
    CheckpointVerifier, ExportEntry, ExportHeader, ExportWriter, Report, VerifyOptions,
    verify_export,
};
use tryggdel_merkle::hash_from_slice;
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::audit::v1::{
    ExportRequest, GetCheckpointRequest, SignedCheckpoint, export_chunk,
};

use crate::devkit::{DataDirectory, read};
use crate::token::Bearer;

/// How a user reaches the audit service.
#[derive(Clone, Debug)]
pub struct Connection {
    pub endpoint: String,
    /// The name the server certificate must carry.
    pub server_name: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub token: String,
}

impl Connection {
    /// The development defaults for `organisation` in `data`.
    pub fn development(
        data: &DataDirectory,
        endpoint: &str,
        organisation: &str,
        token: String,
    ) -> Connection {
        Connection {
            endpoint: endpoint.to_owned(),
            server_name: "localhost".to_owned(),
            ca: data.ca_cert(),
            cert: data.client_cert(organisation),
            key: data.client_key(organisation),
            token,
        }
    }

    pub async fn client(
        &self,
    ) -> anyhow::Result<AuditServiceClient<InterceptedService<Channel, Bearer>>> {
        tryggdel_tls::install_crypto_provider();
        for (what, path) in [
            ("CA certificate", &self.ca),
            ("client certificate", &self.cert),
            ("client key", &self.key),
        ] {
            if !path.exists() {
                bail!(
                    "the {what} {} does not exist: run `tryggdel start` once to create the development certificates, or pass its path",
                    path.display()
                );
            }
        }
        let channel = tryggdel_tls::connect_channel(
            &self.endpoint,
            &self.server_name,
            &read(&self.ca)?,
            &read(&self.cert)?,
            &read(&self.key)?,
        )
        .await
        .with_context(|| format!("connecting to the audit service at {}", self.endpoint))?;
        Ok(AuditServiceClient::with_interceptor(
            channel,
            Bearer::new(&self.token)?,
        ))
    }
}

/// Fetches the signed checkpoint at `tree_size` (0: the latest).
pub async fn checkpoint(
    connection: &Connection,
    tree_size: u64,
) -> anyhow::Result<SignedCheckpoint> {
    let mut client = connection.client().await?;
    Ok(client
        .get_checkpoint(GetCheckpointRequest { tree_size })
        .await
        .map_err(crate::token::explain)?
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
    let mut client = connection.client().await?;
    let mut stream = client
        .export(ExportRequest { tree_size })
        .await
        .map_err(crate::token::explain)?
        .into_inner();
    let first = stream
        .message()
        .await
        .map_err(crate::token::explain)?
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
    while let Some(chunk) = stream.message().await.map_err(crate::token::explain)? {
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

/// A progress line on stderr when it is a terminal; nothing otherwise.
pub fn progress_printer(what: &'static str) -> impl FnMut(u64, u64) {
    let terminal = std::io::stderr().is_terminal();
    move |done, total| {
        if terminal {
            let percent = (done * 100).checked_div(total).unwrap_or(100);
            eprint!("\r{what}: {done}/{total} entries ({percent}%)");
            if done >= total {
                eprintln!();
            }
        }
    }
}
