//! A review's period: whole Swedish calendar days, as the instants the log's entries are
//! filtered by, and the working hours within it.

use time::{Date, OffsetDateTime, format_description::well_known::Iso8601};
use tryggdel_domain::{end_of_swedish_day_unix_ms, swedish_time};

use super::holidays::is_working_day;
use super::settings::WorkingHours;

/// The longest period one run covers.
pub const MAX_DAYS: i64 = 92;

const MINUTE_MS: i64 = 60_000;

/// From the first day's midnight to the last day's end, Swedish time. Built only valid
/// (`parse`): the first day is not after the last, at most [`MAX_DAYS`] days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    from: Date,
    until: Date,
    from_ms: i64,
    until_ms: i64,
}

/// A day written YYYY-MM-DD.
pub fn parse_day(text: &str) -> Option<Date> {
    Date::parse(text.trim(), &Iso8601::DATE).ok()
}

/// The YYYY-MM-DD of `date`.
pub fn day_text(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The first millisecond of the Swedish calendar day `date`.
fn start_of_day_ms(date: Date) -> Option<i64> {
    Some(end_of_swedish_day_unix_ms(date.previous_day()?)? + 1)
}

impl Period {
    /// `from` and `until` as YYYY-MM-DD; the error names what is wrong.
    pub fn parse(from: &str, until: &str) -> Result<Period, (&'static str, String)> {
        let first = parse_day(from).ok_or(("from", "must be a day, YYYY-MM-DD".to_owned()))?;
        let last = parse_day(until).ok_or(("until", "must be a day, YYYY-MM-DD".to_owned()))?;
        if last < first {
            return Err(("until", "must not be before from".into()));
        }
        if (last - first).whole_days() >= MAX_DAYS {
            return Err(("until", format!("a period is at most {MAX_DAYS} days")));
        }
        let range = || ("from", "is out of range".to_owned());
        let from_ms = start_of_day_ms(first).ok_or_else(range)?;
        let until_ms = end_of_swedish_day_unix_ms(last).ok_or_else(range)? + 1;
        Ok(Period {
            from: first,
            until: last,
            from_ms,
            until_ms,
        })
    }

    pub fn from(&self) -> Date {
        self.from
    }

    pub fn until(&self) -> Date {
        self.until
    }

    /// The first millisecond of the period.
    pub fn from_ms(&self) -> i64 {
        self.from_ms
    }

    /// The first millisecond after the period.
    pub fn until_ms(&self) -> i64 {
        self.until_ms
    }

    /// The working hours of each working day of the period (a weekday that is no public
    /// holiday or eve off, see the `holidays` module) as instants `[start, end)`.
    pub fn working_windows(&self, hours: WorkingHours) -> Vec<(i64, i64)> {
        let mut windows = Vec::new();
        let mut day = self.from;
        loop {
            if is_working_day(day)
                && let (Some(start), Some(end)) = (
                    local_instant(day, hours.start_minute()),
                    local_instant(day, hours.end_minute()),
                )
            {
                windows.push((start, end));
            }
            match day.next_day() {
                Some(next) if next <= self.until => day = next,
                _ => break,
            }
        }
        windows
    }
}

/// The instant of `minute` minutes after midnight on the Swedish day `date` (on the days the
/// clocks change, the local time as the clock shows it; 24:00 is the next midnight).
fn local_instant(date: Date, minute: u32) -> Option<i64> {
    let start = start_of_day_ms(date)?;
    if minute >= 24 * 60 {
        return Some(end_of_swedish_day_unix_ms(date)? + 1);
    }
    let guess = start + i64::from(minute) * MINUTE_MS;
    let local = swedish_time(
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(guess) * 1_000_000).ok()?,
    );
    let shown = i64::from(local.hour()) * 60 + i64::from(local.minute());
    let shown = if local.date() == date {
        shown
    } else {
        shown + 24 * 60
    };
    Some(guess - (shown - i64::from(minute)) * MINUTE_MS)
}

/// The Swedish calendar day of `unix_ms`.
pub fn local_date(unix_ms: i64) -> Option<Date> {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000).ok()?;
    Some(swedish_time(at).date())
}

/// `unix_ms` as Swedish local time, `YYYY-MM-DD HH:MM`.
pub fn local_text(unix_ms: i64) -> String {
    match OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000) {
        Ok(at) => {
            let local = swedish_time(at);
            format!(
                "{} {:02}:{:02}",
                day_text(local.date()),
                local.hour(),
                local.minute()
            )
        }
        Err(_) => unix_ms.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_whole_swedish_days() {
        // 2026-01-01 00:00 CET is 2025-12-31 23:00 UTC.
        let period = Period::parse("2026-01-01", "2026-01-31").unwrap();
        assert_eq!(period.from_ms(), 1_767_222_000_000);
        assert_eq!(period.until_ms(), 1_767_222_000_000 + 31 * 86_400_000);
        assert_eq!(local_text(period.from_ms()), "2026-01-01 00:00");
        assert!(Period::parse("2026-02-01", "2026-01-31").is_err());
        assert!(Period::parse("2026-01-01", "2026-06-30").is_err());
        assert!(Period::parse("1 jan", "2026-01-31").is_err());
    }

    #[test]
    fn working_windows_are_weekdays_in_local_time_across_a_clock_change() {
        // Summer time begins on Sunday 29 March 2026; Monday 30 March 07:00 is 05:00 UTC.
        let period = Period::parse("2026-03-27", "2026-03-30").unwrap();
        let windows = period.working_windows(WorkingHours::parse("07:00-18:00").unwrap());
        assert_eq!(windows.len(), 2, "Friday and Monday");
        assert_eq!(local_text(windows[0].0), "2026-03-27 07:00");
        assert_eq!(local_text(windows[0].1), "2026-03-27 18:00");
        assert_eq!(local_text(windows[1].0), "2026-03-30 07:00");
        assert_eq!(windows[1].1 - windows[1].0, 11 * 3_600_000);
        assert_eq!(windows[0].0, 1_774_591_200_000);
    }

    #[test]
    fn public_holidays_and_eves_off_have_no_working_window() {
        // Christmas week 2026: Monday 21 to Thursday 31 December; 24, 25 and 31 are off,
        // 26 and 27 a weekend.
        let period = Period::parse("2026-12-21", "2026-12-31").unwrap();
        let days: Vec<String> = period
            .working_windows(WorkingHours::parse("07:00-18:00").unwrap())
            .iter()
            .map(|(start, _)| local_text(*start))
            .collect();
        assert_eq!(
            days,
            [
                "2026-12-21 07:00",
                "2026-12-22 07:00",
                "2026-12-23 07:00",
                "2026-12-28 07:00",
                "2026-12-29 07:00",
                "2026-12-30 07:00",
            ]
        );
        assert_eq!(
            local_date(1_798_153_200_000),
            Some(time::macros::date!(2026 - 12 - 25))
        );
    }
}
