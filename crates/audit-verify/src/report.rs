//! The verifier's verdict: named steps, each passed, failed or skipped, with
//! findings that name the entry index or range they concern. Printable as
//! text ([`std::fmt::Display`]) and as JSON ([`serde::Serialize`]).

use std::fmt;

use serde::Serialize;
use tryggdel_merkle::Hash;

/// At most this many findings are listed per step; the rest are counted in
/// [`Step::findings_omitted`].
pub const MAX_FINDINGS_PER_STEP: usize = 100;

/// The result of [`crate::verify_export`].
///
/// Hashes serialise as lowercase hex, entry bytes as standard base64.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The log origin named in the export header.
    pub origin: String,
    /// The number of entries in the export.
    pub tree_size: u64,
    /// The root signed in the export's checkpoint, when that checkpoint
    /// verified with the pinned key.
    #[serde(serialize_with = "hex_serde::option")]
    pub checkpoint_root: Option<Hash>,
    /// The root recomputed from the entries' bytes.
    #[serde(serialize_with = "hex_serde::hash")]
    pub computed_root: Hash,
    /// The checks, in the order they were made.
    pub steps: Vec<Step>,
    /// Openings (personal data of format-2 entries) checked against their
    /// commitments.
    pub openings_checked: u64,
    /// Committed openings absent from the export: cleared.
    pub openings_cleared: u64,
    /// The entry and proof for [`crate::VerifyOptions::inclusion_of`], when
    /// it was asked for and the export's checkpoint verified.
    pub inclusion: Option<InclusionDetails>,
}

/// One named check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Which check this is.
    pub check: Check,
    /// Whether it passed.
    pub status: Status,
    /// A one-line human-readable explanation.
    pub message: String,
    /// Specific problems found, each naming an index or range where one
    /// applies (at most [`MAX_FINDINGS_PER_STEP`]).
    pub findings: Vec<Finding>,
    /// How many further findings were not listed.
    pub findings_omitted: u64,
}

/// The checks the verifier makes, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// The export's checkpoint verifies with the pinned key and origin and
    /// describes this export (same origin, same size).
    Checkpoint,
    /// Every entry's bytes hash to the leaf hash recorded when it was
    /// appended.
    LeafHashes,
    /// Every opening exported beside a format-2 entry (its personal data
    /// that has not been cleared) matches the leaf's commitment to it; a
    /// committed opening that is absent was cleared.
    Openings,
    /// The root recomputed from the entries equals the signed root.
    Root,
    /// An older checkpoint is consistent with the export's checkpoint.
    Consistency {
        /// The older checkpoint's position in
        /// [`crate::VerifyOptions::older_checkpoints`], from 1.
        older_checkpoint: usize,
        /// Its tree size, when its signature verified.
        size: Option<u64>,
    },
    /// An entry is included under the signed root.
    Inclusion {
        /// The entry's index.
        index: u64,
    },
}

/// The outcome of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The check was made and succeeded.
    Passed,
    /// The check was made and failed.
    Failed,
    /// The check could not be made because an earlier one failed.
    Skipped,
}

/// One specific problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The entry index it concerns, if a single one.
    pub index: Option<u64>,
    /// The range of entry indices it concerns, if a range.
    pub range: Option<EntryRange>,
    /// A human-readable description.
    pub message: String,
}

/// Entry indices `start..end` (start included, end excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EntryRange {
    /// The first index in the range.
    pub start: u64,
    /// One past the last index in the range.
    pub end: u64,
}

/// The entry asked for with [`crate::VerifyOptions::inclusion_of`] and its
/// RFC 9162 inclusion proof.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InclusionDetails {
    /// The entry's index.
    pub index: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The entry's exact bytes.
    #[serde(serialize_with = "base64_serde::bytes")]
    pub entry: Vec<u8>,
    /// The entry parsed as JSON for display, if it is JSON.
    pub entry_json: Option<serde_json::Value>,
    /// The leaf hash of the entry's bytes.
    #[serde(serialize_with = "hex_serde::hash")]
    pub leaf_hash: Hash,
    /// The inclusion proof, from the leaf's sibling up to the root's child.
    #[serde(serialize_with = "hex_serde::list")]
    pub proof: Vec<Hash>,
    /// The signed root the proof was checked against.
    #[serde(serialize_with = "hex_serde::hash")]
    pub root: Hash,
}

impl Report {
    /// True when every step passed.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.steps.iter().all(|step| step.status == Status::Passed)
    }

    /// The steps that failed.
    pub fn failed_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps
            .iter()
            .filter(|step| step.status == Status::Failed)
    }

    /// Every listed finding of every step.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.steps.iter().flat_map(|step| step.findings.iter())
    }

    /// The first step for `check`, if it was made.
    #[must_use]
    pub fn step(&self, check: &Check) -> Option<&Step> {
        self.steps.iter().find(|step| &step.check == check)
    }
}

impl Step {
    pub(crate) fn new(check: Check, status: Status, message: impl Into<String>) -> Self {
        Self {
            check,
            status,
            message: message.into(),
            findings: Vec::new(),
            findings_omitted: 0,
        }
    }

    /// True when the step passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.status == Status::Passed
    }
}

impl Finding {
    /// A finding about the entry at `index`.
    #[must_use]
    pub fn at_index(index: u64, message: impl Into<String>) -> Self {
        Self {
            index: Some(index),
            range: None,
            message: message.into(),
        }
    }

    /// A finding about the entries in `range`.
    #[must_use]
    pub fn in_range(range: EntryRange, message: impl Into<String>) -> Self {
        Self {
            index: None,
            range: Some(range),
            message: message.into(),
        }
    }
}

impl EntryRange {
    /// Whether `index` lies in the range.
    #[must_use]
    pub fn contains(&self, index: u64) -> bool {
        self.start <= index && index < self.end
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "audit log export of {}: {} entries",
            crate::export::escape_controls(&self.origin),
            self.tree_size
        )?;
        match &self.checkpoint_root {
            Some(root) => writeln!(f, "signed root:   {}", hex::encode(root))?,
            None => writeln!(f, "signed root:   (the checkpoint did not verify)")?,
        }
        writeln!(f, "computed root: {}", hex::encode(self.computed_root))?;
        for (number, step) in self.steps.iter().enumerate() {
            writeln!(f, "{}. {step}", number + 1)?;
            for finding in &step.findings {
                writeln!(f, "   - {}", finding.message)?;
            }
            if step.findings_omitted > 0 {
                writeln!(f, "   - … and {} more", step.findings_omitted)?;
            }
            if let (Check::Inclusion { .. }, Some(details)) = (&step.check, &self.inclusion) {
                write!(f, "{details}")?;
            }
        }
        if self.openings_checked > 0 || self.openings_cleared > 0 {
            writeln!(
                f,
                "personal data: {} openings checked, {} parts cleared",
                self.openings_checked, self.openings_cleared
            )?;
        }
        let count = |status| self.steps.iter().filter(|s| s.status == status).count();
        if self.is_ok() {
            writeln!(f, "result: VERIFIED ({} checks passed)", self.steps.len())
        } else {
            writeln!(
                f,
                "result: FAILED ({} failed, {} not checked, {} passed)",
                count(Status::Failed),
                count(Status::Skipped),
                count(Status::Passed)
            )
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Status::Passed => write!(f, "{}: ok ({})", self.check, self.message),
            Status::Failed => write!(f, "{}: FAILED: {}", self.check, self.message),
            Status::Skipped => write!(f, "{}: skipped: {}", self.check, self.message),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Checkpoint => write!(f, "export checkpoint"),
            Self::LeafHashes => write!(f, "entry leaf hashes"),
            Self::Openings => write!(f, "personal data against commitments"),
            Self::Root => write!(f, "tree root"),
            Self::Consistency {
                older_checkpoint,
                size: Some(size),
            } => write!(
                f,
                "consistency with older checkpoint {older_checkpoint} (size {size})"
            ),
            Self::Consistency {
                older_checkpoint,
                size: None,
            } => write!(f, "consistency with older checkpoint {older_checkpoint}"),
            Self::Inclusion { index } => write!(f, "inclusion of entry {index}"),
        }
    }
}

impl fmt::Display for EntryRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

impl fmt::Display for InclusionDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The stored bytes themselves when they are printable text; never
        // raw control characters, which could drive the terminal.
        match (std::str::from_utf8(&self.entry), &self.entry_json) {
            (Ok(text), _) if !text.chars().any(char::is_control) => {
                writeln!(f, "   entry:     {text}")?;
            }
            (_, Some(json)) => writeln!(
                f,
                "   entry:     {json} (re-serialised for display: the stored bytes hold line breaks or control characters)"
            )?,
            (_, None) => writeln!(
                f,
                "   entry:     ({} bytes, not printable text) base64 {}",
                self.entry.len(),
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &self.entry)
            )?,
        }
        writeln!(f, "   leaf hash: {}", hex::encode(self.leaf_hash))?;
        writeln!(
            f,
            "   proof for tree size {}, {} hashes from the leaf's sibling up:",
            self.tree_size,
            self.proof.len()
        )?;
        for hash in &self.proof {
            writeln!(f, "     {}", hex::encode(hash))?;
        }
        writeln!(f, "   signed root: {}", hex::encode(self.root))
    }
}

/// Serialises hashes as lowercase hex strings.
mod hex_serde {
    use serde::Serializer;
    use serde::ser::SerializeSeq as _;
    use tryggdel_merkle::Hash;

    pub(super) fn hash<S: Serializer>(hash: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(hash))
    }

    pub(super) fn option<S: Serializer>(hash: &Option<Hash>, s: S) -> Result<S::Ok, S::Error> {
        match hash {
            Some(hash) => s.serialize_some(&hex::encode(hash)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn list<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(hashes.len()))?;
        for hash in hashes {
            seq.serialize_element(&hex::encode(hash))?;
        }
        seq.end()
    }
}

/// Serialises bytes as standard padded base64, as in the export itself.
mod base64_serde {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::Serializer;

    pub(super) fn bytes<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn report(steps: Vec<Step>) -> Report {
        Report {
            openings_checked: 0,
            openings_cleared: 0,
            origin: "o".to_owned(),
            tree_size: 3,
            checkpoint_root: Some([1; 32]),
            computed_root: [2; 32],
            steps,
            inclusion: None,
        }
    }

    #[test]
    fn is_ok_only_when_every_step_passed() {
        let pass = Step::new(Check::Root, Status::Passed, "fine");
        assert!(report(vec![pass.clone()]).is_ok());
        let skip = Step::new(Check::Inclusion { index: 1 }, Status::Skipped, "no");
        assert!(!report(vec![pass.clone(), skip]).is_ok());
        let fail = Step::new(Check::LeafHashes, Status::Failed, "bad");
        let r = report(vec![pass, fail]);
        assert!(!r.is_ok());
        assert_eq!(r.failed_steps().count(), 1);
    }

    #[test]
    fn display_has_one_line_per_step_and_lists_findings() {
        let mut fail = Step::new(Check::LeafHashes, Status::Failed, "1 of 3 entries differ");
        fail.findings
            .push(Finding::at_index(2, "entry at index 2: bad"));
        fail.findings_omitted = 4;
        let text = report(vec![
            Step::new(Check::Checkpoint, Status::Passed, "signed"),
            fail,
        ])
        .to_string();
        assert!(
            text.contains("1. export checkpoint: ok (signed)\n"),
            "{text}"
        );
        assert!(
            text.contains("2. entry leaf hashes: FAILED: 1 of 3 entries differ\n   - entry at index 2: bad\n   - … and 4 more\n"),
            "{text}"
        );
        assert!(text.contains("result: FAILED (1 failed, 0 not checked, 1 passed)"));
    }

    #[test]
    fn serialises_hashes_as_hex() {
        let json = serde_json::to_value(report(vec![Step::new(
            Check::Consistency {
                older_checkpoint: 1,
                size: Some(2),
            },
            Status::Passed,
            "ok",
        )]))
        .unwrap();
        assert_eq!(json["checkpoint_root"], "01".repeat(32));
        assert_eq!(json["computed_root"], "02".repeat(32));
        assert_eq!(json["steps"][0]["check"]["kind"], "consistency");
        assert_eq!(json["steps"][0]["check"]["size"], 2);
        assert_eq!(json["steps"][0]["status"], "passed");
    }
}
