//! The crate's one error type.

use thiserror::Error;
use tryggdel_audit_verify::VerifyError;

/// Why a supervisor export could not be produced. Nothing is converted from an export that
/// does not verify: the caller must not keep a partial output after any of these.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The export could not be read, or it is not a well-formed export.
    #[error("the export cannot be read: {0}")]
    Unreadable(#[from] VerifyError),

    /// The export was read but does not verify against the log's key: it is refused.
    #[error("the export does not verify, so it is not converted: {failed}")]
    NotVerified {
        /// The failed checks, one line each, as the verifier words them.
        failed: String,
    },

    /// The bytes read for the conversion are not the bytes that were verified (the file
    /// changed between the two readings).
    #[error(
        "the export changed while it was being converted (SHA-256 {verified} when verified, {converted} when converted): convert it again"
    )]
    ChangedSinceVerified {
        /// SHA-256 (hex) of the export as verified.
        verified: String,
        /// SHA-256 (hex) of the export as converted.
        converted: String,
    },

    /// Opening the export for its second reading failed.
    #[error("opening the export again for the conversion failed: {0}")]
    Reopen(#[source] std::io::Error),

    /// Writing the output failed.
    #[error("writing the {format} output failed: {source}")]
    Write {
        /// Which output format.
        format: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Building the PDF/A document failed.
    #[error("building the PDF/A document failed: {0}")]
    Pdf(String),
}

impl ExportError {
    pub(crate) fn write(format: &'static str, source: std::io::Error) -> Self {
        Self::Write { format, source }
    }
}
