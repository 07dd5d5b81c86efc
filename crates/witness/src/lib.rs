//! tryggdel-witness: witnessing the audit log the C2SP way, so that no single operator can
//! rewrite or fork it unnoticed.
//!
//! * [`policy`]: C2SP tlog-policy (logs, witnesses, nested k-of-n groups, a quorum) and the
//!   complete check of a cosigned checkpoint against it.
//! * [`protocol`]: the C2SP tlog-witness `add-checkpoint` request.
//! * [`bundle`]: C2SP tlog-proof bundles of one entry.
//!
//! The signed-note and cosignature/v1 cryptography itself is `tryggdel_merkle::checkpoint`.
//!
//! Invariants this crate upholds:
//!
//! * A checkpoint counts only when a log of the policy signed it under its origin, every
//!   cosignature from a known witness verifies, the quorum is met and the newest cosignature
//!   is recent enough; cosignatures from unknown keys are ignored, never counted.
//! * Parsing is strict: canonical decimals and base64, bounded line counts and sizes.
//! * No panics on any input (no `unwrap`/`expect` outside tests).
#![forbid(unsafe_code)]

pub mod bundle;
mod error;
pub mod policy;
pub mod protocol;

pub use error::{BundleError, FormatError, PolicyError};
