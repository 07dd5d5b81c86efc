//! Clearing decisions (gallringsbeslut): which kinds of personal data are cleared, how long
//! after a record's last entry, and which persons are kept for research.
//!
//! A decision is data, written by the organisation as TOML and parsed here into a
//! [`ClearingDecision`] that can only hold valid values:
//!
//! ```toml
//! id = "GB-2026-03"
//! title = "Gallring av personuppgifter i utlämningsärenden"
//! decided_by = "Socialnämnden"
//! decided_on = 2026-11-30
//! retention_years = 5
//! kinds = ["person_references", "free_text", "disclosure_content"]
//! exempt_birth_days = [5, 15, 25]
//! ```
//!
//! `retention_years` counts from the last entry of a record (a disclosure, or a person's
//! entries); `exempt_birth_days` are the days of the month on which persons kept for research
//! are born (for a samordningsnummer the birth day without the 60 added). Active holds always
//! block clearing; they are not part of a decision.
//!
//! [`ClearingDecision::sha256`] is the SHA-256 of the decision's canonical form (a fixed JSON
//! rendering independent of the TOML's layout, comments and list order), so the tombstone of a
//! clearing names exactly the decision it ran under.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, Month};

use crate::identity::IdentityNumber;

/// The format name inside the canonical form; a new canonical form gets a new name.
pub const CLEARING_DECISION_FORMAT: &str = "tryggdel.clearing-decision/1";

const DATE_FORMAT: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");
const MAX_ID_CHARS: usize = 64;
const MAX_TEXT_CHARS: usize = 200;
const MAX_RETENTION_YEARS: u16 = 100;

/// A kind of personal data a decision covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClearingDataKind {
    /// The keyed person references of log entries and the persons of a disclosure.
    PersonReferences,
    /// Free text: reasons, judgements, questions, outcome details.
    FreeText,
    /// A disclosure's content: sealed content, protected details, payload.
    DisclosureContent,
}

impl ClearingDataKind {
    /// Every kind, in canonical order.
    pub const ALL: [ClearingDataKind; 3] = [
        ClearingDataKind::PersonReferences,
        ClearingDataKind::FreeText,
        ClearingDataKind::DisclosureContent,
    ];

    /// The name used in decision files and the canonical form.
    pub fn as_str(self) -> &'static str {
        match self {
            ClearingDataKind::PersonReferences => "person_references",
            ClearingDataKind::FreeText => "free_text",
            ClearingDataKind::DisclosureContent => "disclosure_content",
        }
    }

    /// Parses a kind's name.
    pub fn parse(text: &str) -> Option<ClearingDataKind> {
        ClearingDataKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for ClearingDataKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Why a decision file was refused; each names the field and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClearingDecisionError {
    #[error("the clearing decision is not valid TOML or has unknown or missing fields: {0}")]
    Syntax(String),
    #[error("field `{field}` is blank")]
    Blank { field: &'static str },
    #[error("field `{field}` is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error(
        "field `id` may contain only letters A-Z, a-z, digits, `.`, `_` and `-` (a registry-style id)"
    )]
    InvalidId,
    #[error("field `decided_on` must be a date YYYY-MM-DD, got {0:?}")]
    InvalidDate(String),
    #[error("field `retention_years` must be between 1 and {MAX_RETENTION_YEARS}, got {0}")]
    RetentionYears(i64),
    #[error("field `kinds` is empty: a decision must cover at least one kind of data")]
    NoKinds,
    #[error(
        "field `kinds` names an unknown kind {0:?} (known: person_references, free_text, disclosure_content)"
    )]
    UnknownKind(String),
    #[error("field `kinds` names {0:?} twice")]
    DuplicateKind(String),
    #[error("field `exempt_birth_days` holds {0}, which is not a day of the month (1 to 31)")]
    ExemptDay(i64),
    #[error("field `exempt_birth_days` holds {0} twice")]
    DuplicateExemptDay(u8),
}

/// A parsed clearing decision. Only valid decisions exist.
#[derive(Clone, PartialEq, Eq)]
pub struct ClearingDecision {
    id: String,
    title: String,
    decided_by: String,
    decided_on: Date,
    retention_years: u16,
    kinds: BTreeSet<ClearingDataKind>,
    exempt_birth_days: BTreeSet<u8>,
    sha256: [u8; 32],
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionFile {
    id: String,
    title: String,
    decided_by: String,
    decided_on: toml::Value,
    retention_years: i64,
    kinds: Vec<String>,
    #[serde(default)]
    exempt_birth_days: Vec<i64>,
}

#[derive(Serialize)]
struct CanonicalForm<'a> {
    format: &'static str,
    id: &'a str,
    title: &'a str,
    decided_by: &'a str,
    decided_on: String,
    retention_years: u16,
    kinds: Vec<&'static str>,
    exempt_birth_days: Vec<u8>,
}

impl ClearingDecision {
    /// Parses a decision file (TOML). Refuses unknown fields, blank texts, an id that is not
    /// registry-style, a retention under one year, unknown or repeated kinds and days that are
    /// not days of the month.
    pub fn from_toml(text: &str) -> Result<ClearingDecision, ClearingDecisionError> {
        let file: DecisionFile = toml::from_str(text)
            .map_err(|error| ClearingDecisionError::Syntax(error.message().to_owned()))?;

        let id = checked_text("id", &file.id, MAX_ID_CHARS)?;
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(ClearingDecisionError::InvalidId);
        }
        let title = checked_text("title", &file.title, MAX_TEXT_CHARS)?;
        let decided_by = checked_text("decided_by", &file.decided_by, MAX_TEXT_CHARS)?;
        let decided_on = parse_date(&file.decided_on)?;

        let retention_years = u16::try_from(file.retention_years)
            .ok()
            .filter(|years| (1..=MAX_RETENTION_YEARS).contains(years))
            .ok_or(ClearingDecisionError::RetentionYears(file.retention_years))?;

        if file.kinds.is_empty() {
            return Err(ClearingDecisionError::NoKinds);
        }
        let mut kinds = BTreeSet::new();
        for name in &file.kinds {
            let kind = ClearingDataKind::parse(name.trim())
                .ok_or_else(|| ClearingDecisionError::UnknownKind(name.clone()))?;
            if !kinds.insert(kind) {
                return Err(ClearingDecisionError::DuplicateKind(name.clone()));
            }
        }

        let mut exempt_birth_days = BTreeSet::new();
        for &day in &file.exempt_birth_days {
            let valid = u8::try_from(day)
                .ok()
                .filter(|day| (1..=31).contains(day))
                .ok_or(ClearingDecisionError::ExemptDay(day))?;
            if !exempt_birth_days.insert(valid) {
                return Err(ClearingDecisionError::DuplicateExemptDay(valid));
            }
        }

        let mut decision = ClearingDecision {
            id,
            title,
            decided_by,
            decided_on,
            retention_years,
            kinds,
            exempt_birth_days,
            sha256: [0; 32],
        };
        decision.sha256 = Sha256::digest(decision.canonical_json().as_bytes()).into();
        Ok(decision)
    }

    /// The decision's registry-style id, e.g. `GB-2026-03`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The decision's title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Who decided (a body, such as a board).
    pub fn decided_by(&self) -> &str {
        &self.decided_by
    }

    /// The day it was decided.
    pub fn decided_on(&self) -> Date {
        self.decided_on
    }

    /// Whole years after a record's last entry before its data is cleared.
    pub fn retention_years(&self) -> u16 {
        self.retention_years
    }

    /// The kinds of data the decision covers, in canonical order.
    pub fn kinds(&self) -> impl Iterator<Item = ClearingDataKind> + '_ {
        self.kinds.iter().copied()
    }

    /// Whether the decision covers `kind`.
    pub fn covers(&self, kind: ClearingDataKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// The exempt birth days of the month, ascending.
    pub fn exempt_birth_days(&self) -> impl Iterator<Item = u8> + '_ {
        self.exempt_birth_days.iter().copied()
    }

    /// Whether the person is kept for research: born on an exempt day of the month (for a
    /// samordningsnummer, the birth day without the 60 added).
    pub fn exempts(&self, person: &IdentityNumber) -> bool {
        self.exempt_birth_days.contains(&person.birth_date().day())
    }

    /// The first day on which a record whose last entry was on `last_entry` may be cleared:
    /// the same day `retention_years` later (28 February for 29 February in a common year).
    pub fn clearable_from(&self, last_entry: Date) -> Date {
        let year = last_entry.year() + i32::from(self.retention_years);
        let day = last_entry.day().min(last_entry.month().length(year));
        Date::from_calendar_date(year, last_entry.month(), day)
            .or_else(|_| Date::from_calendar_date(year, Month::December, 31))
            .unwrap_or(Date::MAX)
    }

    /// Whether a record whose last entry was on `last_entry` is due for clearing on `today`.
    pub fn is_due(&self, last_entry: Date, today: Date) -> bool {
        today >= self.clearable_from(last_entry)
    }

    /// The canonical form the hash is taken over: JSON with the fields in a fixed order,
    /// kinds and days in ascending order, no whitespace.
    pub fn canonical_json(&self) -> String {
        let form = CanonicalForm {
            format: CLEARING_DECISION_FORMAT,
            id: &self.id,
            title: &self.title,
            decided_by: &self.decided_by,
            decided_on: format_date(self.decided_on),
            retention_years: self.retention_years,
            kinds: self.kinds.iter().map(|kind| kind.as_str()).collect(),
            exempt_birth_days: self.exempt_birth_days.iter().copied().collect(),
        };
        // Serialising strings, integers and lists into JSON cannot fail.
        serde_json::to_string(&form).unwrap_or_default()
    }

    /// SHA-256 of [`ClearingDecision::canonical_json`].
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// SHA-256 of the canonical form as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

impl fmt::Debug for ClearingDecision {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ClearingDecision")
            .field("id", &self.id)
            .field("decided_on", &format_date(self.decided_on))
            .field("retention_years", &self.retention_years)
            .field("kinds", &self.kinds)
            .field("exempt_birth_days", &self.exempt_birth_days)
            .field("sha256", &self.sha256_hex())
            .finish()
    }
}

fn checked_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<String, ClearingDecisionError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ClearingDecisionError::Blank { field });
    }
    if trimmed.chars().count() > max {
        return Err(ClearingDecisionError::TooLong { field, max });
    }
    Ok(trimmed.to_owned())
}

fn parse_date(value: &toml::Value) -> Result<Date, ClearingDecisionError> {
    let text = match value {
        toml::Value::String(text) => text.clone(),
        toml::Value::Datetime(datetime) if datetime.time.is_none() && datetime.offset.is_none() => {
            datetime.to_string()
        }
        other => other.to_string(),
    };
    Date::parse(text.trim(), DATE_FORMAT).map_err(|_| ClearingDecisionError::InvalidDate(text))
}

fn format_date(date: Date) -> String {
    date.format(DATE_FORMAT).unwrap_or_default()
}

/// A valid decision for tests.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    /// A decision clearing everything five years after the last entry, exempting persons born
    /// on the 5th, 15th and 25th.
    pub const CLEARING_DECISION_TOML: &str = r#"
id = "GB-2026-03"
title = "Gallring av personuppgifter i utlämningsärenden"
decided_by = "Socialnämnden"
decided_on = 2026-11-30
retention_years = 5
kinds = ["person_references", "free_text", "disclosure_content"]
exempt_birth_days = [5, 15, 25]
"#;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::testing::CLEARING_DECISION_TOML;
    use super::*;
    use time::macros::date;

    fn with(line_from: &str, line_to: &str) -> String {
        assert!(CLEARING_DECISION_TOML.contains(line_from), "{line_from}");
        CLEARING_DECISION_TOML.replace(line_from, line_to)
    }

    fn refused(text: &str) -> ClearingDecisionError {
        match ClearingDecision::from_toml(text) {
            Ok(decision) => panic!("accepted {decision:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn a_valid_decision_is_parsed() {
        let decision = ClearingDecision::from_toml(CLEARING_DECISION_TOML).unwrap();
        assert_eq!(decision.id(), "GB-2026-03");
        assert_eq!(decision.decided_by(), "Socialnämnden");
        assert_eq!(decision.decided_on(), date!(2026 - 11 - 30));
        assert_eq!(decision.retention_years(), 5);
        assert_eq!(decision.kinds().count(), 3);
        assert!(decision.covers(ClearingDataKind::FreeText));
        assert_eq!(
            decision.exempt_birth_days().collect::<Vec<_>>(),
            [5, 15, 25]
        );
    }

    #[test]
    fn the_date_may_be_a_string() {
        let decision = ClearingDecision::from_toml(&with(
            "decided_on = 2026-11-30",
            "decided_on = \"2026-11-30\"",
        ))
        .unwrap();
        assert_eq!(decision.decided_on(), date!(2026 - 11 - 30));
    }

    #[test]
    fn the_hash_ignores_layout_and_order_but_not_content() {
        let base = ClearingDecision::from_toml(CLEARING_DECISION_TOML).unwrap();
        let reordered = ClearingDecision::from_toml(
            &with("exempt_birth_days = [5, 15, 25]", "exempt_birth_days = [25, 5, 15]")
                .replace(
                    r#"kinds = ["person_references", "free_text", "disclosure_content"]"#,
                    "# kinds, any order\nkinds = [\"free_text\", \"disclosure_content\", \"person_references\"]",
                ),
        )
        .unwrap();
        assert_eq!(base.sha256(), reordered.sha256());
        assert_eq!(base.sha256_hex().len(), 64);
        let changed =
            ClearingDecision::from_toml(&with("retention_years = 5", "retention_years = 6"))
                .unwrap();
        assert_ne!(base.sha256(), changed.sha256());
        assert_eq!(
            hex::encode(Sha256::digest(base.canonical_json().as_bytes())),
            base.sha256_hex()
        );
        assert!(
            base.canonical_json()
                .starts_with(r#"{"format":"tryggdel.clearing-decision/1","id":"GB-2026-03""#)
        );
    }

    #[test]
    fn bad_input_is_refused_naming_the_problem() {
        let cases: [(String, &str); 12] = [
            (with("id = \"GB-2026-03\"", "id = \"  \""), "`id` is blank"),
            (
                with("id = \"GB-2026-03\"", "id = \"GB 2026/03\""),
                "`id` may contain",
            ),
            (
                with("decided_by = \"Socialnämnden\"", "decided_by = \"\""),
                "`decided_by` is blank",
            ),
            (
                with("decided_on = 2026-11-30", "decided_on = \"30/11/2026\""),
                "`decided_on`",
            ),
            (
                with("retention_years = 5", "retention_years = 0"),
                "`retention_years`",
            ),
            (
                with("retention_years = 5", "retention_years = -3"),
                "`retention_years`",
            ),
            (
                with(
                    r#"kinds = ["person_references", "free_text", "disclosure_content"]"#,
                    "kinds = []",
                ),
                "`kinds` is empty",
            ),
            (
                with(
                    r#"kinds = ["person_references", "free_text", "disclosure_content"]"#,
                    r#"kinds = ["names"]"#,
                ),
                "unknown kind \"names\"",
            ),
            (
                with(
                    r#"kinds = ["person_references", "free_text", "disclosure_content"]"#,
                    r#"kinds = ["free_text", "free_text"]"#,
                ),
                "names \"free_text\" twice",
            ),
            (with("[5, 15, 25]", "[5, 32]"), "holds 32"),
            (with("[5, 15, 25]", "[5, 5]"), "holds 5 twice"),
            (
                with(
                    "retention_years = 5",
                    "retention_years = 5\nretention_months = 2",
                ),
                "retention_months",
            ),
        ];
        for (text, expected) in cases {
            let message = refused(&text).to_string();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
        let missing = refused(&with(
            "title = \"Gallring av personuppgifter i utlämningsärenden\"",
            "",
        ));
        assert!(missing.to_string().contains("title"), "{missing}");
    }

    #[test]
    fn exempt_persons_and_due_dates() {
        let decision = ClearingDecision::from_toml(CLEARING_DECISION_TOML).unwrap();
        let today = date!(2026 - 12 - 01);
        let born_15th = crate::testing::personnummer_from(date!(1980 - 03 - 15), 123);
        let born_16th = crate::testing::personnummer_from(date!(1980 - 03 - 16), 123);
        let born_15th = IdentityNumber::parse(&born_15th, today).unwrap();
        let born_16th = IdentityNumber::parse(&born_16th, today).unwrap();
        assert!(decision.exempts(&born_15th));
        assert!(!decision.exempts(&born_16th));
        let coordination = crate::testing::samordningsnummer_from(date!(1980 - 03 - 25), 123);
        let coordination = IdentityNumber::parse(&coordination, today).unwrap();
        assert!(decision.exempts(&coordination));

        assert_eq!(
            decision.clearable_from(date!(2020 - 02 - 29)),
            date!(2025 - 02 - 28)
        );
        assert!(decision.is_due(date!(2021 - 12 - 01), today));
        assert!(!decision.is_due(date!(2021 - 12 - 02), today));
    }
}
