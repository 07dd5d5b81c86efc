//! tryggdel-supervisor-export: exports for supervisors (IVO, IMY, internal audit) converted
//! from a verified audit log export: CSV, PDF/A-2b and a FHIR R4 Bundle of AuditEvent
//! resources following IHE Basic Audit Log Patterns (BALP).
//!
//! The JSON Lines export of `tryggdel-audit-verify` stays the source of truth. A conversion
//! reads it twice: once to verify it against the log's pinned key (the checkpoint's signature,
//! every entry's leaf hash, the root), refusing one that does not verify; then entry by entry
//! to write the output. Both readings are hashed (SHA-256) and must agree, so a file changed
//! in between is refused too.
//!
//! Every output names the signed checkpoint it was taken against (origin, size, root hash,
//! and the signed note or its signature lines) and every entry's index in the log:
//!
//! * **CSV**: one row per entry under a fixed header ([`CSV_HEADER`]), RFC 4180 quoting,
//!   formula cells defused as OWASP advises; the checkpoint in the last four columns.
//! * **PDF/A-2b**: a first page with the checkpoint and the signed note, then a table of
//!   the entries (index, time, action, actor, organisation, disclosure, recipient, legal
//!   basis); the root hash also in the XMP metadata.
//! * **FHIR R4**: a `collection` Bundle whose identifier and `meta.tag` name the checkpoint
//!   and whose signature carries the signed note; one AuditEvent per entry, per BALP
//!   (PrivacyDisclosure for deliveries, Read and Query for accesses), the index in the
//!   log-entry entity. Persons appear only as keyed references in `entity.what.identifier`.
//!
//! # Invariants
//!
//! * **Nothing unverified is converted.** [`convert`] returns an error for an export that
//!   does not verify or that changed since it was verified; the caller discards the output
//!   (the CLI writes to a temporary file and renames it only on success).
//! * **Pure library.** No network, no database, no files opened: the caller supplies a way to
//!   open the export (twice) and the output writer. CSV and FHIR are written as a stream
//!   (one entry in memory at a time); the PDF is built in memory and written at the end.
//! * **The export's bytes decide.** Entries are read leniently for display (a field missing in
//!   a later entry format, or cleared, shows as empty); nothing here computes a hash that the
//!   verifier relies on.

#![forbid(unsafe_code)]

mod csv_export;
mod error;
mod fhir;
mod pdf_export;
mod record;
mod subject_report;
mod verified;

use std::io::{self, BufRead, Write};

use time::OffsetDateTime;
use tryggdel_audit_verify::CheckpointVerifier;

pub use csv_export::{CSV_HEADER, defuse_formula};
pub use error::ExportError;
pub use fhir::{
    BALP, BalpKind, CHECKPOINT_SYSTEM, LOG_INDEX_SYSTEM, PERSON_REF_SYSTEM, audit_event,
    bundle_entry,
};
pub use record::AuditRecord;
pub use subject_report::{
    ReportedAccess, ReportedDisclosure, SubjectReportDocument, subject_report_pdf,
};
pub use verified::{CheckpointInfo, VerifiedExport};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV, RFC 4180.
    Csv,
    /// PDF/A-2b.
    Pdf,
    /// A FHIR R4 Bundle of AuditEvent resources (JSON).
    Fhir,
}

/// What a conversion produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The checkpoint the export verified against.
    pub checkpoint: CheckpointInfo,
    /// The number of entries written.
    pub entries: u64,
    /// SHA-256 (hex) of the export file converted.
    pub export_sha256: String,
}

impl Format {
    /// The name used on the command line and in messages.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Pdf => "pdf",
            Self::Fhir => "fhir",
        }
    }
}

/// Verifies the export `open` yields against `verifier`, then converts it to `format` into
/// `out`. `open` is called twice (verify, convert) and must yield the same bytes both times.
/// `generated_at` is stated in the output as the time of the conversion.
///
/// On any error, what was written to `out` must be discarded.
pub fn convert<R, F, W>(
    open: F,
    verifier: &CheckpointVerifier,
    format: Format,
    generated_at: OffsetDateTime,
    out: W,
) -> Result<(Converted, W), ExportError>
where
    R: BufRead,
    F: FnMut() -> io::Result<R>,
    W: Write,
{
    let mut export = VerifiedExport::verify(open, verifier)?;
    let checkpoint = export.checkpoint().clone();
    let mut entries = 0u64;
    let out = match format {
        Format::Csv => {
            let mut csv = csv_export::CsvExport::start(out, &checkpoint)?;
            export.for_each_record(&mut |record| {
                entries += 1;
                csv.record(record)
            })?;
            csv.finish()?
        }
        Format::Fhir => {
            let timestamp = generated_at
                .to_offset(time::UtcOffset::UTC)
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| ExportError::write("FHIR", io::Error::other(e)))?;
            let mut fhir = fhir::FhirExport::start(out, &checkpoint, &timestamp)?;
            export.for_each_record(&mut |record| {
                entries += 1;
                fhir.record(record)
            })?;
            fhir.finish()?
        }
        Format::Pdf => {
            let mut pdf = pdf_export::PdfExport::start(&checkpoint, generated_at)?;
            export.for_each_record(&mut |record| {
                entries += 1;
                pdf.record(record);
                Ok(())
            })?;
            pdf.finish(out)?
        }
    };
    Ok((
        Converted {
            checkpoint,
            entries,
            export_sha256: hex::encode(export.sha256()),
        },
        out,
    ))
}
