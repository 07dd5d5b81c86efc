//! Conversion figures: a signed export of N entries (default 100,000; `figures N`) converted
//! to CSV, FHIR and PDF/A, printing the time, the rate and the output size of each. The
//! verification pass is included in every time, as it is in `tryggdel audit convert`.

#![allow(clippy::print_stdout)]

use std::io::{BufReader, BufWriter};
use std::time::Instant;

use tryggdel_audit_verify::{ExportEntry, ExportHeader, ExportWriter};
use tryggdel_merkle::checkpoint::{Checkpoint, CheckpointSigner};
use tryggdel_merkle::{MerkleTree, leaf_hash};
use tryggdel_supervisor_export::{Format, convert};

const ORIGIN: &str = "tryggdel.example/audit";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let size: u64 = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|_| format!("{n:?} is not a number of entries"))?,
        None => 100_000,
    };
    let directory = tempfile::tempdir()?;
    let export = directory.path().join("export.jsonl");
    let actions = [
        "disclosure.read",
        "disclosure.listed",
        "disclosure.delivered",
        "disclosure.approved",
    ];
    let entries: Vec<Vec<u8>> = (0..size)
        .map(|i| {
            format!(
                r#"{{"format":"tryggdel.audit.entry/1","recorded_at":"2026-12-03T10:00:00.000Z","event_id":"0190a3b2-7c4d-7e5f-8a9b-{i:012x}","source":"disclosure","action":"{}","occurred_at":"2026-12-03T10:00:00.000Z","outcome":"success","outcome_detail":"","actor":{{"user_id":"user-{}","roles":["officer"],"organisation":"region-vast","unit":"akuten"}},"organisation":"region-vast","disclosure_id":"0190a3b2-0000-7000-8000-{i:012x}","objects":[{{"kind":"disclosure","id":"0190a3b2-0000-7000-8000-{i:012x}"}}],"purpose":{{"legal_basis_id":"osl-10-21","registry_version":"2026-1","purpose":"Brott"}},"recipient":"polisen-region-vast","person_refs":["pr1_{i:032x}"],"trace_id":"","details":{{}}}}"#,
                actions[(i % 4) as usize],
                i % 97
            )
            .into_bytes()
        })
        .collect();
    let tree = MerkleTree::from_leaf_hashes(entries.iter().map(|e| leaf_hash(e)));
    let signer = CheckpointSigner::new(ed25519_dalek::SigningKey::from_bytes(&[7; 32]), ORIGIN)?;
    let note = signer.sign(&Checkpoint::new(ORIGIN, size, tree.root())?)?;
    let header = ExportHeader {
        origin: ORIGIN.to_owned(),
        tree_size: size,
        checkpoint_note: note,
    };
    let mut writer = ExportWriter::new(BufWriter::new(std::fs::File::create(&export)?), &header)?;
    for (index, entry) in entries.iter().enumerate() {
        writer.write_entry(&ExportEntry {
            index: index as u64,
            entry: entry.clone(),
            recorded_leaf_hash: leaf_hash(entry),
        })?;
    }
    writer.finish()?;
    drop(entries);
    let export_bytes = std::fs::metadata(&export)?.len();
    println!(
        "export: {size} entries, {:.1} MB",
        export_bytes as f64 / 1e6
    );
    let verifier = signer.verifier();
    for format in [Format::Csv, Format::Fhir, Format::Pdf] {
        let out = directory.path().join(format!("out.{}", format.name()));
        let started = Instant::now();
        let (converted, _) = convert(
            || std::fs::File::open(&export).map(BufReader::new),
            &verifier,
            format,
            time::OffsetDateTime::now_utc(),
            BufWriter::new(std::fs::File::create(&out)?),
        )?;
        let seconds = started.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(&out)?.len();
        println!(
            "{:>4}: {} entries in {seconds:.2} s ({:.0} entries/s, verification included), {:.1} MB",
            format.name(),
            converted.entries,
            converted.entries as f64 / seconds,
            bytes as f64 / 1e6
        );
    }
    Ok(())
}
