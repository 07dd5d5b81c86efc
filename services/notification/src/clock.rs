//! Time as the service stores it: unix milliseconds, and RFC 3339 (UTC) where people read it.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, in unix milliseconds.
pub fn now_unix_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

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
}
