//! The export file format: a JSON header line, then one JSON line per entry
//! in index order. [`ExportWriter`] produces it, [`ExportReader`] streams it
//! back and refuses anything that is not exactly that.

use std::borrow::Cow;
use std::io::{BufRead, Read as _, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tryggdel_merkle::Hash;

use crate::VerifyError;

/// The header's `format` tag for this version of the export format.
pub const FORMAT: &str = "tryggdel-audit-export/1";

/// The longest line (without its `\n`) the reader accepts and the writer
/// produces: 16 MiB, room for an entry of about 12 MiB.
pub const MAX_LINE_LEN: usize = 16 * 1024 * 1024;

/// The first line of an export: which log, how many entries, and the signed
/// checkpoint the export was taken at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportHeader {
    /// The log's origin (its checkpoint origin line and key name).
    pub origin: String,
    /// The number of entries that follow the header.
    pub tree_size: u64,
    /// The complete signed checkpoint note (C2SP signed-note text) for
    /// `tree_size` entries.
    pub checkpoint_note: String,
}

/// One log entry as exported: its index, its exact stored bytes, and the
/// leaf hash the log recorded when it was appended.
///
/// [`ExportReader::next_entry_ref`] yields the same as an [`EntryRef`] that
/// borrows the reader's buffers instead of owning its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportEntry {
    /// The entry's position in the log, from 0.
    pub index: u64,
    /// The exact bytes the log stored (JSON produced by the audit service,
    /// but treated as opaque bytes for hashing).
    pub entry: Vec<u8>,
    /// The leaf hash recorded at append time. The writer exports it as
    /// stored, even if it no longer matches `entry`: detecting that is the
    /// verifier's job.
    pub recorded_leaf_hash: Hash,
}

/// One of an entry's openings (format `tryggdel.audit.entry/2`): a part of its personal data
/// that has not been cleared. The leaf commits to it with `sha256(salt || data)` under `key`.
#[derive(Clone, PartialEq, Eq)]
pub struct ExportOpening {
    /// The key id the leaf lists it under.
    pub key: String,
    /// The random salt of its commitment.
    pub salt: Vec<u8>,
    /// Its canonical JSON.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for ExportOpening {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ExportOpening")
            .field("key", &self.key)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// One entry as [`ExportReader::next_entry_ref`] yields it: the bytes borrow
/// the reader's decode buffer and are valid until the next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The entry's position in the log, from 0.
    pub index: u64,
    /// The exact bytes the log stored.
    pub entry: &'a [u8],
    /// The leaf hash recorded at append time.
    pub recorded_leaf_hash: Hash,
    /// The openings exported beside it (format 2), empty when none.
    pub openings: &'a [ExportOpening],
}

impl EntryRef<'_> {
    /// An owned copy.
    #[must_use]
    pub fn to_entry(&self) -> ExportEntry {
        ExportEntry {
            index: self.index,
            entry: self.entry.to_vec(),
            recorded_leaf_hash: self.recorded_leaf_hash,
        }
    }
}

/// Writes an export: the header on construction, then the entries in index
/// order. Wrap the output in a `std::io::BufWriter` when it is a file.
#[derive(Debug)]
pub struct ExportWriter<W: Write> {
    out: W,
    tree_size: u64,
    written: u64,
    line: Vec<u8>,
    failed: bool,
}

/// Reads an export one entry at a time, checking the format as it goes.
///
/// [`ExportReader::new`] reads and checks the header; each call to
/// [`ExportReader::next_entry`] (or the [`Iterator`] implementation) reads
/// one entry line and checks that its index is the next one expected, that
/// `entry` is standard padded base64 and that `leaf_hash` is 64 lowercase
/// hex digits. After the last announced entry the input must end. Only one
/// line is held in memory at a time. After the first error the reader
/// yields nothing more.
///
/// Lines in exactly the layout [`ExportWriter`] produces are read on a fast
/// path (no JSON parser, SIMD base64); any other line, and every line the
/// fast path cannot decode, goes through the full JSON parser, so what is
/// accepted and every error message are the same either way.
#[derive(Debug)]
pub struct ExportReader<R: BufRead> {
    input: R,
    header: ExportHeader,
    next_index: u64,
    buf: Vec<u8>,
    decoded: Vec<u8>,
    /// The openings of the entry read last.
    openings: Vec<ExportOpening>,
    done: bool,
}

#[derive(Serialize)]
struct HeaderLineOut<'a> {
    format: &'a str,
    origin: &'a str,
    tree_size: u64,
    checkpoint: &'a str,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderLineIn {
    // Checked before this struct is deserialised; kept so that
    // `deny_unknown_fields` accepts it.
    #[allow(dead_code)]
    format: String,
    origin: String,
    tree_size: u64,
    checkpoint: String,
}

#[derive(Serialize)]
struct EntryLineOut<'a> {
    index: u64,
    entry: &'a str,
    leaf_hash: &'a str,
    /// Left out when empty, so that lines without openings keep the fast path's layout.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    openings: Vec<OpeningLine>,
}

/// An opening in an entry line: salt in hex, data in base64.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpeningLine {
    key: String,
    salt: String,
    data: String,
}

/// An entry line as read: the strings borrow from the line buffer unless they hold JSON
/// escapes (a writer may escape `/`), so the base64 of an entry is not copied before decoding.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryLineIn<'a> {
    index: u64,
    #[serde(borrow)]
    entry: Cow<'a, str>,
    #[serde(borrow)]
    leaf_hash: Cow<'a, str>,
    #[serde(default)]
    openings: Vec<OpeningLine>,
}

/// Parses entry bytes as JSON, for display only: the verifier never hashes
/// the parsed value, only the original bytes.
pub fn entry_as_json(bytes: &[u8]) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::from_slice(bytes)
}

impl ExportEntry {
    /// The entry bytes parsed as JSON, for display only (see
    /// [`entry_as_json`]).
    pub fn entry_as_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        entry_as_json(&self.entry)
    }
}

impl<W: Write> ExportWriter<W> {
    /// Writes the header line and returns a writer expecting the entry with
    /// index 0.
    pub fn new(out: W, header: &ExportHeader) -> Result<Self, VerifyError> {
        let mut writer = Self {
            out,
            tree_size: header.tree_size,
            written: 0,
            line: Vec::new(),
            failed: false,
        };
        writer.write_line(
            &HeaderLineOut {
                format: FORMAT,
                origin: &header.origin,
                tree_size: header.tree_size,
                checkpoint: &header.checkpoint_note,
            },
            "the header",
        )?;
        Ok(writer)
    }

    /// Writes one entry line. Entries must come in index order 0, 1, 2, …
    /// and there may be no more than the header's `tree_size`.
    pub fn write_entry(&mut self, entry: &ExportEntry) -> Result<(), VerifyError> {
        self.write_entry_with_openings(entry, &[])
    }

    /// As [`Self::write_entry`], with the entry's openings (its personal data that has not been
    /// cleared) beside it, for the verifier to check against the leaf's commitments.
    pub fn write_entry_with_openings(
        &mut self,
        entry: &ExportEntry,
        openings: &[ExportOpening],
    ) -> Result<(), VerifyError> {
        if self.failed {
            return Err(VerifyError::InvalidWrite(
                "an earlier write failed, the output is incomplete".to_owned(),
            ));
        }
        if self.written == self.tree_size {
            return Err(VerifyError::InvalidWrite(format!(
                "entry index {} is one too many: the header announces {} entries",
                entry.index, self.tree_size
            )));
        }
        if entry.index != self.written {
            return Err(VerifyError::InvalidWrite(format!(
                "entry index {} written where index {} was expected (entries go in order 0, 1, 2, …)",
                entry.index, self.written
            )));
        }
        let encoded = STANDARD.encode(&entry.entry);
        let leaf_hash = hex::encode(entry.recorded_leaf_hash);
        self.write_line(
            &EntryLineOut {
                index: entry.index,
                entry: &encoded,
                leaf_hash: &leaf_hash,
                openings: openings
                    .iter()
                    .map(|opening| OpeningLine {
                        key: opening.key.clone(),
                        salt: hex::encode(&opening.salt),
                        data: STANDARD.encode(&opening.data),
                    })
                    .collect(),
            },
            "the entry",
        )?;
        self.written += 1;
        Ok(())
    }

    /// Checks that all announced entries were written, flushes, and returns
    /// the output.
    pub fn finish(mut self) -> Result<W, VerifyError> {
        if self.failed {
            return Err(VerifyError::InvalidWrite(
                "an earlier write failed, the output is incomplete".to_owned(),
            ));
        }
        if self.written < self.tree_size {
            return Err(VerifyError::InvalidWrite(format!(
                "only {} of the {} entries the header announces were written",
                self.written, self.tree_size
            )));
        }
        self.out
            .flush()
            .map_err(|source| VerifyError::Write { source })?;
        Ok(self.out)
    }

    fn write_line<T: Serialize>(&mut self, value: &T, what: &str) -> Result<(), VerifyError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, value)
            .map_err(|e| VerifyError::InvalidWrite(format!("cannot encode {what}: {e}")))?;
        if self.line.len() > MAX_LINE_LEN {
            return Err(VerifyError::InvalidWrite(format!(
                "{what} would make a line of {} bytes, more than the {} byte limit readers accept",
                self.line.len(),
                MAX_LINE_LEN
            )));
        }
        self.line.push(b'\n');
        if let Err(source) = self.out.write_all(&self.line) {
            self.failed = true;
            return Err(VerifyError::Write { source });
        }
        Ok(())
    }
}

impl<R: BufRead> ExportReader<R> {
    /// Reads and checks the header line.
    pub fn new(mut input: R) -> Result<Self, VerifyError> {
        let mut buf = Vec::new();
        if !read_line(&mut input, &mut buf, 1)? {
            return Err(malformed(1, "the export is empty: there is no header line"));
        }
        let header = parse_header(&buf)?;
        Ok(Self {
            input,
            header,
            next_index: 0,
            buf,
            decoded: Vec::new(),
            openings: Vec::new(),
            done: false,
        })
    }

    /// The openings exported beside the entry read last (empty for an entry without any).
    #[must_use]
    pub fn openings(&self) -> &[ExportOpening] {
        &self.openings
    }

    /// The header read by [`Self::new`].
    #[must_use]
    pub fn header(&self) -> &ExportHeader {
        &self.header
    }

    /// How many entries have been read so far (which is also the index of
    /// the next one).
    #[must_use]
    pub fn entries_read(&self) -> u64 {
        self.next_index
    }

    /// The next entry, or `None` once all `tree_size` entries have been read
    /// and the input has ended.
    pub fn next_entry(&mut self) -> Result<Option<ExportEntry>, VerifyError> {
        Ok(self.next_entry_ref()?.map(|entry| entry.to_entry()))
    }

    /// As [`Self::next_entry`], without copying: the entry borrows the
    /// reader's buffers until the next call.
    pub fn next_entry_ref(&mut self) -> Result<Option<EntryRef<'_>>, VerifyError> {
        if self.done {
            return Ok(None);
        }
        match self.read_entry() {
            Ok(Some((index, recorded_leaf_hash))) => Ok(Some(EntryRef {
                index,
                entry: &self.decoded,
                recorded_leaf_hash,
                openings: &self.openings,
            })),
            other => {
                self.done = true;
                other.map(|_| None)
            }
        }
    }

    /// Reads the next line into `buf` and its decoded entry into `decoded`;
    /// returns the entry's index and recorded leaf hash.
    fn read_entry(&mut self) -> Result<Option<(u64, Hash)>, VerifyError> {
        let expected = self.next_index;
        let total = self.header.tree_size;
        let line = expected.saturating_add(2);
        let got_line = read_line(&mut self.input, &mut self.buf, line)?;

        if expected == total {
            if !got_line {
                return Ok(None);
            }
            let problem = if is_blank(&self.buf) {
                format!(
                    "unexpected empty line after the last of the {total} entries the header announces"
                )
            } else if let Ok(extra) = serde_json::from_slice::<EntryLineIn>(&self.buf) {
                format!(
                    "an entry with index {} follows the last of the {total} entries the header announces: the export holds more entries than its tree_size",
                    extra.index
                )
            } else {
                format!(
                    "unexpected content after the last of the {total} entries the header announces"
                )
            };
            return Err(malformed(line, problem));
        }

        self.openings.clear();
        if !got_line {
            return Err(malformed(
                line,
                format!(
                    "the export ends after {expected} entries but the header announces {total}: the entry with index {expected} is missing"
                ),
            ));
        }
        if let Some(recorded_leaf_hash) =
            read_canonical_line(&self.buf, expected, &mut self.decoded)
        {
            self.next_index += 1;
            return Ok(Some((expected, recorded_leaf_hash)));
        }
        if is_blank(&self.buf) {
            return Err(malformed(
                line,
                format!("empty line where the entry with index {expected} was expected"),
            ));
        }
        let raw: EntryLineIn = serde_json::from_slice(&self.buf).map_err(|e| {
            malformed(
                line,
                format!(
                    "not a valid entry line (expected the entry with index {expected}): {}",
                    json_problem(&e)
                ),
            )
        })?;
        if raw.index != expected {
            return Err(malformed(line, index_problem(raw.index, expected, total)));
        }
        self.decoded.clear();
        STANDARD
            .decode_vec(raw.entry.as_bytes(), &mut self.decoded)
            .map_err(|e| {
                malformed(
                    line,
                    format!(
                        "entry with index {expected}: \"entry\" is not standard padded base64 ({e})"
                    ),
                )
            })?;
        let recorded_leaf_hash = parse_leaf_hash(raw.leaf_hash.as_bytes()).ok_or_else(|| {
            malformed(
                line,
                format!(
                    "entry with index {expected}: \"leaf_hash\" is not a 32-byte hash in 64 lowercase hex digits"
                ),
            )
        })?;
        for (i, opening) in raw.openings.into_iter().enumerate() {
            let salt = hex::decode(&opening.salt)
                .ok()
                .filter(|salt| salt.len() == 32);
            let data = STANDARD.decode(opening.data.as_bytes()).ok();
            let (Some(salt), Some(data)) = (salt, data) else {
                return Err(malformed(
                    line,
                    format!(
                        "entry with index {expected}: opening {i} needs a 32-byte \"salt\" in hex and \"data\" in standard padded base64"
                    ),
                ));
            };
            self.openings.push(ExportOpening {
                key: opening.key,
                salt,
                data,
            });
        }
        self.next_index += 1;
        Ok(Some((expected, recorded_leaf_hash)))
    }
}

/// The fast path for a line in exactly the writer's layout,
/// `{"index":N,"entry":"<base64>","leaf_hash":"<hex>"}`, with the expected
/// index: decodes the entry into `decoded` and returns the recorded leaf
/// hash. `None` for anything else (another layout, JSON escapes, bad base64
/// or hex, another index), which the full parser then reads or refuses.
fn read_canonical_line(line: &[u8], expected: u64, decoded: &mut Vec<u8>) -> Option<Hash> {
    let (index, base64, leaf_hash) = split_canonical_line(line)?;
    if index != expected {
        return None;
    }
    let recorded_leaf_hash = parse_leaf_hash(leaf_hash)?;
    decoded.clear();
    base64_simd::STANDARD.decode_append(base64, decoded).ok()?;
    Some(recorded_leaf_hash)
}

/// Splits a line in the writer's exact layout into its index, the base64
/// text of `entry` and the text of `leaf_hash`, or `None`.
fn split_canonical_line(line: &[u8]) -> Option<(u64, &[u8], &[u8])> {
    let rest = line.strip_prefix(b"{\"index\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let (number, rest) = rest.split_at(digits);
    // JSON allows no leading zeros; u64 has at most 20 digits.
    if number.is_empty() || number.len() > 20 || (number.len() > 1 && number[0] == b'0') {
        return None;
    }
    let index = std::str::from_utf8(number).ok()?.parse::<u64>().ok()?;
    let rest = rest.strip_prefix(b",\"entry\":\"")?;
    let end = memchr::memchr(b'"', rest)?;
    let (base64, rest) = rest.split_at(end);
    let rest = rest.strip_prefix(b"\",\"leaf_hash\":\"")?;
    let leaf_hash = rest.strip_suffix(b"\"}")?;
    Some((index, base64, leaf_hash))
}

impl<R: BufRead> Iterator for ExportReader<R> {
    type Item = Result<ExportEntry, VerifyError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

fn malformed(line: u64, problem: impl Into<String>) -> VerifyError {
    VerifyError::Malformed {
        line,
        problem: problem.into(),
    }
}

/// Reads one line into `buf` without its `\n`. Returns `false` at the end
/// of the input. A line longer than [`MAX_LINE_LEN`] is an error; the last
/// line may lack its `\n`.
fn read_line<R: BufRead>(input: &mut R, buf: &mut Vec<u8>, line: u64) -> Result<bool, VerifyError> {
    buf.clear();
    // Room for the longest allowed line plus its newline.
    let limit = u64::try_from(MAX_LINE_LEN)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let read = input
        .take(limit)
        .read_until(b'\n', buf)
        .map_err(|source| VerifyError::Read { line, source })?;
    if read == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE_LEN {
        return Err(malformed(
            line,
            format!(
                "the line is longer than the {} MiB limit",
                MAX_LINE_LEN / (1024 * 1024)
            ),
        ));
    }
    Ok(true)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

fn parse_header(buf: &[u8]) -> Result<ExportHeader, VerifyError> {
    let value: serde_json::Value = serde_json::from_slice(buf).map_err(|e| {
        malformed(
            1,
            format!("the header is not valid JSON: {}", json_problem(&e)),
        )
    })?;
    let Some(object) = value.as_object() else {
        return Err(malformed(1, "the header is not a JSON object"));
    };
    match object.get("format") {
        None => {
            return Err(malformed(
                1,
                "the header has no \"format\" field: this is not a tryggdel audit export",
            ));
        }
        Some(serde_json::Value::String(format)) if format == FORMAT => {}
        Some(serde_json::Value::String(format)) => {
            return Err(malformed(
                1,
                format!("unsupported export format {format:?}: this reader understands {FORMAT:?}"),
            ));
        }
        Some(_) => return Err(malformed(1, "the header's \"format\" is not a string")),
    }
    let header: HeaderLineIn = serde_json::from_value(value)
        .map_err(|e| malformed(1, format!("invalid header: {}", json_problem(&e))))?;
    Ok(ExportHeader {
        origin: header.origin,
        tree_size: header.tree_size,
        checkpoint_note: header.checkpoint,
    })
}

/// Describes an entry line whose index is not the expected one.
fn index_problem(got: u64, expected: u64, total: u64) -> String {
    if got >= total {
        format!(
            "index {got} is beyond the header's tree_size {total} (expected the entry with index {expected})"
        )
    } else if expected > 0 && got == expected - 1 {
        format!("index {got} appears twice (expected the entry with index {expected})")
    } else if got < expected {
        format!(
            "index {got} is out of order: it was already read (expected the entry with index {expected})"
        )
    } else {
        format!(
            "index {got} where the entry with index {expected} was expected: entries are missing or out of order"
        )
    }
}

/// A leaf hash: exactly 64 lowercase hex digits.
fn parse_leaf_hash(text: &[u8]) -> Option<Hash> {
    /// The value of one lowercase hex digit.
    fn digit(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    if text.len() != 64 {
        return None;
    }
    let mut hash: Hash = [0; 32];
    for (byte, pair) in hash.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(hash)
}

/// A serde_json error message without its "at line 1 column N" suffix
/// (every line is parsed on its own, so serde's line number is meaningless
/// to the reader of the export), with the column kept and control
/// characters escaped.
fn json_problem(error: &serde_json::Error) -> String {
    // serde_json quotes some input verbatim (unknown field names): escape
    // control characters so the message cannot drive a terminal.
    let text = escape_controls(&error.to_string());
    if error.line() == 0 {
        return text;
    }
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&suffix) {
        Some(message) => format!("{message} (column {})", error.column()),
        None => text,
    }
}

/// `text` with every control character written as a `\u{…}` escape.
pub(crate) fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn entry_lines_with_escaped_slashes_are_read() {
        let header = ExportHeader {
            origin: "log.example/test".to_owned(),
            tree_size: 1,
            checkpoint_note: "note".to_owned(),
        };
        let mut writer = ExportWriter::new(Vec::new(), &header).unwrap();
        let entry = ExportEntry {
            index: 0,
            entry: vec![0xff; 6],
            recorded_leaf_hash: [7; 32],
        };
        writer.write_entry(&entry).unwrap();
        let text = String::from_utf8(writer.finish().unwrap()).unwrap();
        assert!(text.contains("////////"));
        let escaped = text.replace("////////", "\\/\\/\\/\\/\\/\\/\\/\\/");
        let mut reader = ExportReader::new(escaped.as_bytes()).unwrap();
        assert_eq!(reader.next_entry().unwrap(), Some(entry));
        assert_eq!(reader.next_entry().unwrap(), None);
    }

    /// The serde-only reading of an entry line, as the reader did before it
    /// had a fast path: the reference the fast path must agree with.
    fn read_with_json_parser(line: &[u8]) -> Option<(u64, Vec<u8>, Hash)> {
        let raw: EntryLineIn = serde_json::from_slice(line).ok()?;
        let entry = STANDARD.decode(raw.entry.as_bytes()).ok()?;
        let hash = parse_leaf_hash(raw.leaf_hash.as_bytes())?;
        Some((raw.index, entry, hash))
    }

    fn written_line(index: u64, entry: &[u8], leaf_hash: Hash) -> Vec<u8> {
        let header = ExportHeader {
            origin: "log.example/test".to_owned(),
            tree_size: index + 1,
            checkpoint_note: "note".to_owned(),
        };
        let mut writer = ExportWriter::new(Vec::new(), &header).unwrap();
        writer.written = index;
        writer
            .write_entry(&ExportEntry {
                index,
                entry: entry.to_vec(),
                recorded_leaf_hash: leaf_hash,
            })
            .unwrap();
        let out = writer.out;
        let text = out.split(|b| *b == b'\n').nth(1).unwrap();
        text.to_vec()
    }

    #[test]
    fn the_writers_lines_take_the_fast_path() {
        for (index, entry) in [
            (0u64, &b""[..]),
            (1, b"a"),
            (12, b"ab"),
            (345, b"abc"),
            (u64::MAX - 1, &[0xff; 300][..]),
        ] {
            let line = written_line(index, entry, [0x5a; 32]);
            let mut decoded = Vec::new();
            assert_eq!(
                read_canonical_line(&line, index, &mut decoded),
                Some([0x5a; 32]),
                "{}",
                String::from_utf8_lossy(&line)
            );
            assert_eq!(decoded, entry);
            assert_eq!(
                read_with_json_parser(&line),
                Some((index, entry.to_vec(), [0x5a; 32]))
            );
        }
    }

    #[test]
    fn lines_in_another_layout_leave_the_fast_path() {
        let good = written_line(7, b"hello", [1; 32]);
        let text = String::from_utf8(good.clone()).unwrap();
        let mut decoded = Vec::new();
        assert!(read_canonical_line(&good, 7, &mut decoded).is_some());
        let hash = "01".repeat(32);
        for other in [
            // Another index than expected, leading zeros, spaces, escapes, other order.
            text.clone(),
            text.replace("\"index\":7", "\"index\":07"),
            text.replace(",\"entry\"", ", \"entry\""),
            format!("{text} "),
            text.replace("aGVsbG8=", "aGVsbG8\\u003d"),
            format!("{{\"entry\":\"aGVsbG8=\",\"index\":7,\"leaf_hash\":\"{hash}\"}}"),
            // Not canonical base64: trailing bits set, missing padding, bad symbol.
            text.replace("aGVsbG8=", "aGVsbG9="),
            text.replace("aGVsbG8=", "aGVsbG8"),
            text.replace("aGVsbG8=", "aGVs!G8="),
            // Upper-case or short hex.
            text.replace(&hash, &hash.to_uppercase()),
            text.replace(&hash, &hash[2..]),
        ] {
            let expected = if other == text { 8 } else { 7 };
            assert_eq!(
                read_canonical_line(other.as_bytes(), expected, &mut decoded),
                None,
                "{other}"
            );
        }
    }

    proptest::proptest! {
        /// Whatever the fast path accepts, the JSON parser reads the same way.
        #[test]
        fn the_fast_path_agrees_with_the_json_parser(
            index in 0u64..1_000_000,
            entry in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            cut in 0usize..400,
            byte in proptest::prelude::any::<u8>(),
        ) {
            let mut line = written_line(index, &entry, leaf_hash_of(&entry));
            if cut < line.len() {
                line[cut] = byte;
            }
            let mut decoded = Vec::new();
            if let Some(hash) = read_canonical_line(&line, index, &mut decoded) {
                proptest::prop_assert_eq!(
                    read_with_json_parser(&line),
                    Some((index, decoded, hash))
                );
            }
        }
    }

    fn leaf_hash_of(entry: &[u8]) -> Hash {
        tryggdel_merkle::leaf_hash(entry)
    }

    #[test]
    fn json_problem_drops_the_meaningless_line_number() {
        let e = serde_json::from_slice::<serde_json::Value>(b"{\"a\":}").unwrap_err();
        assert_eq!(json_problem(&e), "expected value (column 6)");
        let e = serde_json::from_slice::<EntryLineIn>(br#"{"index": 1}"#).unwrap_err();
        assert_eq!(json_problem(&e), "missing field `entry` (column 12)");
        let e = serde_json::from_slice::<EntryLineIn>(br#"{"\u001b[2J":1}"#).unwrap_err();
        assert!(
            json_problem(&e).starts_with("unknown field `\\u{1b}[2J`"),
            "{}",
            json_problem(&e)
        );
    }

    #[test]
    fn leaf_hashes_must_be_lowercase_hex_of_32_bytes() {
        let good = "ab".repeat(32);
        assert_eq!(parse_leaf_hash(good.as_bytes()), Some([0xab; 32]));
        assert_eq!(parse_leaf_hash("AB".repeat(32).as_bytes()), None);
        assert_eq!(parse_leaf_hash("ab".repeat(31).as_bytes()), None);
        assert_eq!(parse_leaf_hash("ab".repeat(33).as_bytes()), None);
        assert_eq!(
            parse_leaf_hash(format!("{}zz", "ab".repeat(31)).as_bytes()),
            None
        );
        assert_eq!(parse_leaf_hash(b""), None);
    }

    #[test]
    fn index_problems_say_what_happened() {
        assert!(index_problem(4, 5, 10).contains("appears twice"));
        assert!(index_problem(1, 5, 10).contains("out of order"));
        assert!(index_problem(7, 5, 10).contains("missing or out of order"));
        assert!(index_problem(10, 5, 10).contains("beyond the header's tree_size 10"));
    }

    #[test]
    fn read_line_enforces_the_cap_and_accepts_a_missing_final_newline() {
        let mut buf = Vec::new();
        let mut input: &[u8] = b"abc\ndef";
        assert!(read_line(&mut input, &mut buf, 1).unwrap());
        assert_eq!(buf, b"abc");
        assert!(read_line(&mut input, &mut buf, 2).unwrap());
        assert_eq!(buf, b"def");
        assert!(!read_line(&mut input, &mut buf, 3).unwrap());

        let mut exact = vec![b'x'; MAX_LINE_LEN];
        exact.push(b'\n');
        let mut input: &[u8] = &exact;
        assert!(read_line(&mut input, &mut buf, 1).unwrap());
        assert_eq!(buf.len(), MAX_LINE_LEN);

        let long = vec![b'x'; MAX_LINE_LEN + 1];
        let mut input: &[u8] = &long;
        let err = read_line(&mut input, &mut buf, 9).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 9 of the export: the line is longer than the 16 MiB limit"
        );
    }
}
