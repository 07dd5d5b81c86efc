//! The compliance officer's statistics page ("Statistik"): disclosures per month as a
//! server-rendered SVG bar chart (with the same figures in a table beside it, for screen
//! readers and for those who would rather read), a table grouped by a chosen dimension with
//! the times from draft to decision, decision to delivery and delivery to acknowledgement,
//! and CSV/JSON downloads.
//!
//! Small counts: counts under 5 are shown as "<5" with their times hidden, unless the
//! organisation's own officer ticks "interna siffror" (exact figures on screen only). The
//! downloads leave the organisation and are always suppressed: they never ask for internal
//! figures. A supervisor sees every organisation, always suppressed.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::{Value, json};
use time::Date;
use time::macros::format_description;
use tryggdel_domain::end_of_swedish_day_unix_ms;
use tryggdel_proto::disclosure::v1::{
    DurationFigures, GetStatisticsRequest, Statistics, StatisticsRow,
};

use super::{Failure, page};
use crate::Shared;
use crate::session::Session;

/// The dimensions the table may be grouped by, with their Swedish names.
const DIMENSIONS: [(&str, &str); 7] = [
    ("legal_basis", "Rättslig grund"),
    ("crime_category", "Brottskategori"),
    ("recipient", "Mottagande myndighet"),
    ("police_region", "Polisregion"),
    ("outcome", "Utfall"),
    ("urgency", "Brådska"),
    ("organisation", "Organisation"),
];

/// The chart's size in SVG units.
const CHART_WIDTH: u32 = 640;
const CHART_HEIGHT: u32 = 220;
const CHART_BOTTOM: u32 = 30;

/// What the page's form asks (a GET form: nothing personal in it).
#[derive(Debug, Default, serde::Deserialize)]
pub struct StatisticsQuery {
    /// First day, YYYY-MM-DD.
    #[serde(default)]
    fran: String,
    /// Last day, YYYY-MM-DD, included.
    #[serde(default)]
    till: String,
    /// A dimension of [`DIMENSIONS`], or empty.
    #[serde(default)]
    per: String,
    /// "1": exact internal figures (the organisation's own officers, on screen only).
    #[serde(default)]
    interna: String,
}

/// The period and grouping as asked, checked.
struct Asked {
    from: Date,
    until: Date,
    per: Option<&'static str>,
    internal: bool,
}

/// The statistics page.
pub async fn show(
    State(console): State<Shared>,
    session: Session,
    Query(query): Query<StatisticsQuery>,
) -> Result<Markup, Failure> {
    let asked = asked(&query)?;
    let mut client = console.backend.disclosures(&session.user);
    let monthly = client
        .get_statistics(request(&asked, vec!["month".into()], asked.internal))
        .await?
        .into_inner();
    let grouped = client
        .get_statistics(request(&asked, grouping(&asked), asked.internal))
        .await?
        .into_inner();
    let downloads = download_query(&asked);
    let content = html! {
        h1 { "Statistik" }
        form.filters method="get" action="/statistik" {
            label for="fran" { "Från och med" }
            input id="fran" name="fran" type="date" value=(asked.from.to_string());
            label for="till" { "Till och med" }
            input id="till" name="till" type="date" value=(asked.until.to_string());
            label for="per" { "Gruppera efter" }
            select id="per" name="per" {
                option value="" selected[asked.per.is_none()] { "Endast månad" }
                @for (name, label) in DIMENSIONS {
                    option value=(name) selected[asked.per == Some(name)] { (label) }
                }
            }
            label {
                input type="checkbox" name="interna" value="1" checked[asked.internal];
                " Interna siffror (exakta antal under 5, bara på skärmen)"
            }
            button type="submit" { "Visa" }
        }
        p {
            @if monthly.suppressed_small_counts {
                "Antal under " (monthly.suppression_threshold) " visas som ”<" (monthly.suppression_threshold) "” och deras tider visas inte."
            } @else {
                "Interna siffror: exakta antal, även under 5. Visa dem inte utanför organisationen."
            }
        }
        p {
            "Ladda ner (alltid med små antal dolda): "
            a href={"/statistik/export.csv?" (downloads)} download { "CSV" }
            " · "
            a href={"/statistik/export.json?" (downloads)} download { "JSON" }
        }
        h2 id="per-manad" { "Utlämnanden per månad" }
        (chart(&monthly))
        (monthly_table(&monthly))
        h2 { "Antal och tider" }
        (grouped_table(&grouped))
    };
    Ok(page(&console, &session, "Statistik", content))
}

/// The statistics as CSV, always suppressed.
pub async fn export_csv(
    State(console): State<Shared>,
    session: Session,
    Query(query): Query<StatisticsQuery>,
) -> Result<Response, Failure> {
    let statistics = exported(&console, &session, &query).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"statistik.csv\"",
            ),
        ],
        csv(&statistics),
    )
        .into_response())
}

/// The statistics as JSON, always suppressed.
pub async fn export_json(
    State(console): State<Shared>,
    session: Session,
    Query(query): Query<StatisticsQuery>,
) -> Result<Response, Failure> {
    let statistics = exported(&console, &session, &query).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"statistik.json\"",
            ),
        ],
        statistics_json(&statistics).to_string(),
    )
        .into_response())
}

async fn exported(
    console: &Shared,
    session: &Session,
    query: &StatisticsQuery,
) -> Result<Statistics, Failure> {
    let asked = asked(query)?;
    Ok(console
        .backend
        .disclosures(&session.user)
        .get_statistics(request(&asked, grouping(&asked), false))
        .await?
        .into_inner())
}

fn asked(query: &StatisticsQuery) -> Result<Asked, Failure> {
    let today = tryggdel_domain::swedish_date(time::OffsetDateTime::now_utc());
    let day = |text: &str, default: Date| -> Result<Date, Failure> {
        if text.trim().is_empty() {
            return Ok(default);
        }
        Date::parse(text.trim(), format_description!("[year]-[month]-[day]"))
            .map_err(|_| Failure::BadInput(format!("Datumet ”{text}” ska skrivas ÅÅÅÅ-MM-DD.")))
    };
    let year_ago = today.replace_year(today.year() - 1).unwrap_or(today);
    let from = day(&query.fran, year_ago)?;
    let until = day(&query.till, today)?;
    if until < from {
        return Err(Failure::BadInput(
            "Slutdatumet ligger före startdatumet.".into(),
        ));
    }
    let per = if query.per.is_empty() {
        None
    } else {
        Some(
            DIMENSIONS
                .iter()
                .map(|(name, _)| *name)
                .find(|name| *name == query.per)
                .ok_or_else(|| Failure::BadInput("Okänd gruppering.".into()))?,
        )
    };
    Ok(Asked {
        from,
        until,
        per,
        internal: query.interna == "1",
    })
}

fn grouping(asked: &Asked) -> Vec<String> {
    let mut group_by = Vec::new();
    if let Some(per) = asked.per {
        group_by.push(per.to_owned());
    }
    group_by.push("month".to_owned());
    group_by
}

fn request(asked: &Asked, group_by: Vec<String>, internal: bool) -> GetStatisticsRequest {
    GetStatisticsRequest {
        organisation: String::new(),
        from_unix_ms: asked
            .from
            .previous_day()
            .and_then(end_of_swedish_day_unix_ms)
            .map_or(0, |end| end + 1),
        until_unix_ms: end_of_swedish_day_unix_ms(asked.until).map_or(0, |end| end + 1),
        group_by,
        internal,
    }
}

fn download_query(asked: &Asked) -> String {
    format!(
        "fran={}&till={}&per={}",
        asked.from,
        asked.until,
        asked.per.unwrap_or("")
    )
}

fn count_text(row: &StatisticsRow, threshold: u32) -> String {
    if row.suppressed {
        format!("<{threshold}")
    } else {
        row.count.to_string()
    }
}

fn spans(row: &StatisticsRow) -> [Option<&DurationFigures>; 3] {
    [
        row.draft_to_decision.as_ref(),
        row.decision_to_delivery.as_ref(),
        row.delivery_to_acknowledgement.as_ref(),
    ]
}

/// Seconds as a short Swedish duration: "45 s", "12 min", "3,5 h", "2,0 dygn".
fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    if seconds < 60 {
        format!("{seconds} s")
    } else if seconds < 3600 {
        format!("{} min", seconds / 60)
    } else if seconds < 86_400 {
        format!("{:.1} h", seconds as f64 / 3600.0).replace('.', ",")
    } else {
        format!("{:.1} dygn", seconds as f64 / 86_400.0).replace('.', ",")
    }
}

fn figures_text(figures: Option<&DurationFigures>, row: &StatisticsRow) -> String {
    match figures {
        None => "–".into(),
        Some(figures) if figures.suppressed || row.suppressed => "dold".into(),
        Some(figures) => format!(
            "{} / {}",
            duration(figures.median_seconds),
            duration(figures.p90_seconds)
        ),
    }
}

/// The monthly bar chart: one bar per month with its count; a suppressed month has no bar,
/// only its "<5". The figures are also in [`monthly_table`], which the chart points to.
fn chart(statistics: &Statistics) -> Markup {
    let rows = &statistics.rows;
    let highest = rows.iter().map(|row| row.count).max().unwrap_or(0).max(1);
    let slots = u32::try_from(rows.len()).unwrap_or(u32::MAX).max(1);
    let slot = CHART_WIDTH / slots;
    let bar_width = (slot * 2 / 3).max(2);
    let plot = CHART_HEIGHT - CHART_BOTTOM - 20;
    let summary = rows
        .iter()
        .map(|row| {
            format!(
                "{}: {}",
                row.keys.first().map(String::as_str).unwrap_or(""),
                count_text(row, statistics.suppression_threshold)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    html! {
        @if rows.is_empty() {
            p { "Inga utlämnanden under perioden." }
        } @else {
            figure.chart {
                svg role="img" aria-labelledby="diagram-titel diagram-beskrivning"
                    viewBox={"0 0 " (CHART_WIDTH) " " (CHART_HEIGHT)} width="100%" {
                    title id="diagram-titel" { "Utlämnanden per månad" }
                    desc id="diagram-beskrivning" { (summary) }
                    line x1="0" y1=(CHART_HEIGHT - CHART_BOTTOM) x2=(CHART_WIDTH)
                        y2=(CHART_HEIGHT - CHART_BOTTOM) stroke="#444" {}
                    @for (index, row) in rows.iter().enumerate() {
                        @let x = slot * u32::try_from(index).unwrap_or(0) + (slot - bar_width) / 2;
                        @let height = u32::try_from(row.count * u64::from(plot) / highest).unwrap_or(plot);
                        @let top = CHART_HEIGHT - CHART_BOTTOM - height;
                        @let label = count_text(row, statistics.suppression_threshold);
                        @if !row.suppressed {
                            rect x=(x) y=(top) width=(bar_width) height=(height) fill="#1f5f99" {}
                        }
                        text x=(x + bar_width / 2) y=(top.saturating_sub(4).max(12))
                            text-anchor="middle" font-size="12" fill="#222" { (label) }
                        text x=(x + bar_width / 2) y=(CHART_HEIGHT - 10)
                            text-anchor="middle" font-size="11" fill="#222" {
                            (row.keys.first().map(String::as_str).unwrap_or(""))
                        }
                    }
                }
                figcaption { "Samma siffror finns i tabellen nedan." }
            }
        }
    }
}

fn monthly_table(statistics: &Statistics) -> Markup {
    html! {
        table {
            caption { "Utlämnanden per månad (tabell)" }
            thead { tr { th scope="col" { "Månad" } th scope="col" { "Antal" } } }
            tbody {
                @for row in &statistics.rows {
                    tr {
                        th scope="row" { (row.keys.first().map(String::as_str).unwrap_or("")) }
                        td { (count_text(row, statistics.suppression_threshold)) }
                    }
                }
            }
        }
    }
}

fn grouped_table(statistics: &Statistics) -> Markup {
    let label = |name: &str| {
        DIMENSIONS
            .iter()
            .find(|(dimension, _)| *dimension == name)
            .map_or("Månad", |(_, label)| *label)
    };
    html! {
        table {
            caption { "Antal, och median / 90:e percentil för varje tid" }
            thead {
                tr {
                    @for name in &statistics.group_by { th scope="col" { (label(name)) } }
                    th scope="col" { "Antal" }
                    th scope="col" { "Utkast till beslut" }
                    th scope="col" { "Beslut till leverans" }
                    th scope="col" { "Leverans till kvittens" }
                }
            }
            tbody {
                @for row in &statistics.rows {
                    tr {
                        @for key in &row.keys { td { (if key.is_empty() { "(saknas)" } else { key }) } }
                        td { (count_text(row, statistics.suppression_threshold)) }
                        @for figures in spans(row) { td { (figures_text(figures, row)) } }
                    }
                }
            }
        }
    }
}

/// CSV (RFC 4180): a column per dimension, the count ("<5" when suppressed), then each time's
/// samples, median and 90th percentile in seconds (empty when hidden or not reached); a
/// leading `=`, `+`, `-` or `@` is defused.
fn csv(statistics: &Statistics) -> String {
    let names = [
        "draft_to_decision",
        "decision_to_delivery",
        "delivery_to_acknowledgement",
    ];
    let mut header = statistics.group_by.clone();
    header.push("count".into());
    for name in names {
        for figure in ["samples", "median_seconds", "p90_seconds"] {
            header.push(format!("{name}_{figure}"));
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

/// JSON: the period and grouping, then per group its keys by dimension, its count (a number,
/// or "<5") and its times (null when hidden or not reached).
fn statistics_json(statistics: &Statistics) -> Value {
    let names = [
        "draft_to_decision",
        "decision_to_delivery",
        "delivery_to_acknowledgement",
    ];
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
            for (name, figures) in names.into_iter().zip(spans(row)) {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn monthly() -> Statistics {
        Statistics {
            group_by: vec!["month".into()],
            rows: vec![
                StatisticsRow {
                    keys: vec!["2026-03".into()],
                    count: 12,
                    draft_to_decision: Some(DurationFigures {
                        samples: 12,
                        median_seconds: 5400,
                        p90_seconds: 90_000,
                        suppressed: false,
                    }),
                    ..StatisticsRow::default()
                },
                StatisticsRow {
                    keys: vec!["2026-04".into()],
                    suppressed: true,
                    ..StatisticsRow::default()
                },
            ],
            suppressed_small_counts: true,
            suppression_threshold: 5,
            ..Statistics::default()
        }
    }

    #[test]
    fn the_chart_is_labelled_and_draws_no_bar_for_a_suppressed_month() {
        let svg = chart(&monthly()).into_string();
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("aria-labelledby=\"diagram-titel diagram-beskrivning\""));
        assert!(svg.contains("2026-03: 12, 2026-04: &lt;5"));
        assert_eq!(svg.matches("<rect").count(), 1);
        let table = monthly_table(&monthly()).into_string();
        assert!(table.contains("<caption>"));
        assert!(table.contains("&lt;5"));
    }

    #[test]
    fn the_downloads_suppress_and_hide() {
        let text = csv(&monthly());
        assert_eq!(
            text,
            "month,count,draft_to_decision_samples,draft_to_decision_median_seconds,\
             draft_to_decision_p90_seconds,decision_to_delivery_samples,\
             decision_to_delivery_median_seconds,decision_to_delivery_p90_seconds,\
             delivery_to_acknowledgement_samples,delivery_to_acknowledgement_median_seconds,\
             delivery_to_acknowledgement_p90_seconds\r\n\
             2026-03,12,12,5400,90000,,,,,,\r\n2026-04,<5,,,,,,,,,\r\n"
        );
        let value = statistics_json(&monthly());
        assert_eq!(value["rows"][1]["count"], "<5");
        assert_eq!(value["rows"][0]["draft_to_decision"]["p90_seconds"], 90_000);
    }

    #[test]
    fn durations_read_as_swedish() {
        assert_eq!(duration(45), "45 s");
        assert_eq!(duration(720), "12 min");
        assert_eq!(duration(5400), "1,5 h");
        assert_eq!(duration(172_800), "2,0 dygn");
    }
}
