//! A verified export: read once to verify it against the log's key, then read again, entry by
//! entry, for the conversion — with both readings hashed so that a file changed in between
//! is noticed.

use std::io::{self, BufRead, Read};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use tryggdel_audit_verify::{
    CheckpointVerifier, ExportReader, MAX_LINE_LEN, Report, Status, VerifyError, VerifyOptions,
    verify_export,
};

use crate::ExportError;
use crate::record::AuditRecord;

/// How many findings of each failed step a refusal quotes.
const FINDINGS_SHOWN: usize = 5;

/// The signed checkpoint an export was taken against, as every output names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The log's origin line.
    pub origin: String,
    /// The number of entries the checkpoint covers (indices 0 to `tree_size - 1`).
    pub tree_size: u64,
    /// The signed root hash, 64 lowercase hex digits.
    pub root_hash_hex: String,
    /// The signed root hash in standard base64, as the note's body spells it.
    pub root_hash_base64: String,
    /// The complete signed note text (body, blank line, signature lines).
    pub note: String,
    /// The note's signature lines (the log's and any witnesses' cosignatures).
    pub signature_lines: Vec<String>,
    /// The log's key name and key id (`<origin>+<key id hex>`) the checkpoint verified with.
    pub verified_with: String,
}

/// An export that verified against the log's key; [`VerifiedExport::for_each_record`] reads
/// it again for a conversion.
pub struct VerifiedExport<R, F>
where
    R: BufRead,
    F: FnMut() -> io::Result<R>,
{
    open: F,
    checkpoint: CheckpointInfo,
    sha256: [u8; 32],
}

/// A reader that hashes every byte it passes on.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R, F> VerifiedExport<R, F>
where
    R: BufRead,
    F: FnMut() -> io::Result<R>,
{
    /// Reads the export that `open` yields and verifies it against `verifier` (signature,
    /// every leaf hash, the root). Refuses an export that does not verify.
    pub fn verify(mut open: F, verifier: &CheckpointVerifier) -> Result<Self, ExportError> {
        let input = open().map_err(ExportError::Reopen)?;
        let mut hashing = HashingReader::new(input);
        // The header line is read here for its signed note, then handed to the verifier
        // ahead of the rest, so the export is opened once for verifying.
        let mut header_line = Vec::new();
        let limit = u64::try_from(MAX_LINE_LEN)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        (&mut hashing)
            .take(limit)
            .read_until(b'\n', &mut header_line)
            .map_err(|source| VerifyError::Read { line: 1, source })?;
        let header = ExportReader::new(header_line.as_slice())?.header().clone();
        let options = VerifyOptions::new(verifier.clone());
        let report = verify_export(
            header_line.as_slice().chain(&mut hashing),
            &options,
            &mut |_| {},
        )?;
        // Drain anything after the last line so both readings hash the same bytes.
        hashing
            .drain()
            .map_err(|source| VerifyError::Read { line: 0, source })?;
        let Some(root) = report.checkpoint_root.filter(|_| report.is_ok()) else {
            return Err(ExportError::NotVerified {
                failed: failed_steps(&report),
            });
        };
        let sha256 = hashing.finish();
        let signature_lines = header
            .checkpoint_note
            .split_once("\n\n")
            .map(|(_, signatures)| {
                signatures
                    .lines()
                    .filter(|line| !line.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let checkpoint = CheckpointInfo {
            origin: report.origin.clone(),
            tree_size: report.tree_size,
            root_hash_hex: hex::encode(root),
            root_hash_base64: STANDARD.encode(root),
            note: header.checkpoint_note,
            signature_lines,
            verified_with: format!("{}+{}", verifier.name(), hex::encode(verifier.key_id())),
        };
        Ok(Self {
            open,
            checkpoint,
            sha256,
        })
    }

    /// The signed checkpoint the export was taken against.
    pub fn checkpoint(&self) -> &CheckpointInfo {
        &self.checkpoint
    }

    /// SHA-256 of the export file as verified.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// Reads the export again and calls `each` with every entry in index order. At the end
    /// the bytes read must hash to what was verified, or the conversion is refused (the
    /// caller then discards what `each` wrote).
    pub fn for_each_record(
        &mut self,
        each: &mut dyn FnMut(&AuditRecord) -> Result<(), ExportError>,
    ) -> Result<(), ExportError> {
        let input = (self.open)().map_err(ExportError::Reopen)?;
        let mut hashing = HashingReader::new(input);
        {
            let mut reader = ExportReader::new(&mut hashing)?;
            while let Some(entry) = reader.next_entry_ref()? {
                let record = AuditRecord::parse_with_openings(
                    entry.index,
                    entry.entry,
                    entry.recorded_leaf_hash,
                    entry.openings,
                );
                each(&record)?;
            }
        }
        hashing
            .drain()
            .map_err(|source| VerifyError::Read { line: 0, source })?;
        let converted = hashing.finish();
        if converted != self.sha256 {
            return Err(ExportError::ChangedSinceVerified {
                verified: hex::encode(self.sha256),
                converted: hex::encode(converted),
            });
        }
        Ok(())
    }
}

/// The failed steps of a report with their first findings (each naming its index).
fn failed_steps(report: &Report) -> String {
    let lines: Vec<String> = report
        .steps
        .iter()
        .filter(|step| step.status == Status::Failed)
        .flat_map(|step| {
            std::iter::once(step.message.clone()).chain(
                step.findings
                    .iter()
                    .take(FINDINGS_SHOWN)
                    .map(|finding| finding.message.clone()),
            )
        })
        .collect();
    if lines.is_empty() {
        "the checkpoint could not be verified".to_owned()
    } else {
        lines.join("; ")
    }
}

impl<R: BufRead> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Reads and hashes whatever is left.
    fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }

    fn finish(self) -> [u8; 32] {
        self.hasher.finalize().into()
    }
}

impl<R: BufRead> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        Ok(read)
    }
}

impl<R: BufRead> BufRead for HashingReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            let end = amount.min(buf.len());
            self.hasher.update(&buf[..end]);
        }
        self.inner.consume(amount);
    }
}
