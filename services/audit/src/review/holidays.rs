//! The Swedish days off on which "outside working hours" has no working hours: the public
//! holidays of lag (1989:253) om allmänna helgdagar, and midsummer, Christmas and New Year's
//! Eve, which lag (1930:173) om beräkning av lagstadgad tid counts with Saturdays and holidays
//! and on which offices are closed. Saturdays and Sundays are off anyway; a holiday that falls
//! on one changes nothing.

use time::{Date, Month, Weekday};

/// Why `date` is a day off other than a Saturday or Sunday, in Swedish, or `None` for a
/// working day (or a date Easter cannot be computed for, which no review period reaches).
pub fn day_off(date: Date) -> Option<&'static str> {
    let (month, day) = (date.month(), date.day());
    let fixed = match (month, day) {
        (Month::January, 1) => Some("nyårsdagen"),
        (Month::January, 6) => Some("trettondedag jul"),
        (Month::May, 1) => Some("första maj"),
        (Month::June, 6) => Some("Sveriges nationaldag"),
        (Month::December, 24) => Some("julafton"),
        (Month::December, 25) => Some("juldagen"),
        (Month::December, 26) => Some("annandag jul"),
        (Month::December, 31) => Some("nyårsafton"),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    // Midsummer Eve is the Friday between 19 and 25 June. Easter Day, Whit Sunday, Midsummer
    // Day and All Saints' Day always fall on a weekend.
    if month == Month::June && (19..=25).contains(&day) && date.weekday() == Weekday::Friday {
        return Some("midsommarafton");
    }
    let easter = easter_sunday(date.year())?;
    let after_easter = (date - easter).whole_days();
    match after_easter {
        -2 => Some("långfredagen"),
        1 => Some("annandag påsk"),
        39 => Some("Kristi himmelsfärdsdag"),
        _ => None,
    }
}

/// Easter Sunday of `year` in the Gregorian calendar.
fn easter_sunday(year: i32) -> Option<Date> {
    let easter = computus::gregorian(year).ok()?;
    let month = Month::try_from(u8::try_from(easter.month).ok()?).ok()?;
    Date::from_calendar_date(year, month, u8::try_from(easter.day).ok()?).ok()
}

/// Whether `date` has working hours: a weekday that is no day off.
pub fn is_working_day(date: Date) -> bool {
    !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) && day_off(date).is_none()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use time::macros::date;

    use super::*;

    /// Every weekday off in 2026 and 2027, as the almanac lists them.
    #[test]
    fn the_weekdays_off_of_two_years_are_the_almanacs() {
        let mut off = Vec::new();
        let mut day = date!(2026 - 01 - 01);
        while day <= date!(2027 - 12 - 31) {
            if !matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday)
                && let Some(name) = day_off(day)
            {
                off.push(format!("{day} {name}"));
            }
            day = day.next_day().unwrap();
        }
        assert_eq!(
            off,
            [
                "2026-01-01 nyårsdagen",
                "2026-01-06 trettondedag jul",
                "2026-04-03 långfredagen",
                "2026-04-06 annandag påsk",
                "2026-05-01 första maj",
                "2026-05-14 Kristi himmelsfärdsdag",
                "2026-06-19 midsommarafton",
                "2026-12-24 julafton",
                "2026-12-25 juldagen",
                "2026-12-31 nyårsafton",
                "2027-01-01 nyårsdagen",
                "2027-01-06 trettondedag jul",
                "2027-03-26 långfredagen",
                "2027-03-29 annandag påsk",
                "2027-05-06 Kristi himmelsfärdsdag",
                "2027-06-25 midsommarafton",
                "2027-12-24 julafton",
                "2027-12-31 nyårsafton",
            ]
        );
    }

    #[test]
    fn weekends_and_days_off_have_no_working_hours() {
        assert!(is_working_day(date!(2026 - 12 - 23)));
        assert!(!is_working_day(date!(2026 - 12 - 24)));
        assert!(!is_working_day(date!(2026 - 12 - 26)), "a Saturday");
        assert!(
            !is_working_day(date!(2025 - 06 - 06)),
            "National Day, a Friday"
        );
        assert!(is_working_day(date!(2025 - 06 - 05)));
        assert!(!is_working_day(date!(2025 - 06 - 20)), "midsummer eve 2025");
        assert!(is_working_day(date!(2025 - 06 - 19)));
    }
}
