//! The checks handlers make the same way on what they are given: disclosure ids, expected
//! versions, free-text reasons, client request ids, dates, and the lifecycle step asked for.
//! Pure: no I/O; every refusal names the field it is about.

use tryggdel_domain::LifecycleAction;
use tryggdel_service_kit::{ServiceError, today_in_sweden};

use crate::content;
use crate::store::{DisclosureRecord, Step};

/// A disclosure id in its canonical form.
pub(crate) fn parse_disclosure_id(text: &str) -> Result<String, ServiceError> {
    uuid::Uuid::parse_str(text.trim())
        .map(|id| id.to_string())
        .map_err(|_| ServiceError::invalid("disclosure_id", "must be a disclosure id (a UUID)"))
}

/// The caller must name the version it last saw, and it must be the record's.
pub(crate) fn check_expected_version(
    expected: i64,
    record: &DisclosureRecord,
) -> Result<(), ServiceError> {
    if expected < 1 {
        return Err(ServiceError::invalid(
            "expected_version",
            "required: the version you last saw (1 or more)",
        ));
    }
    if expected != record.version {
        return Err(ServiceError::StaleVersion {
            expected,
            current: record.version,
        });
    }
    Ok(())
}

/// The step `action` takes from the record's state, or FAILED_PRECONDITION saying why not.
pub(crate) fn step(
    record: &DisclosureRecord,
    action: LifecycleAction,
) -> Result<Step, ServiceError> {
    record
        .step(action)
        .map_err(|error| ServiceError::FailedPrecondition(error.to_string()))
}

/// A free text that must be given, trimmed and within bounds.
pub(crate) fn required_text(field: &str, text: &str) -> Result<String, ServiceError> {
    let trimmed = bounded_text(field, text)?;
    if trimmed.is_empty() {
        return Err(ServiceError::invalid(field, "required"));
    }
    Ok(trimmed)
}

/// A free text that may be empty, trimmed and within bounds.
pub(crate) fn optional_text(field: &str, text: &str) -> Result<String, ServiceError> {
    bounded_text(field, text)
}

/// A one-line text that may be empty: trimmed, at most `max` characters, and without control
/// characters (line breaks included), so it can go into an audit entry's details as it is.
pub(crate) fn optional_line(field: &str, text: &str, max: usize) -> Result<String, ServiceError> {
    let trimmed = text.trim();
    tryggdel_service_kit::bounded_text(field, trimmed, max)?;
    tryggdel_service_kit::no_control_characters(field, trimmed, false)?;
    Ok(trimmed.to_owned())
}

/// A client's request id for an idempotent create: 8–64 letters, digits, `-` and `_`.
pub(crate) fn client_request_id(text: &str) -> Result<&str, ServiceError> {
    let request_id = text.trim();
    if !(8..=64).contains(&request_id.len())
        || !request_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ServiceError::invalid(
            "client_request_id",
            "must be 8-64 characters of letters, digits, - and _",
        ));
    }
    Ok(request_id)
}

/// The date an assessment is made for: today in Sweden if none is given.
pub(crate) fn as_of(text: &str) -> Result<time::Date, ServiceError> {
    if text.trim().is_empty() {
        return Ok(today_in_sweden());
    }
    content::parse_date(text).map_err(|problem| ServiceError::invalid("as_of", problem))
}

fn bounded_text(field: &str, text: &str) -> Result<String, ServiceError> {
    let trimmed = text.trim();
    tryggdel_service_kit::bounded_text(field, trimmed, content::MAX_TEXT_CHARS)?;
    Ok(trimmed.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn versions_must_be_given_and_current() {
        let row = DisclosureRecord {
            version: 3,
            ..sample_row()
        };
        assert!(matches!(
            check_expected_version(0, &row),
            Err(ServiceError::InvalidArgument { .. })
        ));
        assert!(matches!(
            check_expected_version(2, &row),
            Err(ServiceError::StaleVersion {
                expected: 2,
                current: 3
            })
        ));
        assert!(check_expected_version(3, &row).is_ok());
    }

    #[test]
    fn texts_are_trimmed_bounded_and_required_where_asked() {
        assert_eq!(optional_text("comment", "  ok ").unwrap(), "ok");
        assert_eq!(optional_text("comment", "   ").unwrap(), "");
        assert_eq!(
            required_text("reason", "  ").unwrap_err().to_string(),
            "reason: required"
        );
        let long = "x".repeat(content::MAX_TEXT_CHARS + 1);
        assert!(matches!(
            required_text("reason", &long),
            Err(ServiceError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn a_line_is_trimmed_bounded_and_holds_no_control_characters() {
        assert_eq!(
            optional_line("judgement", " Sambo sedan 2019. ", 20).unwrap(),
            "Sambo sedan 2019."
        );
        assert_eq!(optional_line("judgement", " \t\n ", 20).unwrap(), "");
        for text in ["sambo\u{7}", "sambo\nsedan 2019"] {
            let error = optional_line("judgement", text, 20).unwrap_err();
            assert!(error.to_string().starts_with("judgement: "), "{error}");
        }
        assert_eq!(optional_line("judgement", "åäö", 3).unwrap(), "åäö");
        assert!(matches!(
            optional_line("judgement", "åäöx", 3),
            Err(ServiceError::InvalidArgument { .. })
        ));
    }

    fn sample_row() -> DisclosureRecord {
        DisclosureRecord::new_draft("bollnas-kommun", "mitt", "u", "request-1", "f", 0)
    }
}
