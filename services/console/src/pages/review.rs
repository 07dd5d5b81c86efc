//! The compliance officer's systematic log review ("Logggranskning"): the organisation's
//! written criteria for unauthorised access (shown, and set as a new version), review runs over
//! a period (a seeded, reproducible sample and the targeted rules), a run's findings with their
//! plain explanations, and an outcome recorded per finding (over htmx the row is replaced; without
//! JavaScript the form posts and the run is shown again). The audit service decides everything.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tryggdel_proto::audit::v1::{
    GetReviewCriteriaRequest, GetReviewRunRequest, ListReviewRunsRequest,
    RecordReviewOutcomeRequest, ReviewCriteria, ReviewFinding, ReviewOutcome, ReviewRun,
    SetReviewCriteriaRequest, StartReviewRunRequest,
};

use super::{Failure, csrf_field, page, refusal_box};
use crate::Shared;
use crate::form::Posted;
use crate::refusal::Refusal;
use crate::session::Session;

/// Where the review lives.
pub const PATH: &str = "/granskning/logggranskning";

/// The rules' names as a reviewer reads them.
fn rule_name(rule: &str) -> &str {
    match rule {
        "sample" => "Stickprov",
        "protected_identity" => "Skyddad identitet",
        "no_relation" => "Ingen koppling till ärendet",
        "outside_hours" => "Utanför arbetstid",
        "many_persons" => "Många personer på kort tid",
        "protected_revealed" => "Skyddade uppgifter visade",
        "compliance_read" => "Läsning av loggen",
        other => other,
    }
}

fn outcome_name(outcome: i32) -> &'static str {
    match ReviewOutcome::try_from(outcome) {
        Ok(ReviewOutcome::NoRemark) => "Utan anmärkning",
        Ok(ReviewOutcome::Explained) => "Förklarad",
        Ok(ReviewOutcome::UnauthorisedEscalated) => "Obehörig – eskalerad",
        _ => "Ej bedömd",
    }
}

fn local_time(unix_ms: i64) -> String {
    if unix_ms <= 0 {
        return String::new();
    }
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .map(|at| {
            let local = tryggdel_domain::swedish_time(at);
            format!("{} {:02}:{:02}", local.date(), local.hour(), local.minute())
        })
        .unwrap_or_default()
}

/// A refusal of a read: expired sessions sign in again, the rest is shown.
fn refused(status: tonic::Status) -> Result<Refusal, Failure> {
    let refusal = Refusal::from(status);
    if refusal.is_unauthenticated() {
        return Err(Failure::Expired);
    }
    Ok(refusal)
}

/// The start page: the criteria, a new run, and the organisation's runs.
pub async fn start(State(console): State<Shared>, session: Session) -> Result<Markup, Failure> {
    start_page(&console, &session, &Posted::default(), None).await
}

async fn start_page(
    console: &Shared,
    session: &Session,
    posted: &Posted,
    refusal: Option<&Refusal>,
) -> Result<Markup, Failure> {
    let mut review = console.backend.review(&session.user);
    let criteria = review
        .get_review_criteria(GetReviewCriteriaRequest::default())
        .await?
        .into_inner();
    let runs = review
        .list_review_runs(ListReviewRunsRequest {
            page_size: 50,
            ..ListReviewRunsRequest::default()
        })
        .await?
        .into_inner()
        .runs;
    let value = |name: &str, default: &str| {
        let text = posted.text(name);
        if text.is_empty() {
            default.to_owned()
        } else {
            text
        }
    };
    Ok(page(
        console,
        session,
        "Logggranskning",
        html! {
            h1 { "Logggranskning" }
            p { "En granskning av en period kombinerar ett slumpvis stickprov, som kan dras igen från sitt frö, med riktade kontroller. Varje fynd förklarar sig och bedöms av dig." }
            (refusal_box(refusal))
            section aria-labelledby="kriterier" {
                h2 id="kriterier" { "Kriterier för obehörig åtkomst" }
                (criteria_text(&criteria))
                details {
                    summary { "Skriv nya kriterier (en ny version sparas)" }
                    form.stacked method="post" action={(PATH) "/kriterier"} {
                        (csrf_field(session))
                        label for="text" { "Kriterier" }
                        textarea id="text" name="text" rows="8" { (value("text", &criteria.text)) }
                        div.actions { button type="submit" { "Spara som ny version" } }
                    }
                }
            }
            section aria-labelledby="ny" {
                h2 id="ny" { "Ny granskning" }
                form.stacked method="post" action=(PATH) {
                    (csrf_field(session))
                    label for="from" { "Från och med" span.hint { "ÅÅÅÅ-MM-DD" } }
                    input type="date" id="from" name="from" required value=(posted.text("from"));
                    label for="until" { "Till och med" span.hint { "ÅÅÅÅ-MM-DD, högst 92 dagar" } }
                    input type="date" id="until" name="until" required value=(posted.text("until"));
                    label for="sample_size" { "Stickprovets storlek" span.hint { "Tomt: standard" } }
                    input type="number" id="sample_size" name="sample_size" min="0" max="1000" value=(posted.text("sample_size"));
                    label for="seed" { "Frö" span.hint { "64 hexadecimala tecken; tomt: ett nytt dras. Samma frö ger samma stickprov." } }
                    input type="text" id="seed" name="seed" value=(posted.text("seed")) autocomplete="off";
                    div.actions { button type="submit" { "Granska perioden" } }
                }
            }
            section aria-labelledby="tidigare" {
                h2 id="tidigare" { "Tidigare granskningar" }
                table {
                    caption { "Organisationens granskningar, senaste först" }
                    thead { tr {
                        th scope="col" { "Period" } th scope="col" { "Fynd" } th scope="col" { "Ej bedömda" }
                        th scope="col" { "Gjord av" } th scope="col" { "Tid" }
                    } }
                    tbody {
                        @if runs.is_empty() { tr { td colspan="5" { "Inga granskningar ännu." } } }
                        @for run in &runs {
                            tr {
                                td { a href={(PATH) "/" (run.run_id)} { (run.from) " – " (run.until) } }
                                td { (run.finding_count) }
                                td { (run.open_findings) }
                                td { (run.started_by) }
                                td { (local_time(run.started_at_unix_ms)) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

fn criteria_text(criteria: &ReviewCriteria) -> Markup {
    html! {
        @if criteria.version == 0 {
            p { "Organisationen har inte skrivit några kriterier ännu." }
        } @else {
            p.hint { "Version " (criteria.version) ", sparad av " (criteria.set_by) " " (local_time(criteria.set_at_unix_ms)) "." }
            blockquote.criteria { @for line in criteria.text.lines() { (line) br; } }
        }
    }
}

/// Saves new criteria, then shows the start page again.
pub async fn set_criteria(
    State(console): State<Shared>,
    session: Session,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let posted = Posted::new(pairs);
    session.check_csrf(&posted.csrf())?;
    let result = console
        .backend
        .review(&session.user)
        .set_review_criteria(SetReviewCriteriaRequest {
            organisation: String::new(),
            text: posted.text("text"),
        })
        .await;
    match result {
        Ok(_) => Ok(Redirect::to(PATH).into_response()),
        Err(status) => {
            let refusal = refused(status)?;
            Ok(start_page(&console, &session, &posted, Some(&refusal))
                .await?
                .into_response())
        }
    }
}

/// Starts a run and shows it.
pub async fn start_run(
    State(console): State<Shared>,
    session: Session,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let posted = Posted::new(pairs);
    session.check_csrf(&posted.csrf())?;
    let sample_size = match posted.text("sample_size").as_str() {
        "" => 0,
        text => text.parse().map_err(|_| {
            Failure::BadInput(format!(
                "Stickprovets storlek ”{text}” ska vara ett heltal."
            ))
        })?,
    };
    let result = console
        .backend
        .review(&session.user)
        .start_review_run(StartReviewRunRequest {
            organisation: String::new(),
            from: posted.text("from"),
            until: posted.text("until"),
            seed: posted.text("seed"),
            sample_size,
        })
        .await;
    match result {
        Ok(run) => Ok(Redirect::to(&format!("{PATH}/{}", run.into_inner().run_id)).into_response()),
        Err(status) => {
            let refusal = refused(status)?;
            Ok(start_page(&console, &session, &posted, Some(&refusal))
                .await?
                .into_response())
        }
    }
}

/// A run: its period, seed, rules, the criteria it was held against, and its findings.
pub async fn show(
    State(console): State<Shared>,
    session: Session,
    Path(run_id): Path<String>,
) -> Result<Markup, Failure> {
    let run = console
        .backend
        .review(&session.user)
        .get_review_run(GetReviewRunRequest { run_id })
        .await?
        .into_inner();
    Ok(run_page(&console, &session, &run))
}

fn run_page(console: &Shared, session: &Session, run: &ReviewRun) -> Markup {
    page(
        console,
        session,
        "Logggranskning",
        html! {
            p { a href=(PATH) { "← Alla granskningar" } }
            h1 { "Granskning " (run.from) " – " (run.until) }
            dl {
                dt { "Organisation" } dd { (super::organisation_name(console, &run.organisation)) }
                dt { "Gjord av" } dd { (run.started_by) ", " (local_time(run.started_at_unix_ms)) }
                dt { "Åtkomster i perioden" } dd { (run.access_entries) }
                dt { "Fynd" } dd { (run.finding_count) " (" (run.open_findings) " ej bedömda)" }
                dt { "Frö" } dd { code { (run.seed) } " (" (run.sample_algorithm) ")" }
            }
            h2 { "Kontroller" }
            table {
                caption { "Vad varje kontroll fann; en kontroll visar högst ett begränsat antal fynd" }
                thead { tr { th scope="col" { "Kontroll" } th scope="col" { "Träffar" } th scope="col" { "Fynd" } } }
                tbody {
                    @for count in &run.rule_counts {
                        tr { td { (rule_name(&count.rule)) } td { (count.matched) } td { (count.findings) } }
                    }
                }
            }
            details {
                summary { "Kontrollernas regler" }
                ul { @for rule in &run.rules { li { (rule) } } }
            }
            h2 { "Kriterier" }
            @if let Some(criteria) = &run.criteria { (criteria_text(criteria)) }
            h2 { "Fynd" }
            table.findings {
                caption { "Bedöm varje fynd; en anteckning krävs för Förklarad och Obehörig" }
                thead { tr {
                    th scope="col" { "#" } th scope="col" { "Kontroll" } th scope="col" { "Förklaring" }
                    th scope="col" { "Bedömning" }
                } }
                tbody {
                    @if run.findings.is_empty() { tr { td colspan="4" { "Inga fynd." } } }
                    @for finding in &run.findings { (finding_row(session, finding, None)) }
                }
            }
        },
    )
}

/// One finding's row with its outcome form; htmx replaces the row with the answer.
pub fn finding_row(
    session: &Session,
    finding: &ReviewFinding,
    refusal: Option<&Refusal>,
) -> Markup {
    let id = format!("fynd-{}", finding.number);
    let action = format!("{PATH}/{}/fynd/{}", finding.run_id, finding.number);
    let current = ReviewOutcome::try_from(finding.outcome).unwrap_or(ReviewOutcome::Unspecified);
    html! {
        tr id=(id) {
            td { (finding.number) }
            td { (rule_name(&finding.rule)) }
            td {
                (finding.explanation_sv)
                @if finding.entry_index >= 0 {
                    " " a href={"/granskning/post/" (finding.entry_index)} { "Post #" (finding.entry_index) }
                }
            }
            td {
                @if current != ReviewOutcome::Unspecified {
                    p { strong { (outcome_name(finding.outcome)) } " (" (finding.outcome_by) ")" }
                    @if !finding.note.is_empty() { p { (finding.note) } }
                }
                @if let Some(refusal) = refusal { p.refusal role="alert" { (refusal.sentence) } }
                form method="post" action=(action) hx-post=(action) hx-target={"#" (id)} hx-swap="outerHTML" {
                    (csrf_field(session))
                    label for={(id) "-utfall"} { "Bedömning" }
                    select id={(id) "-utfall"} name="outcome" {
                        @for (value, outcome) in [("no_remark", ReviewOutcome::NoRemark), ("explained", ReviewOutcome::Explained), ("unauthorised_escalated", ReviewOutcome::UnauthorisedEscalated)] {
                            option value=(value) selected[current == outcome] { (outcome_name(outcome as i32)) }
                        }
                    }
                    label for={(id) "-anteckning"} { "Anteckning" }
                    textarea id={(id) "-anteckning"} name="note" rows="2" { (finding.note) }
                    button type="submit" { "Spara bedömning" }
                }
            }
        }
    }
}

/// Records an outcome: over htmx the row, otherwise the run again.
pub async fn record_outcome(
    State(console): State<Shared>,
    session: Session,
    headers: HeaderMap,
    Path((run_id, number)): Path<(String, u32)>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let posted = Posted::new(pairs);
    session.check_csrf(&posted.csrf())?;
    let outcome = match posted.text("outcome").as_str() {
        "no_remark" => ReviewOutcome::NoRemark,
        "explained" => ReviewOutcome::Explained,
        "unauthorised_escalated" => ReviewOutcome::UnauthorisedEscalated,
        _ => return Err(Failure::BadInput("Välj en bedömning.".into())),
    };
    let htmx = headers.contains_key("hx-request");
    let mut review = console.backend.review(&session.user);
    let note = posted.text("note");
    let refusal = if note.trim().is_empty() && outcome != ReviewOutcome::NoRemark {
        Refusal {
            sentence: "Skriv en anteckning: den krävs för Förklarad och Obehörig – eskalerad."
                .into(),
            field: None,
            code: tonic::Code::InvalidArgument,
        }
    } else {
        let result = review
            .record_review_outcome(RecordReviewOutcomeRequest {
                run_id: run_id.clone(),
                finding: number,
                outcome: outcome as i32,
                note,
            })
            .await;
        match result {
            Ok(finding) if htmx => {
                return Ok(finding_row(&session, &finding.into_inner(), None).into_response());
            }
            Ok(_) => {
                return Ok(Redirect::to(&format!("{PATH}/{run_id}#fynd-{number}")).into_response());
            }
            Err(status) => refused(status)?,
        }
    };
    if refusal.is_not_found() {
        return Err(Failure::NotFound);
    }
    if !htmx {
        return Err(Failure::Refused(refusal));
    }
    let run = review
        .get_review_run(GetReviewRunRequest { run_id })
        .await?
        .into_inner();
    let finding = run
        .findings
        .iter()
        .find(|finding| finding.number == number)
        .ok_or(Failure::NotFound)?;
    Ok(finding_row(&session, finding, Some(&refusal)).into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_outcomes_have_swedish_names() {
        assert_eq!(rule_name("outside_hours"), "Utanför arbetstid");
        assert_eq!(rule_name("something_new"), "something_new");
        assert_eq!(
            outcome_name(ReviewOutcome::UnauthorisedEscalated as i32),
            "Obehörig – eskalerad"
        );
        assert_eq!(outcome_name(0), "Ej bedömd");
        // 2026-03-26 22:30 in Sweden (CET).
        assert_eq!(local_time(1_774_560_600_000), "2026-03-26 22:30");
        assert_eq!(local_time(0), "");
    }
}
