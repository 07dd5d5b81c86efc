//! The decision maker's pages: the "Att besluta" queue (urgent first, with waiting time), the
//! decision view (the assessment as of today, the checklist with its justifications, exactly
//! the payload the police will receive with its SHA-256), approve with a comment, reject with
//! a required reason, and escalations of deliveries the police have not acknowledged.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tryggdel_proto::common::v1::DisclosureState;
use tryggdel_proto::disclosure::v1::{
    ApproveRequest, AssessLegalBasisRequest, Disclosure, GetRequest, ListOrder, ListRequest,
    RejectRequest, assess_legal_basis_request,
};
use tryggdel_proto::notification::v1::ListEscalationsRequest;

use super::cases::{assessment_panel, facts, short_id};
use super::{Failure, csrf_field, page, refusal_box};
use crate::refusal::Refusal;
use crate::session::Session;
use crate::{Shared, words};

/// Rows per page of the queue.
const QUEUE_PAGE: u32 = 50;

#[derive(serde::Deserialize, Default)]
pub struct QueueQuery {
    #[serde(default)]
    sida: String,
}

/// The queue: the organisation's submitted disclosures, urgent first, then the longest
/// waiting first (the service orders and pages it).
pub async fn queue(
    State(console): State<Shared>,
    session: Session,
    Query(query): Query<QueueQuery>,
) -> Result<Markup, Failure> {
    let response = console
        .backend
        .disclosures(&session.user)
        .list(ListRequest {
            state: DisclosureState::Submitted as i32,
            order: ListOrder::DecisionQueue as i32,
            page_size: QUEUE_PAGE,
            page_token: query.sida.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let waiting = response.disclosures;
    let now = tryggdel_service_kit::now_unix_ms();
    Ok(page(
        &console,
        &session,
        "Att besluta",
        html! {
            h1 { "Att besluta" }
            p { "Ärenden som väntar på beslut. Brådskande visas först, sedan de som väntat längst." }
            table {
                caption { "Ärenden som väntar på beslut" }
                thead { tr {
                    th scope="col" { "Ärende" } th scope="col" { "Brådskande" } th scope="col" { "Rättslig grund" }
                    th scope="col" { "Skapat av" } th scope="col" { "Väntat" }
                } }
                tbody {
                    @if waiting.is_empty() { tr { td colspan="5" { "Inget väntar på beslut." } } }
                    @for summary in &waiting {
                        tr {
                            td { a href={"/att-besluta/" (summary.id)} { (short_id(&summary.id)) } }
                            td { @if summary.urgent { span.urgent { "Brådskande" } } @else { "Nej" } }
                            td { (summary.legal_basis_id) }
                            td { (summary.drafted_by) }
                            td { (words::age(summary.submitted_at_unix_ms, now)) }
                        }
                    }
                }
            }
            @if !response.next_page_token.is_empty() {
                p { a href={"/att-besluta?sida=" (response.next_page_token)} { "Nästa sida" } }
            }
        },
    ))
}

pub async fn show(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, Failure> {
    let disclosure = console
        .backend
        .disclosures(&session.user)
        .get(GetRequest {
            disclosure_id: id.clone(),
            reveal_protected: false,
        })
        .await?
        .into_inner();
    Ok(decision_page(&console, &session, &disclosure, None).await)
}

async fn decision_page(
    console: &Shared,
    session: &Session,
    disclosure: &Disclosure,
    refusal: Option<&Refusal>,
) -> Markup {
    let assessment = console
        .backend
        .disclosures(&session.user)
        .assess_legal_basis(AssessLegalBasisRequest {
            target: Some(assess_legal_basis_request::Target::DisclosureId(
                disclosure.id.clone(),
            )),
            as_of: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(Refusal::from);
    let content = disclosure.content.clone().unwrap_or_default();
    let submitted = disclosure.state == DisclosureState::Submitted as i32;
    html! {
        (page(console, session, "Beslut", html! {
            h1 { "Beslut om ärende " (short_id(&disclosure.id)) }
            (refusal_box(refusal))
            div.columns {
                div {
                    h2 { "Underlaget som polisen får" }
                    (payload_table(disclosure))
                    h2 { "Checklistan med motiveringar" }
                    ul {
                        @for answer in &content.checklist {
                            li { strong { (if answer.answer { "Ja" } else { "Nej" }) } ": " (checklist_text(console, &content.legal_basis_id, &answer.key))
                                @if !answer.justification.is_empty() { br; "Motivering: " (answer.justification) } }
                        }
                    }
                    h2 { "Ärendet" }
                    (facts(console, disclosure, &content))
                }
                aside.assessment { (assessment_panel(&assessment)) }
            }
            @if submitted {
                h2 { "Beslut" }
                form.stacked method="post" action={"/att-besluta/" (disclosure.id) "/godkann"} {
                    (csrf_field(session))
                    input type="hidden" name="expected_version" value=(disclosure.version);
                    label for="comment" { "Kommentar (valfri)" }
                    textarea id="comment" name="comment" {}
                    div.actions { button type="submit" { "Godkänn och skicka till polisen" } }
                }
                form.stacked method="post" action={"/att-besluta/" (disclosure.id) "/avsla"} {
                    (csrf_field(session))
                    input type="hidden" name="expected_version" value=(disclosure.version);
                    @let error = refusal.filter(|refusal| refusal.field.as_deref() == Some("reason"));
                    label for="reason" { "Skäl för avslag (krävs)" }
                    @if let Some(error) = error { p.error id="reason-fel" { (error.sentence) } }
                    textarea id="reason" name="reason" required aria-invalid=[error.map(|_| "true")]
                        aria-describedby=[error.map(|_| "reason-fel")] {}
                    div.actions { button.danger type="submit" { "Avslå" } }
                }
            }
        }))
    }
}

/// The checklist item's Swedish text in the registry, or its key.
fn checklist_text(console: &Shared, basis: &str, key: &str) -> String {
    let today = time::OffsetDateTime::now_utc().date();
    tryggdel_domain::LegalBasisId::parse(basis)
        .ok()
        .and_then(|id| console.registry.basis_as_of(&id, today).ok())
        .and_then(|basis| basis.checklist().iter().find(|item| item.key() == key))
        .map(|item| item.text_sv().to_owned())
        .unwrap_or_else(|| key.to_owned())
}

/// The payload: each chosen item with its value as the police will get it, protected ones
/// marked (and masked unless revealed), and the SHA-256 the approval binds.
fn payload_table(disclosure: &Disclosure) -> Markup {
    match &disclosure.payload_preview {
        None => html! { p { "Underlaget kan inte visas förrän utkastet är komplett." } },
        Some(preview) => html! {
            table {
                caption { "Uppgifter som lämnas ut" }
                thead { tr { th scope="col" { "Uppgift" } th scope="col" { "Värde" } } }
                tbody {
                    @for item in &preview.items {
                        tr {
                            th scope="row" { (words::data_item(&item.item)) @if item.protected { " " strong.urgent { "(skyddad)" } } }
                            td { @if item.masked { span.masked { "(maskerad)" } } @else { (item.value) } }
                        }
                    }
                }
            }
            p { "SHA-256 av exakt det underlag polisen får: " code.hash { (preview.sha256) } }
        },
    }
}

#[derive(serde::Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    expected_version: i64,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    reason: String,
}

pub async fn approve(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<DecisionForm>,
) -> Result<Response, Failure> {
    session.check_csrf(&form.csrf)?;
    let result = console
        .backend
        .disclosures(&session.user)
        .approve(ApproveRequest {
            disclosure_id: id.clone(),
            expected_version: form.expected_version,
            comment: form.comment,
            close_relative_judgement: String::new(),
        })
        .await;
    decided(&console, &session, &id, result.map(|_| ())).await
}

pub async fn reject(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<DecisionForm>,
) -> Result<Response, Failure> {
    session.check_csrf(&form.csrf)?;
    if form.reason.trim().is_empty() {
        let refusal = Refusal {
            sentence: "Skriv skälet för avslaget; det krävs.".into(),
            field: Some("reason".into()),
            code: tonic::Code::InvalidArgument,
        };
        return decided_with(&console, &session, &id, refusal).await;
    }
    let result = console
        .backend
        .disclosures(&session.user)
        .reject(RejectRequest {
            disclosure_id: id.clone(),
            expected_version: form.expected_version,
            reason: form.reason,
        })
        .await;
    decided(&console, &session, &id, result.map(|_| ())).await
}

async fn decided(
    console: &Shared,
    session: &Session,
    id: &str,
    result: Result<(), tonic::Status>,
) -> Result<Response, Failure> {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/arenden/{id}")).into_response()),
        Err(status) => {
            let refusal = Refusal::from(status);
            if refusal.is_unauthenticated() {
                return Err(Failure::Expired);
            }
            if refusal.is_not_found() {
                return Err(Failure::NotFound);
            }
            decided_with(console, session, id, refusal).await
        }
    }
}

async fn decided_with(
    console: &Shared,
    session: &Session,
    id: &str,
    refusal: Refusal,
) -> Result<Response, Failure> {
    let disclosure = console
        .backend
        .disclosures(&session.user)
        .get(GetRequest {
            disclosure_id: id.to_owned(),
            reveal_protected: false,
        })
        .await?
        .into_inner();
    Ok(decision_page(console, session, &disclosure, Some(&refusal))
        .await
        .into_response())
}

/// Deliveries the police have not acknowledged in time, raised to the decision maker.
pub async fn escalations(
    State(console): State<Shared>,
    session: Session,
) -> Result<Markup, Failure> {
    let escalations = console
        .backend
        .notifications(&session.user)
        .list_escalations(ListEscalationsRequest::default())
        .await?
        .into_inner()
        .escalations;
    Ok(page(
        &console,
        &session,
        "Eskaleringar",
        html! {
            h1 { "Eskaleringar" }
            p { "Leveranser som polisen inte har kvitterat i tid." }
            table {
                caption { "Eskalerade leveranser" }
                thead { tr {
                    th scope="col" { "Ärende" } th scope="col" { "Region" } th scope="col" { "Brådskande" }
                    th scope="col" { "Frist" } th scope="col" { "Eskalerat" } th scope="col" { "Omgång" }
                } }
                tbody {
                    @if escalations.is_empty() { tr { td colspan="6" { "Inga eskaleringar." } } }
                    @for escalation in &escalations {
                        tr {
                            td { a href={"/arenden/" (escalation.disclosure_id)} { (short_id(&escalation.disclosure_id)) } }
                            td { (words::region(&escalation.police_region)) }
                            td { @if escalation.urgent { span.urgent { "Brådskande" } } @else { "Nej" } }
                            td { (words::time(escalation.deadline_unix_ms)) }
                            td { (words::time(escalation.raised_at_unix_ms)) }
                            td { (escalation.round) }
                        }
                    }
                }
            }
        },
    ))
}
