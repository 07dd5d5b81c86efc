//! The export format: the writer's refusals, the reader's round trip, and
//! every reader error naming its line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Log, lines, unlines};
use tryggdel_audit_verify::{
    ExportEntry, ExportHeader, ExportReader, ExportWriter, FORMAT, MAX_LINE_LEN, VerifyError,
};
use tryggdel_merkle::leaf_hash;

fn header(tree_size: u64) -> ExportHeader {
    ExportHeader {
        origin: "tryggdel.test/audit".to_owned(),
        tree_size,
        checkpoint_note: "tryggdel.test/audit\n2\nAAAA\n\n— sig\n".to_owned(),
    }
}

fn entry(index: u64) -> ExportEntry {
    let bytes = format!(r#"{{"seq":{index}}}"#).into_bytes();
    ExportEntry {
        index,
        recorded_leaf_hash: leaf_hash(&bytes),
        entry: bytes,
    }
}

/// Reads the whole export, returning the first error.
fn read_all(export: &[u8]) -> Result<(ExportHeader, Vec<ExportEntry>), VerifyError> {
    let reader = ExportReader::new(export)?;
    let header = reader.header().clone();
    let entries = reader.collect::<Result<Vec<_>, _>>()?;
    Ok((header, entries))
}

/// The (line, problem) of a malformed export.
fn problem(export: &[u8]) -> (u64, String) {
    match read_all(export) {
        Err(VerifyError::Malformed { line, problem }) => (line, problem),
        other => panic!("expected a malformed export, got {other:?}"),
    }
}

/// A two-entry export with line `line` (1-based) replaced.
fn with_line(line: usize, text: &str) -> Vec<u8> {
    let mut l = lines(&Log::new(2).export());
    l[line - 1] = text.to_owned();
    unlines(&l)
}

#[test]
fn writer_output_reads_back_identically() {
    let entries: Vec<ExportEntry> = (0..5).map(entry).collect();
    let mut writer = ExportWriter::new(Vec::new(), &header(5)).unwrap();
    for e in &entries {
        writer.write_entry(e).unwrap();
    }
    let export = writer.finish().unwrap();
    let text = String::from_utf8(export.clone()).unwrap();
    assert!(text.ends_with('\n'));
    assert_eq!(text.lines().count(), 6);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["format"], FORMAT);
    assert_eq!(first["tree_size"], 5);
    let second: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    assert_eq!(second["index"], 0);
    assert_eq!(second["entry"], "eyJzZXEiOjB9");
    assert_eq!(second["leaf_hash"], hex::encode(leaf_hash(br#"{"seq":0}"#)));

    let (h, read) = read_all(&export).unwrap();
    assert_eq!(h, header(5));
    assert_eq!(read, entries);
    assert_eq!(read[3].entry_as_json().unwrap()["seq"], 3);
}

#[test]
fn reader_streams_and_counts() {
    let export = Log::new(3).export();
    let mut reader = ExportReader::new(export.as_slice()).unwrap();
    assert_eq!(reader.header().tree_size, 3);
    assert_eq!(reader.entries_read(), 0);
    assert_eq!(reader.next_entry().unwrap().unwrap().index, 0);
    assert_eq!(reader.entries_read(), 1);
    assert_eq!(reader.next_entry().unwrap().unwrap().index, 1);
    assert_eq!(reader.next_entry().unwrap().unwrap().index, 2);
    assert!(reader.next_entry().unwrap().is_none());
    assert!(reader.next_entry().unwrap().is_none());
}

#[test]
fn writer_refuses_out_of_order_too_many_and_too_few() {
    let mut writer = ExportWriter::new(Vec::new(), &header(2)).unwrap();
    let err = writer.write_entry(&entry(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot write the export: entry index 1 written where index 0 was expected (entries go in order 0, 1, 2, …)"
    );
    writer.write_entry(&entry(0)).unwrap();
    let err = writer.write_entry(&entry(0)).unwrap_err();
    assert!(
        err.to_string()
            .contains("entry index 0 written where index 1 was expected")
    );
    writer.write_entry(&entry(1)).unwrap();
    let err = writer.write_entry(&entry(2)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot write the export: entry index 2 is one too many: the header announces 2 entries"
    );
    assert_eq!(lines(&writer.finish().unwrap()).len(), 3);

    let mut writer = ExportWriter::new(Vec::new(), &header(3)).unwrap();
    writer.write_entry(&entry(0)).unwrap();
    let err = writer.finish().unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot write the export: only 1 of the 3 entries the header announces were written"
    );
}

#[test]
fn writer_refuses_a_line_readers_would_refuse() {
    let mut writer = ExportWriter::new(Vec::new(), &header(1)).unwrap();
    let huge = ExportEntry {
        index: 0,
        entry: vec![b'x'; MAX_LINE_LEN],
        recorded_leaf_hash: [0; 32],
    };
    let err = writer.write_entry(&huge).unwrap_err();
    assert!(matches!(err, VerifyError::InvalidWrite(_)), "{err}");
    assert!(err.to_string().contains("byte limit"), "{err}");
}

#[test]
fn writer_reports_io_errors_and_then_refuses() {
    /// Accepts `room` bytes, then fails.
    #[derive(Debug)]
    struct Full {
        room: usize,
    }
    impl std::io::Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if buf.len() > self.room {
                return Err(std::io::Error::other("disk full"));
            }
            self.room -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let err = ExportWriter::new(Full { room: 0 }, &header(0)).unwrap_err();
    assert_eq!(err.to_string(), "writing the export failed: disk full");

    // Room for the header line only.
    let header_len = serde_json::to_vec(&serde_json::json!({
        "format": FORMAT,
        "origin": "tryggdel.test/audit",
        "tree_size": 2,
        "checkpoint": header(2).checkpoint_note,
    }))
    .unwrap()
    .len()
        + 1;
    let mut writer = ExportWriter::new(Full { room: header_len }, &header(2)).unwrap();
    let err = writer.write_entry(&entry(0)).unwrap_err();
    assert!(matches!(err, VerifyError::Write { .. }), "{err}");
    let err = writer.write_entry(&entry(0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot write the export: an earlier write failed, the output is incomplete"
    );
    assert!(writer.finish().is_err());
}

#[test]
fn header_problems_are_reported_on_line_1() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "the export is empty: there is no header line"),
        (b"not json\n", "the header is not valid JSON: expected ident (column 2)"),
        (b"[1,2]\n", "the header is not a JSON object"),
        (
            br#"{"origin":"o","tree_size":0,"checkpoint":"c"}"#,
            "the header has no \"format\" field: this is not a tryggdel audit export",
        ),
        (
            br#"{"format":"tryggdel-audit-export/2","origin":"o","tree_size":0,"checkpoint":"c"}"#,
            "unsupported export format \"tryggdel-audit-export/2\": this reader understands \"tryggdel-audit-export/1\"",
        ),
        (br#"{"format":1}"#, "the header's \"format\" is not a string"),
        (
            br#"{"format":"tryggdel-audit-export/1","origin":"o","checkpoint":"c"}"#,
            "invalid header: missing field `tree_size`",
        ),
        (
            br#"{"format":"tryggdel-audit-export/1","origin":"o","tree_size":-1,"checkpoint":"c"}"#,
            "invalid header: invalid value: integer `-1`, expected u64",
        ),
        (
            br#"{"format":"tryggdel-audit-export/1","origin":"o","tree_size":0,"checkpoint":"c","extra":1}"#,
            "invalid header: unknown field `extra`, expected one of `format`, `origin`, `tree_size`, `checkpoint`",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            problem(input),
            (1, (*want).to_owned()),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn entry_line_problems_name_the_line() {
    let good_hash = hex::encode([7u8; 32]);
    let cases = [
        (
            3,
            "{\"index\":1,".to_owned(),
            "not a valid entry line (expected the entry with index 1): EOF while parsing a value (column 11)",
        ),
        (
            2,
            r#"{"index":0,"entry":"e30="}"#.to_owned(),
            "not a valid entry line (expected the entry with index 0): missing field `leaf_hash` (column 26)",
        ),
        (
            2,
            format!(r#"{{"index":0,"entry":"e30=","leaf_hash":"{good_hash}","note":1}}"#),
            "not a valid entry line (expected the entry with index 0): unknown field `note`, expected one of `index`, `entry`, `leaf_hash`, `openings` (column 111)",
        ),
        (
            2,
            format!(r#"{{"index":"0","entry":"e30=","leaf_hash":"{good_hash}"}}"#),
            "not a valid entry line (expected the entry with index 0): invalid type: string \"0\", expected u64 (column 12)",
        ),
        (
            3,
            format!(r#"{{"index":1,"entry":"e30","leaf_hash":"{good_hash}"}}"#),
            "entry with index 1: \"entry\" is not standard padded base64 (Invalid padding)",
        ),
        (
            3,
            format!(r#"{{"index":1,"entry":"e3!=","leaf_hash":"{good_hash}"}}"#),
            "entry with index 1: \"entry\" is not standard padded base64 (Invalid symbol 33, offset 2.)",
        ),
        (
            2,
            format!(
                r#"{{"index":0,"entry":"e30=","leaf_hash":"{}"}}"#,
                &good_hash[..62]
            ),
            "entry with index 0: \"leaf_hash\" is not a 32-byte hash in 64 lowercase hex digits",
        ),
        (
            2,
            format!(
                r#"{{"index":0,"entry":"e30=","leaf_hash":"{}"}}"#,
                good_hash.to_uppercase().replace('7', "A")
            ),
            "entry with index 0: \"leaf_hash\" is not a 32-byte hash in 64 lowercase hex digits",
        ),
        (
            3,
            format!(r#"{{"index":2,"entry":"e30=","leaf_hash":"{good_hash}"}}"#),
            "index 2 is beyond the header's tree_size 2 (expected the entry with index 1)",
        ),
        (
            2,
            String::new(),
            "empty line where the entry with index 0 was expected",
        ),
    ];
    for (line, text, want) in cases {
        assert_eq!(
            problem(&with_line(line, &text)),
            (line as u64, want.to_owned()),
            "{text}"
        );
    }
}

#[test]
fn too_few_too_many_and_trailing_content() {
    let export = Log::new(2).export();
    let mut l = lines(&export);

    l.truncate(2);
    assert_eq!(
        problem(&unlines(&l)),
        (3, "the export ends after 1 entries but the header announces 2: the entry with index 1 is missing".to_owned())
    );

    let mut trailing = export.clone();
    trailing.extend_from_slice(b"garbage");
    assert_eq!(
        problem(&trailing),
        (
            4,
            "unexpected content after the last of the 2 entries the header announces".to_owned()
        )
    );
    let mut blank = export.clone();
    blank.extend_from_slice(b"\n");
    assert_eq!(
        problem(&blank),
        (
            4,
            "unexpected empty line after the last of the 2 entries the header announces".to_owned()
        )
    );

    // A missing final newline is accepted.
    let unterminated = &export[..export.len() - 1];
    assert_eq!(read_all(unterminated).unwrap().1.len(), 2);
}

#[test]
fn an_overlong_line_is_refused_with_its_line_number() {
    let mut export = lines(&Log::new(2).export());
    export[2] = "x".repeat(MAX_LINE_LEN + 1);
    assert_eq!(
        problem(&unlines(&export)),
        (3, "the line is longer than the 16 MiB limit".to_owned())
    );
}

#[test]
fn the_reader_stops_after_the_first_error() {
    let export = with_line(2, "{}");
    let mut reader = ExportReader::new(export.as_slice()).unwrap();
    assert!(reader.next().unwrap().is_err());
    assert!(reader.next().is_none());
}
