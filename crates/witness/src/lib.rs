//! tryggdel-witness: witnessing the audit log the C2SP way, so that no single operator can
//! rewrite or fork it unnoticed.
//!
//! * [`policy`]: C2SP tlog-policy (logs, witnesses, nested k-of-n groups, a quorum) and the
//!   complete check of a cosigned checkpoint against it.
//! * [`protocol`]: the C2SP tlog-witness `add-checkpoint` request.
//! * [`bundle`]: C2SP tlog-proof bundles of one entry.
//! * [`server`]: the witness another agency runs (`tryggdel witness serve`).
//! * [`client`]: the log's side, submitting checkpoints to a witness.
//!
//! The signed-note and cosignature/v1 cryptography itself is `tryggdel_merkle::checkpoint`.
//!
//! Invariants this crate upholds:
//!
//! * A checkpoint counts only when a log of the policy signed it under its origin, every
//!   cosignature from a known witness verifies, the quorum is met and the newest cosignature
//!   is recent enough; cosignatures from unknown keys are ignored, never counted.
//! * The witness never cosigns a checkpoint that is not consistent with the one it cosigned
//!   before for that log: per log, the check, the durable write of the new state
//!   (write-fsync-rename-fsync) and the answer happen under one lock, state first.
//! * A state directory belongs to one witness key (`witness.vkey` in it); another key is
//!   refused at start.
//! * The witness pins each log's origin and key; a checkpoint is admitted only with a valid
//!   signature from that key. A refused fork is logged at WARN with the evidence.
//! * Parsing is strict: canonical decimals and base64, bounded line counts and sizes.
//! * No panics on any input (no `unwrap`/`expect` outside tests).
#![forbid(unsafe_code)]

pub mod bundle;
pub mod client;
mod error;
pub mod policy;
pub mod protocol;
pub mod server;
mod state;

pub use error::{BundleError, FormatError, PolicyError};
pub use state::Witnessed;
