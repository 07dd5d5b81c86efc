//! C2SP tlog-proof bundles: one entry's inclusion proof with the cosigned checkpoint it
//! leads to, verifiable offline with nothing but a policy.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 of the entry's bytes>
//! index <n>
//! <base64 hash>…
//!
//! <cosigned checkpoint note>
//! ```
//!
//! The `extra` line carries the entry's exact bytes (what its leaf hash covers), so the
//! bundle is self-contained; a verifier recomputes the leaf hash from them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tryggdel_merkle::{Hash, leaf_hash, verify_inclusion};

use crate::policy::{CosignedCheckpoint, Policy};
use crate::protocol::{decode_hash, parse_decimal};
use crate::{BundleError, FormatError};

/// The first line of every bundle.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// One entry's proof bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofBundle {
    /// The entry's bytes, exactly as hashed into its leaf.
    pub entry: Vec<u8>,
    /// The entry's index in the log.
    pub index: u64,
    /// The inclusion proof from the entry to the checkpoint's root.
    pub proof: Vec<Hash>,
    /// The checkpoint note with the log's signature and the witnesses' cosignatures.
    pub checkpoint_note: String,
}

/// A bundle that verified: the entry and the checkpoint it is included in.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    /// The entry's bytes.
    pub entry: Vec<u8>,
    /// The entry's index.
    pub index: u64,
    /// The cosigned checkpoint.
    pub checkpoint: CosignedCheckpoint,
}

impl ProofBundle {
    /// The bundle's text.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{HEADER}\nextra {}\nindex {}\n",
            STANDARD.encode(&self.entry),
            self.index
        );
        for hash in &self.proof {
            text.push_str(&STANDARD.encode(hash));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.checkpoint_note);
        text
    }

    /// Parses a bundle's text (the `extra` line is required: it is the entry).
    pub fn parse(text: &str) -> Result<Self, FormatError> {
        let mut rest = text;
        let mut next_line = || -> Result<&str, FormatError> {
            let (line, after) = rest.split_once('\n').ok_or(FormatError::Malformed(
                "the bundle ends before its checkpoint",
            ))?;
            rest = after;
            Ok(line)
        };
        if next_line()? != HEADER {
            return Err(FormatError::Malformed(
                "the first line is not c2sp.org/tlog-proof@v1",
            ));
        }
        let entry = next_line()?
            .strip_prefix("extra ")
            .and_then(|b64| {
                let bytes = STANDARD.decode(b64).ok()?;
                (STANDARD.encode(&bytes) == b64).then_some(bytes)
            })
            .ok_or(FormatError::Malformed(
                "no extra line with the entry in base64",
            ))?;
        let index = next_line()?
            .strip_prefix("index ")
            .and_then(parse_decimal)
            .ok_or(FormatError::Malformed("no index line"))?;
        let mut proof = Vec::new();
        loop {
            let line = next_line()?;
            if line.is_empty() {
                break;
            }
            if proof.len() == 64 {
                return Err(FormatError::Malformed("more than 64 proof lines"));
            }
            proof.push(
                decode_hash(line).ok_or(FormatError::Malformed("a proof line is not a hash"))?,
            );
        }
        Ok(Self {
            entry,
            index,
            proof,
            checkpoint_note: rest.to_owned(),
        })
    }

    /// Verifies the bundle: the checkpoint against `policy` (log signature, quorum, age) and
    /// the entry's inclusion at its index under the checkpoint's root.
    pub fn verify(
        &self,
        policy: &Policy,
        now: u64,
        max_age_seconds: u64,
    ) -> Result<VerifiedBundle, BundleError> {
        let checkpoint = policy.verify_checkpoint(&self.checkpoint_note, now, max_age_seconds)?;
        verify_inclusion(
            &leaf_hash(&self.entry),
            self.index,
            checkpoint.checkpoint.size(),
            &self.proof,
            checkpoint.checkpoint.root(),
        )
        .map_err(BundleError::Inclusion)?;
        Ok(VerifiedBundle {
            entry: self.entry.clone(),
            index: self.index,
            checkpoint,
        })
    }
}
