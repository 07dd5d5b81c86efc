//! The offline verifier against real signed logs: honest exports pass;
//! every kind of tampering fails and says where.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Log, ORIGIN, lines, signing_key, unlines, verify, write_export};
use proptest::prelude::*;
use tryggdel_audit_verify::{
    Check, CheckpointVerifier, ExportHeader, Progress, Report, Status, VerifyError, VerifyOptions,
    verify_export,
};
use tryggdel_merkle::checkpoint::CheckpointSigner;
use tryggdel_merkle::{leaf_hash, verify_inclusion};

fn step<'a>(report: &'a Report, check: &Check) -> &'a tryggdel_audit_verify::Step {
    report
        .step(check)
        .unwrap_or_else(|| panic!("no step {check:?} in\n{report}"))
}

fn consistency(position: usize, size: u64) -> Check {
    Check::Consistency {
        older_checkpoint: position,
        size: Some(size),
    }
}

/// The consistency check against an older checkpoint that did not verify, so has no size.
fn unverified_consistency(position: usize) -> Check {
    Check::Consistency {
        older_checkpoint: position,
        size: None,
    }
}

/// Asserts that `step` failed with a message containing `needle`.
#[track_caller]
fn assert_failed_saying(step: &tryggdel_audit_verify::Step, needle: &str) {
    assert_eq!(step.status, Status::Failed, "{}", step.message);
    assert!(step.message.contains(needle), "{}", step.message);
}

fn leaf_finding_indices(report: &Report) -> Vec<u64> {
    step(report, &Check::LeafHashes)
        .findings
        .iter()
        .map(|f| f.index.unwrap())
        .collect()
}

#[test]
fn honest_exports_verify_at_many_sizes() {
    for n in [0u64, 1, 2, 3, 7, 8, 100, 1000] {
        let log = Log::new(n);
        let mut options = log.options();
        options.older_checkpoints =
            vec![log.checkpoint(0), log.checkpoint(n / 2), log.checkpoint(n)];
        if n > 0 {
            options.inclusion_of = Some(n / 3);
        }
        let report = verify(&log.export(), &options).unwrap();
        assert!(report.is_ok(), "size {n}:\n{report}");
        assert_eq!(report.tree_size, n);
        assert_eq!(report.origin, ORIGIN);
        assert_eq!(report.computed_root, log.tree.root());
        assert_eq!(report.checkpoint_root, Some(log.tree.root()));
        assert_eq!(report.steps.len(), 3 + 3 + usize::from(n > 0));
        assert!(report.steps.iter().all(|s| s.status == Status::Passed));
        assert_eq!(report.findings().count(), 0);
        let text = report.to_string();
        assert!(text.contains("1. export checkpoint: ok ("), "{text}");
        assert!(text.contains("result: VERIFIED"), "{text}");
        assert!(!text.contains("FAILED"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["tree_size"], n);
        assert_eq!(json["computed_root"], hex::encode(log.tree.root()));
    }
}

#[test]
fn entry_bytes_are_hashed_exactly_as_stored() {
    // Odd whitespace, key order and escapes survive; re-serialising them
    // would change the hash. Non-JSON and non-UTF-8 bytes are still entries.
    let entries = vec![
        br#"{ "b" : 1,   "a":[1,2 ,3] }"#.to_vec(),
        br#"{"name":"\u00c5sa","z":1.50}"#.to_vec(),
        b"not json at all".to_vec(),
        vec![0xff, 0x00, 0xfe],
        Vec::new(),
        b"{\n  \"note\": \"\\u001b[2J\"\n}".to_vec(),
        b"raw \x1b[2J escape".to_vec(),
    ];
    let log = Log::from_entries(entries.clone());
    for (index, entry) in entries.iter().enumerate() {
        let mut options = log.options();
        options.inclusion_of = Some(index as u64);
        let report = verify(&log.export(), &options).unwrap();
        assert!(report.is_ok(), "{report}");
        let details = report.inclusion.clone().unwrap();
        assert_eq!(&details.entry, entry);
        assert_eq!(details.leaf_hash, leaf_hash(entry));
        assert_eq!(
            details.entry_json,
            serde_json::from_slice::<serde_json::Value>(entry).ok()
        );
        // The text report shows the stored text as is, and never a raw
        // control character.
        let text = report.to_string();
        assert!(!text.contains('\u{1b}'), "{text:?}");
        let shown = text
            .lines()
            .find_map(|l| l.strip_prefix("   entry:     "))
            .unwrap();
        match index {
            0 | 1 => assert_eq!(shown.as_bytes(), entry.as_slice()),
            5 => assert!(
                shown.starts_with(r#"{"note":"\u001b[2J"} (re-serialised"#),
                "{shown}"
            ),
            3 | 6 => assert!(shown.contains("not printable text) base64"), "{shown}"),
            _ => {}
        }
    }
}

#[test]
fn changed_entry_bytes_are_named_by_index() {
    let log = Log::new(50);
    let mut entries = log.export_entries();
    entries[17].entry[5] ^= 0x01;
    let export = write_export(&log.header(), &entries);
    let report = verify(&export, &log.options()).unwrap();
    assert!(!report.is_ok());
    assert!(step(&report, &Check::Checkpoint).passed());

    let leaves = step(&report, &Check::LeafHashes);
    assert_eq!(leaves.status, Status::Failed);
    assert_eq!(leaf_finding_indices(&report), vec![17]);
    let message = &leaves.findings[0].message;
    assert!(
        message.starts_with("entry at index 17: its bytes do not hash to the leaf hash recorded when it was appended (recorded "),
        "{message}"
    );
    assert!(message.contains(&hex::encode(leaf_hash(&log.entries[17]))));
    assert!(message.contains(&hex::encode(leaf_hash(&entries[17].entry))));

    let root = step(&report, &Check::Root);
    assert_failed_saying(root, "recorded leaf hashes do produce it");
    assert!(root.message.contains("indices 17"), "{}", root.message);

    let text = report.to_string();
    assert!(
        text.contains("2. entry leaf hashes: FAILED: 1 of 50 entries"),
        "{text}"
    );
    assert!(text.contains("   - entry at index 17: its bytes"), "{text}");
    assert!(text.contains("3. tree root: FAILED: "), "{text}");
    assert!(
        text.contains("result: FAILED (2 failed, 0 not checked, 1 passed)"),
        "{text}"
    );

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["steps"][1]["status"], "failed");
    assert_eq!(json["steps"][1]["findings"][0]["index"], 17);
}

#[test]
fn every_changed_entry_is_listed_up_to_the_cap() {
    let log = Log::new(300);
    let mut entries = log.export_entries();
    for i in [3usize, 64, 299] {
        entries[i].entry.push(b' ');
    }
    let report = verify(&write_export(&log.header(), &entries), &log.options()).unwrap();
    assert_eq!(leaf_finding_indices(&report), vec![3, 64, 299]);

    for e in &mut entries {
        e.entry.push(b' ');
    }
    let report = verify(&write_export(&log.header(), &entries), &log.options()).unwrap();
    let leaves = step(&report, &Check::LeafHashes);
    assert_eq!(leaves.findings.len(), 100);
    assert_eq!(leaves.findings_omitted, 200);
    assert!(
        leaves.message.starts_with("300 of 300 entries"),
        "{}",
        leaves.message
    );
    assert!(report.to_string().contains("   - … and 200 more"));
}

#[test]
fn entry_changed_with_its_recorded_hash_is_localised_by_older_checkpoints() {
    let log = Log::new(100);
    let k = 37;
    let mut entries = log.export_entries();
    entries[k].entry = br#"{"seq":37,"event":"nothing to see here"}"#.to_vec();
    entries[k].recorded_leaf_hash = leaf_hash(&entries[k].entry);
    let export = write_export(&log.header(), &entries);

    // Without older checkpoints: the root fails and says why it cannot say
    // where.
    let report = verify(&export, &log.options()).unwrap();
    assert!(!report.is_ok());
    assert!(step(&report, &Check::LeafHashes).passed());
    let root = step(&report, &Check::Root);
    assert_failed_saying(root, "do not produce it either");
    assert!(
        root.message.contains("give older checkpoints"),
        "{}",
        root.message
    );

    // With checkpoints before and after index 37.
    let mut options = log.options();
    options.older_checkpoints = [60, 10, 40, 20].map(|s| log.checkpoint(s)).to_vec();
    let report = verify(&export, &options).unwrap();
    let root = step(&report, &Check::Root);
    let range = root.findings[0].range.unwrap();
    assert_eq!((range.start, range.end), (20, 40));
    assert!(range.contains(k as u64));
    assert!(
        root.findings[0]
            .message
            .starts_with("a change lies in entries [20, 40) (indices 20 to 39)"),
        "{}",
        root.findings[0].message
    );
    // Prefixes before the change match their checkpoints; later ones do not.
    for (position, size) in [(2, 10), (4, 20)] {
        let s = step(&report, &consistency(position, size));
        assert_failed_saying(s, &format!("first {size} entries reproduce"));
    }
    for (position, size) in [(1, 60), (3, 40)] {
        let s = step(&report, &consistency(position, size));
        assert_failed_saying(s, "do not reproduce");
    }

    // Only checkpoints after the change: [0, 40).
    options.older_checkpoints = [40, 60].map(|s| log.checkpoint(s)).to_vec();
    let report = verify(&export, &options).unwrap();
    let range = step(&report, &Check::Root).findings[0].range.unwrap();
    assert_eq!((range.start, range.end), (0, 40));

    // Only checkpoints before the change: [20, 100).
    options.older_checkpoints = [20].map(|s| log.checkpoint(s)).to_vec();
    let report = verify(&export, &options).unwrap();
    let range = step(&report, &Check::Root).findings[0].range.unwrap();
    assert_eq!((range.start, range.end), (20, 100));
}

#[test]
fn swapped_entry_contents_are_caught_by_the_root() {
    let log = Log::new(10);
    let mut entries = log.export_entries();
    let (a, b) = (entries[3].clone(), entries[4].clone());
    entries[3].entry = b.entry;
    entries[3].recorded_leaf_hash = b.recorded_leaf_hash;
    entries[4].entry = a.entry;
    entries[4].recorded_leaf_hash = a.recorded_leaf_hash;
    let mut options = log.options();
    options.older_checkpoints = vec![log.checkpoint(2), log.checkpoint(6)];
    let report = verify(&write_export(&log.header(), &entries), &options).unwrap();
    assert!(step(&report, &Check::LeafHashes).passed());
    let range = step(&report, &Check::Root).findings[0].range.unwrap();
    assert_eq!((range.start, range.end), (2, 6));
}

fn malformed(result: Result<Report, VerifyError>) -> (u64, String) {
    match result {
        Err(VerifyError::Malformed { line, problem }) => (line, problem),
        other => panic!("expected a malformed export, got {other:?}"),
    }
}

/// The export of `lines` after `change`, verified with `options`.
fn verify_changed(
    lines: &[String],
    options: &VerifyOptions,
    change: impl FnOnce(&mut Vec<String>),
) -> Result<Report, VerifyError> {
    let mut changed = lines.to_vec();
    change(&mut changed);
    verify(&unlines(&changed), options)
}

#[test]
fn removed_duplicated_and_swapped_lines_are_refused_naming_line_and_index() {
    let log = Log::new(10);
    let original = lines(&log.export());
    let options = log.options();

    // The entry with index i is line i + 2, element i + 1 here.
    // Remove the entry with index 5 (line 7).
    let err = verify_changed(&original, &options, |lines| {
        lines.remove(6);
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 7 of the export: index 6 where the entry with index 5 was expected: entries are missing or out of order"
    );

    // Remove the last entry.
    let (line, problem) = malformed(verify_changed(&original, &options, |lines| {
        lines.pop();
    }));
    assert_eq!(line, 11);
    assert!(
        problem.contains("ends after 9 entries but the header announces 10"),
        "{problem}"
    );

    // Duplicate the entry with index 5.
    let (line, problem) = malformed(verify_changed(&original, &options, |lines| {
        lines.insert(7, original[6].clone())
    }));
    assert_eq!(line, 8);
    assert_eq!(
        problem,
        "index 5 appears twice (expected the entry with index 6)"
    );

    // Duplicate the last entry: one more than announced.
    let (line, problem) = malformed(verify_changed(&original, &options, |lines| {
        lines.push(original[10].clone())
    }));
    assert_eq!(line, 12);
    assert!(
        problem.contains("an entry with index 9 follows the last of the 10 entries"),
        "{problem}"
    );

    // Swap the lines of indices 3 and 4.
    let (line, problem) = malformed(verify_changed(&original, &options, |lines| {
        lines.swap(4, 5)
    }));
    assert_eq!(line, 5);
    assert!(
        problem.starts_with("index 4 where the entry with index 3 was expected"),
        "{problem}"
    );
}

#[test]
fn wrong_key_wrong_origin_and_altered_signature_fail_the_checkpoint_step() {
    let log = Log::new(20);
    let export = log.export();

    let assert_checkpoint_fails = |report: &Report, needle: &str| {
        let s = step(report, &Check::Checkpoint);
        assert_eq!(s.status, Status::Failed, "{report}");
        assert!(s.message.contains(needle), "{}", s.message);
        assert!(!report.is_ok());
        assert_eq!(report.checkpoint_root, None);
        assert!(
            report
                .to_string()
                .contains("1. export checkpoint: FAILED: ")
        );
    };

    // A freshly generated key for the same origin.
    let other = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let mut options = log.options();
    options.verifier = CheckpointVerifier::new(ORIGIN, other.verifying_key()).unwrap();
    options.older_checkpoints = vec![log.checkpoint(10)];
    options.inclusion_of = Some(5);
    let report = verify(&export, &options).unwrap();
    assert_checkpoint_fails(&report, "has no signature from key");
    // Nothing that needs the signed root is claimed.
    assert_eq!(step(&report, &Check::Root).status, Status::Skipped);
    assert_eq!(
        step(&report, &Check::Inclusion { index: 5 }).status,
        Status::Skipped
    );
    let older = step(&report, &unverified_consistency(1));
    assert_failed_saying(older, "does not verify with the pinned key");
    assert!(report.inclusion.is_none());
    // The leaf hashes are still checked.
    assert!(step(&report, &Check::LeafHashes).passed());

    // The right key pinned to another origin, via its vkey string.
    let vkey = CheckpointVerifier::new("other.test/audit", signing_key(1).verifying_key())
        .unwrap()
        .to_vkey_string();
    let mut options = log.options();
    options.verifier = CheckpointVerifier::parse_vkey(&vkey).unwrap();
    assert_checkpoint_fails(
        &verify(&export, &options).unwrap(),
        "does not match expected origin",
    );

    // One signature character altered.
    let mut header = log.header();
    let at = header.checkpoint_note.len() - 5;
    let old = header.checkpoint_note.as_bytes()[at];
    let new = if old == b'A' { "B" } else { "A" };
    header.checkpoint_note.replace_range(at..=at, new);
    let export = write_export(&header, &log.export_entries());
    assert_checkpoint_fails(&verify(&export, &log.options()).unwrap(), "does not verify");

    // The root line of the note altered: the signature no longer covers it.
    let mut header = log.header();
    header.checkpoint_note = header.checkpoint_note.replacen("\n20\n", "\n21\n", 1);
    let export = write_export(&header, &log.export_entries());
    assert_checkpoint_fails(&verify(&export, &log.options()).unwrap(), "does not verify");

    // A header origin that is not the checkpoint's.
    let mut header = log.header();
    header.origin = "elsewhere.test/audit".to_owned();
    let export = write_export(&header, &log.export_entries());
    assert_checkpoint_fails(
        &verify(&export, &log.options()).unwrap(),
        "the header names origin \"elsewhere.test/audit\" but the checkpoint is for \"tryggdel.test/audit\"",
    );

    // A genuine checkpoint for fewer entries than the export holds.
    let mut header = log.header();
    header.checkpoint_note = log.checkpoint(15);
    let export = write_export(&header, &log.export_entries());
    assert_checkpoint_fails(
        &verify(&export, &log.options()).unwrap(),
        "the checkpoint is for 15 entries but the header announces 20",
    );
}

#[test]
fn older_checkpoints_from_a_fork_or_beyond_the_export_fail() {
    let log = Log::new(20);
    let export = log.export();

    // The same key signed a different history: entry 5 differs.
    let mut forked_entries = log.entries.clone();
    forked_entries[5] = br#"{"seq":5,"event":"forked"}"#.to_vec();
    let fork = Log::from_entries(forked_entries);

    let bigger = Log::new(25);
    let stranger = Log::with_signer(
        log.entries.clone(),
        CheckpointSigner::new(signing_key(9), ORIGIN).unwrap(),
    );

    let mut options = log.options();
    options.older_checkpoints = vec![
        log.checkpoint(12),
        fork.checkpoint(8),
        fork.checkpoint(4),
        bigger.checkpoint(25),
        stranger.checkpoint(10),
        log.checkpoint(20),
        fork.checkpoint(20),
    ];
    let report = verify(&export, &options).unwrap();
    assert!(!report.is_ok());
    // The export itself is fine.
    assert!(step(&report, &Check::Root).passed());

    assert!(step(&report, &consistency(1, 12)).passed());
    let forked = step(&report, &consistency(2, 8));
    assert_failed_saying(
        forked,
        "first 8 entries do not reproduce this checkpoint's root",
    );
    assert!(forked.message.contains("forked"), "{}", forked.message);
    // Before the fork point the histories agree.
    assert!(step(&report, &consistency(3, 4)).passed());
    let beyond = step(&report, &consistency(4, 25));
    assert_failed_saying(beyond, "for 25 entries, more than the 20 in this export");
    let foreign = step(&report, &unverified_consistency(5));
    assert_failed_saying(foreign, "does not verify with the pinned key");
    assert!(step(&report, &consistency(6, 20)).passed());
    assert_eq!(step(&report, &consistency(7, 20)).status, Status::Failed);

    let text = report.to_string();
    assert!(
        text.contains("consistency with older checkpoint 2 (size 8): FAILED: "),
        "{text}"
    );
    assert!(
        text.contains("consistency with older checkpoint 1 (size 12): ok ("),
        "{text}"
    );
}

#[test]
fn inclusion_of_an_entry_is_proven_and_shown() {
    let log = Log::new(20);
    let mut options = log.options();
    options.inclusion_of = Some(5);
    let report = verify(&log.export(), &options).unwrap();
    assert!(report.is_ok(), "{report}");
    assert!(step(&report, &Check::Inclusion { index: 5 }).passed());
    let details = report.inclusion.as_ref().unwrap();
    assert_eq!(details.index, 5);
    assert_eq!(details.tree_size, 20);
    assert_eq!(details.entry, log.entries[5]);
    assert_eq!(details.entry_json.as_ref().unwrap()["seq"], 5);
    assert_eq!(details.leaf_hash, leaf_hash(&log.entries[5]));
    assert_eq!(details.proof, log.tree.inclusion_proof(5, 20).unwrap());
    assert_eq!(details.root, log.tree.root());
    // The proof stands on its own.
    verify_inclusion(&details.leaf_hash, 5, 20, &details.proof, &details.root).unwrap();

    let text = report.to_string();
    assert!(text.contains("inclusion of entry 5: ok ("), "{text}");
    assert!(text.contains(r#"   entry:     {"#), "{text}");
    assert!(
        text.contains(&format!("     {}", hex::encode(details.proof[0]))),
        "{text}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["inclusion"]["leaf_hash"],
        hex::encode(details.leaf_hash)
    );
    assert_eq!(
        json["inclusion"]["proof"].as_array().unwrap().len(),
        details.proof.len()
    );

    // A changed entry elsewhere breaks the proof: the root is no longer the
    // signed one.
    let mut entries = log.export_entries();
    entries[11].entry[0] ^= 0x20;
    let report = verify(&write_export(&log.header(), &entries), &options).unwrap();
    assert_eq!(
        step(&report, &Check::Inclusion { index: 5 }).status,
        Status::Failed
    );
}

#[test]
fn inclusion_beyond_the_export_is_refused() {
    let log = Log::new(20);
    let mut options = log.options();
    options.inclusion_of = Some(20);
    let err = verify(&log.export(), &options).unwrap_err();
    assert!(matches!(
        err,
        VerifyError::InclusionIndexOutOfRange {
            index: 20,
            size: 20
        }
    ));
    assert_eq!(
        err.to_string(),
        "cannot prove inclusion of index 20: the export holds 20 entries (indices 0 to 19)"
    );

    let empty = Log::new(0);
    let mut options = empty.options();
    options.inclusion_of = Some(0);
    let err = verify(&empty.export(), &options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot prove inclusion of index 0: the export holds no entries"
    );
}

#[test]
fn progress_is_reported_periodically_and_at_the_end() {
    let log = Log::new(10_000);
    let mut seen = Vec::new();
    let report = verify_export(
        log.export().as_slice(),
        &log.options(),
        &mut |p: Progress| {
            assert_eq!(p.entries_total, 10_000);
            seen.push(p.entries_done);
        },
    )
    .unwrap();
    assert!(report.is_ok());
    assert_eq!(seen, vec![0, 4096, 8192, 10_000]);
}

#[test]
fn header_only_export_of_an_empty_log_verifies() {
    let log = Log::new(0);
    let export = log.export();
    assert_eq!(lines(&export).len(), 1);
    let report = verify(&export, &log.options()).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.computed_root, tryggdel_merkle::empty_root());
    // Announcing entries that are not there is a format error.
    let header = ExportHeader {
        tree_size: 1,
        ..log.header()
    };
    let mut text = lines(&export);
    text[0] = serde_json::json!({
        "format": "tryggdel-audit-export/1",
        "origin": header.origin,
        "tree_size": 1,
        "checkpoint": header.checkpoint_note,
    })
    .to_string();
    let (line, _) = malformed(verify(&unlines(&text), &log.options()));
    assert_eq!(line, 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// For any small log and any single-bit-pattern change to one byte of
    /// one entry, the verifier names exactly that entry.
    #[test]
    fn a_flipped_byte_is_reported_at_its_index(
        entries in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 1..40),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let log = Log::from_entries(entries);
        let mut exported = log.export_entries();
        let k = which.index(exported.len());
        let bytes = &mut exported[k].entry;
        let position = at.index(bytes.len());
        bytes[position] ^= mask;
        let report = verify(&write_export(&log.header(), &exported), &log.options()).unwrap();
        prop_assert!(!report.is_ok());
        prop_assert_eq!(leaf_finding_indices(&report), vec![k as u64]);
        prop_assert_eq!(step(&report, &Check::Root).status, Status::Failed);
        prop_assert!(step(&report, &Check::Checkpoint).passed());
    }
}
