//! The crate's one error type.

use thiserror::Error;

/// Why an export could not be written, read or verified at all.
///
/// Integrity problems (an entry whose bytes changed, a wrong root, a bad
/// signature, an inconsistent older checkpoint) are not errors: they are
/// failed steps in the [`crate::Report`]. An error means no verdict could be
/// reached: the input could not be read, it is not a well-formed export (a
/// broken export is suspicious in itself, so the message names the line),
/// the writer was misused, or the options ask for something the export
/// cannot answer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Reading the export failed with an I/O error.
    #[error("reading line {line} of the export failed: {source}")]
    Read {
        /// The line being read (1-based; the header is line 1).
        line: u64,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Writing the export failed with an I/O error; the output is incomplete
    /// and the writer refuses further entries.
    #[error("writing the export failed: {source}")]
    Write {
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The export is not well-formed.
    #[error("line {line} of the export: {problem}")]
    Malformed {
        /// The offending line (1-based; the header is line 1, the entry with
        /// index `i` is line `i + 2`).
        line: u64,
        /// What is wrong with it.
        problem: String,
    },

    /// [`crate::ExportWriter`] was given entries that do not make up the
    /// export its header announces (out of order, too many, too few, too
    /// long).
    #[error("cannot write the export: {0}")]
    InvalidWrite(String),

    /// [`crate::VerifyOptions::inclusion_of`] names an index the export does
    /// not hold.
    #[error(
        "cannot prove inclusion of index {index}: {}",
        if *size == 0 {
            "the export holds no entries".to_owned()
        } else {
            format!("the export holds {size} entries (indices 0 to {})", size - 1)
        }
    )]
    InclusionIndexOutOfRange {
        /// The requested index.
        index: u64,
        /// The number of entries in the export.
        size: u64,
    },
}
