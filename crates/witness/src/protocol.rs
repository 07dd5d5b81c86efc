//! The C2SP tlog-witness `add-checkpoint` request body: `old <size>`, up to 63 consistency
//! proof lines (base64 hashes), a blank line and the signed checkpoint note.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tryggdel_merkle::Hash;

use crate::FormatError;

/// The media type of a 409 answer's body: the witness's size in decimal and a newline.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// The most consistency proof lines a request may carry.
pub const MAX_PROOF_LINES: usize = 63;

/// The largest request body a witness reads.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// One `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the client believes the witness last cosigned.
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, as submitted.
    pub note: String,
}

impl AddCheckpoint {
    /// Parses a request body.
    pub fn parse(body: &str) -> Result<Self, FormatError> {
        let rest = body.strip_prefix("old ").ok_or(FormatError::Malformed(
            "the body does not start with `old `",
        ))?;
        let (old, mut rest) = rest
            .split_once('\n')
            .ok_or(FormatError::Malformed("the old size line does not end"))?;
        let old_size =
            parse_decimal(old).ok_or(FormatError::Malformed("the old size is not a decimal"))?;
        let mut proof = Vec::new();
        loop {
            let (line, after) = rest.split_once('\n').ok_or(FormatError::Malformed(
                "no blank line before the checkpoint",
            ))?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(FormatError::Malformed("more than 63 proof lines"));
            }
            proof.push(
                decode_hash(line).ok_or(FormatError::Malformed("a proof line is not a hash"))?,
            );
        }
        Ok(Self {
            old_size,
            proof,
            note: rest.to_owned(),
        })
    }

    /// The request body.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut text = format!("old {}\n", self.old_size);
        for hash in &self.proof {
            text.push_str(&STANDARD.encode(hash));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.note);
        text
    }
}

/// A canonical decimal `u64` (no sign, no leading zeros).
pub(crate) fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

/// A canonical base64 32-byte hash.
pub(crate) fn decode_hash(text: &str) -> Option<Hash> {
    let bytes = STANDARD.decode(text).ok()?;
    let hash = Hash::try_from(bytes.as_slice()).ok()?;
    (STANDARD.encode(hash) == text).then_some(hash)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips() {
        let request = AddCheckpoint {
            old_size: 20,
            proof: vec![[1; 32], [2; 32]],
            note: "o\n21\nroot\n\n— o sig\n".to_owned(),
        };
        assert_eq!(AddCheckpoint::parse(&request.to_text()).unwrap(), request);
        let empty = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            note: "x\n".to_owned(),
        };
        assert_eq!(empty.to_text(), "old 0\n\nx\n");
        assert_eq!(AddCheckpoint::parse("old 0\n\nx\n").unwrap(), empty);
    }

    #[test]
    fn malformed_requests_are_refused() {
        let hash = STANDARD.encode([7u8; 32]);
        let many = format!("old 1\n{}\nnote", format!("{hash}\n").repeat(64));
        for body in [
            "",
            "old\n\n",
            "old 01\n\nnote",
            "old -1\n\nnote",
            "old 1\nnot base64\n\nnote",
            "old 1\nAAAA\n\nnote",
            "old 1\nnote",
            "new 1\n\nnote",
            many.as_str(),
        ] {
            assert!(AddCheckpoint::parse(body).is_err(), "accepted {body:?}");
        }
    }
}
