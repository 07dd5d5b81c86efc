//! A subject report (registerutdrag) as a PDF/A-2b letter to the person, in Swedish: from the
//! JSON document the audit service's `GetSubjectReport` answers (`tryggdel.subject_report/1`),
//! the disclosures about them (when, to whom, under which legal basis and registry version,
//! for what purpose, which data items, when delivered and acknowledged) and the accesses to
//! their data (when, what, by which organisation and unit, by whom where named).
//!
//! Pure: the caller gives the document's bytes and the time; the PDF's bytes are returned.

use std::collections::BTreeMap;

use krilla::Document;
use krilla::SerializeSettings;
use krilla::configure::{Archival, ConfigurationBuilder, Validator};
use krilla::geom::Point;
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::text::{Font, TextDirection};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::ExportError;
use crate::pdf_export::{fit, glyph_em, pdf_date};

/// A4 portrait, in points.
const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
const BODY: f32 = 10.0;
const SMALL: f32 = 8.0;
/// The access table's columns: heading and width in points.
const ACCESS_COLUMNS: [(&str, f32); 5] = [
    ("Tid", 100.0),
    ("Vad", 130.0),
    ("Organisation", 100.0),
    ("Enhet", 75.0),
    ("Användare", 78.0),
];

/// The report as the audit service's JSON document gives it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SubjectReportDocument {
    pub format: String,
    pub report_id: String,
    pub report_index: u64,
    pub as_of: String,
    pub generated_at: String,
    pub organisation: String,
    pub disclosures: Vec<ReportedDisclosure>,
    pub accesses: Vec<ReportedAccess>,
}

/// A disclosure in the report.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ReportedDisclosure {
    pub disclosure_id: String,
    pub organisation: String,
    pub last_action: String,
    pub approved_at: String,
    pub recipient: String,
    pub legal_basis_id: String,
    pub registry_version: String,
    pub purpose: String,
    pub data_items: Vec<String>,
    pub delivered_at: String,
    pub acknowledged_at: String,
}

/// An access in the report.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ReportedAccess {
    pub occurred_at: String,
    pub action: String,
    pub organisation: String,
    pub unit: String,
    pub user_id: String,
    pub disclosure_ids: Vec<String>,
}

impl SubjectReportDocument {
    /// The document in `json`; one that is not a subject report is refused.
    pub fn parse(json: &[u8]) -> Result<SubjectReportDocument, ExportError> {
        let document: SubjectReportDocument = serde_json::from_slice(json)
            .map_err(|error| ExportError::Pdf(format!("the report does not parse: {error}")))?;
        if document.format != "tryggdel.subject_report/1" {
            return Err(ExportError::Pdf(format!(
                "not a subject report (format {:?})",
                document.format
            )));
        }
        Ok(document)
    }
}

/// One line of text placed on a page.
#[derive(Clone, Debug, PartialEq)]
struct Line {
    x: f32,
    y: f32,
    size: f32,
    text: String,
}

/// Lines laid out top to bottom, a new page when one is full.
struct Layout {
    pages: Vec<Vec<Line>>,
    y: f32,
}

impl Layout {
    fn new() -> Layout {
        Layout {
            pages: vec![Vec::new()],
            y: MARGIN,
        }
    }

    /// Room for `height` more points on this page, or a new page.
    fn need(&mut self, height: f32) {
        if self.y + height > PAGE_HEIGHT - MARGIN - 20.0 {
            self.pages.push(Vec::new());
            self.y = MARGIN;
        }
    }

    fn put(&mut self, x: f32, size: f32, text: &str) {
        if let Some(page) = self.pages.last_mut() {
            page.push(Line {
                x,
                y: self.y,
                size,
                text: text.to_owned(),
            });
        }
    }

    /// A paragraph wrapped to the page's width.
    fn paragraph(&mut self, size: f32, text: &str) {
        for line in wrap(text, PAGE_WIDTH - 2.0 * MARGIN, size) {
            self.need(size * 1.5);
            self.y += size * 1.5;
            self.put(MARGIN, size, &line);
        }
    }

    /// A labelled value, the value wrapped beside the label.
    fn field(&mut self, label: &str, value: &str) {
        let indent = 130.0;
        let lines = wrap(value, PAGE_WIDTH - 2.0 * MARGIN - indent, BODY);
        for (number, line) in lines.iter().enumerate() {
            self.need(BODY * 1.45);
            self.y += BODY * 1.45;
            if number == 0 {
                self.put(MARGIN, BODY, label);
            }
            self.put(MARGIN + indent, BODY, line);
        }
    }

    fn space(&mut self, points: f32) {
        self.y += points;
    }

    /// A row of cells in `columns`, each cut to its width.
    fn row(&mut self, size: f32, cells: &[String]) {
        self.need(size * 1.6);
        self.y += size * 1.6;
        let mut x = MARGIN;
        for ((_, width), cell) in ACCESS_COLUMNS.iter().zip(cells) {
            self.put(x, size, &fit(cell, width - 4.0, size));
            x += width;
        }
    }
}

/// The report in `json` as a PDF/A-2b letter, made at `generated_at`.
pub fn subject_report_pdf(
    json: &[u8],
    generated_at: OffsetDateTime,
) -> Result<Vec<u8>, ExportError> {
    let report = SubjectReportDocument::parse(json)?;
    let font = Font::new(ttf_noto_sans::REGULAR.into(), 0)
        .ok_or_else(|| ExportError::Pdf("the embedded font cannot be read".to_owned()))?;
    let layout = lay_out(&report);
    let configuration = ConfigurationBuilder::new()
        .set_validator(Validator::A(Archival::A2_B))
        .finish()
        .map_err(|e| ExportError::Pdf(format!("{e:?}")))?;
    let mut document = Document::new_with(SerializeSettings {
        configuration,
        ..SerializeSettings::default()
    });
    document.set_metadata(
        Metadata::new()
            .title("Registerutdrag".to_owned())
            .description(format!(
                "Registerutdrag ur Tryggdels granskningslogg, {} (utdrag {})",
                report.as_of, report.report_id
            ))
            .language("sv".to_owned())
            .creator("tryggdel".to_owned())
            .producer("tryggdel".to_owned())
            .creation_date(pdf_date(generated_at)),
    );
    let total = layout.pages.len();
    for (number, lines) in layout.pages.iter().enumerate() {
        let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
            .ok_or_else(|| ExportError::Pdf("invalid page size".to_owned()))?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        for line in lines {
            if !line.text.is_empty() {
                surface.draw_text(
                    Point::from_xy(line.x, line.y),
                    font.clone(),
                    line.size,
                    &line.text,
                    false,
                    TextDirection::Auto,
                );
            }
        }
        surface.draw_text(
            Point::from_xy(MARGIN, PAGE_HEIGHT - MARGIN / 2.0),
            font.clone(),
            7.0,
            &format!(
                "Registerutdrag {} · {} · sida {} av {total}",
                report.report_id,
                report.as_of,
                number + 1
            ),
            false,
            TextDirection::Auto,
        );
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|e| ExportError::Pdf(format!("{e:?}")))
}

/// The letter's lines, page by page.
fn lay_out(report: &SubjectReportDocument) -> Layout {
    let mut layout = Layout::new();
    layout.y += 18.0;
    layout.put(MARGIN, 18.0, "Registerutdrag");
    layout.space(6.0);
    layout.field("Datum", &report.as_of);
    layout.field(
        "Avser",
        if report.organisation.is_empty() {
            "samtliga organisationer i Tryggdel"
        } else {
            &report.organisation
        },
    );
    layout.field("Utdragets nummer", &report.report_id);
    layout.space(10.0);
    layout.paragraph(
        BODY,
        "Du har begärt att få veta vilka uppgifter om dig som har lämnats ut genom Tryggdel och \
         vem som har tagit del av dem. Här redovisas varje utlämnande av uppgifter om dig, med \
         mottagare, rättslig grund, ändamål och vilka uppgifter som lämnades, och varje gång \
         någon har tagit del av eller hanterat uppgifterna.",
    );
    layout.paragraph(
        BODY,
        "Uppgifter som omfattas av sekretess gentemot dig redovisas inte i utdraget.",
    );

    layout.space(14.0);
    layout.need(40.0);
    layout.y += 14.0;
    layout.put(MARGIN, 13.0, "Utlämnanden");
    if report.disclosures.is_empty() {
        layout.paragraph(BODY, "Inga uppgifter om dig har lämnats ut.");
    }
    for disclosure in &report.disclosures {
        layout.space(8.0);
        layout.need(120.0);
        layout.field("Utlämnande", &disclosure.disclosure_id);
        layout.field("Från", &disclosure.organisation);
        layout.field("Beslutat", &date_time(&disclosure.approved_at));
        layout.field("Mottagare", &disclosure.recipient);
        layout.field(
            "Rättslig grund",
            &joined(
                &[&disclosure.legal_basis_id, &disclosure.registry_version],
                ", registerversion ",
            ),
        );
        layout.field("Ändamål", &disclosure.purpose);
        layout.field("Uppgifter", &disclosure.data_items.join(", "));
        layout.field("Levererat", &date_time(&disclosure.delivered_at));
        layout.field("Kvitterat", &date_time(&disclosure.acknowledged_at));
        layout.field("Senaste händelse", &action_text(&disclosure.last_action));
    }

    layout.space(14.0);
    layout.need(40.0);
    layout.y += 14.0;
    layout.put(MARGIN, 13.0, "Åtkomster till uppgifterna");
    if report.accesses.is_empty() {
        layout.paragraph(BODY, "Ingen har tagit del av uppgifter om dig.");
    } else {
        layout.space(4.0);
        layout.row(
            SMALL,
            &ACCESS_COLUMNS.map(|(heading, _)| heading.to_owned()),
        );
        for access in &report.accesses {
            layout.row(
                SMALL,
                &[
                    date_time(&access.occurred_at),
                    action_text(&access.action),
                    access.organisation.clone(),
                    access.unit.clone(),
                    access.user_id.clone(),
                ],
            );
        }
    }
    layout.space(14.0);
    layout.paragraph(
        SMALL,
        "Utdraget är hämtat ur Tryggdels granskningslogg, där varje händelse är kontrollerbar i \
         efterhand. Själva utdraget är också loggat.",
    );
    layout
}

/// A time of the report (RFC 3339, UTC) as Swedish local time to the minute, or "–".
fn date_time(text: &str) -> String {
    if text.is_empty() {
        return "–".to_owned();
    }
    let parsed = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok();
    match parsed {
        Some(at) => {
            let local = at.to_offset(swedish_offset(at));
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                local.year(),
                u8::from(local.month()),
                local.day(),
                local.hour(),
                local.minute()
            )
        }
        None => text.to_owned(),
    }
}

/// Sweden's offset from UTC at `at`: +02:00 from the last Sunday of March 01:00 UTC to the
/// last Sunday of October 01:00 UTC, +01:00 otherwise.
fn swedish_offset(at: OffsetDateTime) -> time::UtcOffset {
    let at = at.to_offset(time::UtcOffset::UTC);
    let last_sunday = |month: time::Month| {
        let mut day = time::Date::from_calendar_date(at.year(), month, 31).ok();
        while let Some(date) = day {
            if date.weekday() == time::Weekday::Sunday {
                break;
            }
            day = date.previous_day();
        }
        day.and_then(|date| date.with_hms(1, 0, 0).ok())
            .map(time::PrimitiveDateTime::assume_utc)
    };
    let summer = match (
        last_sunday(time::Month::March),
        last_sunday(time::Month::October),
    ) {
        (Some(start), Some(end)) => at >= start && at < end,
        _ => false,
    };
    let hours = if summer { 2 } else { 1 };
    time::UtcOffset::from_hms(hours, 0, 0).unwrap_or(time::UtcOffset::UTC)
}

/// The non-empty `parts` joined with `separator`.
fn joined(parts: &[&str], separator: &str) -> String {
    parts
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(separator)
}

/// What an action means, in Swedish; an action without a wording as it is.
fn action_text(action: &str) -> String {
    let wordings: BTreeMap<&str, &str> = BTreeMap::from([
        (
            "disclosure.draft_created",
            "Utkast till utlämnande upprättat",
        ),
        ("disclosure.draft_updated", "Utkast ändrat"),
        ("disclosure.submitted", "Lämnat för beslut"),
        ("disclosure.approved", "Beslut om utlämnande"),
        ("disclosure.rejected", "Beslut att inte lämna ut"),
        ("disclosure.withdrawn", "Återkallat"),
        ("disclosure.recalled", "Återkallat efter leverans"),
        ("disclosure.expired", "Utkast avslutat utan beslut"),
        ("disclosure.read", "Läst ärendet"),
        ("disclosure.listed", "Ärendet visat i en lista"),
        ("disclosure.protected_revealed", "Skyddade uppgifter visade"),
        ("disclosure.delivered", "Levererat till mottagaren"),
        ("notification.delivered", "Levererat till mottagaren"),
        ("disclosure.acknowledged", "Mottagandet kvitterat"),
        ("notification.acknowledged", "Mottagandet kvitterat"),
        ("notification.read", "Läst av mottagaren"),
        ("audit.queried", "Sökning i granskningsloggen"),
        ("audit.subject_report", "Registerutdrag upprättat"),
    ]);
    wordings
        .get(action)
        .map_or_else(|| action.to_owned(), |text| (*text).to_owned())
}

/// `text` in lines of at most `width` points at `size` (by the per-glyph estimate), broken
/// between words; a word longer than a line is cut.
fn wrap(text: &str, width: f32, size: f32) -> Vec<String> {
    let limit = width / size;
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0.0;
    for word in text.split_whitespace() {
        let word_em: f32 = word.chars().map(glyph_em).sum();
        let space = if line.is_empty() { 0.0 } else { glyph_em(' ') };
        if !line.is_empty() && used + space + word_em > limit {
            lines.push(std::mem::take(&mut line));
            used = 0.0;
        }
        if !line.is_empty() {
            line.push(' ');
            used += glyph_em(' ');
        }
        if word_em > limit {
            line.push_str(&fit(word, width, size));
            used = limit;
        } else {
            line.push_str(word);
            used += word_em;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn document(disclosures: usize, accesses: usize) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "format": "tryggdel.subject_report/1",
            "report_id": "0190a1b2-0000-7000-8000-000000000001",
            "report_index": 41,
            "as_of": "2026-12-03",
            "generated_at": "2026-12-03T14:00:00.000Z",
            "organisation": "bollnas-kommun",
            "disclosures": (0..disclosures).map(|n| serde_json::json!({
                "disclosure_id": format!("d-{n}"),
                "organisation": "bollnas-kommun",
                "last_action": "disclosure.acknowledged",
                "approved_at": "2026-07-01T10:00:00.000Z",
                "recipient": "polisen/mitt",
                "legal_basis_id": "OSL-10-18c",
                "registry_version": "sha256:0123",
                "purpose": "att förebygga brott",
                "data_items": ["subject_name", "address"],
                "delivered_at": "2026-07-01T10:01:00.000Z",
                "acknowledged_at": "",
            })).collect::<Vec<_>>(),
            "accesses": (0..accesses).map(|n| serde_json::json!({
                "occurred_at": "2026-12-01T08:00:00.000Z",
                "action": "disclosure.read",
                "organisation": "bollnas-kommun",
                "unit": "IFO",
                "user_id": if n % 2 == 0 { "handlaggare" } else { "" },
                "disclosure_ids": ["d-0"],
            })).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn a_report_becomes_a_pdf_a_letter_in_swedish() {
        let pdf = subject_report_pdf(&document(2, 3), OffsetDateTime::UNIX_EPOCH).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("pdfaid:part"), "PDF/A metadata missing");
        let layout = lay_out(&SubjectReportDocument::parse(&document(2, 3)).unwrap());
        let lines: Vec<&str> = layout.pages[0]
            .iter()
            .map(|line| line.text.as_str())
            .collect();
        assert_eq!(lines[0], "Registerutdrag");
        assert!(lines.contains(&"Utlämnanden"));
        assert!(lines.contains(&"polisen/mitt"));
        assert!(lines.contains(&"OSL-10-18c, registerversion sha256:0123"));
        assert!(lines.contains(&"subject_name, address"));
        assert!(lines.contains(&"Åtkomster till uppgifterna"));
        assert!(lines.contains(&"Läst ärendet"));
        // Summer time in July, winter time in December.
        assert!(lines.contains(&"2026-07-01 12:00"), "{lines:?}");
        assert!(lines.contains(&"2026-12-01 09:00"), "{lines:?}");
    }

    #[test]
    fn long_reports_run_over_pages_and_empty_ones_say_so() {
        let long = lay_out(&SubjectReportDocument::parse(&document(3, 300)).unwrap());
        assert!(long.pages.len() > 3, "{} pages", long.pages.len());
        assert!(
            long.pages
                .iter()
                .flatten()
                .all(|line| line.y < PAGE_HEIGHT - MARGIN)
        );
        let empty = lay_out(&SubjectReportDocument::parse(&document(0, 0)).unwrap());
        let texts: Vec<&str> = empty.pages[0]
            .iter()
            .map(|line| line.text.as_str())
            .collect();
        assert!(texts.contains(&"Inga uppgifter om dig har lämnats ut."));
        assert!(texts.contains(&"Ingen har tagit del av uppgifter om dig."));
    }

    #[test]
    fn something_else_is_refused() {
        assert!(subject_report_pdf(b"{\"format\":\"x\"}", OffsetDateTime::UNIX_EPOCH).is_err());
        assert!(subject_report_pdf(b"not json", OffsetDateTime::UNIX_EPOCH).is_err());
    }

    #[test]
    fn paragraphs_wrap_between_words() {
        let lines = wrap("ett två tre fyra fem sex sju åtta nio tio", 60.0, 10.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.join(" "), "ett två tre fyra fem sex sju åtta nio tio");
    }
}
