//! Requests for information (begäran om uppgifter), both sides: an officer of a
//! law-enforcement authority sends one and follows it to its answer or refusal; the
//! organisation asked sees its queue (urgent first, then the nearest deadline, overdue ones
//! marked), answers with a new draft linked to the request, or refuses with its reason and the
//! weighing of interests. The service decides who sees which requests; the pages only show.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tryggdel_auth::Role;
use tryggdel_proto::common::v1::Person;
use tryggdel_proto::disclosure::v1::{
    DraftContent, GetInformationRequestRequest, InformationRequest, InformationRequestState,
    ListInformationRequestsRequest, RefuseInformationRequestRequest, RequestInformationRequest,
};

use super::cases::{Target, draft_page, short_id};
use super::{Failure, csrf_field, page, refusal_box};
use crate::form::Posted;
use crate::refusal::Refusal;
use crate::session::Session;
use crate::{Shared, words};

/// Requests read per page for the list.
const PAGE_SIZE: i32 = 200;

/// A request's state in Swedish.
fn state_word(request: &InformationRequest) -> &'static str {
    match request.state() {
        InformationRequestState::Open => "Öppen",
        InformationRequestState::Answered => "Besvarad",
        InformationRequestState::Refused => "Avslagen",
        InformationRequestState::Unspecified => "Okänd",
    }
}

/// The authority that asked, by name.
fn requester(request: &InformationRequest) -> String {
    let authority = tryggdel_domain::Recipient::parse(&request.requester_authority)
        .map(|authority| authority.display_name().to_owned())
        .unwrap_or_else(|_| request.requester_authority.clone());
    match tryggdel_domain::Inbox::parse(&request.requester_inbox) {
        Ok(tryggdel_domain::Inbox::Police(region)) => {
            format!("{authority}, {}", region.display_name())
        }
        _ => authority,
    }
}

fn is_officer(session: &Session) -> bool {
    session.user.has(Role::PoliceOfficer)
}

/// The caller's requests: the organisation's queue, or what the officer's authority asked.
pub async fn list(State(console): State<Shared>, session: Session) -> Result<Markup, Failure> {
    let mut requests = Vec::new();
    let mut page_token = String::new();
    loop {
        let response = console
            .backend
            .disclosures(&session.user)
            .list_information_requests(ListInformationRequestsRequest {
                state: InformationRequestState::Unspecified as i32,
                page_size: PAGE_SIZE,
                page_token,
            })
            .await?
            .into_inner();
        requests.extend(response.requests);
        if response.next_page_token.is_empty() {
            break;
        }
        page_token = response.next_page_token;
    }
    let officer = is_officer(&session);
    let (title, caption) = if officer {
        (
            "Begäranden om uppgifter",
            "Det ni har begärt, brådskande först, sedan den närmaste svarstiden",
        )
    } else {
        (
            "Begäranden om uppgifter",
            "Begäranden till er, brådskande först, sedan den närmaste svarstiden",
        )
    };
    Ok(page(
        &console,
        &session,
        title,
        html! {
            h1 { (title) }
            @if officer { p { a href="/begaranden/ny" { "Ny begäran om uppgifter" } } }
            table {
                caption { (caption) }
                thead { tr {
                    th scope="col" { "Begäran" } th scope="col" { "Status" }
                    th scope="col" { @if officer { "Till" } @else { "Från" } }
                    th scope="col" { "Brådskande" } th scope="col" { "Svar senast" }
                } }
                tbody {
                    @if requests.is_empty() { tr { td colspan="5" { "Inga begäranden." } } }
                    @for request in &requests {
                        tr {
                            td { a href={"/begaranden/" (request.id)} { (short_id(&request.id)) } }
                            td { (state_word(request)) }
                            td {
                                @if officer { (super::organisation_name(&console, &request.organisation)) }
                                @else { (requester(request)) }
                            }
                            td { @if request.urgent { span.urgent { "Brådskande" } } @else { "Nej" } }
                            td {
                                (words::time(request.reply_by_unix_ms))
                                @if request.escalations > 0 && request.state() == InformationRequestState::Open {
                                    " " span.urgent { "(försenad)" }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// What an officer typed into the new-request form, to show it again after a refusal.
#[derive(Default)]
struct Typed {
    client_request_id: String,
    organisation: String,
    subject_identity_number: String,
    subject_name: String,
    information_sought: String,
    purpose: String,
    legal_ground: String,
    urgent: bool,
    reply_by: String,
}

impl Typed {
    fn from_posted(posted: &Posted) -> Typed {
        Typed {
            client_request_id: match posted.text("client_request_id") {
                id if id.is_empty() => uuid::Uuid::new_v4().to_string(),
                id => id,
            },
            organisation: posted.text("organisation"),
            subject_identity_number: posted.text("subject_identity_number"),
            subject_name: posted.text("subject_name"),
            information_sought: posted.text("information_sought"),
            purpose: posted.text("purpose"),
            legal_ground: posted.text("legal_ground"),
            urgent: posted.checked("urgent"),
            reply_by: posted.text("reply_by"),
        }
    }
}

/// The form an officer asks with.
pub async fn new_form(State(console): State<Shared>, session: Session) -> Result<Markup, Failure> {
    if !is_officer(&session) {
        return Err(Failure::NotFound);
    }
    let typed = Typed {
        client_request_id: uuid::Uuid::new_v4().to_string(),
        ..Typed::default()
    };
    Ok(new_page(&console, &session, &typed, None))
}

fn new_page(
    console: &Shared,
    session: &Session,
    typed: &Typed,
    refusal: Option<&Refusal>,
) -> Markup {
    let organisations: Vec<(String, String)> = console
        .directory
        .codes()
        .into_iter()
        .filter_map(|code| {
            let parsed = tryggdel_domain::OrganisationCode::parse(&code).ok()?;
            let organisation = console.directory.organisation(&parsed)?;
            organisation
                .secrecy()
                .map(|_| (code.clone(), organisation.name().to_owned()))
        })
        .collect();
    let error = |field: &str| {
        refusal
            .filter(|refusal| refusal.field.as_deref() == Some(field))
            .map(|refusal| refusal.sentence.clone())
    };
    let text = |name: &str, label: &str, value: &str, hint: Option<&str>| {
        let message = error(name);
        html! {
            label for=(name) { (label) @if let Some(hint) = hint { span.hint { (hint) } } }
            @if let Some(message) = &message { p.error id={(name) "-fel"} { (message) } }
            input type="text" id=(name) name=(name) value=(value)
                aria-invalid=[message.as_ref().map(|_| "true")]
                aria-describedby=[message.as_ref().map(|_| format!("{name}-fel"))];
        }
    };
    let area = |name: &str, label: &str, value: &str| {
        let message = error(name);
        html! {
            label for=(name) { (label) }
            @if let Some(message) = &message { p.error id={(name) "-fel"} { (message) } }
            textarea id=(name) name=(name) required
                aria-invalid=[message.as_ref().map(|_| "true")]
                aria-describedby=[message.as_ref().map(|_| format!("{name}-fel"))] { (value) }
        }
    };
    let organisation_error = error("organisation");
    let reply_error = error("reply_by");
    page(
        console,
        session,
        "Ny begäran om uppgifter",
        html! {
            h1 { "Ny begäran om uppgifter" }
            (refusal_box(refusal))
            form.stacked method="post" action="/begaranden/ny" novalidate {
                (csrf_field(session))
                input type="hidden" name="client_request_id" value=(typed.client_request_id);
                label for="organisation" { "Organisation som tillfrågas" }
                @if let Some(message) = &organisation_error { p.error id="organisation-fel" { (message) } }
                select id="organisation" name="organisation" required
                    aria-invalid=[organisation_error.as_ref().map(|_| "true")]
                    aria-describedby=[organisation_error.as_ref().map(|_| "organisation-fel")] {
                    option value="" { "Välj organisation" }
                    @for (code, name) in &organisations {
                        option value=(code) selected[*code == typed.organisation] { (name) }
                    }
                }
                fieldset {
                    legend { "Vem begäran gäller (om någon)" }
                    (text("subject_identity_number", "Personnummer eller samordningsnummer", &typed.subject_identity_number, Some("ÅÅÅÅMMDD-NNNN")))
                    (text("subject_name", "Namn", &typed.subject_name, None))
                }
                (area("information_sought", "Vilka uppgifter som begärs", &typed.information_sought))
                (area("purpose", "Syfte: vad uppgifterna behövs till", &typed.purpose))
                (text("legal_ground", "Rättslig grund som åberopas", &typed.legal_ground, Some("t.ex. uppgiftsskyldighet till brottsbekämpande myndigheter")))
                label.checkbox for="urgent" {
                    input type="checkbox" id="urgent" name="urgent" checked[typed.urgent];
                    span { "Brådskande" }
                }
                label for="reply_by" { "Svar senast" span.hint { "datum; svaret ska komma före dagens slut" } }
                @if let Some(message) = &reply_error { p.error id="reply_by-fel" { (message) } }
                input type="date" id="reply_by" name="reply_by" value=(typed.reply_by) required
                    aria-invalid=[reply_error.as_ref().map(|_| "true")]
                    aria-describedby=[reply_error.as_ref().map(|_| "reply_by-fel")];
                div.actions { button type="submit" { "Skicka begäran" } }
            }
        },
    )
}

/// Sends the officer's request; a refusal shows the form again with what they typed.
pub async fn create(
    State(console): State<Shared>,
    session: Session,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let posted = Posted::new(pairs);
    session.check_csrf(&posted.csrf())?;
    let typed = Typed::from_posted(&posted);
    let sent = console
        .backend
        .disclosures(&session.user)
        .request_information(RequestInformationRequest {
            client_request_id: typed.client_request_id.clone(),
            organisation: typed.organisation.clone(),
            subject_identity_number: typed.subject_identity_number.clone(),
            subject_name: typed.subject_name.clone(),
            information_sought: typed.information_sought.clone(),
            purpose: typed.purpose.clone(),
            legal_ground: typed.legal_ground.clone(),
            urgent: typed.urgent,
            reply_by: typed.reply_by.clone(),
        })
        .await;
    match sent {
        Ok(sent) => {
            Ok(Redirect::to(&format!("/begaranden/{}", sent.into_inner().id)).into_response())
        }
        Err(status) => {
            let refusal = Refusal::from(status);
            if refusal.is_unauthenticated() {
                return Err(Failure::Expired);
            }
            Ok(new_page(&console, &session, &typed, Some(&refusal)).into_response())
        }
    }
}

async fn get_request(
    console: &Shared,
    session: &Session,
    id: &str,
) -> Result<InformationRequest, Failure> {
    Ok(console
        .backend
        .disclosures(&session.user)
        .get_information_request(GetInformationRequestRequest {
            information_request_id: id.to_owned(),
        })
        .await?
        .into_inner())
}

pub async fn show(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, Failure> {
    let request = get_request(&console, &session, &id).await?;
    Ok(request_page(&console, &session, &request, None))
}

fn request_page(
    console: &Shared,
    session: &Session,
    request: &InformationRequest,
    refusal: Option<&Refusal>,
) -> Markup {
    let asked = session.user.principal.organisation == request.organisation;
    let open = request.state() == InformationRequestState::Open;
    let may_answer = asked && open && session.user.has(Role::Caseworker);
    let may_refuse = asked
        && open
        && (session.user.has(Role::Caseworker) || session.user.has(Role::DecisionMaker));
    let error = |field: &str| {
        refusal
            .filter(|refusal| refusal.field.as_deref() == Some(field))
            .map(|refusal| refusal.sentence.clone())
    };
    let reason_error = error("reason");
    let weighing_error = error("weighing");
    page(
        console,
        session,
        "Begäran om uppgifter",
        html! {
            h1 { "Begäran om uppgifter " (short_id(&request.id)) }
            (refusal_box(refusal))
            dl.facts {
                dt { "Status" } dd { (state_word(request)) }
                dt { "Från" } dd { (requester(request)) ", " (request.requested_by) }
                dt { "Till" } dd { (super::organisation_name(console, &request.organisation)) }
                dt { "Inkom" } dd { (words::time(request.created_at_unix_ms)) }
                dt { "Brådskande" } dd { @if request.urgent { span.urgent { "Ja" } } @else { "Nej" } }
                dt { "Svar senast" } dd {
                    (words::time(request.reply_by_unix_ms))
                    @if request.escalations > 0 && open {
                        " " span.urgent { "(försenad, påmind " (request.escalations) " gånger)" }
                    }
                }
                @if let Some(subject) = &request.subject {
                    dt { "Gäller" } dd { (subject.identity_number) " " (subject.name) }
                }
                dt { "Uppgifter som begärs" } dd { (request.information_sought) }
                dt { "Syfte" } dd { (request.purpose) }
                dt { "Rättslig grund" } dd { (request.legal_ground) }
            }
            @if !request.answered_by_disclosure_id.is_empty() {
                h2 { "Besvarad" }
                p.notice role="status" {
                    "Besvarad " (words::time(request.answered_at_unix_ms)) " med utlämnandet "
                    @if asked { a href={"/arenden/" (request.answered_by_disclosure_id)} { (short_id(&request.answered_by_disclosure_id)) } }
                    @else { (short_id(&request.answered_by_disclosure_id)) ", som levereras till er inkorg" }
                    "."
                }
            }
            @if !request.refused_by.is_empty() {
                h2 { "Avslagen" }
                dl.facts {
                    dt { "Avslagen av" } dd { (request.refused_by) ", " (words::time(request.refused_at_unix_ms)) }
                    dt { "Skäl" } dd { (request.refusal_reason) }
                    dt { "Intresseavvägning" } dd { (request.refusal_weighing) }
                }
            }
            @if may_answer {
                h2 { "Besvara" }
                p { a href={"/begaranden/" (request.id) "/besvara"} { "Besvara med ett utlämnande" } }
                p.hint { "Utlämnandet bedöms och beslutas som alla andra och går sedan till den som begärde uppgifterna." }
            }
            @if may_refuse {
                h2 { "Avslå" }
                form.stacked method="post" action={"/begaranden/" (request.id) "/avsla"} novalidate {
                    (csrf_field(session))
                    input type="hidden" name="expected_version" value=(request.version);
                    label for="reason" { "Skäl" span.hint { "t.ex. den sekretess som står sig, gränserna för uppgiftsskyldigheten" } }
                    @if let Some(message) = &reason_error { p.error id="reason-fel" { (message) } }
                    textarea id="reason" name="reason" required
                        aria-invalid=[reason_error.as_ref().map(|_| "true")]
                        aria-describedby=[reason_error.as_ref().map(|_| "reason-fel")] {}
                    label for="weighing" { "Intresseavvägning" span.hint { "den avvägning avslaget vilar på" } }
                    @if let Some(message) = &weighing_error { p.error id="weighing-fel" { (message) } }
                    textarea id="weighing" name="weighing" required
                        aria-invalid=[weighing_error.as_ref().map(|_| "true")]
                        aria-describedby=[weighing_error.as_ref().map(|_| "weighing-fel")] {}
                    div.actions { button.secondary type="submit" { "Avslå begäran" } }
                }
            }
            p { a href="/begaranden" { "Till begärandena" } }
        },
    )
}

/// A new draft answering the request: to the asking authority, about the person asked about,
/// as urgent as the request.
pub async fn answer(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, Failure> {
    let request = get_request(&console, &session, &id).await?;
    if request.state() != InformationRequestState::Open {
        return Ok(request_page(&console, &session, &request, None));
    }
    let content = DraftContent {
        answers_information_request_id: request.id.clone(),
        recipient: request.requester_authority.clone(),
        urgent: request.urgent,
        subject: request.subject.as_ref().map(|subject| Person {
            identity_number: subject.identity_number.clone(),
            name: subject.name.clone(),
        }),
        ..super::cases::new_content(&console, &session)
    };
    let extra = html! {
        p.notice {
            "Begäran från " (requester(&request)) " (svar senast " (words::time(request.reply_by_unix_ms)) "): "
            q { (request.information_sought) }
        }
    };
    Ok(draft_page(
        &console,
        &session,
        &content,
        Target::New {
            client_request_id: uuid::Uuid::new_v4().to_string(),
        },
        None,
        Some(extra),
    )
    .await)
}

/// Refuses the request; a refusal of the refusal shows the request again with why.
pub async fn refuse(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let posted = Posted::new(pairs);
    session.check_csrf(&posted.csrf())?;
    let result = console
        .backend
        .disclosures(&session.user)
        .refuse_information_request(RefuseInformationRequestRequest {
            information_request_id: id.clone(),
            expected_version: posted.version(),
            reason: posted.text("reason"),
            weighing: posted.text("weighing"),
        })
        .await;
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/begaranden/{id}")).into_response()),
        Err(status) => {
            let refusal = Refusal::from(status);
            if refusal.is_unauthenticated() {
                return Err(Failure::Expired);
            }
            if refusal.is_not_found() {
                return Err(Failure::NotFound);
            }
            let request = get_request(&console, &session, &id).await?;
            Ok(request_page(&console, &session, &request, Some(&refusal)).into_response())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_asking_authority_is_named_with_its_region() {
        let request = InformationRequest {
            requester_authority: "polismyndigheten".into(),
            requester_inbox: "syd".into(),
            ..InformationRequest::default()
        };
        assert_eq!(requester(&request), "Polismyndigheten, Region Syd");
        let request = InformationRequest {
            requester_authority: "aklagarmyndigheten".into(),
            requester_inbox: "aklagarmyndigheten".into(),
            state: InformationRequestState::Refused as i32,
            ..InformationRequest::default()
        };
        assert_eq!(requester(&request), "Åklagarmyndigheten");
        assert_eq!(state_word(&request), "Avslagen");
    }
}
