//! The Swedish calendar day of an instant (domain.md §10).
//!
//! A decision is taken under the law of the day on which it is made in Sweden (Europe/
//! Stockholm), not the UTC day: at 00:30 on 1 January 2022 in Sweden it is 2022, although it is
//! still 31 December 2021 in UTC. Everything that asks "which day is it" (assessments, the
//! validity of rules and crimes, the reference date of identity numbers) asks
//! [`swedish_date`] with the instant it means.
//!
//! Pure: the caller reads the clock (services use `tryggdel_service_kit::today_in_sweden`). The
//! rules of the Europe/Stockholm zone are jiff's copy of the IANA time zone database, embedded
//! at compile time, so the answer is the same on every machine, with or without
//! `/usr/share/zoneinfo`; a change of Sweden's rules needs a new build. The database gives
//! Sweden's offsets exactly from 1970 on (before that it has Berlin's, which differ in some
//! years), which covers every decision this system makes.

use jiff::tz::TimeZone;
use time::{Date, OffsetDateTime, UtcOffset};

/// The IANA name of Sweden's time zone.
pub const SWEDISH_TIME_ZONE: &str = "Europe/Stockholm";

/// Europe/Stockholm's rules, read from the IANA database when this crate is compiled.
static STOCKHOLM: TimeZone = jiff::tz::get!("Europe/Stockholm");

/// Central European Time, Sweden's standard time (UTC+1), used only for instants outside the
/// range the time zone rules cover (beyond the years -9999 and 9999).
const STANDARD_TIME_SECONDS: i32 = 3600;

/// The calendar date in Sweden at the instant `at`.
pub fn swedish_date(at: OffsetDateTime) -> Date {
    swedish_time(at).date()
}

/// The instant `at` as Swedish local time: UTC+1 in winter (CET), UTC+2 in summer (CEST).
///
/// At the very ends of the representable range, where the local time would not be
/// representable, `at` is returned in its own offset.
pub fn swedish_time(at: OffsetDateTime) -> OffsetDateTime {
    // Only whole seconds matter: Sweden's offset changes on whole seconds.
    let offset_seconds = jiff::Timestamp::from_second(at.unix_timestamp())
        .map(|instant| STOCKHOLM.to_offset(instant).seconds())
        .unwrap_or(STANDARD_TIME_SECONDS);
    UtcOffset::from_whole_seconds(offset_seconds)
        .ok()
        .and_then(|offset| at.checked_to_offset(offset))
        .unwrap_or(at)
}

/// The last millisecond of the Swedish calendar day `date`, as Unix milliseconds: a deadline
/// "by 3 March" ends at midnight in Sweden, whatever the offset that day. `None` outside the
/// range the time zone rules cover.
pub fn end_of_swedish_day_unix_ms(date: Date) -> Option<i64> {
    let next = date.next_day()?;
    let civil = jiff::civil::Date::new(
        i16::try_from(next.year()).ok()?,
        i8::try_from(u8::from(next.month())).ok()?,
        i8::try_from(next.day()).ok()?,
    )
    .ok()?;
    let start_of_next = STOCKHOLM
        .to_ambiguous_timestamp(civil.to_datetime(jiff::civil::Time::midnight()))
        .compatible()
        .ok()?;
    Some(start_of_next.as_millisecond() - 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::{date, datetime};

    #[test]
    fn a_swedish_day_ends_at_midnight_in_sweden_in_winter_and_in_summer() {
        // 1 January: CET, UTC+1, so the day ends at 23:00 UTC.
        assert_eq!(
            end_of_swedish_day_unix_ms(date!(2026 - 01 - 01)),
            Some(datetime!(2026-01-01 22:59:59.999 UTC).unix_timestamp_nanos() as i64 / 1_000_000)
        );
        // 1 July: CEST, UTC+2.
        assert_eq!(
            end_of_swedish_day_unix_ms(date!(2026 - 07 - 01)),
            Some(datetime!(2026-07-01 21:59:59.999 UTC).unix_timestamp_nanos() as i64 / 1_000_000)
        );
        // The day summer time begins is 23 hours long.
        let start = end_of_swedish_day_unix_ms(date!(2026 - 03 - 28)).unwrap();
        let end = end_of_swedish_day_unix_ms(date!(2026 - 03 - 29)).unwrap();
        assert_eq!(end - start, 23 * 3_600_000);
    }

    #[test]
    fn half_past_midnight_on_new_years_day_in_sweden_is_already_the_new_year() {
        // 23:30 UTC on 31 December 2021 is 00:30 CET on 1 January 2022.
        assert_eq!(
            swedish_date(datetime!(2021-12-31 23:30:00 UTC)),
            date!(2022 - 01 - 01)
        );
        assert_eq!(
            swedish_date(datetime!(2021-12-31 22:59:59 UTC)),
            date!(2021 - 12 - 31)
        );
        assert_eq!(
            swedish_date(datetime!(2021-12-31 23:00:00 UTC)),
            date!(2022 - 01 - 01)
        );
    }

    #[test]
    fn in_summer_the_swedish_day_starts_two_hours_before_the_utc_day() {
        // CEST is UTC+2: 22:00 UTC on 30 June is midnight on 1 July in Sweden.
        assert_eq!(
            swedish_date(datetime!(2022-06-30 21:59:59 UTC)),
            date!(2022 - 06 - 30)
        );
        assert_eq!(
            swedish_date(datetime!(2022-06-30 22:00:00 UTC)),
            date!(2022 - 07 - 01)
        );
        assert_eq!(
            swedish_time(datetime!(2022-06-30 22:30:00 UTC)),
            datetime!(2022-07-01 00:30:00 +02:00)
        );
    }

    #[test]
    fn the_offset_follows_the_changes_to_and_from_summer_time() {
        // 2022: CEST from 01:00 UTC on 27 March to 01:00 UTC on 30 October.
        let offset = |at: OffsetDateTime| swedish_time(at).offset().whole_hours();
        assert_eq!(offset(datetime!(2022-03-27 00:59:59 UTC)), 1);
        assert_eq!(offset(datetime!(2022-03-27 01:00:00 UTC)), 2);
        assert_eq!(offset(datetime!(2022-10-30 00:59:59 UTC)), 2);
        assert_eq!(offset(datetime!(2022-10-30 01:00:00 UTC)), 1);
    }

    #[test]
    fn the_offset_of_the_given_instant_does_not_matter() {
        let at = datetime!(2021-12-31 23:30:00 UTC);
        for hours in [-11, -1, 0, 5, 14] {
            let elsewhere = at.to_offset(UtcOffset::from_hms(hours, 0, 0).unwrap());
            assert_eq!(swedish_date(elsewhere), date!(2022 - 01 - 01), "{hours}");
        }
    }

    #[test]
    fn the_ends_of_the_representable_range_do_not_panic() {
        for at in [
            datetime!(-9999-01-01 00:00:00 UTC),
            datetime!(9999-12-31 23:59:59.999999999 UTC),
        ] {
            let _ = swedish_date(at);
        }
    }

    proptest! {
        #[test]
        fn the_swedish_date_is_the_utc_date_or_the_next_day(
            // 1970 to 2128.
            seconds in 0i64..5_000_000_000,
        ) {
            let at = OffsetDateTime::from_unix_timestamp(seconds).unwrap();
            let local = swedish_date(at);
            let utc = at.date();
            prop_assert!(local == utc || Some(local) == utc.next_day(), "{at}");
            let offset = swedish_time(at).offset().whole_hours();
            prop_assert!(offset == 1 || offset == 2, "{at}: {offset}");
        }
    }
}
