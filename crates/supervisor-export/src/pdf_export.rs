//! PDF/A-2b: a first page naming the signed checkpoint, then a table of the entries (index,
//! time, action, actor, organisation, disclosure, recipient, legal basis), typeset with
//! krilla in Noto Sans (embedded, as PDF/A requires). krilla checks the PDF/A-2b rules it can
//! check when the document is finished and refuses to write one that breaks them.
//!
//! Unlike CSV and FHIR, the document is built in memory and written at the end.

use std::io::Write;

use krilla::Document;
use krilla::SerializeSettings;
use krilla::configure::{Archival, ConfigurationBuilder, Validator};
use krilla::geom::{PathBuilder, Point};
use krilla::metadata::{DateTime, Metadata};
use krilla::page::PageSettings;
use krilla::paint::Stroke;
use krilla::text::{Font, TextDirection};
use time::OffsetDateTime;

use crate::ExportError;
use crate::record::AuditRecord;
use crate::verified::CheckpointInfo;

/// A4 landscape, in points.
const PAGE_WIDTH: f32 = 842.0;
const PAGE_HEIGHT: f32 = 595.0;
const MARGIN: f32 = 36.0;
const TABLE_FONT_SIZE: f32 = 7.0;
const ROW_HEIGHT: f32 = 10.5;

/// The table's columns: heading and width in points.
const COLUMNS: [(&str, f32); 8] = [
    ("index", 36.0),
    ("time (UTC)", 100.0),
    ("action", 116.0),
    ("actor", 124.0),
    ("organisation", 64.0),
    ("disclosure", 146.0),
    ("recipient", 84.0),
    ("legal basis", 100.0),
];

/// The document being built: one table row per entry, a new page when one is full.
pub(crate) struct PdfExport {
    font: Font,
    checkpoint: CheckpointInfo,
    generated_at: OffsetDateTime,
    /// Rows of the page being filled.
    rows: Vec<[String; 8]>,
    /// Finished pages of rows.
    pages: Vec<Vec<[String; 8]>>,
}

impl PdfExport {
    pub(crate) fn start(
        checkpoint: &CheckpointInfo,
        generated_at: OffsetDateTime,
    ) -> Result<Self, ExportError> {
        let font = Font::new(ttf_noto_sans::REGULAR.into(), 0)
            .ok_or_else(|| ExportError::Pdf("the embedded font cannot be read".to_owned()))?;
        Ok(Self {
            font,
            checkpoint: checkpoint.clone(),
            generated_at,
            rows: Vec::new(),
            pages: Vec::new(),
        })
    }

    pub(crate) fn record(&mut self, record: &AuditRecord) {
        let disclosure = if record.disclosure_id.is_empty() {
            record
                .details
                .get("disclosure_ids")
                .cloned()
                .unwrap_or_default()
        } else {
            record.disclosure_id.clone()
        };
        let legal_basis = match (record.legal_basis_id.as_str(), record.purpose.as_str()) {
            (basis, "") => basis.to_owned(),
            ("", purpose) => purpose.to_owned(),
            (basis, purpose) => format!("{basis}: {purpose}"),
        };
        let action = if record.readable {
            record.action.clone()
        } else {
            "(not an entry object)".to_owned()
        };
        let outcome = match record.outcome.as_str() {
            "" | "success" => String::new(),
            other => format!(" [{other}]"),
        };
        let row = [
            record.index.to_string(),
            record.recorded_at.clone(),
            format!("{action}{outcome}"),
            record.actor_label(),
            if record.organisation.is_empty() {
                record.actor_organisation.clone()
            } else {
                record.organisation.clone()
            },
            disclosure,
            record.recipient.clone(),
            legal_basis,
        ];
        self.rows.push(row);
        if self.rows.len() == rows_per_page() {
            self.pages.push(std::mem::take(&mut self.rows));
        }
    }

    pub(crate) fn finish<W: Write>(mut self, mut out: W) -> Result<W, ExportError> {
        if !self.rows.is_empty() || self.pages.is_empty() {
            self.pages.push(std::mem::take(&mut self.rows));
        }
        let configuration = ConfigurationBuilder::new()
            .set_validator(Validator::A(Archival::A2_B))
            .finish()
            .map_err(|e| ExportError::Pdf(format!("{e:?}")))?;
        let settings = SerializeSettings {
            configuration,
            ..SerializeSettings::default()
        };
        let mut document = Document::new_with(settings);
        let checkpoint = &self.checkpoint;
        let title = format!(
            "Audit log {} at {} entries",
            checkpoint.origin, checkpoint.tree_size
        );
        document.set_metadata(
            Metadata::new()
                .title(title.clone())
                .description(format!(
                    "Every entry of the audit log {} at the signed checkpoint of {} entries, root hash {} (verified with {})",
                    checkpoint.origin,
                    checkpoint.tree_size,
                    checkpoint.root_hash_hex,
                    checkpoint.verified_with
                ))
                .keywords(vec![
                    "audit log".to_owned(),
                    format!("checkpoint root {}", checkpoint.root_hash_hex),
                ])
                .language("en".to_owned())
                .creator("tryggdel".to_owned())
                .producer("tryggdel".to_owned())
                .creation_date(pdf_date(self.generated_at)),
        );
        let total_pages = self.pages.len() + 1;
        self.first_page(&mut document, &title, total_pages)?;
        for (number, rows) in self.pages.iter().enumerate() {
            self.table_page(&mut document, rows, number + 2, total_pages)?;
        }
        let bytes = document
            .finish()
            .map_err(|e| ExportError::Pdf(format!("{e:?}")))?;
        out.write_all(&bytes)
            .and_then(|()| out.flush())
            .map_err(|e| ExportError::write("PDF", e))?;
        Ok(out)
    }

    fn first_page(
        &self,
        document: &mut Document,
        title: &str,
        total_pages: usize,
    ) -> Result<(), ExportError> {
        let settings = page_settings()?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        let checkpoint = &self.checkpoint;
        let mut y = MARGIN + 20.0;
        let mut line = |surface: &mut krilla::surface::Surface<'_>, size: f32, text: &str| {
            surface.draw_text(
                Point::from_xy(MARGIN, y),
                self.font.clone(),
                size,
                text,
                false,
                TextDirection::Auto,
            );
            y += size * 1.6;
        };
        line(&mut surface, 18.0, title);
        line(
            &mut surface,
            10.0,
            &format!(
                "Converted {} from an export that verified: the checkpoint's signature with the log's key",
                rfc3339(self.generated_at),
            ),
        );
        line(
            &mut surface,
            10.0,
            &format!(
                "{}, every entry's leaf hash and the root.",
                checkpoint.verified_with
            ),
        );
        line(&mut surface, 10.0, "");
        line(&mut surface, 12.0, "Signed checkpoint");
        line(
            &mut surface,
            10.0,
            &format!("origin: {}", checkpoint.origin),
        );
        line(
            &mut surface,
            10.0,
            &format!(
                "tree size: {} (entries with index 0 to {})",
                checkpoint.tree_size,
                checkpoint.tree_size.saturating_sub(1)
            ),
        );
        line(
            &mut surface,
            10.0,
            &format!("root hash (hex): {}", checkpoint.root_hash_hex),
        );
        line(
            &mut surface,
            10.0,
            &format!("root hash (base64): {}", checkpoint.root_hash_base64),
        );
        line(&mut surface, 10.0, "");
        line(&mut surface, 12.0, "The signed note (C2SP signed-note)");
        for text in checkpoint.note.lines() {
            line(&mut surface, 8.0, text);
        }
        line(&mut surface, 10.0, "");
        line(
            &mut surface,
            9.0,
            "Persons appear only as keyed references. Each row of the table names the entry's index in the log;",
        );
        line(
            &mut surface,
            9.0,
            "any entry can be proved included under this root with: tryggdel audit verify --inclusion INDEX",
        );
        self.footer(&mut surface, 1, total_pages);
        surface.finish();
        page.finish();
        Ok(())
    }

    fn table_page(
        &self,
        document: &mut Document,
        rows: &[[String; 8]],
        number: usize,
        total_pages: usize,
    ) -> Result<(), ExportError> {
        let settings = page_settings()?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        let mut y = MARGIN + 10.0;
        self.row(
            &mut surface,
            y,
            &COLUMNS.map(|(heading, _)| heading.to_owned()),
        );
        let mut rule = PathBuilder::new();
        rule.move_to(MARGIN, y + 3.0);
        rule.line_to(PAGE_WIDTH - MARGIN, y + 3.0);
        if let Some(path) = rule.finish() {
            surface.set_fill(None);
            surface.set_stroke(Some(Stroke {
                width: 0.5,
                ..Stroke::default()
            }));
            surface.draw_path(&path);
            surface.set_stroke(None);
            surface.set_fill(Some(krilla::paint::Fill::default()));
        }
        y += ROW_HEIGHT + 2.0;
        for row in rows {
            self.row(&mut surface, y, row);
            y += ROW_HEIGHT;
        }
        self.footer(&mut surface, number, total_pages);
        surface.finish();
        page.finish();
        Ok(())
    }

    fn row(&self, surface: &mut krilla::surface::Surface<'_>, y: f32, cells: &[String; 8]) {
        let mut x = MARGIN;
        for ((_, width), cell) in COLUMNS.iter().zip(cells) {
            let text = fit(cell, *width - 4.0, TABLE_FONT_SIZE);
            if !text.is_empty() {
                surface.draw_text(
                    Point::from_xy(x, y),
                    self.font.clone(),
                    TABLE_FONT_SIZE,
                    &text,
                    false,
                    TextDirection::Auto,
                );
            }
            x += width;
        }
    }

    fn footer(&self, surface: &mut krilla::surface::Surface<'_>, number: usize, total: usize) {
        let checkpoint = &self.checkpoint;
        surface.draw_text(
            Point::from_xy(MARGIN, PAGE_HEIGHT - MARGIN / 2.0),
            self.font.clone(),
            7.0,
            &format!(
                "{} · checkpoint of {} entries, root {} · page {number} of {total}",
                checkpoint.origin, checkpoint.tree_size, checkpoint.root_hash_hex
            ),
            false,
            TextDirection::Auto,
        );
    }
}

fn page_settings() -> Result<PageSettings, ExportError> {
    PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
        .ok_or_else(|| ExportError::Pdf("invalid page size".to_owned()))
}

/// How many table rows fit on a page.
fn rows_per_page() -> usize {
    let usable = PAGE_HEIGHT - 2.0 * MARGIN - ROW_HEIGHT - 2.0 - 10.0;
    // A positive page height over a positive row height: a small whole number.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rows = (usable / ROW_HEIGHT).floor() as usize;
    rows.max(1)
}

/// `text` cut with an ellipsis to fit `width` points at `size`, by a per-glyph width estimate
/// on the wide side for Noto Sans (so cells never run into the next column).
pub(crate) fn fit(text: &str, width: f32, size: f32) -> String {
    // Control characters (line breaks in a reason) become spaces: one line per cell.
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let limit = width / size;
    if estimated_em(&text) <= limit {
        return text;
    }
    let mut cut = String::new();
    let mut used = glyph_em('…');
    for c in text.chars() {
        used += glyph_em(c);
        if used > limit {
            break;
        }
        cut.push(c);
    }
    cut.push('…');
    cut
}

/// The estimated width of `text` in ems.
fn estimated_em(text: &str) -> f32 {
    text.chars().map(glyph_em).sum()
}

/// A glyph's width in ems, rounded up from Noto Sans's advances.
pub(crate) fn glyph_em(c: char) -> f32 {
    match c {
        'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' | ' ' | '-' | '(' | ')'
        | '[' | ']' => 0.34,
        'f' | 't' | 'r' | 'I' | '/' => 0.42,
        'm' | 'w' | 'M' | 'W' | '@' | '%' | '—' | '…' => 0.95,
        c if c.is_ascii_uppercase() => 0.72,
        c if c.is_ascii_digit() => 0.58,
        _ => 0.6,
    }
}

pub(crate) fn pdf_date(at: OffsetDateTime) -> DateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    DateTime::new(u16::try_from(at.year()).unwrap_or(0))
        .month(u8::from(at.month()))
        .day(at.day())
        .hour(at.hour())
        .minute(at.minute())
        .second(at.second())
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}

/// The time in RFC 3339, UTC, to the second.
fn rfc3339(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_cut_to_their_column_and_kept_on_one_line() {
        assert_eq!(fit("short", 100.0, 7.0), "short");
        let cut = fit(&"x".repeat(200), 40.0, 7.0);
        assert!(cut.ends_with('…'));
        assert!(estimated_em(&cut) * 7.0 <= 40.0, "{cut}");
        assert!(cut.chars().count() > 5, "{cut}");
        assert_eq!(fit("a\nb", 100.0, 7.0), "a b");
        // A disclosure id and a time fit their columns whole.
        let uuid = "0190a3b2-0000-7000-8000-000000000001";
        assert_eq!(fit(uuid, COLUMNS[5].1 - 4.0, TABLE_FONT_SIZE), uuid);
        let time = "2026-12-03T10:00:00.000Z";
        assert_eq!(fit(time, COLUMNS[1].1 - 4.0, TABLE_FONT_SIZE), time);
    }

    #[test]
    fn a_page_holds_dozens_of_rows() {
        assert!((40..60).contains(&rows_per_page()), "{}", rows_per_page());
    }
}
