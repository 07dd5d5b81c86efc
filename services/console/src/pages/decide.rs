//! The decision maker's pages: the "Att besluta" queue (urgent first, with waiting time), the
//! decision view (the assessment as of today, the checklist with its justifications, exactly
//! the payload the police will receive with its SHA-256), approve with a comment — and, when
//! the assessment leaves a condition to the decision maker (whether a victim of relation
//! "other" is a närstående), with their required written judgement — reject with a required
//! reason, and escalations of deliveries the police have not acknowledged.

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

/// The approval's field for the decision maker's judgement, named as the service names it.
const JUDGEMENT_FIELD: &str = "close_relative_judgement";

/// The longest judgement the disclosure service takes (it goes on one line into the audit log).
const MAX_JUDGEMENT_CHARS: usize = 2000;

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
    Ok(decision_page(&console, &session, &disclosure, None, "").await)
}

/// The decision view; after a refusal, with it and the judgement the decision maker wrote.
async fn decision_page(
    console: &Shared,
    session: &Session,
    disclosure: &Disclosure,
    refusal: Option<&Refusal>,
    judgement: &str,
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
    let needs_judgement = assessment
        .as_ref()
        .is_ok_and(|assessment| assessment.needs_judgement);
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
                (approve_form(disclosure, csrf_field(session), needs_judgement, refusal, judgement))
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

/// The approve form. When the assessment needs the decision maker's judgement it holds a
/// required textarea for it (filled again with what they wrote after a refusal), its hint and
/// any refusal about it tied to it.
fn approve_form(
    disclosure: &Disclosure,
    csrf: Markup,
    needs_judgement: bool,
    refusal: Option<&Refusal>,
    judgement: &str,
) -> Markup {
    let error = refusal.filter(|refusal| refusal.field.as_deref() == Some(JUDGEMENT_FIELD));
    let hint_id = format!("{JUDGEMENT_FIELD}-tips");
    let error_id = format!("{JUDGEMENT_FIELD}-fel");
    let described = match error {
        Some(_) => format!("{hint_id} {error_id}"),
        None => hint_id.clone(),
    };
    html! {
        form.stacked method="post" action={"/att-besluta/" (disclosure.id) "/godkann"} {
            (csrf)
            input type="hidden" name="expected_version" value=(disclosure.version);
            @if needs_judgement {
                label for=(JUDGEMENT_FIELD) {
                    "Din bedömning av om den utsatte är närstående (krävs)"
                    span.hint id=(hint_id) {
                        "Relationen är ”annan”. Om den utsatte står i en nära och förtroendefull relation till den enskilde är din bedömning, inte handläggarens; motiveringen av relationen finns under Ärendet. Dina skäl sparas med beslutet och i loggen, på en rad."
                    }
                }
                @if let Some(error) = error { p.error id=(error_id) { (error.sentence) } }
                textarea id=(JUDGEMENT_FIELD) name=(JUDGEMENT_FIELD) required maxlength=(MAX_JUDGEMENT_CHARS)
                    aria-invalid=[error.map(|_| "true")] aria-describedby=(described) { (judgement) }
            }
            label for="comment" { "Kommentar (valfri)" }
            textarea id="comment" name="comment" {}
            div.actions { button type="submit" { "Godkänn och skicka till polisen" } }
        }
    }
}

/// A refusal of an approval; one about the judgement is tied to its field in Swedish.
fn approval_refusal(status: tonic::Status) -> Refusal {
    let about_judgement = status.message().starts_with(&format!("{JUDGEMENT_FIELD}:"));
    let code = status.code();
    let mut refusal = Refusal::from(status);
    if !about_judgement {
        return refusal;
    }
    refusal.field = Some(JUDGEMENT_FIELD.to_owned());
    refusal.sentence = match code {
        tonic::Code::FailedPrecondition => "Den utsattes relation är ”annan”: om den utsatte är närstående är din bedömning. Skriv den med dina skäl och godkänn igen.".to_owned(),
        tonic::Code::InvalidArgument if refusal.sentence.contains("no condition") => "Ärendet kräver ingen bedömning av om den utsatte är närstående, så ingen sparas. Godkänn utan den.".to_owned(),
        _ => format!("Din bedömning kunde inte tas emot. {}", refusal.sentence),
    };
    refusal
}

/// The judgement as one line: a textarea's line breaks (and runs of spaces) become single
/// spaces, as the judgement is recorded on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The checklist item's Swedish text in the registry, or its key.
fn checklist_text(console: &Shared, basis: &str, key: &str) -> String {
    let today = tryggdel_service_kit::today_in_sweden();
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
    #[serde(default)]
    close_relative_judgement: String,
}

pub async fn approve(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<DecisionForm>,
) -> Result<Response, Failure> {
    session.check_csrf(&form.csrf)?;
    let judgement = one_line(&form.close_relative_judgement);
    let result = console
        .backend
        .disclosures(&session.user)
        .approve(ApproveRequest {
            disclosure_id: id.clone(),
            expected_version: form.expected_version,
            comment: form.comment,
            close_relative_judgement: judgement.clone(),
        })
        .await;
    let result = result.map(|_| ()).map_err(approval_refusal);
    decided(&console, &session, &id, result, &judgement).await
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
        return decided_with(&console, &session, &id, refusal, "").await;
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
    let result = result.map(|_| ()).map_err(Refusal::from);
    decided(&console, &session, &id, result, "").await
}

/// After a decision: its case, or the decision view again with the refusal and the judgement
/// the decision maker wrote.
async fn decided(
    console: &Shared,
    session: &Session,
    id: &str,
    result: Result<(), Refusal>,
    judgement: &str,
) -> Result<Response, Failure> {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/arenden/{id}")).into_response()),
        Err(refusal) => {
            if refusal.is_unauthenticated() {
                return Err(Failure::Expired);
            }
            if refusal.is_not_found() {
                return Err(Failure::NotFound);
            }
            decided_with(console, session, id, refusal, judgement).await
        }
    }
}

async fn decided_with(
    console: &Shared,
    session: &Session,
    id: &str,
    refusal: Refusal,
    judgement: &str,
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
    Ok(
        decision_page(console, session, &disclosure, Some(&refusal), judgement)
            .await
            .into_response(),
    )
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn submitted() -> Disclosure {
        Disclosure {
            id: "01a23b38-051d-774d-90fc-38992bf37b50".into(),
            version: 3,
            state: DisclosureState::Submitted as i32,
            ..Disclosure::default()
        }
    }

    fn csrf() -> Markup {
        html! { input type="hidden" name="csrf" value="token"; }
    }

    #[test]
    fn the_approve_form_asks_for_the_judgement_only_when_the_assessment_needs_it() {
        let plain = approve_form(&submitted(), csrf(), false, None, "").into_string();
        assert!(!plain.contains(JUDGEMENT_FIELD), "{plain}");
        assert!(plain.contains("Godkänn och skicka till polisen"));

        let form = approve_form(&submitted(), csrf(), true, None, "").into_string();
        assert!(
            form.contains(
                "<label for=\"close_relative_judgement\">Din bedömning av om den utsatte är närstående (krävs)"
            ),
            "{form}"
        );
        assert!(form.contains(
            "<textarea id=\"close_relative_judgement\" name=\"close_relative_judgement\" required maxlength=\"2000\" aria-describedby=\"close_relative_judgement-tips\"></textarea>"
        ), "{form}");
        assert!(form.contains("id=\"close_relative_judgement-tips\""));
        // A plain form post to the approval, with its CSRF token and version.
        assert!(form.contains(
            "method=\"post\" action=\"/att-besluta/01a23b38-051d-774d-90fc-38992bf37b50/godkann\""
        ));
        assert!(form.contains("name=\"expected_version\" value=\"3\""));
        assert!(form.contains("name=\"csrf\""));
    }

    #[test]
    fn a_refused_judgement_is_tied_to_its_field_and_kept() {
        let refusal = approval_refusal(tonic::Status::failed_precondition(
            "close_relative_judgement: the victim's relation 'other' needs your judgement whether \
             they are a närstående; approve with your written reasoning",
        ));
        assert_eq!(refusal.field.as_deref(), Some(JUDGEMENT_FIELD));
        assert!(
            refusal.sentence.contains("din bedömning"),
            "{}",
            refusal.sentence
        );
        let form =
            approve_form(&submitted(), csrf(), true, Some(&refusal), "Kollega <b>").into_string();
        assert!(
            form.contains("<p class=\"error\" id=\"close_relative_judgement-fel\">"),
            "{form}"
        );
        assert!(form.contains(
            "aria-invalid=\"true\" aria-describedby=\"close_relative_judgement-tips close_relative_judgement-fel\">Kollega &lt;b&gt;</textarea>"
        ), "{form}");

        let not_needed = approval_refusal(tonic::Status::invalid_argument(
            "close_relative_judgement: no condition of the assessment needs your judgement, so \
             none is recorded; approve without it",
        ));
        assert_eq!(not_needed.field.as_deref(), Some(JUDGEMENT_FIELD));
        assert!(not_needed.sentence.contains("kräver ingen bedömning"));
        let too_long = approval_refusal(tonic::Status::invalid_argument(
            "close_relative_judgement: is 2001 characters, at most 2000 allowed",
        ));
        assert_eq!(too_long.field.as_deref(), Some(JUDGEMENT_FIELD));
        assert!(
            too_long
                .sentence
                .starts_with("Din bedömning kunde inte tas emot.")
        );

        // Other refusals are the usual ones.
        let other = approval_refusal(tonic::Status::failed_precondition(
            "the legal assessment does not pass: crime_time: covers only a risk",
        ));
        assert_eq!(other.field, None);
        assert!(
            other
                .sentence
                .starts_with("Den rättsliga bedömningen är inte uppfylld")
        );
    }

    #[test]
    fn the_judgement_is_sent_on_one_line() {
        assert_eq!(
            one_line(" Sambo sedan 2019.\r\nDelar hushåll,\tbarn  tillsammans. "),
            "Sambo sedan 2019. Delar hushåll, barn tillsammans."
        );
        assert_eq!(one_line("\r\n "), "");
    }
}
