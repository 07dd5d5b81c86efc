//! Subject reports and holds for compliance officers (and holds for the receiving authority's
//! officers):
//!
//! * **Registerutdrag** (`/granskning/registerutdrag`): search by identity number (posted, so
//!   the number is never in a URL), the report shown (the person's disclosures and the
//!   accesses to their data), and downloads as a PDF/A letter to the person or as JSON (each
//!   download is a report of its own, logged like the one shown).
//! * **Spärrar** (`/sparrar?arende=ID`): a disclosure's holds, placing one (legal ground and
//!   last day), extending and ending one. While a hold holds, the disclosure is left out of
//!   subject reports and out of clearing.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tryggdel_proto::audit::v1::{GetSubjectReportRequest, SubjectReport};
use tryggdel_proto::disclosure::v1::{
    EndHoldRequest, ExtendHoldRequest, Hold, ListHoldsRequest, PlaceHoldRequest,
};

use super::{Failure, csrf_field, page, refusal_box};
use crate::form::Posted;
use crate::refusal::Refusal;
use crate::session::Session;
use crate::{Shared, words};

/// The subject report page.
pub const REPORT_PATH: &str = "/granskning/registerutdrag";
/// The holds page.
pub const HOLDS_PATH: &str = "/sparrar";

/// The search form, empty.
pub async fn report_form(
    State(console): State<Shared>,
    session: Session,
) -> Result<Markup, Failure> {
    Ok(report_page(
        &console,
        &session,
        &Posted::default(),
        None,
        None,
    ))
}

/// The report for the posted identity number (or why not), the form kept as filled in.
pub async fn report(
    State(console): State<Shared>,
    session: Session,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Markup, Failure> {
    let posted = Posted::new(pairs);
    session.check_csrf(&posted.csrf())?;
    let (report, refusal) = match fetch(&console, &session, &posted).await? {
        Ok(report) => (Some(report), None),
        Err(refusal) => (None, Some(refusal)),
    };
    Ok(report_page(
        &console,
        &session,
        &posted,
        report.as_ref(),
        refusal.as_ref(),
    ))
}

/// The report as a PDF/A letter to the person.
pub async fn report_pdf(
    State(console): State<Shared>,
    session: Session,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let report = download(&console, &session, pairs).await?;
    let pdf = tryggdel_supervisor_export::subject_report_pdf(
        &report.json,
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|error| Failure::Internal(anyhow::Error::new(error).context("the report's PDF")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"registerutdrag.pdf\"",
            ),
        ],
        pdf,
    )
        .into_response())
}

/// The report as the audit service's JSON document.
pub async fn report_json(
    State(console): State<Shared>,
    session: Session,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let report = download(&console, &session, pairs).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"registerutdrag.json\"",
            ),
        ],
        report.json,
    )
        .into_response())
}

async fn download(
    console: &Shared,
    session: &Session,
    pairs: Vec<(String, String)>,
) -> Result<SubjectReport, Failure> {
    let posted = Posted::new(pairs);
    session.check_csrf(&posted.csrf())?;
    fetch(console, session, &posted)
        .await?
        .map_err(Failure::Refused)
}

/// The report the form asks for, or the service's refusal to show on the page.
async fn fetch(
    console: &Shared,
    session: &Session,
    posted: &Posted,
) -> Result<Result<SubjectReport, Refusal>, Failure> {
    let result = console
        .backend
        .subject_reports(&session.user)
        .get_subject_report(GetSubjectReportRequest {
            person_identity_number: posted.text("personnummer"),
            organisation: posted.text("organisation"),
        })
        .await;
    match result {
        Ok(response) => Ok(Ok(response.into_inner())),
        Err(status) => {
            let refusal = Refusal::from(status);
            if refusal.is_unauthenticated() {
                return Err(Failure::Expired);
            }
            Ok(Err(refusal))
        }
    }
}

fn report_page(
    console: &Shared,
    session: &Session,
    posted: &Posted,
    report: Option<&SubjectReport>,
    refusal: Option<&Refusal>,
) -> Markup {
    page(
        console,
        session,
        "Registerutdrag",
        html! {
            h1 { "Registerutdrag" }
            p { "Ett registerutdrag visar vilka uppgifter om en person som har lämnats ut och vem som har tagit del av dem. Varje utdrag loggas." }
            (refusal_box(refusal))
            form.stacked method="post" action=(REPORT_PATH) {
                (csrf_field(session))
                label for="personnummer" { "Personnummer" span.hint { "ÅÅÅÅMMDD-NNNN. Visas aldrig i en adress." } }
                input type="text" id="personnummer" name="personnummer" autocomplete="off" required value=(posted.text("personnummer"));
                label for="organisation" { "Organisation" span.hint { "Tillsynsmyndighet: en organisations del, eller tomt för alla." } }
                input type="text" id="organisation" name="organisation" value=(posted.text("organisation"));
                div.actions { button type="submit" { "Visa registerutdrag" } }
            }
            @if let Some(report) = report {
                h2 { "Utdrag " (report.as_of) }
                p {
                    "Utdraget omfattar "
                    @if report.organisation.is_empty() { "samtliga organisationer" } @else { (super::organisation_name(console, &report.organisation)) }
                    ". Utdragets nummer: " code { (report.report_id) } "."
                }
                div.actions {
                    @for (path, label) in [("pdf", "Ladda ner som brev (PDF)"), ("json", "Ladda ner som JSON")] {
                        form method="post" action={(REPORT_PATH) "/" (path)} {
                            (csrf_field(session))
                            input type="hidden" name="personnummer" value=(posted.text("personnummer"));
                            input type="hidden" name="organisation" value=(posted.text("organisation"));
                            button.secondary type="submit" { (label) }
                        }
                    }
                }
                table {
                    caption { "Utlämnanden" }
                    thead { tr {
                        th scope="col" { "Ärende" } th scope="col" { "Beslutat" } th scope="col" { "Mottagare" }
                        th scope="col" { "Rättslig grund" } th scope="col" { "Ändamål" } th scope="col" { "Uppgifter" }
                        th scope="col" { "Levererat" } th scope="col" { "Kvitterat" }
                    } }
                    tbody {
                        @if report.disclosures.is_empty() { tr { td colspan="8" { "Inga utlämnanden." } } }
                        @for disclosure in &report.disclosures {
                            tr {
                                td { code { (super::cases::short_id(&disclosure.disclosure_id)) } }
                                td { (words::time(disclosure.approved_at_unix_ms)) }
                                td { (disclosure.recipient) }
                                td { (disclosure.legal_basis_id) @if !disclosure.registry_version.is_empty() { br; span.hint { (disclosure.registry_version) } } }
                                td { (disclosure.purpose) }
                                td { (disclosure.data_items.iter().map(|item| words::data_item(item)).collect::<Vec<_>>().join(", ")) }
                                td { (words::time(disclosure.delivered_at_unix_ms)) }
                                td { (words::time(disclosure.acknowledged_at_unix_ms)) }
                            }
                        }
                    }
                }
                table {
                    caption { "Åtkomster till uppgifterna" }
                    thead { tr {
                        th scope="col" { "Tid" } th scope="col" { "Handling" } th scope="col" { "Organisation" }
                        th scope="col" { "Enhet" } th scope="col" { "Användare" }
                    } }
                    tbody {
                        @if report.accesses.is_empty() { tr { td colspan="5" { "Inga åtkomster." } } }
                        @for access in &report.accesses {
                            tr {
                                td { (words::time(access.occurred_at_unix_ms)) }
                                td { (access.action) }
                                td { (access.organisation) }
                                td { (access.unit) }
                                td { @if access.user_id.is_empty() { span.hint { "(visas inte)" } } @else { (access.user_id) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The holds page's query: the disclosure whose holds are shown.
#[derive(Debug, Default, serde::Deserialize)]
pub struct HoldsQuery {
    #[serde(default)]
    arende: String,
}

/// A disclosure's holds and the form to place one; with no disclosure named, the form to name
/// one.
pub async fn holds(
    State(console): State<Shared>,
    session: Session,
    Query(query): Query<HoldsQuery>,
) -> Result<Markup, Failure> {
    holds_page(
        &console,
        &session,
        query.arende.trim(),
        &Posted::default(),
        None,
    )
    .await
}

/// Places a hold; back to the disclosure's holds, or the form again with the refusal.
pub async fn place(
    State(console): State<Shared>,
    session: Session,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let posted = Posted::new(pairs);
    session.check_csrf(&posted.csrf())?;
    let disclosure_id = posted.text("arende");
    let result = console
        .backend
        .disclosures(&session.user)
        .place_hold(PlaceHoldRequest {
            client_request_id: posted.text("request_id"),
            disclosure_id: disclosure_id.clone(),
            legal_ground: posted.text("legal_ground"),
            until: posted.text("until"),
        })
        .await;
    after_change(&console, &session, &disclosure_id, &posted, result).await
}

/// Extends a hold (the posted `until`, under the posted version).
pub async fn extend(
    State(console): State<Shared>,
    session: Session,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let posted = Posted::new(pairs);
    session.check_csrf(&posted.csrf())?;
    let result = console
        .backend
        .disclosures(&session.user)
        .extend_hold(ExtendHoldRequest {
            hold_id: posted.text("hold_id"),
            expected_version: posted.version(),
            until: posted.text("until"),
        })
        .await;
    after_change(&console, &session, &posted.text("arende"), &posted, result).await
}

/// Ends a hold (under the posted version).
pub async fn end(
    State(console): State<Shared>,
    session: Session,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let posted = Posted::new(pairs);
    session.check_csrf(&posted.csrf())?;
    let result = console
        .backend
        .disclosures(&session.user)
        .end_hold(EndHoldRequest {
            hold_id: posted.text("hold_id"),
            expected_version: posted.version(),
        })
        .await;
    after_change(&console, &session, &posted.text("arende"), &posted, result).await
}

/// After a change: to the disclosure's holds (see other), or its page again with the refusal.
async fn after_change(
    console: &Shared,
    session: &Session,
    disclosure_id: &str,
    posted: &Posted,
    result: Result<tonic::Response<Hold>, tonic::Status>,
) -> Result<Response, Failure> {
    match result {
        Ok(_) => Ok(Redirect::to(&holds_url(disclosure_id)).into_response()),
        Err(status) => {
            let refusal = Refusal::from(status);
            if refusal.is_unauthenticated() {
                return Err(Failure::Expired);
            }
            if refusal.is_not_found() {
                return Err(Failure::NotFound);
            }
            Ok(
                holds_page(console, session, disclosure_id, posted, Some(&refusal))
                    .await?
                    .into_response(),
            )
        }
    }
}

/// The holds page of `disclosure_id` (a form to name one when empty).
async fn holds_page(
    console: &Shared,
    session: &Session,
    disclosure_id: &str,
    posted: &Posted,
    refusal: Option<&Refusal>,
) -> Result<Markup, Failure> {
    let holds = if disclosure_id.is_empty() {
        None
    } else {
        Some(
            console
                .backend
                .disclosures(&session.user)
                .list_holds(ListHoldsRequest {
                    disclosure_id: disclosure_id.to_owned(),
                })
                .await?
                .into_inner()
                .holds,
        )
    };
    let request_id = format!("hold-{}", crate::session::random_id());
    Ok(page(
        console,
        session,
        "Spärrar",
        html! {
            h1 { "Spärrar" }
            p { "Ett utlämnande med en spärr redovisas inte i registerutdrag och gallras inte så länge spärren gäller. Spärren upphör av sig själv efter sista dagen." }
            (refusal_box(refusal))
            form.stacked method="get" action=(HOLDS_PATH) {
                label for="arende" { "Ärende (id)" }
                input type="text" id="arende" name="arende" value=(disclosure_id);
                div.actions { button.secondary type="submit" { "Visa spärrar" } }
            }
            @if let Some(holds) = &holds {
                table {
                    caption { "Spärrar på ärendet" }
                    thead { tr {
                        th scope="col" { "Utfärdad av" } th scope="col" { "Rättslig grund" } th scope="col" { "Sista dag" }
                        th scope="col" { "Status" } th scope="col" { "Ändra" }
                    } }
                    tbody {
                        @if holds.is_empty() { tr { td colspan="5" { "Inga spärrar." } } }
                        @for hold in holds {
                            tr {
                                td { (super::organisation_name(console, &hold.issuer_organisation)) br; span.hint { (hold.placed_by) ", " (words::time(hold.placed_at_unix_ms)) } }
                                td { (hold.legal_ground) }
                                td { (hold.until) }
                                td {
                                    @if hold.active { strong { "Gäller" } }
                                    @else if hold.ended_at_unix_ms > 0 { "Avslutad " (words::time(hold.ended_at_unix_ms)) }
                                    @else { "Upphört" }
                                }
                                td {
                                    @if hold.active {
                                        form method="post" action={(HOLDS_PATH) "/forlang"} {
                                            (csrf_field(session))
                                            (hold_fields(disclosure_id, hold))
                                            label for={"until-" (hold.id)} { "Ny sista dag" }
                                            input type="date" id={"until-" (hold.id)} name="until" required;
                                            button.secondary type="submit" { "Förläng" }
                                        }
                                        form method="post" action={(HOLDS_PATH) "/avsluta"} {
                                            (csrf_field(session))
                                            (hold_fields(disclosure_id, hold))
                                            button.secondary type="submit" { "Avsluta spärren" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                h2 { "Lägg en spärr" }
                form.stacked method="post" action={(HOLDS_PATH) "/placera"} {
                    (csrf_field(session))
                    input type="hidden" name="arende" value=(disclosure_id);
                    input type="hidden" name="request_id" value=(request_id);
                    label for="legal_ground" { "Rättslig grund" span.hint { "t.ex. ett lagrum; inga personuppgifter" } }
                    input type="text" id="legal_ground" name="legal_ground" required value=(posted.text("legal_ground"));
                    label for="until" { "Sista dag" span.hint { "ÅÅÅÅ-MM-DD" } }
                    input type="date" id="until" name="until" required value=(posted.text("until"));
                    div.actions { button type="submit" { "Lägg spärr" } }
                }
            }
        },
    ))
}

/// The hidden fields that name a hold and its version, and where to come back to.
fn hold_fields(disclosure_id: &str, hold: &Hold) -> Markup {
    html! {
        input type="hidden" name="arende" value=(disclosure_id);
        input type="hidden" name="hold_id" value=(hold.id);
        input type="hidden" name="expected_version" value=(hold.version);
    }
}

/// The holds page of a disclosure.
fn holds_url(disclosure_id: &str) -> String {
    let id: String = disclosure_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit() || *c == '-')
        .collect();
    format!("{HOLDS_PATH}?arende={id}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_way_back_names_only_a_disclosure_id() {
        assert_eq!(
            holds_url("0190a1b2-0000-7000-8000-000000000001"),
            "/sparrar?arende=0190a1b2-0000-7000-8000-000000000001"
        );
        assert_eq!(holds_url("x&y=<z>"), "/sparrar?arende=");
    }
}
