//! The wire's text fields checked into what the handlers use: disclosure ids in one form,
//! bounded text without control characters, follow-up questions, lowercase hex. Every
//! refusal is INVALID_ARGUMENT naming the field first (`field: why`).

use std::fmt;

use tryggdel_service_kit::{ServiceError, bounded_text, no_control_characters};

/// The longest police reference (diarienummer), in characters.
pub const MAX_POLICE_REFERENCE_CHARS: usize = 64;
/// The longest follow-up question, in characters.
pub const MAX_QUESTION_CHARS: usize = 2000;
/// The longest short text (e.g. who approved), in characters.
pub const MAX_TEXT_CHARS: usize = 128;

/// A disclosure id: a UUID in lowercase hyphenated form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisclosureId(String);

impl DisclosureId {
    /// Parses the `disclosure_id` field: required, a UUID in any of its forms.
    pub fn parse(value: &str) -> Result<DisclosureId, ServiceError> {
        if value.is_empty() {
            return Err(ServiceError::invalid("disclosure_id", "is required"));
        }
        uuid::Uuid::parse_str(value)
            .map(|id| DisclosureId(id.hyphenated().to_string()))
            .map_err(|_| ServiceError::invalid("disclosure_id", "must be a UUID"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for DisclosureId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Required text of at most `max` characters without control characters.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, ServiceError> {
    if value.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    bounded_text(field, value, max)?;
    no_control_characters(field, value, false)?;
    Ok(value.to_owned())
}

/// A follow-up question: 1..=2000 characters after trimming; line breaks and tabs allowed,
/// other control characters not.
pub fn question(value: &str) -> Result<String, ServiceError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ServiceError::invalid("question", "is required"));
    }
    bounded_text("question", value, MAX_QUESTION_CHARS)?;
    no_control_characters("question", value, true)?;
    Ok(value.to_owned())
}

/// 64 lowercase hex digits.
pub fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64 && is_lowercase_hex(value)
}

/// 32 lowercase hex digits, not all zero (W3C trace context).
pub fn is_trace_id(value: &str) -> bool {
    value.len() == 32 && is_lowercase_hex(value) && value.bytes().any(|b| b != b'0')
}

fn is_lowercase_hex(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tonic::Status;

    use super::*;

    #[test]
    fn disclosure_ids_are_uuids_in_one_form() {
        let id = "0193A1B2-0000-7000-8000-000000000001";
        assert_eq!(
            DisclosureId::parse(id).unwrap().as_str(),
            "0193a1b2-0000-7000-8000-000000000001"
        );
        for bad in ["", "not-a-uuid", "0193a1b2"] {
            let status: Status = DisclosureId::parse(bad).unwrap_err().into();
            assert!(status.message().starts_with("disclosure_id:"), "{bad}");
        }
    }

    #[test]
    fn police_references_and_questions_are_bounded_text() {
        assert_eq!(
            required_text("police_reference", "5000-K123456-26", 64).unwrap(),
            "5000-K123456-26"
        );
        assert!(required_text("police_reference", "", 64).is_err());
        assert!(required_text("police_reference", &"x".repeat(65), 64).is_err());
        assert!(required_text("police_reference", "5000\n26", 64).is_err());
        assert_eq!(
            question("  Finns vapen i hemmet?\n ").unwrap(),
            "Finns vapen i hemmet?"
        );
        assert!(question("   ").is_err());
        assert!(question(&"å".repeat(MAX_QUESTION_CHARS)).is_ok());
        assert!(question(&"å".repeat(MAX_QUESTION_CHARS + 1)).is_err());
        assert!(question("rad ett\nrad två\tflik").is_ok());
        assert!(question("klocka\u{7}").is_err());
    }

    #[test]
    fn hashes_and_trace_ids_are_lowercase_hex() {
        assert!(is_sha256_hex(&"ab".repeat(32)));
        assert!(!is_sha256_hex(&"AB".repeat(32)));
        assert!(!is_sha256_hex(&"ab".repeat(31)));
        assert!(is_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(!is_trace_id(&"0".repeat(32)));
        assert!(!is_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736"));
    }
}
