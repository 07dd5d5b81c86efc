//! `tryggdel statistics`: an organisation's disclosure statistics for a period, as CSV or JSON,
//! to a file or standard output. An export leaves the organisation, so it never asks for
//! internal figures: counts under 5 are always "<5" and their times left out.

use std::str::FromStr;

use anyhow::Context;
use serde_json::{Value, json};
use time::Date;
use time::macros::format_description;
use tryggdel_domain::end_of_swedish_day_unix_ms;
use tryggdel_proto::disclosure::v1::{
    DurationFigures, GetStatisticsRequest, Statistics, StatisticsRow,
};

use crate::client::refused;
use crate::commands::Session;

/// The names of the time columns, in order.
const SPANS: [&str; 3] = [
    "draft_to_decision",
    "decision_to_delivery",
    "delivery_to_acknowledgement",
];

/// How the statistics are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Json,
}

impl FromStr for ExportFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<ExportFormat, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(ExportFormat::Csv),
            "json" => Ok(ExportFormat::Json),
            _ => Err(format!("{text:?}: expected csv or json")),
        }
    }
}

/// A statistics export: disclosures created from `from` to `until` (Swedish days, both
/// included), grouped by `group_by`.
#[derive(Clone, Debug)]
pub struct StatisticsExport {
    /// None: one's own (a supervisor: every organisation).
    pub organisation: Option<String>,
    pub from: Date,
    pub until: Date,
    pub group_by: Vec<String>,
    pub format: ExportFormat,
    /// None: standard output.
    pub out: Option<std::path::PathBuf>,
}

/// A Swedish day, YYYY-MM-DD.
pub fn parse_day(text: &str) -> Result<Date, String> {
    Date::parse(text.trim(), format_description!("[year]-[month]-[day]"))
        .map_err(|_| format!("{text:?}: expected a date YYYY-MM-DD"))
}

/// Dimension names, comma-separated; `basis`, `crime` and `region` are short for
/// `legal_basis`, `crime_category` and `police_region`.
pub fn parse_dimensions(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            match name {
                "basis" => "legal_basis",
                "crime" => "crime_category",
                "region" => "police_region",
                other => other,
            }
            .to_owned()
        })
        .collect()
}

/// Fetches the statistics and writes them.
pub async fn export(session: &Session, export: StatisticsExport) -> anyhow::Result<()> {
    if export.until < export.from {
        anyhow::bail!("--until is before --from");
    }
    let from_unix_ms = export
        .from
        .previous_day()
        .and_then(end_of_swedish_day_unix_ms)
        .map_or(0, |end| end + 1);
    let until_unix_ms = end_of_swedish_day_unix_ms(export.until)
        .context("--until is outside the supported range")?
        + 1;
    let connection = session.connection.at(&session.endpoints.disclosure);
    let statistics = connection
        .disclosure()
        .await?
        .get_statistics(GetStatisticsRequest {
            organisation: export.organisation.clone().unwrap_or_default(),
            from_unix_ms,
            until_unix_ms,
            group_by: export.group_by.clone(),
            internal: false,
        })
        .await
        .map_err(refused)?
        .into_inner();
    let text = match export.format {
        ExportFormat::Csv => csv(&statistics),
        ExportFormat::Json => serde_json::to_string_pretty(&statistics_json(&statistics))
            .context("rendering the statistics as JSON")?,
    };
    match &export.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "{} groups written to {}",
                statistics.rows.len(),
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// The statistics as CSV (RFC 4180): one column per dimension, the count ("<5" when
/// suppressed), and each time's samples, median and 90th percentile in seconds (empty when
/// hidden or not reached).
pub fn csv(statistics: &Statistics) -> String {
    let mut header: Vec<String> = statistics.group_by.clone();
    header.push("count".into());
    for span in SPANS {
        for figure in ["samples", "median_seconds", "p90_seconds"] {
            header.push(format!("{span}_{figure}"));
        }
    }
    let mut lines = vec![csv_line(&header)];
    for row in &statistics.rows {
        let mut cells = row.keys.clone();
        cells.push(count_text(row, statistics.suppression_threshold));
        for figures in spans(row) {
            match figures.filter(|figures| !figures.suppressed && !row.suppressed) {
                Some(figures) => cells.extend([
                    figures.samples.to_string(),
                    figures.median_seconds.to_string(),
                    figures.p90_seconds.to_string(),
                ]),
                None => cells.extend([String::new(), String::new(), String::new()]),
            }
        }
        lines.push(csv_line(&cells));
    }
    lines.concat()
}

/// The statistics as JSON: the period and grouping, then one object per group with its keys
/// by dimension, its count (a number, or "<5") and its times (null when hidden or not
/// reached).
pub fn statistics_json(statistics: &Statistics) -> Value {
    let rows: Vec<Value> = statistics
        .rows
        .iter()
        .map(|row| {
            let keys: serde_json::Map<String, Value> = statistics
                .group_by
                .iter()
                .cloned()
                .zip(row.keys.iter().map(|key| Value::from(key.as_str())))
                .collect();
            let count = if row.suppressed {
                Value::from(count_text(row, statistics.suppression_threshold))
            } else {
                Value::from(row.count)
            };
            let mut object = json!({ "keys": keys, "count": count });
            for (name, figures) in SPANS.into_iter().zip(spans(row)) {
                object[name] = match figures.filter(|f| !f.suppressed && !row.suppressed) {
                    Some(figures) => json!({
                        "samples": figures.samples,
                        "median_seconds": figures.median_seconds,
                        "p90_seconds": figures.p90_seconds,
                    }),
                    None => Value::Null,
                };
            }
            object
        })
        .collect();
    json!({
        "organisation": statistics.organisation,
        "from_unix_ms": statistics.from_unix_ms,
        "until_unix_ms": statistics.until_unix_ms,
        "group_by": statistics.group_by,
        "small_counts_suppressed": statistics.suppressed_small_counts,
        "suppression_threshold": statistics.suppression_threshold,
        "rows": rows,
    })
}

fn spans(row: &StatisticsRow) -> [Option<&DurationFigures>; 3] {
    [
        row.draft_to_decision.as_ref(),
        row.decision_to_delivery.as_ref(),
        row.delivery_to_acknowledgement.as_ref(),
    ]
}

fn count_text(row: &StatisticsRow, threshold: u32) -> String {
    if row.suppressed {
        format!("<{threshold}")
    } else {
        row.count.to_string()
    }
}

/// One CSV line: cells quoted when they hold a comma, quote or line break, and a leading
/// `=`, `+`, `-` or `@` defused with a `'` so a spreadsheet does not run it.
fn csv_line(cells: &[String]) -> String {
    let cells: Vec<String> = cells
        .iter()
        .map(|cell| {
            let cell = if cell.starts_with(['=', '+', '-', '@']) {
                format!("'{cell}")
            } else {
                cell.clone()
            };
            if cell.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", cell.replace('"', "\"\""))
            } else {
                cell
            }
        })
        .collect();
    format!("{}\r\n", cells.join(","))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn statistics() -> Statistics {
        Statistics {
            group_by: vec!["month".into(), "legal_basis".into()],
            rows: vec![
                StatisticsRow {
                    keys: vec!["2026-03".into(), "OSL-10-18c".into()],
                    count: 7,
                    suppressed: false,
                    draft_to_decision: Some(DurationFigures {
                        samples: 6,
                        median_seconds: 180,
                        p90_seconds: 300,
                        suppressed: false,
                    }),
                    decision_to_delivery: Some(DurationFigures {
                        suppressed: true,
                        ..DurationFigures::default()
                    }),
                    delivery_to_acknowledgement: None,
                },
                StatisticsRow {
                    keys: vec!["2026-04".into(), "=cmd".into()],
                    count: 0,
                    suppressed: true,
                    ..StatisticsRow::default()
                },
            ],
            suppressed_small_counts: true,
            suppression_threshold: 5,
            from_unix_ms: 0,
            until_unix_ms: 1,
            organisation: "bollnas-kommun".into(),
        }
    }

    #[test]
    fn csv_suppresses_and_hides() {
        let text = csv(&statistics());
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert!(lines[0].starts_with("month,legal_basis,count,draft_to_decision_samples,"));
        assert_eq!(lines[1], "2026-03,OSL-10-18c,7,6,180,300,,,,,,");
        assert_eq!(lines[2], "2026-04,'=cmd,<5,,,,,,,,,");
    }

    #[test]
    fn json_suppresses_and_hides() {
        let value = statistics_json(&statistics());
        assert_eq!(value["rows"][0]["count"], 7);
        assert_eq!(value["rows"][0]["keys"]["month"], "2026-03");
        assert_eq!(value["rows"][0]["draft_to_decision"]["median_seconds"], 180);
        assert!(value["rows"][0]["decision_to_delivery"].is_null());
        assert_eq!(value["rows"][1]["count"], "<5");
        assert!(value["rows"][1]["draft_to_decision"].is_null());
    }

    #[test]
    fn dimensions_have_short_names() {
        assert_eq!(
            parse_dimensions("basis, month,,crime,region,outcome"),
            [
                "legal_basis",
                "month",
                "crime_category",
                "police_region",
                "outcome"
            ]
        );
        assert!(parse_day("2026-13-01").is_err());
        assert_eq!(parse_day("2026-03-01").unwrap().to_string(), "2026-03-01");
        assert_eq!("JSON".parse::<ExportFormat>(), Ok(ExportFormat::Json));
    }
}
