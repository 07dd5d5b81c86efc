//! The gRPC edge every handler shares: the one adapter from a handler's result to a response,
//! the one check for RPCs only other Tryggdel services may call, page tokens, Unix
//! milliseconds, today's date in Sweden and bounded text.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::{Request, Response, Status};

use crate::{Authenticator, ServiceError, ServicePeer};

/// A handler's result as the gRPC answer: errors map to statuses in one place
/// ([`ServiceError`]'s `From` impl), which logs internal causes and never returns them.
pub fn respond<T>(result: Result<T, ServiceError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

/// An RPC that only Tryggdel services may call, and what a refusal says.
#[derive(Clone, Copy, Debug)]
pub struct ServiceOnly {
    /// The refusal when the caller has no service certificate, e.g. "Deliver is for Tryggdel
    /// services and needs a service certificate".
    pub without_service_certificate: &'static str,
    /// What a service not on the allow-list may not do, e.g. "deliver to the police".
    pub action: &'static str,
}

impl ServiceOnly {
    /// The calling service, if its certificate is a Tryggdel service certificate and its name
    /// is `allowed`; otherwise PERMISSION_DENIED saying why.
    pub fn check<T>(
        &self,
        request: &Request<T>,
        allowed: impl Fn(&str) -> bool,
    ) -> Result<ServicePeer, ServiceError> {
        let service = Authenticator::service(request).ok_or_else(|| {
            ServiceError::PermissionDenied(self.without_service_certificate.to_owned())
        })?;
        if !allowed(&service.name) {
            return Err(ServiceError::PermissionDenied(format!(
                "service {} may not {}",
                service.name, self.action
            )));
        }
        Ok(service)
    }
}

/// Now, in Unix milliseconds.
pub fn now_unix_ms() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}

/// Today's date in Sweden (Europe/Stockholm), the day whose law a decision is taken under
/// (domain.md §10): every "today" of a service (assessments, the reference date of identity
/// numbers) is this, never the UTC date.
pub fn today_in_sweden() -> time::Date {
    tryggdel_domain::swedish_date(OffsetDateTime::now_utc())
}

/// `time` in Unix milliseconds, saturating.
pub fn unix_ms(time: OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// `duration` in milliseconds, saturating.
pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// `unix_ms` as RFC 3339 in UTC, or None when out of range.
pub fn rfc3339(unix_ms: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
}

/// A page token: the position after which the next page starts, opaque to the client
/// (URL-safe base64 of the service's own text).
pub fn encode_page_token(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

/// The position inside a token [`encode_page_token`] made; INVALID_ARGUMENT on `page_token`
/// for anything else. The service still parses the position it gets back.
pub fn decode_page_token(token: &str) -> Result<String, ServiceError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(invalid_page_token)
}

/// The refusal of a page token this service did not issue.
pub fn invalid_page_token() -> ServiceError {
    ServiceError::invalid("page_token", "not a token this service issued")
}

/// Free text of at most `max` characters; else InvalidArgument naming the field and its length.
pub fn bounded_text(field: &str, text: &str, max: usize) -> Result<(), ServiceError> {
    let count = text.chars().count();
    if count > max {
        return Err(ServiceError::invalid(
            field,
            format!("is {count} characters, at most {max} allowed"),
        ));
    }
    Ok(())
}

/// Free text without control characters (a multi-line text may hold line breaks and tabs);
/// else InvalidArgument naming the field.
pub fn no_control_characters(
    field: &str,
    text: &str,
    multi_line: bool,
) -> Result<(), ServiceError> {
    let allowed = |c: char| multi_line && matches!(c, '\n' | '\r' | '\t');
    if text.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(ServiceError::invalid(
            field,
            if multi_line {
                "must not contain control characters other than line breaks and tabs"
            } else {
                "must not contain control characters"
            },
        ));
    }
    Ok(())
}

/// A page size: the default for 0, never more than `max`.
pub fn page_size(requested: u32, default: u32, max: u32) -> u32 {
    if requested == 0 {
        default
    } else {
        requested.min(max)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn free_text_is_bounded_in_characters_and_refuses_control_characters() {
        assert!(bounded_text("comment", &"å".repeat(10), 10).is_ok());
        let long = bounded_text("comment", &"å".repeat(11), 10).unwrap_err();
        assert_eq!(
            long.to_string(),
            ServiceError::invalid("comment", "is 11 characters, at most 10 allowed").to_string()
        );
        assert!(no_control_characters("note", "rad ett\nrad två\t", true).is_ok());
        assert!(no_control_characters("note", "rad ett\nrad två", false).is_err());
        assert!(no_control_characters("note", "bell\u{7}", true).is_err());
        assert!(no_control_characters("note", "en rad", false).is_ok());
    }

    #[test]
    fn milliseconds_format_as_utc_rfc3339() {
        assert_eq!(
            rfc3339(1_795_341_600_123).unwrap(),
            "2026-11-22T10:00:00.123Z"
        );
        assert_eq!(rfc3339(1_795_341_600_000).unwrap(), "2026-11-22T10:00:00Z");
        assert!(rfc3339(i64::MAX).is_none());
        assert_eq!(millis(Duration::from_secs(15 * 60)), 900_000);
        assert_eq!(millis(Duration::MAX), i64::MAX);
    }

    #[test]
    fn today_is_the_swedish_date_of_now() {
        let before = tryggdel_domain::swedish_date(OffsetDateTime::now_utc());
        let today = today_in_sweden();
        let after = tryggdel_domain::swedish_date(OffsetDateTime::now_utc());
        assert!(
            today == before || today == after,
            "{before} {today} {after}"
        );
    }

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let token = encode_page_token("after:42");
        assert_eq!(decode_page_token(&token).unwrap(), "after:42");
        let error = decode_page_token("!!not base64!!").unwrap_err();
        assert_eq!(
            error.to_string(),
            "page_token: not a token this service issued"
        );
        assert_eq!(page_size(0, 50, 200), 50);
        assert_eq!(page_size(500, 50, 200), 200);
        assert_eq!(page_size(7, 50, 200), 7);
    }
}
