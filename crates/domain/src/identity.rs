//! Swedish identity numbers: personnummer and samordningsnummer (domain.md §7).
//!
//! An [`IdentityNumber`] can only be built by [`IdentityNumber::parse`], which accepts the
//! 10- and 12-digit forms with or without separator, requires a real calendar date that is not
//! in the future, refuses the birth number `000` (never assigned) and checks the Luhn check
//! digit. "The future" is relative to the reference date the caller passes, today in Sweden
//! ([`crate::swedish_date`]) for a service.
//!
//! The whole number is personal data: `Debug` and `Display` mask the birth number and check
//! digit (`19640823-****`), and the only way to read all twelve digits is
//! [`IdentityNumber::as_twelve_digits`] (or its `YYYYMMDD-NNNC` form,
//! [`IdentityNumber::to_canonical_string`]), meant for storage and encryption.
//!
//! A valid number is not proof of identity.

use std::fmt;

use time::{Date, Month};

/// Whether the number is a personnummer or a samordningsnummer (day of birth + 60).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    Personnummer,
    Samordningsnummer,
}

/// A validated Swedish personnummer or samordningsnummer, normalised to 12 digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdentityNumber {
    twelve_digits: String,
    kind: IdentityKind,
    birth_date: Date,
}

/// Why a string is not a valid identity number. Messages never contain the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityNumberError {
    #[error(
        "identity number has the wrong length or format: expected YYMMDD-NNNC, YYMMDD+NNNC, YYMMDDNNNC, YYYYMMDD-NNNC or YYYYMMDDNNNC"
    )]
    InvalidFormat,
    /// `+` means 100 or older; on the 12-digit form it must agree with the birth year.
    #[error(
        "identity number has a '+' separator (100 or older) on the 12-digit form of someone younger"
    )]
    PlusOnTwelveDigitForm,
    #[error("identity number does not contain a real calendar date of birth")]
    InvalidDate,
    #[error("identity number has a birth date in the future")]
    FutureBirthDate,
    #[error("identity number has the birth number 000, which is never assigned")]
    BirthNumberZero,
    #[error("identity number check digit does not match (luhn)")]
    CheckDigitMismatch,
}

/// The separator found in the input, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Separator {
    None,
    Minus,
    Plus,
}

impl IdentityKind {
    /// Lowercase identifier: `personnummer` or `samordningsnummer`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Personnummer => "personnummer",
            IdentityKind::Samordningsnummer => "samordningsnummer",
        }
    }
}

impl IdentityNumber {
    /// Parses and validates an identity number.
    ///
    /// Accepted forms (surrounding whitespace is trimmed, nothing else is tolerated):
    /// `YYMMDD-NNNC`, `YYMMDD+NNNC`, `YYMMDDNNNC`, `YYYYMMDD-NNNC`, `YYYYMMDDNNNC`, and
    /// `YYYYMMDD+NNNC` for someone who turns 100 in `reference_date`'s year or earlier.
    ///
    /// `reference_date` is today (in Sweden: [`crate::swedish_date`]). For the 10-digit forms
    /// the century is chosen so that the birth date is not after it; with `+` (written from
    /// the year the person turns 100) the birth year is the latest that is at least 100 years
    /// before its year. A birth date after `reference_date` is refused.
    pub fn parse(input: &str, reference_date: Date) -> Result<IdentityNumber, IdentityNumberError> {
        let trimmed = input.trim();
        let (digits, separator, has_century) = split_form(trimmed)?;

        let (century_digits, ten_digits) = if has_century {
            (Some(&digits[0..2]), &digits[2..])
        } else {
            (None, digits.as_str())
        };

        let two_digit_year = number_from_digits(&ten_digits[0..2]);
        let month_number = number_from_digits(&ten_digits[2..4]);
        let day_field = number_from_digits(&ten_digits[4..6]);

        let (kind, day_of_month) = match day_field {
            1..=31 => (IdentityKind::Personnummer, day_field),
            61..=91 => (IdentityKind::Samordningsnummer, day_field - 60),
            _ => return Err(IdentityNumberError::InvalidDate),
        };
        let month = u8::try_from(month_number)
            .ok()
            .and_then(|number| Month::try_from(number).ok())
            .ok_or(IdentityNumberError::InvalidDate)?;
        let day_of_month =
            u8::try_from(day_of_month).map_err(|_| IdentityNumberError::InvalidDate)?;

        let full_year: i32 = match century_digits {
            Some(century) => {
                let century = i32::try_from(number_from_digits(century))
                    .map_err(|_| IdentityNumberError::InvalidFormat)?;
                let two_digit_year = i32::try_from(two_digit_year)
                    .map_err(|_| IdentityNumberError::InvalidFormat)?;
                let year = century * 100 + two_digit_year;
                if separator == Separator::Plus && reference_date.year() - year < 100 {
                    return Err(IdentityNumberError::PlusOnTwelveDigitForm);
                }
                year
            }
            None => {
                let two_digit_year = i32::try_from(two_digit_year)
                    .map_err(|_| IdentityNumberError::InvalidFormat)?;
                let reference_year = reference_date.year();
                if separator == Separator::Plus {
                    // The latest year ending in these two digits in which the person turns
                    // 100 no later than the reference year.
                    let latest = reference_year - 100;
                    latest - (latest - two_digit_year).rem_euclid(100)
                } else {
                    let mut year = reference_year.div_euclid(100) * 100 + two_digit_year;
                    let birthday_after_reference = (u8::from(month), day_of_month)
                        > (u8::from(reference_date.month()), reference_date.day());
                    if year > reference_year || (year == reference_year && birthday_after_reference)
                    {
                        year -= 100;
                    }
                    year
                }
            }
        };

        if !(0..=9999).contains(&full_year) {
            return Err(IdentityNumberError::InvalidDate);
        }
        let birth_date = Date::from_calendar_date(full_year, month, day_of_month)
            .map_err(|_| IdentityNumberError::InvalidDate)?;
        if birth_date > reference_date {
            return Err(IdentityNumberError::FutureBirthDate);
        }
        if &ten_digits[6..9] == "000" {
            return Err(IdentityNumberError::BirthNumberZero);
        }

        if luhn_check_digit(&ten_digits[0..9]) != ten_digits.as_bytes()[9] - b'0' {
            return Err(IdentityNumberError::CheckDigitMismatch);
        }

        let twelve_digits = format!("{:02}{ten_digits}", full_year.div_euclid(100));

        Ok(IdentityNumber {
            twelve_digits,
            kind,
            birth_date,
        })
    }

    /// Personnummer or samordningsnummer.
    pub fn kind(&self) -> IdentityKind {
        self.kind
    }

    /// The birth date (for a samordningsnummer: the day field minus 60).
    pub fn birth_date(&self) -> Date {
        self.birth_date
    }

    /// Age in full years on `date` (0 if `date` is before the birth date).
    pub fn age_on(&self, date: Date) -> u32 {
        full_years_between(self.birth_date, date)
    }

    /// Whether the person is under 18 on `date`.
    pub fn is_minor_on(&self, date: Date) -> bool {
        self.age_on(date) < 18
    }

    /// The whole number as 12 digits, `YYYYMMDDNNNC`.
    ///
    /// With [`IdentityNumber::to_canonical_string`] the only way to read the full number.
    /// Use it for storage (encrypted) or for deriving a keyed search hash, never for logs,
    /// messages or views.
    pub fn as_twelve_digits(&self) -> &str {
        &self.twelve_digits
    }

    /// The canonical register form `YYYYMMDD-NNNC`. Contains the whole number: same care as
    /// [`IdentityNumber::as_twelve_digits`].
    pub fn to_canonical_string(&self) -> String {
        format!(
            "{}-{}",
            &self.twelve_digits[0..8],
            &self.twelve_digits[8..12]
        )
    }

    /// The masked form used by `Debug` and `Display`: `YYYYMMDD-****`.
    pub fn masked(&self) -> String {
        format!("{}-****", &self.twelve_digits[0..8])
    }
}

impl fmt::Debug for IdentityNumber {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("IdentityNumber")
            .field("kind", &self.kind)
            .field("masked", &self.masked())
            .finish()
    }
}

impl fmt::Display for IdentityNumber {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.masked())
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Full years from `birth_date` to `date`; 0 when `date` is before the birth date.
///
/// A person born on 29 February has a birthday on 1 March in non-leap years.
pub fn full_years_between(birth_date: Date, date: Date) -> u32 {
    let mut years = date.year() - birth_date.year();
    let birthday_reached =
        (u8::from(date.month()), date.day()) >= (u8::from(birth_date.month()), birth_date.day());
    if !birthday_reached {
        years -= 1;
    }
    u32::try_from(years).unwrap_or(0)
}

/// Luhn check digit over the given digits (weights 2, 1, 2, … from the left).
fn luhn_check_digit(digits: &str) -> u8 {
    let sum: u32 = digits
        .bytes()
        .enumerate()
        .map(|(position, byte)| {
            let digit = u32::from(byte - b'0');
            let product = if position % 2 == 0 { digit * 2 } else { digit };
            product / 10 + product % 10
        })
        .sum();
    // (10 - sum mod 10) mod 10 is always below 10.
    ((10 - sum % 10) % 10) as u8
}

fn number_from_digits(digits: &str) -> u32 {
    digits
        .bytes()
        .fold(0, |value, byte| value * 10 + u32::from(byte - b'0'))
}

/// Splits an already-trimmed input into its digits, separator and whether it has a century.
fn split_form(input: &str) -> Result<(String, Separator, bool), IdentityNumberError> {
    let bytes = input.as_bytes();
    let all_digits = |part: &[u8]| part.iter().all(u8::is_ascii_digit);
    match bytes.len() {
        10 if all_digits(bytes) => Ok((input.to_owned(), Separator::None, false)),
        12 if all_digits(bytes) => Ok((input.to_owned(), Separator::None, true)),
        11 if all_digits(&bytes[0..6]) && all_digits(&bytes[7..11]) => {
            let separator = match bytes[6] {
                b'-' => Separator::Minus,
                b'+' => Separator::Plus,
                _ => return Err(IdentityNumberError::InvalidFormat),
            };
            Ok((
                format!("{}{}", &input[0..6], &input[7..11]),
                separator,
                false,
            ))
        }
        13 if all_digits(&bytes[0..8]) && all_digits(&bytes[9..13]) => {
            let separator = match bytes[8] {
                b'-' => Separator::Minus,
                b'+' => Separator::Plus,
                _ => return Err(IdentityNumberError::InvalidFormat),
            };
            Ok((
                format!("{}{}", &input[0..8], &input[9..13]),
                separator,
                true,
            ))
        }
        _ => Err(IdentityNumberError::InvalidFormat),
    }
}

/// Helpers for tests in this and other crates: generate valid numbers instead of using
/// a real person's. Enabled by the `testing` feature.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use time::Date;

    /// A personnummer `YYYYMMDD-NNNC` for `birth` and birth number `birth_number % 1000`, with
    /// its check digit; valid unless that birth number is 0 (`000` is never assigned).
    pub fn personnummer_from(birth: Date, birth_number: u16) -> String {
        number_with_day_field(birth, birth.day(), birth_number)
    }

    /// A samordningsnummer `YYYYMMDD-NNNC` (day + 60) for `birth`; valid unless the birth
    /// number is 0 modulo 1000, as for [`personnummer_from`].
    pub fn samordningsnummer_from(birth: Date, birth_number: u16) -> String {
        number_with_day_field(birth, birth.day() + 60, birth_number)
    }

    fn number_with_day_field(birth: Date, day_field: u8, birth_number: u16) -> String {
        let ten_without_check = format!(
            "{:02}{:02}{:02}{:03}",
            birth.year().rem_euclid(100),
            u8::from(birth.month()),
            day_field,
            birth_number % 1000
        );
        let check = super::luhn_check_digit(&ten_without_check);
        format!(
            "{:02}{}-{}{}",
            birth.year().div_euclid(100),
            &ten_without_check[0..6],
            &ten_without_check[6..9],
            check
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    const REFERENCE: Date = date!(2025 - 06 - 01);

    #[test]
    fn worked_example_personnummer_parses_in_every_form() {
        for form in [
            "640823-3234",
            "6408233234",
            "19640823-3234",
            "196408233234",
            "  640823-3234\n",
        ] {
            let number = IdentityNumber::parse(form, REFERENCE).unwrap();
            assert_eq!(number.as_twelve_digits(), "196408233234");
            assert_eq!(number.kind(), IdentityKind::Personnummer);
            assert_eq!(number.birth_date(), date!(1964 - 08 - 23));
            assert_eq!(number.to_canonical_string(), "19640823-3234");
        }
    }

    #[test]
    fn samordningsnummer_example_is_recognised() {
        let number = IdentityNumber::parse("701063-2391", REFERENCE).unwrap();
        assert_eq!(number.kind(), IdentityKind::Samordningsnummer);
        assert_eq!(number.birth_date(), date!(1970 - 10 - 03));
        assert_eq!(number.as_twelve_digits(), "197010632391");
    }

    #[test]
    fn ten_digit_forms_take_the_century_from_the_separator_and_the_reference_date() {
        // (birth date, birth number, separator, reference date, birth date read)
        let cases = [
            // '+' means at least one hundred years old.
            (
                date!(1920 - 03 - 15),
                123,
                '+',
                REFERENCE,
                date!(1920 - 03 - 15),
            ),
            (
                date!(1920 - 03 - 15),
                123,
                '-',
                REFERENCE,
                date!(2020 - 03 - 15),
            ),
            // The century keeps the birth date not after the reference date.
            (
                date!(2025 - 06 - 02),
                1,
                '-',
                REFERENCE,
                date!(1925 - 06 - 02),
            ),
            (
                date!(2025 - 06 - 02),
                1,
                '-',
                date!(2025 - 06 - 02),
                date!(2025 - 06 - 02),
            ),
        ];
        for (birth, birth_number, separator, reference, expected) in cases {
            // `YYMMDD` `separator` `NNNC` of the generated `YYYYMMDD-NNNC`.
            let generated = testing::personnummer_from(birth, birth_number);
            let ten = format!("{}{separator}{}", &generated[2..8], &generated[9..13]);
            let number = IdentityNumber::parse(&ten, reference).unwrap();
            assert_eq!(number.birth_date(), expected, "{ten} on {reference}");
        }
    }

    #[test]
    fn plus_on_twelve_digit_form_is_refused() {
        assert_eq!(
            IdentityNumber::parse("19640823+3234", REFERENCE),
            Err(IdentityNumberError::PlusOnTwelveDigitForm)
        );
    }

    #[test]
    fn malformed_inputs_are_refused_with_format_error() {
        for input in [
            "",
            "640823 3234",
            "640823--3234",
            "64082-33234",
            "6408233234 x",
            "64O823-3234",
            "1964-0823-3234",
            "640823_3234",
            "19640823323",
        ] {
            assert_eq!(
                IdentityNumber::parse(input, REFERENCE),
                Err(IdentityNumberError::InvalidFormat),
                "{input}"
            );
        }
    }

    #[test]
    fn impossible_dates_are_refused() {
        // 30 February, month 13, day 00, day 32, samordningsnummer day 92.
        for (birth_prefix, day_field) in [
            ("6402", 30),
            ("6413", 1),
            ("6408", 0),
            ("6408", 32),
            ("6408", 92),
        ] {
            let without_check = format!("{birth_prefix}{day_field:02}323");
            let check = luhn_check_digit(&without_check);
            let input = format!("{without_check}{check}");
            assert_eq!(
                IdentityNumber::parse(&input, REFERENCE),
                Err(IdentityNumberError::InvalidDate),
                "{input}"
            );
        }
    }

    #[test]
    fn leap_day_is_valid_only_in_leap_years() {
        let without_check = "000229123";
        let check = luhn_check_digit(without_check);
        // Resolved to 2000, a leap year.
        let ten = format!("{without_check}{check}");
        assert_eq!(
            IdentityNumber::parse(&ten, REFERENCE).unwrap().birth_date(),
            date!(2000 - 02 - 29)
        );
        // 1900 was not a leap year.
        let twelve = format!("19{without_check}{check}");
        assert_eq!(
            IdentityNumber::parse(&twelve, REFERENCE),
            Err(IdentityNumberError::InvalidDate)
        );
    }

    #[test]
    fn birth_number_000_is_refused_in_every_form() {
        // The personnummer libraries' example: 2015-09-16, birth number 000, check digit 6.
        for form in ["150916-0006", "1509160006", "20150916-0006", "201509160006"] {
            assert_eq!(
                IdentityNumber::parse(form, REFERENCE),
                Err(IdentityNumberError::BirthNumberZero),
                "{form}"
            );
        }
        let born = date!(1970 - 10 - 03);
        for generated in [
            testing::personnummer_from(born, 0),
            testing::samordningsnummer_from(born, 1000),
        ] {
            assert_eq!(
                IdentityNumber::parse(&generated, REFERENCE),
                Err(IdentityNumberError::BirthNumberZero),
                "{generated}"
            );
        }
        assert!(IdentityNumber::parse(&testing::personnummer_from(born, 1), REFERENCE).is_ok());
    }

    #[test]
    fn a_birth_date_after_the_reference_date_is_refused() {
        let tomorrow = REFERENCE.next_day().unwrap();
        for generated in [
            testing::personnummer_from(tomorrow, 123),
            testing::samordningsnummer_from(tomorrow, 123),
            testing::personnummer_from(date!(2090 - 01 - 01), 123),
        ] {
            for form in [generated.clone(), generated.replace('-', "")] {
                assert_eq!(
                    IdentityNumber::parse(&form, REFERENCE),
                    Err(IdentityNumberError::FutureBirthDate),
                    "{form}"
                );
            }
        }
        // Born today is not in the future.
        let today = testing::personnummer_from(REFERENCE, 123);
        assert_eq!(
            IdentityNumber::parse(&today, REFERENCE)
                .unwrap()
                .birth_date(),
            REFERENCE
        );
        // The 10-digit forms pick the century that puts the birth date in the past.
        let ten = format!("{}{}", &today[2..8], &today[9..13]);
        assert_eq!(
            IdentityNumber::parse(&ten, date!(2025 - 05 - 31))
                .unwrap()
                .birth_date(),
            date!(1925 - 06 - 01)
        );
    }

    #[test]
    fn plus_is_written_from_the_year_the_person_turns_100() {
        // Born 31 December 1925: '+' from 1 January 2025, before the hundredth birthday.
        let generated = testing::personnummer_from(date!(1925 - 12 - 31), 123);
        let plus_ten = format!("{}+{}", &generated[2..8], &generated[9..13]);
        let plus_twelve = format!("{}+{}", &generated[0..8], &generated[9..13]);
        for form in [&plus_ten, &plus_twelve] {
            let number = IdentityNumber::parse(form, REFERENCE).unwrap();
            assert_eq!(number.birth_date(), date!(1925 - 12 - 31), "{form}");
            assert_eq!(number.as_twelve_digits(), generated.replace('-', ""));
        }
        // In 2024 they do not turn 100 yet: the 12-digit form's '+' contradicts its year.
        assert_eq!(
            IdentityNumber::parse(&plus_twelve, date!(2024 - 12 - 31)),
            Err(IdentityNumberError::PlusOnTwelveDigitForm)
        );
        assert_eq!(
            IdentityNumber::parse(&plus_ten, date!(2024 - 12 - 31))
                .unwrap()
                .birth_date(),
            date!(1825 - 12 - 31)
        );
    }

    /// The personnummer libraries' shared test list (`testdata/personnummer`): every form of
    /// every entry is accepted or refused as the list says, as the kind it says, with the birth
    /// date of its long form, on today's date in Sweden.
    #[test]
    fn personnummer_libraries_test_list() {
        #[derive(serde::Deserialize)]
        struct Entry {
            long_format: String,
            short_format: String,
            separated_format: String,
            separated_long: String,
            valid: bool,
            #[serde(rename = "type")]
            kind: String,
        }
        let entries: Vec<Entry> =
            serde_json::from_str(include_str!("../testdata/personnummer/list.json")).unwrap();
        assert_eq!(entries.len(), 14);
        let today = crate::swedish_date(time::OffsetDateTime::now_utc());
        let (mut valid, mut invalid) = (0, 0);
        for entry in &entries {
            let forms = [
                &entry.long_format,
                &entry.short_format,
                &entry.separated_format,
                &entry.separated_long,
            ];
            if !entry.valid {
                invalid += 1;
                for form in forms {
                    assert!(
                        IdentityNumber::parse(form, today).is_err(),
                        "{form} is invalid in the list"
                    );
                }
                continue;
            }
            valid += 1;
            let expected_kind = match entry.kind.as_str() {
                "ssn" => IdentityKind::Personnummer,
                "con" => IdentityKind::Samordningsnummer,
                other => panic!("unknown type {other}"),
            };
            let long = IdentityNumber::parse(&entry.long_format, today).unwrap();
            // The list does not change with time: its valid numbers must stay in the past.
            assert!(
                long.birth_date() <= today,
                "{} is in the future",
                entry.long_format
            );
            for form in forms {
                let number = IdentityNumber::parse(form, today)
                    .unwrap_or_else(|error| panic!("{form} is valid in the list: {error}"));
                assert_eq!(number.kind(), expected_kind, "{form}");
                // Without a century or separator a number reads as someone under 100.
                if form != &entry.short_format || long.age_on(today) < 100 {
                    assert_eq!(number.as_twelve_digits(), entry.long_format, "{form}");
                    assert_eq!(number.birth_date(), long.birth_date(), "{form}");
                }
            }
        }
        assert_eq!((valid, invalid), (8, 6));
    }

    #[test]
    fn wrong_check_digit_is_refused() {
        assert_eq!(
            IdentityNumber::parse("640823-3235", REFERENCE),
            Err(IdentityNumberError::CheckDigitMismatch)
        );
    }

    #[test]
    fn age_and_minority() {
        let number = IdentityNumber::parse(
            &testing::personnummer_from(date!(2008 - 03 - 10), 555),
            REFERENCE,
        )
        .unwrap();
        assert_eq!(number.age_on(date!(2026 - 03 - 09)), 17);
        assert!(number.is_minor_on(date!(2026 - 03 - 09)));
        assert_eq!(number.age_on(date!(2026 - 03 - 10)), 18);
        assert!(!number.is_minor_on(date!(2026 - 03 - 10)));
        assert_eq!(number.age_on(date!(2000 - 01 - 01)), 0);
    }

    #[test]
    fn leap_day_birthday_is_reached_on_first_of_march() {
        let born = date!(2004 - 02 - 29);
        assert_eq!(full_years_between(born, date!(2022 - 02 - 28)), 17);
        assert_eq!(full_years_between(born, date!(2022 - 03 - 01)), 18);
    }

    #[test]
    fn debug_and_display_mask_the_worked_example() {
        let number = IdentityNumber::parse("640823-3234", REFERENCE).unwrap();
        assert_eq!(number.to_string(), "19640823-****");
        let debug = format!("{number:?}");
        assert!(!debug.contains("3234"), "{debug}");
        assert!(debug.contains("19640823-****"), "{debug}");
    }

    fn birth_dates() -> impl Strategy<Value = Date> {
        (1900i32..=2025, 1u16..=365)
            .prop_map(|(year, ordinal)| Date::from_ordinal_date(year, ordinal).unwrap())
    }

    /// A generated valid number of either kind: its birth date, its 12-digit form with
    /// separator, and whether it is a samordningsnummer.
    fn generated_numbers() -> impl Strategy<Value = (Date, String, bool)> {
        (birth_dates(), 1u16..1000, any::<bool>()).prop_map(|(birth, birth_number, samordning)| {
            let generated = if samordning {
                testing::samordningsnummer_from(birth, birth_number)
            } else {
                testing::personnummer_from(birth, birth_number)
            };
            (birth, generated, samordning)
        })
    }

    proptest! {
        #[test]
        fn generated_numbers_parse_in_all_forms_to_the_same_value(
            (birth, generated, samordning) in generated_numbers(),
        ) {
            let reference = date!(2025 - 12 - 31);
            let twelve_plain = generated.replace('-', "");
            let ten_digits = &twelve_plain[2..];
            let ten_separator = if reference.year() - birth.year() >= 100 { '+' } else { '-' };
            let ten_with_separator = format!("{}{}{}", &ten_digits[0..6], ten_separator, &ten_digits[6..]);
            let forms = [generated.clone(), twelve_plain.clone(), ten_with_separator];
            let expected_kind = if samordning { IdentityKind::Samordningsnummer } else { IdentityKind::Personnummer };
            for form in forms {
                let number = IdentityNumber::parse(&form, reference).unwrap();
                prop_assert_eq!(number.as_twelve_digits(), twelve_plain.as_str());
                prop_assert_eq!(number.birth_date(), birth);
                prop_assert_eq!(number.kind(), expected_kind);
            }
            // The plain 10-digit form resolves the century by the reference date alone,
            // so it only round-trips for people under 100.
            if reference.year() - birth.year() < 99 {
                let number = IdentityNumber::parse(ten_digits, reference).unwrap();
                prop_assert_eq!(number.as_twelve_digits(), twelve_plain.as_str());
            }
        }

        #[test]
        fn changing_the_check_digit_fails_luhn(
            birth in birth_dates(),
            birth_number in 1u16..1000,
            replacement in 0u8..10,
        ) {
            let generated = testing::personnummer_from(birth, birth_number);
            let original_check = generated.as_bytes()[12] - b'0';
            prop_assume!(replacement != original_check);
            let changed = format!("{}{}", &generated[0..12], replacement);
            prop_assert_eq!(
                IdentityNumber::parse(&changed, date!(2025 - 12 - 31)),
                Err(IdentityNumberError::CheckDigitMismatch)
            );
        }

        #[test]
        fn debug_and_display_never_show_the_last_four_digits(
            (_birth, generated, _samordning) in generated_numbers(),
        ) {
            let number = IdentityNumber::parse(&generated, date!(2025 - 12 - 31)).unwrap();
            let last_four = &generated[9..13];
            let date_part = &generated[0..8];
            for rendered in [format!("{number}"), format!("{number:?}"), format!("{number:#?}")] {
                prop_assert!(!rendered.contains(&format!("-{last_four}")), "{}", rendered);
                // Only the date part may contain digits, so the last four appear only if the
                // date part itself happens to contain them.
                if !date_part.contains(last_four) {
                    prop_assert!(!rendered.contains(last_four), "{}", rendered);
                }
                let digit_count: usize = rendered.chars().filter(char::is_ascii_digit).count();
                prop_assert_eq!(digit_count, 8, "{}", rendered);
            }
        }

        #[test]
        fn birth_number_000_is_never_valid(birth in birth_dates(), samordning in any::<bool>()) {
            let generated = if samordning {
                testing::samordningsnummer_from(birth, 0)
            } else {
                testing::personnummer_from(birth, 0)
            };
            prop_assert_eq!(
                IdentityNumber::parse(&generated, date!(2025 - 12 - 31)),
                Err(IdentityNumberError::BirthNumberZero)
            );
        }

        #[test]
        fn arbitrary_strings_never_panic(input in ".{0,20}") {
            let _ = IdentityNumber::parse(&input, date!(2025 - 12 - 31));
        }

        #[test]
        fn digit_and_separator_strings_never_panic(input in "[0-9+\\- ]{0,14}") {
            let _ = IdentityNumber::parse(&input, date!(2025 - 12 - 31));
        }
    }
}
