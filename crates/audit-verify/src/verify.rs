//! The offline verifier: streams an export once, recomputing every leaf
//! hash and the tree, then checks the signed checkpoint, the leaf hashes,
//! the root, older checkpoints and optionally one entry's inclusion.

use std::io::BufRead;

use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointVerifier};
use tryggdel_merkle::{
    Hash, MerkleError, MerkleTree, empty_root, leaf_hash, node_hash, verify_consistency,
    verify_inclusion,
};

use crate::report::{
    Check, EntryRange, Finding, InclusionDetails, MAX_FINDINGS_PER_STEP, Report, Status, Step,
};
use crate::{ExportEntry, ExportHeader, ExportReader, VerifyError};

/// The progress callback is called after every this many entries.
pub const PROGRESS_INTERVAL: u64 = 4096;

/// What to verify an export against.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The pinned log key and origin, e.g. from
    /// `CheckpointVerifier::parse_vkey("<origin>+<key id>+<base64 key>")`.
    pub verifier: CheckpointVerifier,
    /// Signed notes of earlier checkpoints (kept by the officer from earlier
    /// audits) to check consistency against and to localise changes.
    pub older_checkpoints: Vec<String>,
    /// An entry index whose inclusion to prove and show.
    pub inclusion_of: Option<u64>,
}

/// How far verification has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Entries read and hashed so far.
    pub entries_done: u64,
    /// Entries in the export.
    pub entries_total: u64,
}

/// The root of a growing tree in `O(log n)` memory: the roots of the
/// complete subtrees along its right edge ("peaks"), largest first.
#[derive(Debug, Default)]
struct Frontier {
    peaks: Vec<(u64, Hash)>,
}

/// Collects findings up to [`MAX_FINDINGS_PER_STEP`], counting the rest.
#[derive(Debug, Default)]
struct FindingList {
    findings: Vec<Finding>,
    omitted: u64,
}

impl VerifyOptions {
    /// Options with no older checkpoints and no inclusion proof.
    #[must_use]
    pub fn new(verifier: CheckpointVerifier) -> Self {
        Self {
            verifier,
            older_checkpoints: Vec::new(),
            inclusion_of: None,
        }
    }
}

/// Verifies an export read from `input`.
///
/// Reads the export once, entry by entry, and makes these checks, each a
/// [`Step`] in the returned [`Report`], in order:
///
/// 1. the export's checkpoint verifies with the pinned key and origin, and
///    its origin and size are the header's;
/// 2. every entry's bytes hash to the leaf hash recorded when it was
///    appended (every mismatching index is named);
/// 3. the root of the tree over the recomputed leaf hashes is the signed
///    root; if not, the change is localised using the recorded leaf hashes
///    and the older checkpoints;
/// 4. each older checkpoint verifies with the same key and an RFC 9162
///    consistency proof from it to the export's checkpoint verifies;
/// 5. if asked, an RFC 9162 inclusion proof for one entry verifies against
///    the signed root.
///
/// `progress` is called with 0 entries done before the first entry, after
/// every [`PROGRESS_INTERVAL`] entries, and with all entries done at the end.
///
/// Errors are only for input that cannot be verified at all: I/O errors, a
/// malformed export (naming the line), or an `inclusion_of` index the export
/// does not hold (refused before the entries are read).
pub fn verify_export(
    input: impl BufRead,
    options: &VerifyOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, VerifyError> {
    let mut reader = ExportReader::new(input)?;
    let header = reader.header().clone();
    let total = header.tree_size;
    if let Some(index) = options.inclusion_of
        && index >= total
    {
        return Err(VerifyError::InclusionIndexOutOfRange { index, size: total });
    }

    let (checkpoint_step, checkpoint) = check_checkpoint(&options.verifier, &header);
    let older: Vec<Result<Checkpoint, MerkleError>> = options
        .older_checkpoints
        .iter()
        .map(|note| options.verifier.verify(note))
        .collect();

    let mut tree = MerkleTree::new();
    // The tree over the recorded leaf hashes is the computed one until the
    // first entry that does not match; only from there is it kept apart.
    let mut recorded: Option<Frontier> = None;
    let mut mismatches = FindingList::default();
    let mut openings = OpeningsTally::default();
    let mut included: Option<ExportEntry> = None;
    progress(Progress {
        entries_done: 0,
        entries_total: total,
    });
    while let Some(entry) = reader.next_entry_ref()? {
        let computed = leaf_hash(entry.entry);
        if computed != entry.recorded_leaf_hash {
            mismatches.push(Finding::at_index(
                entry.index,
                format!(
                    "entry at index {}: its bytes do not hash to the leaf hash recorded when it was appended (recorded {}, computed {})",
                    entry.index,
                    hex::encode(entry.recorded_leaf_hash),
                    hex::encode(computed)
                ),
            ));
            if recorded.is_none() {
                recorded = Some(Frontier::of_prefix(&tree));
            }
        }
        openings.check(entry.index, entry.entry, entry.openings);
        tree.push(computed);
        if let Some(recorded) = recorded.as_mut() {
            recorded.push(entry.recorded_leaf_hash);
        }
        if options.inclusion_of == Some(entry.index) {
            included = Some(entry.to_entry());
        }
        let done = tree.len();
        if done.is_multiple_of(PROGRESS_INTERVAL) && done != total {
            progress(Progress {
                entries_done: done,
                entries_total: total,
            });
        }
    }
    progress(Progress {
        entries_done: tree.len(),
        entries_total: total,
    });

    let computed_root = tree.root();
    let recorded_root = recorded.map_or(computed_root, |recorded| recorded.root());
    let leaf_step = leaf_hash_step(mismatches, total);
    let root = root_step(
        checkpoint.as_ref(),
        &tree,
        recorded_root,
        &leaf_step,
        &older,
    );
    let (openings_checked, openings_cleared) = (openings.checked, openings.cleared);
    // The openings step is made for exports that hold format-2 entries with personal data.
    let mut steps = vec![checkpoint_step, leaf_step];
    if openings.checked > 0 || openings.cleared > 0 || openings.problems.count() > 0 {
        steps.push(openings.step());
    }
    steps.push(root);
    for (position, result) in older.iter().enumerate() {
        steps.push(consistency_step(
            position + 1,
            result,
            checkpoint.as_ref(),
            &tree,
        ));
    }
    let mut inclusion = None;
    if let Some(index) = options.inclusion_of {
        let (step, details) = inclusion_step(index, checkpoint.as_ref(), included, &tree);
        steps.push(step);
        inclusion = details;
    }

    Ok(Report {
        origin: header.origin,
        tree_size: total,
        checkpoint_root: checkpoint.map(|cp| *cp.root()),
        computed_root,
        steps,
        inclusion,
        openings_checked,
        openings_cleared,
    })
}

/// The openings step: what was checked, what was cleared, and what does not match.
#[derive(Debug, Default)]
struct OpeningsTally {
    checked: u64,
    cleared: u64,
    problems: FindingList,
    /// The key of each absent opening, with the first entry missing one under it.
    absent: std::collections::BTreeMap<String, u64>,
    /// The keys the export's `audit.cleared` tombstones name.
    destroyed: std::collections::HashSet<String>,
}

/// The part of an `audit.cleared` tombstone the openings step reads.
#[derive(serde::Deserialize)]
struct Tombstone {
    action: String,
    #[serde(default)]
    details: std::collections::BTreeMap<String, String>,
}

/// The part of a format-2 leaf the openings step reads.
#[derive(serde::Deserialize)]
struct CommittedLeaf {
    #[serde(default)]
    format: String,
    #[serde(default)]
    openings: Option<Vec<CommittedOpening>>,
}

#[derive(serde::Deserialize)]
struct CommittedOpening {
    key: String,
    commitment: String,
}

/// The format of entries whose personal data is in openings.
const FORMAT_WITH_OPENINGS: &str = "tryggdel.audit.entry/2";

impl OpeningsTally {
    /// Checks the openings exported beside the entry at `index` against the commitments of
    /// its leaf `bytes`.
    fn check(&mut self, index: u64, bytes: &[u8], exported: &[crate::ExportOpening]) {
        if memchr::memmem::find(bytes, b"\"audit.cleared\"").is_some()
            && let Ok(tombstone) = serde_json::from_slice::<Tombstone>(bytes)
            && tombstone.action == "audit.cleared"
            && let Some(keys) = tombstone.details.get("key_ids")
        {
            self.destroyed.extend(
                keys.split(',')
                    .filter(|key| !key.is_empty())
                    .map(str::to_owned),
            );
        }
        // Only a leaf that lists commitments is parsed.
        if exported.is_empty() && memchr::memmem::find(bytes, b"\"commitment\"").is_none() {
            return;
        }
        let leaf: CommittedLeaf = match serde_json::from_slice(bytes) {
            Ok(leaf) => leaf,
            Err(_) => {
                if !exported.is_empty() {
                    self.problems.push(Finding::at_index(
                        index,
                        format!("entry at index {index}: openings were exported beside an entry that is not a JSON log entry"),
                    ));
                }
                return;
            }
        };
        let committed = match leaf.openings {
            Some(committed) if leaf.format == FORMAT_WITH_OPENINGS => committed,
            _ => {
                if !exported.is_empty() {
                    self.problems.push(Finding::at_index(
                        index,
                        format!("entry at index {index}: openings were exported beside an entry of format {:?}, which commits to none", leaf.format),
                    ));
                }
                return;
            }
        };
        for opening in exported {
            if !committed.iter().any(|c| c.key == opening.key) {
                self.problems.push(Finding::at_index(
                    index,
                    format!("entry at index {index}: an opening under key {} was exported that the entry does not commit to", opening.key),
                ));
            }
        }
        for commitment in &committed {
            let Some(opening) = exported.iter().find(|o| o.key == commitment.key) else {
                self.cleared += 1;
                self.absent.entry(commitment.key.clone()).or_insert(index);
                continue;
            };
            self.checked += 1;
            let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
            sha2::Digest::update(&mut hasher, &opening.salt);
            sha2::Digest::update(&mut hasher, &opening.data);
            let computed = hex::encode(sha2::Digest::finalize(hasher));
            if computed != commitment.commitment {
                self.problems.push(Finding::at_index(
                    index,
                    format!(
                        "entry at index {index}: the personal data under key {} does not match the entry's commitment to it: it was changed",
                        commitment.key
                    ),
                ));
            }
        }
    }

    fn step(mut self) -> Step {
        // A part may be absent only because a clearing destroyed its key, which a tombstone
        // names (tombstones follow what they clear, so this is checked at the end).
        let unexplained: Vec<(String, u64)> = self
            .absent
            .iter()
            .filter(|(key, _)| !self.destroyed.contains(*key))
            .map(|(key, index)| (key.clone(), *index))
            .collect();
        for (key, index) in unexplained {
            self.problems.push(Finding::at_index(
                index,
                format!(
                    "entry at index {index}: the personal data under key {key} is missing, and no audit.cleared entry names that key: it was removed without a clearing"
                ),
            ));
        }
        let count = self.problems.count();
        let mut step = if count == 0 {
            Step::new(
                Check::Openings,
                Status::Passed,
                format!(
                    "{} openings of personal data match their commitments; {} cleared",
                    self.checked, self.cleared
                ),
            )
        } else {
            Step::new(
                Check::Openings,
                Status::Failed,
                format!(
                    "{count} openings of personal data do not match the commitments of their entries ({} checked, {} cleared)",
                    self.checked, self.cleared
                ),
            )
        };
        step.findings = self.problems.findings;
        step.findings_omitted = self.problems.omitted;
        step
    }
}

/// Step 1. Returns the checkpoint only when the step passed.
fn check_checkpoint(
    verifier: &CheckpointVerifier,
    header: &ExportHeader,
) -> (Step, Option<Checkpoint>) {
    let failed = |message: String| (Step::new(Check::Checkpoint, Status::Failed, message), None);
    let checkpoint = match verifier.verify(&header.checkpoint_note) {
        Ok(checkpoint) => checkpoint,
        Err(e) => {
            return failed(format!(
                "the export's checkpoint does not verify with the pinned key {} for origin {:?}: {e}",
                hex::encode(verifier.key_id()),
                verifier.name()
            ));
        }
    };
    if header.origin != checkpoint.origin() {
        return failed(format!(
            "the header names origin {:?} but the checkpoint is for {:?}",
            header.origin,
            checkpoint.origin()
        ));
    }
    if header.tree_size != checkpoint.size() {
        return failed(format!(
            "the checkpoint is for {} entries but the header announces {}",
            checkpoint.size(),
            header.tree_size
        ));
    }
    let step = Step::new(
        Check::Checkpoint,
        Status::Passed,
        format!(
            "signed by key {} for origin {:?}: {} entries, root {}",
            hex::encode(verifier.key_id()),
            checkpoint.origin(),
            checkpoint.size(),
            hex::encode(checkpoint.root())
        ),
    );
    (step, Some(checkpoint))
}

/// Step 2.
fn leaf_hash_step(mismatches: FindingList, total: u64) -> Step {
    let count = mismatches.count();
    let mut step = if count == 0 {
        Step::new(
            Check::LeafHashes,
            Status::Passed,
            format!("all {total} entries hash to the leaf hash recorded when they were appended"),
        )
    } else {
        Step::new(
            Check::LeafHashes,
            Status::Failed,
            format!(
                "{count} of {total} entries do not hash to the leaf hash recorded when they were appended: their bytes were changed after they were appended"
            ),
        )
    };
    step.findings = mismatches.findings;
    step.findings_omitted = mismatches.omitted;
    step
}

/// Step 3.
fn root_step(
    checkpoint: Option<&Checkpoint>,
    tree: &MerkleTree,
    recorded_root: Hash,
    leaf_step: &Step,
    older: &[Result<Checkpoint, MerkleError>],
) -> Step {
    let Some(checkpoint) = checkpoint else {
        return Step::new(
            Check::Root,
            Status::Skipped,
            "not checked: there is no verified signed root to compare with (see the export checkpoint step)",
        );
    };
    let total = tree.len();
    let signed = checkpoint.root();
    let computed = tree.root();
    if &computed == signed {
        return Step::new(
            Check::Root,
            Status::Passed,
            format!(
                "the {total} entries produce the signed root {}",
                hex::encode(signed)
            ),
        );
    }
    let mismatch = format!(
        "the {total} entries produce root {}, not the signed root {}",
        hex::encode(computed),
        hex::encode(signed)
    );

    if &recorded_root == signed {
        let listed: Vec<String> = leaf_step
            .findings
            .iter()
            .filter_map(|f| f.index)
            .take(10)
            .map(|i| i.to_string())
            .collect();
        let more = if leaf_step.findings.len() > listed.len() || leaf_step.findings_omitted > 0 {
            ", …"
        } else {
            ""
        };
        return Step::new(
            Check::Root,
            Status::Failed,
            format!(
                "{mismatch}; the recorded leaf hashes do produce it, so the change is exactly in the entries whose bytes no longer match their recorded leaf hash (indices {}{more}, see the entry leaf hashes step)",
                listed.join(", ")
            ),
        );
    }

    let mut step = Step::new(
        Check::Root,
        Status::Failed,
        format!(
            "{mismatch}; the recorded leaf hashes do not produce it either, so entries were changed together with their recorded leaf hashes, or removed, inserted or reordered"
        ),
    );
    let usable: Vec<&Checkpoint> = older
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|cp| cp.size() <= total)
        .collect();
    if usable.is_empty() {
        step.message
            .push_str("; give older checkpoints to narrow down where");
        return step;
    }
    let range = localise(tree, &usable);
    let (start, end) = (range.start, range.end);
    let mut reasons = Vec::new();
    if start > 0 {
        reasons.push(format!(
            "the first {start} entries reproduce the root of the older checkpoint of size {start}"
        ));
    }
    if end < total {
        reasons.push(format!(
            "the first {end} entries do not reproduce the root of the older checkpoint of size {end}"
        ));
    }
    let message = if reasons.is_empty() {
        format!(
            "no older checkpoint narrows it down: a change lies somewhere in entries {range} (indices 0 to {})",
            end.saturating_sub(1)
        )
    } else {
        format!(
            "a change lies in entries {range} (indices {start} to {}): {}",
            end.saturating_sub(1),
            reasons.join(", ")
        )
    };
    step.findings.push(Finding::in_range(range, message));
    step
}

/// The narrowest range `[a, b)` the older checkpoints allow: `b` is the
/// smallest older size whose root the export's prefix does not reproduce
/// (else the full size), `a` the largest older size below `b` whose root it
/// does reproduce (else 0).
fn localise(tree: &MerkleTree, older: &[&Checkpoint]) -> EntryRange {
    let matches = |cp: &Checkpoint| tree.root_at(cp.size()).is_ok_and(|r| &r == cp.root());
    let end = older
        .iter()
        .filter(|cp| !matches(cp))
        .map(|cp| cp.size())
        .min()
        .unwrap_or(tree.len());
    let start = older
        .iter()
        .filter(|cp| cp.size() < end && matches(cp))
        .map(|cp| cp.size())
        .max()
        .unwrap_or(0);
    EntryRange { start, end }
}

/// Step 4, for the older checkpoint at `position` (from 1).
fn consistency_step(
    position: usize,
    older: &Result<Checkpoint, MerkleError>,
    checkpoint: Option<&Checkpoint>,
    tree: &MerkleTree,
) -> Step {
    let old = match older {
        Ok(old) => old,
        Err(e) => {
            return Step::new(
                Check::Consistency {
                    older_checkpoint: position,
                    size: None,
                },
                Status::Failed,
                format!("the older checkpoint does not verify with the pinned key: {e}"),
            );
        }
    };
    let (old_size, old_root) = (old.size(), old.root());
    let check = Check::Consistency {
        older_checkpoint: position,
        size: Some(old_size),
    };
    let Some(new) = checkpoint else {
        return Step::new(
            check,
            Status::Skipped,
            "not checked: the export's own checkpoint did not verify (see the export checkpoint step)",
        );
    };
    let new_size = new.size();
    if old_size > new_size {
        return Step::new(
            check,
            Status::Failed,
            format!(
                "the older checkpoint is for {old_size} entries, more than the {new_size} in this export: this export cannot show it is consistent (use a newer export)"
            ),
        );
    }
    if old_size == 0 {
        return Step::new(
            check,
            Status::Passed,
            "an empty tree is a prefix of every tree",
        );
    }
    let result = tree
        .consistency_proof(old_size, new_size)
        .and_then(|proof| {
            verify_consistency(old_size, new_size, old_root, new.root(), &proof)?;
            Ok(proof.len())
        });
    match result {
        Ok(proof_len) if old_size == new_size => Step::new(
            check,
            Status::Passed,
            format!(
                "same size and same root as the export's checkpoint (proof of {proof_len} hashes)"
            ),
        ),
        Ok(proof_len) => Step::new(
            check,
            Status::Passed,
            format!(
                "an RFC 9162 consistency proof of {proof_len} hashes verifies from its root to the export's signed root: the log only grew since"
            ),
        ),
        Err(e) => {
            let prefix_matches = tree.root_at(old_size).is_ok_and(|r| &r == old_root);
            let message = if prefix_matches {
                format!(
                    "the export's first {old_size} entries reproduce this checkpoint's root, but the export's entries do not produce the export's signed root, so no proof reaches it (see the tree root step; {e})"
                )
            } else {
                format!(
                    "the export's first {old_size} entries do not reproduce this checkpoint's root {}: the log was rewritten or forked after it was signed, or the export was altered ({e})",
                    hex::encode(old_root)
                )
            };
            Step::new(check, Status::Failed, message)
        }
    }
}

/// Step 5.
fn inclusion_step(
    index: u64,
    checkpoint: Option<&Checkpoint>,
    included: Option<ExportEntry>,
    tree: &MerkleTree,
) -> (Step, Option<InclusionDetails>) {
    let check = Check::Inclusion { index };
    let Some(checkpoint) = checkpoint else {
        let step = Step::new(
            check,
            Status::Skipped,
            "not checked: there is no verified signed root to prove inclusion under (see the export checkpoint step)",
        );
        return (step, None);
    };
    let Some(entry) = included else {
        // The reader guarantees every index below the tree size was read.
        let step = Step::new(
            check,
            Status::Failed,
            format!("the entry with index {index} was not found in the export"),
        );
        return (step, None);
    };
    let size = checkpoint.size();
    let leaf = leaf_hash(&entry.entry);
    let proof = match tree.inclusion_proof(index, size) {
        Ok(proof) => proof,
        Err(e) => {
            let step = Step::new(
                check,
                Status::Failed,
                format!("could not build an inclusion proof: {e}"),
            );
            return (step, None);
        }
    };
    let step = match verify_inclusion(&leaf, index, size, &proof, checkpoint.root()) {
        Ok(()) => Step::new(
            check,
            Status::Passed,
            format!(
                "an RFC 9162 inclusion proof of {} hashes from its leaf hash verifies to the signed root of size {size}",
                proof.len()
            ),
        ),
        Err(e) => Step::new(
            check,
            Status::Failed,
            format!(
                "the inclusion proof does not verify against the signed root ({e}): the export's entries do not produce the signed root (see the tree root step)"
            ),
        ),
    };
    let details = InclusionDetails {
        index,
        tree_size: size,
        entry_json: entry.entry_as_json().ok(),
        entry: entry.entry,
        leaf_hash: leaf,
        proof,
        root: *checkpoint.root(),
    };
    (step, Some(details))
}

impl Frontier {
    /// The frontier of every leaf of `tree`, read off the tree instead of
    /// hashed again.
    fn of_prefix(tree: &MerkleTree) -> Self {
        Self {
            peaks: tree.peaks(),
        }
    }

    fn push(&mut self, leaf: Hash) {
        let mut size = 1u64;
        let mut hash = leaf;
        while let Some(&(last_size, last_hash)) = self.peaks.last() {
            if last_size != size {
                break;
            }
            self.peaks.pop();
            hash = node_hash(&last_hash, &hash);
            size = size.saturating_mul(2);
        }
        self.peaks.push((size, hash));
    }

    fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(&(_, mut acc)) = peaks.next() else {
            return empty_root();
        };
        for (_, peak) in peaks {
            acc = node_hash(peak, &acc);
        }
        acc
    }
}

impl FindingList {
    fn push(&mut self, finding: Finding) {
        if self.findings.len() < MAX_FINDINGS_PER_STEP {
            self.findings.push(finding);
        } else {
            self.omitted = self.omitted.saturating_add(1);
        }
    }

    fn count(&self) -> u64 {
        (self.findings.len() as u64).saturating_add(self.omitted)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn frontier_root_matches_the_merkle_tree_at_every_size() {
        let mut frontier = Frontier::default();
        let mut tree = MerkleTree::new();
        assert_eq!(frontier.root(), tree.root());
        for i in 0u32..300 {
            let leaf = leaf_hash(&i.to_be_bytes());
            frontier.push(leaf);
            tree.push(leaf);
            assert_eq!(frontier.root(), tree.root(), "size {}", i + 1);
            assert_eq!(frontier.peaks.len() as u32, (i + 1).count_ones());
        }
    }

    fn commitment(salt: &[u8], data: &[u8]) -> String {
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        sha2::Digest::update(&mut hasher, salt);
        sha2::Digest::update(&mut hasher, data);
        hex::encode(sha2::Digest::finalize(hasher))
    }

    #[test]
    fn openings_are_checked_against_their_commitments_and_absent_ones_are_cleared() {
        let person = crate::ExportOpening {
            key: "k-1".into(),
            salt: vec![1; 32],
            data: br#"{"person_refs":["hmac-sha256:ab"]}"#.to_vec(),
        };
        let leaf = format!(
            r#"{{"format":"tryggdel.audit.entry/2","openings":[{{"key":"k-1","commitment":"{}"}},{{"key":"k-2","commitment":"{}"}}]}}"#,
            commitment(&person.salt, &person.data),
            "00".repeat(32)
        );
        let mut tally = OpeningsTally::default();
        tally.check(4, leaf.as_bytes(), std::slice::from_ref(&person));
        assert_eq!((tally.checked, tally.cleared), (1, 1));
        // Absent, and no tombstone names its key: removed without a clearing.
        let step = tally.step();
        assert!(!step.passed());
        assert_eq!(step.findings[0].index, Some(4));
        assert!(step.findings[0].message.contains("key k-2"), "{step}");
        // With the clearing's tombstone (later in the log) it is a cleared part.
        let mut tally = OpeningsTally::default();
        tally.check(4, leaf.as_bytes(), std::slice::from_ref(&person));
        tally.check(
            9,
            br#"{"format":"tryggdel.audit.entry/2","action":"audit.cleared","details":{"key_ids":"k-0,k-2"},"openings":[]}"#,
            &[],
        );
        assert_eq!((tally.checked, tally.cleared), (1, 1));
        assert!(tally.step().passed());

        let mut changed = person.clone();
        changed.data = br#"{"person_refs":["hmac-sha256:cd"]}"#.to_vec();
        let mut tally = OpeningsTally::default();
        tally.check(4, leaf.as_bytes(), &[changed]);
        let step = tally.step();
        assert!(!step.passed());
        assert_eq!(step.findings[0].index, Some(4));
        assert!(step.findings[0].message.contains("key k-1"), "{step}");

        let mut stray = person.clone();
        stray.key = "k-9".into();
        let mut tally = OpeningsTally::default();
        tally.check(5, br#"{"format":"tryggdel.audit.entry/1"}"#, &[stray]);
        assert!(!tally.step().passed());

        // Format-1 entries and entries without personal data are not this step's concern.
        let mut tally = OpeningsTally::default();
        tally.check(
            6,
            br#"{"format":"tryggdel.audit.entry/1","person_refs":["x"]}"#,
            &[],
        );
        assert_eq!(
            (tally.checked, tally.cleared, tally.problems.count()),
            (0, 0, 0)
        );
    }

    #[test]
    fn finding_list_caps_and_counts() {
        let mut list = FindingList::default();
        for i in 0..(MAX_FINDINGS_PER_STEP as u64 + 7) {
            list.push(Finding::at_index(i, "x"));
        }
        assert_eq!(list.findings.len(), MAX_FINDINGS_PER_STEP);
        assert_eq!(list.omitted, 7);
        assert_eq!(list.count(), MAX_FINDINGS_PER_STEP as u64 + 7);
    }
}
