//! The caseworker's pages: the organisation's cases, the draft form guided by the chosen legal
//! basis with its live assessment, save (a stale save shows both versions), submit, withdraw,
//! reveal of protected details, and answering a police follow-up question with a linked draft.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tryggdel_auth::Role;
use tryggdel_proto::common::v1::DisclosureState;
use tryggdel_proto::disclosure::v1::{
    AssessLegalBasisRequest, Assessment, CreateDraftRequest, Disclosure, DraftContent, GetRequest,
    ListRequest, SubmitRequest, UpdateDraftRequest, WithdrawRequest, assess_legal_basis_request,
};
use tryggdel_proto::notification::v1::ListFollowUpsRequest;

use super::{Failure, csrf_field, page, refusal_box};
use crate::form::Posted;
use crate::refusal::Refusal;
use crate::session::Session;
use crate::{Shared, words};

/// Rows per page of the case list.
pub const PAGE_SIZE: u32 = 50;

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    sida: String,
    #[serde(default)]
    status: String,
}

fn state_filter(status: &str) -> i32 {
    match status {
        "utkast" => DisclosureState::Draft as i32,
        "att-besluta" => DisclosureState::Submitted as i32,
        "levererade" => DisclosureState::Delivered as i32,
        "kvitterade" => DisclosureState::Acknowledged as i32,
        _ => DisclosureState::Unspecified as i32,
    }
}

/// The organisation's cases, newest first, a page at a time.
pub async fn list(
    State(console): State<Shared>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Result<Markup, Failure> {
    let response = console
        .backend
        .disclosures(&session.user)
        .list(ListRequest {
            state: state_filter(&query.status),
            page_size: PAGE_SIZE,
            page_token: query.sida.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let now = tryggdel_service_kit::now_unix_ms();
    let filters = [
        ("", "Alla"),
        ("utkast", "Utkast"),
        ("att-besluta", "Att besluta"),
        ("levererade", "Levererade"),
        ("kvitterade", "Kvitterade"),
    ];
    Ok(page(
        &console,
        &session,
        "Ärenden",
        html! {
            h1 { "Ärenden" }
            nav aria-label="Filtrera på status" {
                ul.actions {
                    @for (code, label) in filters {
                        li {
                            @if code == query.status { strong aria-current="page" { (label) } }
                            @else { a href={"/utkast?status=" (code)} { (label) } }
                        }
                    }
                }
            }
            @if session.user.has(Role::Caseworker) {
                p { a.button href="/utkast/ny" { "Nytt utkast" } }
            }
            table {
                caption { "Organisationens ärenden, senast skapade först" }
                thead { tr {
                    th scope="col" { "Ärende" } th scope="col" { "Status" } th scope="col" { "Brådskande" }
                    th scope="col" { "Rättslig grund" } th scope="col" { "Skapat av" } th scope="col" { "Ålder" }
                } }
                tbody {
                    @if response.disclosures.is_empty() {
                        tr { td colspan="6" { "Inga ärenden." } }
                    }
                    @for summary in &response.disclosures {
                        tr {
                            td { a href={"/arenden/" (summary.id)} { (short_id(&summary.id)) } }
                            td {
                                (words::state(summary.state))
                                @if let Some(notice) = expiry_notice(summary.expires_at_unix_ms, now) {
                                    " " span.urgent { (notice) }
                                }
                            }
                            td { @if summary.urgent { span.urgent { "Brådskande" } } @else { "Nej" } }
                            td { (summary.legal_basis_id) }
                            td { (summary.drafted_by) }
                            td { (words::age(summary.created_at_unix_ms, now)) }
                        }
                    }
                }
            }
            @if !response.next_page_token.is_empty() {
                p { a href={"/utkast?status=" (query.status) "&sida=" (response.next_page_token)} { "Nästa sida" } }
            }
        },
    ))
}

/// The last 8 characters of an id, enough to tell cases apart on a page. Not the first: ids
/// are UUIDv7, whose first 8 characters are the same for every case created in the same
/// minute or so.
pub fn short_id(id: &str) -> &str {
    id.len()
        .checked_sub(8)
        .and_then(|start| id.get(start..))
        .unwrap_or(id)
}

/// What a new draft starts with: 18 c § to the police, the caseworker's unit, the secrecy
/// their organisation is under.
pub fn new_content(console: &Shared, session: &Session) -> DraftContent {
    DraftContent {
        legal_basis_id: "OSL-10-18c".into(),
        recipient: "polismyndigheten".into(),
        unit: session.user.principal.unit.clone().unwrap_or_default(),
        claimed_secrecy: default_secrecy(console, session),
        victim_protection: "none".into(),
        crime_time: "future_risk".into(),
        ..Default::default()
    }
}

/// The new-disclosure form.
pub async fn new_form(State(console): State<Shared>, session: Session) -> Result<Markup, Failure> {
    let content = new_content(&console, &session);
    Ok(draft_page(
        &console,
        &session,
        &content,
        Target::New {
            client_request_id: uuid::Uuid::new_v4().to_string(),
        },
        None,
        None,
    )
    .await)
}

fn default_secrecy(console: &Shared, session: &Session) -> String {
    tryggdel_domain::OrganisationCode::parse(&session.user.principal.organisation)
        .ok()
        .and_then(|code| console.directory.organisation(&code))
        .and_then(|organisation| organisation.secrecy())
        .map(|secrecy| secrecy.as_str().to_owned())
        .unwrap_or_default()
}

/// Where the draft form posts.
pub enum Target {
    New { client_request_id: String },
    Existing { id: String, version: i64 },
}

/// The draft form page, with its live assessment.
pub(crate) async fn draft_page(
    console: &Shared,
    session: &Session,
    content: &DraftContent,
    target: Target,
    refusal: Option<&Refusal>,
    extra: Option<Markup>,
) -> Markup {
    let assessment = assess(console, session, content).await;
    let title = match target {
        Target::New { .. } => "Nytt utkast",
        Target::Existing { .. } => "Redigera utkast",
    };
    page(
        console,
        session,
        title,
        html! {
            h1 { (title) }
            (refusal_box(refusal))
            @if let Some(extra) = extra { (extra) }
            div.columns {
                (draft_form(console, session, content, &target, refusal))
                aside.assessment id="bedomning" aria-live="polite" aria-label="Rättslig bedömning"
                    hx-post="/utkast/bedom" hx-trigger="change from:#utkast, keyup delay:800ms from:#utkast"
                    hx-include="#utkast" hx-swap="innerHTML" {
                    (assessment_panel(&assessment))
                }
            }
        },
    )
}

/// The service's assessment of `content` today, or why there is none.
async fn assess(
    console: &Shared,
    session: &Session,
    content: &DraftContent,
) -> Result<Assessment, Refusal> {
    if content.legal_basis_id.is_empty() {
        return Err(Refusal {
            sentence: "Välj en rättslig grund för att se bedömningen.".into(),
            field: Some("legal_basis_id".into()),
            code: tonic::Code::InvalidArgument,
        });
    }
    console
        .backend
        .disclosures(&session.user)
        .assess_legal_basis(AssessLegalBasisRequest {
            target: Some(assess_legal_basis_request::Target::Content(content.clone())),
            as_of: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(Refusal::from)
}

fn condition_label(key: &str) -> &str {
    match key {
        "basis_in_force" => "Grunden gäller i dag",
        "recipient" => "Mottagaren får ta emot uppgiften",
        "claimed_secrecy" => "Sekretessen som bryts",
        "source_kind" | "source_secrecy" => "Verksamhetens sekretess",
        "crime_time" => "Brottets tid",
        "crime_catalogue" => "Brottet omfattas",
        "minimum_penalty" => "Straffskalan",
        "close_relative" => "Närstående",
        "victim_age" => "Den utsattes ålder",
        "subject_age" => "Den enskildes ålder",
        "consent_record" => "Samtycke",
        "victim" => "Den utsatte",
        other => other,
    }
}

/// What a condition the law leaves to the decision maker is shown as: neither ✓ nor ✗.
pub const NEEDS_JUDGEMENT: &str = "Kräver beslutsfattarens bedömning";

/// The assessment: every condition as passed, failed or needing the decision maker's
/// judgement, with its reason, and suggested bases.
pub fn assessment_panel(assessment: &Result<Assessment, Refusal>) -> Markup {
    html! {
        h2 { "Rättslig bedömning" }
        @match assessment {
            Ok(assessment) => {
                @let failed = assessment.conditions.iter().any(|condition| !condition.passed && !condition.needs_judgement);
                p {
                    @if assessment.passed { span.pass { "Uppfyllt" } " – grunden " (assessment.legal_basis_id) " är uppfylld i dag." }
                    @else if assessment.needs_judgement && !failed {
                        span.judgement { (NEEDS_JUDGEMENT) } " – övriga villkor är uppfyllda; beslutsfattaren måste själv bedöma villkoret nedan och skriva sina skäl."
                    }
                    @else { span.fail { "Inte uppfyllt" } " – se villkoren nedan." }
                }
                ul.conditions {
                    @for condition in &assessment.conditions {
                        li {
                            @if condition.passed { span.pass { "✓ Uppfyllt: " } }
                            @else if condition.needs_judgement { span.judgement { (NEEDS_JUDGEMENT) ": " } }
                            @else { span.fail { "✗ Ej uppfyllt: " } }
                            strong { (condition_label(&condition.key)) }
                            br; span.hint lang="en" { (condition.reason) }
                        }
                    }
                }
                @if !assessment.suggested_bases.is_empty() {
                    p { "Överväg i stället: " (assessment.suggested_bases.join(", ")) }
                }
                p.hint { "Bedömd per " (assessment.as_of) " med registerversion " code { (short_hash(&assessment.registry_version)) } "." }
            }
            Err(refusal) => { p.refusal { (refusal.sentence) } }
        }
    }
}

fn short_hash(version: &str) -> &str {
    version.get(..19).unwrap_or(version)
}

fn field_error(refusal: Option<&Refusal>, field: &str) -> Option<String> {
    refusal
        .filter(|refusal| refusal.field.as_deref() == Some(field))
        .map(|refusal| refusal.sentence.clone())
}

/// One labelled text field, its error tied to it with `aria-describedby`.
fn text_field(
    name: &str,
    label: &str,
    value: &str,
    refusal: Option<&Refusal>,
    hint: Option<&str>,
) -> Markup {
    let error = field_error(refusal, name);
    let described = match (&error, hint) {
        (Some(_), _) => Some(format!("{name}-fel")),
        (None, Some(_)) => Some(format!("{name}-tips")),
        _ => None,
    };
    html! {
        label for=(name) {
            (label)
            @if let Some(hint) = hint { span.hint id={(name) "-tips"} { (hint) } }
        }
        @if let Some(error) = &error { p.error id={(name) "-fel"} { (error) } }
        input type="text" id=(name) name=(name) value=(value)
            aria-invalid=[error.as_ref().map(|_| "true")] aria-describedby=[described];
    }
}

fn text_area(name: &str, label: &str, value: &str, refusal: Option<&Refusal>) -> Markup {
    let error = field_error(refusal, name);
    html! {
        label for=(name) { (label) }
        @if let Some(error) = &error { p.error id={(name) "-fel"} { (error) } }
        textarea id=(name) name=(name) aria-invalid=[error.as_ref().map(|_| "true")]
            aria-describedby=[error.as_ref().map(|_| format!("{name}-fel"))] { (value) }
    }
}

fn select(
    name: &str,
    label: &str,
    value: &str,
    options: &[(&str, &str)],
    refusal: Option<&Refusal>,
) -> Markup {
    let error = field_error(refusal, name);
    html! {
        label for=(name) { (label) }
        @if let Some(error) = &error { p.error id={(name) "-fel"} { (error) } }
        select id=(name) name=(name) aria-invalid=[error.as_ref().map(|_| "true")]
            aria-describedby=[error.as_ref().map(|_| format!("{name}-fel"))] {
            option value="" { "– välj –" }
            @for (code, text) in options {
                option value=(code) selected[*code == value] { (text) }
            }
        }
    }
}

/// The checklist of the chosen basis, in the registry's Swedish wording, each item with its
/// justification field.
pub fn checklist_fieldset(console: &Shared, content: &DraftContent) -> Markup {
    let today = tryggdel_service_kit::today_in_sweden();
    let basis = tryggdel_domain::LegalBasisId::parse(&content.legal_basis_id)
        .ok()
        .and_then(|id| console.registry.basis_as_of(&id, today).ok());
    html! {
        fieldset id="checklista" {
            legend { "Checklista för den rättsliga grunden" }
            @match basis {
                None => p { "Välj en rättslig grund som gäller i dag för att se dess checklista." },
                Some(basis) => {
                    p.hint { (basis.statute()) " – " (basis.title()) }
                    @for (number, item) in basis.checklist().iter().enumerate() {
                        @let answer = content.checklist.iter().find(|answer| answer.key == item.key());
                        @let checkbox = format!("checklist_{}", item.key());
                        @let justification = format!("justification_{}", item.key());
                        div {
                            label.checkbox for=(checkbox) {
                                input type="checkbox" id=(checkbox) name=(checkbox)
                                    checked[answer.is_some_and(|answer| answer.answer)];
                                span { (number + 1) ". " (item.text_sv()) }
                            }
                            label for=(justification) {
                                "Motivering"
                                @if item.justification_required() { " (krävs)" }
                            }
                            textarea id=(justification) name=(justification) {
                                (answer.map(|answer| answer.justification.as_str()).unwrap_or(""))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn draft_form(
    console: &Shared,
    session: &Session,
    content: &DraftContent,
    target: &Target,
    refusal: Option<&Refusal>,
) -> Markup {
    let today = tryggdel_service_kit::today_in_sweden();
    let bases: Vec<(String, String)> = console
        .registry
        .legal_bases()
        .iter()
        .filter(|basis| basis.is_valid_on(today))
        .map(|basis| {
            (
                basis.id().as_str().to_owned(),
                format!("{} – {}", basis.statute(), basis.title()),
            )
        })
        .collect();
    let bases: Vec<(&str, &str)> = bases
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let crimes: Vec<(String, String)> = console
        .registry
        .crimes_as_of(today)
        .into_iter()
        .map(|crime| {
            (
                crime.id().as_str().to_owned(),
                format!("{} ({})", crime.name_sv(), crime.reference()),
            )
        })
        .collect();
    let crimes: Vec<(&str, &str)> = crimes
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let recipients: Vec<(&str, &str)> = tryggdel_domain::Recipient::ALL
        .iter()
        .map(|recipient| (recipient.as_str(), recipient.display_name()))
        .collect();
    let subject = content.subject.clone().unwrap_or_default();
    let victim = content.victim.clone().unwrap_or_default();
    let protected = content.victim_protected.clone().unwrap_or_default();
    let consent = content.consent.clone().unwrap_or_default();
    let action = match target {
        Target::New { .. } => "/utkast/ny".to_owned(),
        Target::Existing { id, .. } => format!("/arenden/{id}/redigera"),
    };
    html! {
        form.stacked id="utkast" method="post" action=(action) novalidate {
            (csrf_field(session))
            @match target {
                Target::New { client_request_id } => input type="hidden" name="client_request_id" value=(client_request_id);,
                Target::Existing { version, .. } => input type="hidden" name="expected_version" value=(version);,
            }
            @if !content.answers_follow_up_id.is_empty() {
                input type="hidden" name="answers_follow_up_id" value=(content.answers_follow_up_id);
                p.notice { "Utkastet besvarar en följdfråga från polisen." }
            }
            @if !content.answers_information_request_id.is_empty() {
                input type="hidden" name="answers_information_request_id" value=(content.answers_information_request_id);
                p.notice {
                    "Utkastet besvarar "
                    a href={"/begaranden/" (content.answers_information_request_id)} { "en begäran om uppgifter" }
                    " och går till den som begärde uppgifterna."
                }
            }
            fieldset {
                legend { "Ärendet" }
                (text_field("case_reference", "Ärendenummer", &content.case_reference, refusal, Some("Ert diarienummer, t.ex. IFO-2026-0142")))
                (text_field("unit", "Enhet", &content.unit, refusal, None))
                label.checkbox for="urgent" {
                    input type="checkbox" id="urgent" name="urgent" checked[content.urgent];
                    span { "Brådskande (akut risk)" }
                }
            }
            fieldset {
                legend { "Rättslig grund" }
                (select("legal_basis_id", "Rättslig grund", &content.legal_basis_id, &bases, refusal))
                div.actions {
                    button.secondary type="submit" name="action" value="refresh"
                        hx-post="/utkast/checklista" hx-include="#utkast" hx-target="#checklista" hx-swap="outerHTML" {
                        "Visa checklistan för vald grund"
                    }
                }
                (select("claimed_secrecy", "Sekretess som bryts", &content.claimed_secrecy, words::SECRECY, refusal))
                (select("recipient", "Mottagare", &content.recipient, &recipients, refusal))
            }
            (checklist_fieldset(console, content))
            fieldset {
                legend { "Personerna" }
                (text_field("subject_identity_number", "Den enskildes personnummer", &subject.identity_number, refusal, Some("ÅÅÅÅMMDD-NNNN")))
                (text_field("subject_name", "Den enskildes namn", &subject.name, refusal, None))
                (text_field("victim_identity_number", "Den utsattes personnummer", &victim.identity_number, refusal, Some("ÅÅÅÅMMDD-NNNN")))
                (text_field("victim_name", "Den utsattes namn", &victim.name, refusal, None))
                (select("relation", "Relation mellan dem", &content.relation, words::RELATIONS, refusal))
                (text_area("relation_justification", "Motivering av relationen (krävs för ”annan relation”)", &content.relation_justification, refusal))
                (select("victim_protection", "Skydd för den utsatte", &content.victim_protection, words::VICTIM_PROTECTIONS, refusal))
            }
            fieldset {
                legend { "Skyddade uppgifter om den utsatte" }
                p.hint { "Krypteras, visas maskerade och lämnas bara ut om beslutsfattaren godkänner just dem." }
                (text_field("victim_protected_address", "Adress", &protected.address, refusal, None))
                (text_field("victim_protected_workplace", "Arbetsplats", &protected.workplace, refusal, None))
                (text_field("victim_protected_school", "Skola", &protected.school, refusal, None))
                (text_field("victim_protected_shelter", "Skyddat boende", &protected.shelter, refusal, None))
            }
            fieldset {
                legend { "Brottet och risken" }
                (select("crime_id", "Brott", &content.crime_id, &crimes, refusal))
                (select("crime_time", "Brottets tid", &content.crime_time, words::CRIME_TIMES, refusal))
                (text_area("risk_description", "Riskbeskrivning", &content.risk_description, refusal))
                (text_area("alternatives_considered", "Övervägda alternativ", &content.alternatives_considered, refusal))
            }
            fieldset {
                legend { "Uppgifter som lämnas ut (minimering)" }
                @for (item, label, protected_item) in words::DATA_ITEMS {
                    @let chosen = content.data_items.iter().find(|selected| selected.item == *item);
                    @let checkbox = format!("item_{item}");
                    @let reason = format!("reason_{item}");
                    div {
                        label.checkbox for=(checkbox) {
                            input type="checkbox" id=(checkbox) name=(checkbox) checked[chosen.is_some()];
                            span { (label) @if *protected_item { " – skyddad uppgift" } }
                        }
                        label for=(reason) { "Skäl för " (label) }
                        input type="text" id=(reason) name=(reason) value=(chosen.map(|c| c.reason.as_str()).unwrap_or(""));
                    }
                }
            }
            fieldset {
                legend { "Samtycke (endast för samtyckesgrunden)" }
                (text_field("consent_given_by", "Samtycke lämnat av", &consent.given_by, refusal, None))
                (text_field("consent_given_on", "Datum", &consent.given_on, refusal, Some("ÅÅÅÅ-MM-DD")))
                (text_field("consent_scope", "Omfattning", &consent.scope, refusal, None))
                (text_field("consent_how", "Hur samtycket lämnades", &consent.how, refusal, None))
            }
            (text_field("contact_person", "Kontaktperson", &content.contact_person, refusal, None))
            div.actions {
                button type="submit" name="action" value="save" { "Spara utkast" }
                button.secondary type="submit" name="action" value="assess" { "Bedöm utan att spara" }
            }
        }
    }
}

/// The assessment panel for the posted fields (htmx, as the caseworker types).
pub async fn assess_partial(
    State(console): State<Shared>,
    session: Session,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Markup, Failure> {
    let posted = Posted::new(pairs);
    session.check_csrf(&posted.csrf())?;
    let assessment = assess(&console, &session, &posted.content()).await;
    Ok(assessment_panel(&assessment))
}

/// The checklist fieldset for the posted basis (htmx, when the basis changes).
pub async fn checklist_partial(
    State(console): State<Shared>,
    session: Session,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Markup, Failure> {
    let posted = Posted::new(pairs);
    session.check_csrf(&posted.csrf())?;
    Ok(checklist_fieldset(&console, &posted.content()))
}

/// Creates the draft (or, for `refresh`/`assess`, shows the form again with the checklist
/// and assessment for what was typed, saving nothing).
pub async fn create(
    State(console): State<Shared>,
    session: Session,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let posted = Posted::new(pairs);
    session.check_csrf(&posted.csrf())?;
    let content = posted.content();
    let target = Target::New {
        client_request_id: match posted.text("client_request_id") {
            id if id.is_empty() => uuid::Uuid::new_v4().to_string(),
            id => id,
        },
    };
    if posted.text("action") != "save" {
        return Ok(draft_page(&console, &session, &content, target, None, None)
            .await
            .into_response());
    }
    let Target::New { client_request_id } = &target else {
        return Err(Failure::NotFound);
    };
    let created = console
        .backend
        .disclosures(&session.user)
        .create_draft(CreateDraftRequest {
            client_request_id: client_request_id.clone(),
            content: Some(content.clone()),
        })
        .await;
    match created {
        Ok(created) => {
            Ok(Redirect::to(&format!("/arenden/{}", created.into_inner().id)).into_response())
        }
        Err(status) => {
            let refusal = Refusal::from(status);
            if refusal.is_unauthenticated() {
                return Err(Failure::Expired);
            }
            Ok(
                draft_page(&console, &session, &content, target, Some(&refusal), None)
                    .await
                    .into_response(),
            )
        }
    }
}

async fn get_disclosure(
    console: &Shared,
    session: &Session,
    id: &str,
    reveal: bool,
) -> Result<Disclosure, Failure> {
    Ok(console
        .backend
        .disclosures(&session.user)
        .get(GetRequest {
            disclosure_id: id.to_owned(),
            reveal_protected: reveal,
        })
        .await?
        .into_inner())
}

pub async fn edit_form(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, Failure> {
    let disclosure = get_disclosure(&console, &session, &id, false).await?;
    let content = disclosure.content.clone().unwrap_or_default();
    Ok(draft_page(
        &console,
        &session,
        &content,
        Target::Existing {
            id: disclosure.id.clone(),
            version: disclosure.version,
        },
        None,
        None,
    )
    .await)
}

/// Saves the draft under the version it was read at. A stale save is never written: the
/// page shows what is stored now next to what the user typed, and the form (at the current
/// version, with the user's text) to save again deliberately.
pub async fn save(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let posted = Posted::new(pairs);
    session.check_csrf(&posted.csrf())?;
    let content = posted.content();
    let version = posted.version();
    if posted.text("action") != "save" {
        let target = Target::Existing { id, version };
        return Ok(draft_page(&console, &session, &content, target, None, None)
            .await
            .into_response());
    }
    let saved = console
        .backend
        .disclosures(&session.user)
        .update_draft(UpdateDraftRequest {
            disclosure_id: id.clone(),
            expected_version: version,
            content: Some(content.clone()),
        })
        .await;
    let status = match saved {
        Ok(_) => return Ok(Redirect::to(&format!("/arenden/{id}")).into_response()),
        Err(status) => status,
    };
    let refusal = Refusal::from(status);
    if refusal.is_unauthenticated() {
        return Err(Failure::Expired);
    }
    if refusal.is_not_found() {
        return Err(Failure::NotFound);
    }
    if refusal.is_stale() {
        let current = get_disclosure(&console, &session, &id, false).await?;
        let stored = current.content.clone().unwrap_or_default();
        let comparison = conflict(&stored, &content, current.version, version);
        let target = Target::Existing {
            id,
            version: current.version,
        };
        return Ok(draft_page(
            &console,
            &session,
            &content,
            target,
            Some(&refusal),
            Some(comparison),
        )
        .await
        .into_response());
    }
    let target = Target::Existing { id, version };
    Ok(
        draft_page(&console, &session, &content, target, Some(&refusal), None)
            .await
            .into_response(),
    )
}

/// Both versions of the fields that differ.
fn conflict(
    stored: &DraftContent,
    mine: &DraftContent,
    stored_version: i64,
    my_version: i64,
) -> Markup {
    let fields = |content: &DraftContent| -> Vec<(&'static str, String)> {
        vec![
            ("Ärendenummer", content.case_reference.clone()),
            ("Enhet", content.unit.clone()),
            ("Rättslig grund", content.legal_basis_id.clone()),
            ("Brott", content.crime_id.clone()),
            ("Riskbeskrivning", content.risk_description.clone()),
            (
                "Övervägda alternativ",
                content.alternatives_considered.clone(),
            ),
            ("Relation", content.relation.clone()),
            (
                "Brådskande",
                if content.urgent {
                    "Ja".into()
                } else {
                    "Nej".into()
                },
            ),
            ("Kontaktperson", content.contact_person.clone()),
            (
                "Checklista",
                content
                    .checklist
                    .iter()
                    .map(|answer| {
                        format!(
                            "{}: {} – {}",
                            answer.key,
                            if answer.answer { "ja" } else { "nej" },
                            answer.justification
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            (
                "Uppgifter",
                content
                    .data_items
                    .iter()
                    .map(|item| item.item.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ]
    };
    let (stored_fields, my_fields) = (fields(stored), fields(mine));
    html! {
        section aria-labelledby="konflikt" {
            h2 id="konflikt" { "Två versioner" }
            p { "Utkastet sparades av någon annan (version " (stored_version) ") efter att du öppnade det (version " (my_version) "). Inget av ditt har skrivits över. Formuläret nedan har din text; spara igen för att ersätta den sparade versionen, eller öppna utkastet på nytt för att börja från den." }
            table {
                caption { "Fält som skiljer sig" }
                thead { tr { th scope="col" { "Fält" } th scope="col" { "Sparad version " (stored_version) } th scope="col" { "Din version" } } }
                tbody {
                    @for ((label, theirs), (_, ours)) in stored_fields.iter().zip(&my_fields) {
                        @if theirs != ours {
                            tr { th scope="row" { (label) } td { (theirs) } td { (ours) } }
                        }
                    }
                }
            }
        }
    }
}

#[derive(serde::Deserialize)]
pub struct VersionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    expected_version: i64,
    #[serde(default)]
    reason: String,
}

pub async fn submit(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<VersionForm>,
) -> Result<Response, Failure> {
    session.check_csrf(&form.csrf)?;
    let result = console
        .backend
        .disclosures(&session.user)
        .submit(SubmitRequest {
            disclosure_id: id.clone(),
            expected_version: form.expected_version,
        })
        .await;
    after_action(&console, &session, &id, result.map(|_| ())).await
}

pub async fn withdraw(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<VersionForm>,
) -> Result<Response, Failure> {
    session.check_csrf(&form.csrf)?;
    let result = console
        .backend
        .disclosures(&session.user)
        .withdraw(WithdrawRequest {
            disclosure_id: id.clone(),
            expected_version: form.expected_version,
            reason: form.reason,
        })
        .await;
    after_action(&console, &session, &id, result.map(|_| ())).await
}

/// To the case page after an action, or the case page with the refusal.
pub async fn after_action(
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
            let disclosure = get_disclosure(console, session, id, false).await?;
            Ok(case_page(console, session, &disclosure, Some(&refusal))
                .await
                .into_response())
        }
    }
}

pub async fn show(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, Failure> {
    let disclosure = get_disclosure(&console, &session, &id, false).await?;
    Ok(case_page(&console, &session, &disclosure, None).await)
}

/// Shows the protected details: a POST (never a link, so it is never prefetched or in a
/// URL); the service checks who may and logs the reveal before answering.
pub async fn reveal(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<VersionForm>,
) -> Result<Response, Failure> {
    session.check_csrf(&form.csrf)?;
    let revealed = console
        .backend
        .disclosures(&session.user)
        .get(GetRequest {
            disclosure_id: id.clone(),
            reveal_protected: true,
        })
        .await;
    match revealed {
        Ok(disclosure) => Ok(
            case_page(&console, &session, &disclosure.into_inner(), None)
                .await
                .into_response(),
        ),
        Err(status) => after_action(&console, &session, &id, Err(status)).await,
    }
}

/// A case: its facts, protected details masked unless revealed, the actions its state and
/// the user's roles allow, and the police's follow-up questions.
pub async fn case_page(
    console: &Shared,
    session: &Session,
    disclosure: &Disclosure,
    refusal: Option<&Refusal>,
) -> Markup {
    let content = disclosure.content.clone().unwrap_or_default();
    let state = DisclosureState::try_from(disclosure.state).unwrap_or(DisclosureState::Unspecified);
    let follow_ups = console
        .backend
        .notifications(&session.user)
        .list_follow_ups(ListFollowUpsRequest {
            disclosure_id: disclosure.id.clone(),
        })
        .await
        .map(|response| response.into_inner().follow_ups)
        .unwrap_or_default();
    let is_drafter = disclosure.drafted_by == session.user.principal.user_id;
    page(
        console,
        session,
        "Ärende",
        html! {
            h1 { "Ärende " (short_id(&disclosure.id)) }
            @if let Some(notice) = expiry_notice(disclosure.expires_at_unix_ms, tryggdel_service_kit::now_unix_ms()) {
                p.urgent { (notice) ". Ett utkast eller inskickat ärende som ingen rör förfaller och dess uppgifter raderas; en ändring skjuter upp det." }
            }
            (refusal_box(refusal))
            (facts(console, disclosure, &content))
            div.actions {
                a href={"/arenden/" (disclosure.id) "/tidslinje"} { "Tidslinje" }
                a href={"/arenden/" (disclosure.id) "/utskrift"} { "Utskrift av beslutet" }
                a href={(super::report::HOLDS_PATH) "?arende=" (disclosure.id)} { "Spärrar" }
                @if state == DisclosureState::Submitted && session.user.has(Role::DecisionMaker) {
                    a href={"/att-besluta/" (disclosure.id)} { "Till beslut" }
                }
            }
            @if state == DisclosureState::Draft && is_drafter {
                div.actions {
                    a.button href={"/arenden/" (disclosure.id) "/redigera"} { "Redigera" }
                    form method="post" action={"/arenden/" (disclosure.id) "/skicka"} {
                        (csrf_field(session))
                        input type="hidden" name="expected_version" value=(disclosure.version);
                        button type="submit" { "Skicka för beslut" }
                    }
                }
            }
            @if matches!(state, DisclosureState::Draft | DisclosureState::Submitted) && is_drafter {
                form.stacked method="post" action={"/arenden/" (disclosure.id) "/aterkalla"} {
                    (csrf_field(session))
                    input type="hidden" name="expected_version" value=(disclosure.version);
                    label for="aterkalla-skal" { "Skäl för att återkalla" }
                    input type="text" id="aterkalla-skal" name="reason";
                    div.actions { button.danger type="submit" { "Återkalla" } }
                }
            }
            @if !disclosure.protected_revealed && has_protected(&content) {
                form method="post" action={"/arenden/" (disclosure.id) "/visa-skyddat"} {
                    (csrf_field(session))
                    p { "Skyddade uppgifter visas maskerade. Att visa dem loggas." }
                    button.secondary type="submit" { "Visa skyddade uppgifter" }
                }
            }
            @if !follow_ups.is_empty() {
                h2 { "Följdfrågor från polisen" }
                ul {
                    @for question in &follow_ups {
                        li {
                            (words::time(question.asked_at_unix_ms)) ", " (question.asked_by) ": "
                            q { (question.question) }
                            @if session.user.has(Role::Caseworker) {
                                " " a href={"/arenden/" (disclosure.id) "/svara/" (question.id)} { "Svara med ett nytt utkast" }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn has_protected(content: &DraftContent) -> bool {
    content.victim_protected.as_ref().is_some_and(|protected| {
        !(protected.address.is_empty()
            && protected.workplace.is_empty()
            && protected.school.is_empty()
            && protected.shelter.is_empty())
    })
}

/// The facts of a disclosure as a description list.
pub fn facts(console: &Shared, disclosure: &Disclosure, content: &DraftContent) -> Markup {
    let protected = content.victim_protected.clone().unwrap_or_default();
    let shown = |value: &str| -> Markup {
        html! {
            @if value.is_empty() { "–" }
            @else if disclosure.protected_revealed { (value) }
            @else { span.masked { "(skyddad uppgift, maskerad)" } }
        }
    };
    let subject = content.subject.clone().unwrap_or_default();
    let victim = content.victim.clone().unwrap_or_default();
    html! {
        dl.facts {
            dt { "Status" } dd { (words::state(disclosure.state)) }
            dt { "Organisation" } dd { (super::organisation_name(console, &disclosure.organisation)) }
            dt { "Ärendenummer" } dd { (content.case_reference) }
            dt { "Enhet" } dd { (content.unit) }
            dt { "Brådskande" } dd { @if content.urgent { span.urgent { "Ja" } } @else { "Nej" } }
            dt { "Rättslig grund" } dd { (content.legal_basis_id) }
            dt { "Mottagare" } dd { (content.recipient) @if !disclosure.police_region.is_empty() { ", " (words::region(&disclosure.police_region)) } }
            @if !content.answers_information_request_id.is_empty() {
                dt { "Besvarar" } dd { a href={"/begaranden/" (content.answers_information_request_id)} { "Begäran om uppgifter " (short_id(&content.answers_information_request_id)) } }
            }
            dt { "Brott" } dd { (content.crime_id) " (" (words::lookup(words::CRIME_TIMES, &content.crime_time)) ")" }
            dt { "Den enskilde" } dd { (subject.name) " " (subject.identity_number) }
            dt { "Den utsatte" } dd { (victim.name) " " (victim.identity_number) }
            dt { "Relation" } dd { (words::lookup(words::RELATIONS, &content.relation)) }
            @if !content.relation_justification.is_empty() {
                dt { "Motivering av relationen" } dd { (content.relation_justification) }
            }
            dt { "Skydd" } dd { (words::lookup(words::VICTIM_PROTECTIONS, &content.victim_protection)) }
            dt { "Adress" } dd { (shown(&protected.address)) }
            dt { "Arbetsplats" } dd { (shown(&protected.workplace)) }
            dt { "Skola" } dd { (shown(&protected.school)) }
            dt { "Skyddat boende" } dd { (shown(&protected.shelter)) }
            dt { "Riskbeskrivning" } dd { (content.risk_description) }
            dt { "Övervägda alternativ" } dd { (content.alternatives_considered) }
            dt { "Checklista" } dd {
                ul { @for answer in &content.checklist {
                    li { (if answer.answer { "Ja" } else { "Nej" }) ": " (answer.key) @if !answer.justification.is_empty() { " – " (answer.justification) } }
                } }
            }
            dt { "Uppgifter att lämna" } dd {
                ul { @for item in &content.data_items {
                    li { (words::data_item(&item.item)) @if !item.reason.is_empty() { " – " (item.reason) } }
                } }
            }
            dt { "Skapat" } dd { (words::time(disclosure.created_at_unix_ms)) " av " (disclosure.drafted_by) }
            @if disclosure.submitted_at_unix_ms > 0 {
                dt { "Skickat för beslut" } dd { (words::time(disclosure.submitted_at_unix_ms)) " av " (disclosure.submitted_by) }
            }
            @if let Some(decision) = &disclosure.decision {
                dt { "Beslut" } dd { (decision.outcome) ", " (words::time(decision.decided_at_unix_ms)) " av " (decision.decided_by) @if !decision.reason.is_empty() { " – " (decision.reason) } }
                @if !decision.judgement.is_empty() {
                    dt { "Beslutsfattarens bedömning av om den utsatte är närstående" } dd { (decision.judgement) }
                }
                @if !decision.payload_sha256.is_empty() { dt { "Underlagets SHA-256" } dd { code.hash { (decision.payload_sha256) } } }
            }
            @if let Some(delivery) = &disclosure.delivery {
                dt { "Levererat" } dd { (words::time(delivery.delivered_at_unix_ms)) " till " (words::region(&delivery.police_region)) }
                @if delivery.acknowledged_at_unix_ms > 0 {
                    dt { "Kvittens" } dd { (words::time(delivery.acknowledged_at_unix_ms)) " av " (delivery.acknowledged_by) ", polisens diarienummer " (delivery.police_reference) }
                }
            }
        }
    }
}

/// A new draft answering a police follow-up question: the original's content, linked to the
/// question.
pub async fn answer_follow_up(
    State(console): State<Shared>,
    session: Session,
    Path((id, follow_up)): Path<(String, String)>,
) -> Result<Markup, Failure> {
    let original = get_disclosure(&console, &session, &id, false).await?;
    let questions = console
        .backend
        .notifications(&session.user)
        .list_follow_ups(ListFollowUpsRequest {
            disclosure_id: id.clone(),
        })
        .await?
        .into_inner()
        .follow_ups;
    let question = questions
        .into_iter()
        .find(|question| question.id == follow_up)
        .ok_or(Failure::NotFound)?;
    let mut content = original.content.unwrap_or_default();
    content.answers_follow_up_id = question.id.clone();
    content.victim_protected = None;
    content
        .checklist
        .iter_mut()
        .for_each(|answer| answer.answer = false);
    let extra = html! {
        p.notice { "Polisens fråga (" (words::time(question.asked_at_unix_ms)) "): " q { (question.question) } }
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

/// How far ahead a case's expiry is shown: the service's default warning (14 days).
const EXPIRY_NOTICE_MS: i64 = 14 * 24 * 60 * 60 * 1000;

/// "Förfaller <date>" for a case that expires untouched within [`EXPIRY_NOTICE_MS`] of `now`
/// (the service says when, 0 for a case that never expires).
fn expiry_notice(expires_at_unix_ms: i64, now_ms: i64) -> Option<String> {
    if expires_at_unix_ms <= 0 || expires_at_unix_ms.saturating_sub(now_ms) > EXPIRY_NOTICE_MS {
        return None;
    }
    let time = words::time(expires_at_unix_ms);
    let date = time.split(' ').next().unwrap_or_default();
    Some(format!("Förfaller {date}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tryggdel_proto::disclosure::v1::Condition;

    #[test]
    fn a_case_about_to_expire_says_when() {
        let now = 1_800_000_000_000;
        let day = 24 * 60 * 60 * 1000;
        assert_eq!(expiry_notice(0, now), None);
        assert_eq!(expiry_notice(now + 15 * day, now), None);
        assert_eq!(
            expiry_notice(now + 3 * day, now).as_deref(),
            Some("Förfaller 2027-01-18")
        );
        assert!(expiry_notice(now - day, now).is_some());
    }

    fn condition(key: &str, passed: bool, needs_judgement: bool) -> Condition {
        Condition {
            key: key.into(),
            passed,
            reason: format!("reason of {key}"),
            needs_judgement,
        }
    }

    fn assessment(conditions: Vec<Condition>) -> Assessment {
        Assessment {
            legal_basis_id: "OSL-10-18c".into(),
            as_of: "2026-03-01".into(),
            registry_version: "sha256:0123456789abcdef0123".into(),
            passed: conditions.iter().all(|condition| condition.passed),
            needs_judgement: conditions.iter().any(|condition| condition.needs_judgement),
            conditions,
            ..Assessment::default()
        }
    }

    #[test]
    fn a_condition_needing_judgement_is_neither_passed_nor_failed() {
        let panel = assessment_panel(&Ok(assessment(vec![
            condition("recipient", true, false),
            condition("close_relative", false, true),
        ])))
        .into_string();
        assert!(
            panel.contains(
                "<span class=\"judgement\">Kräver beslutsfattarens bedömning: </span><strong>Närstående</strong>"
            ),
            "{panel}"
        );
        assert!(panel.contains(
            "<span class=\"judgement\">Kräver beslutsfattarens bedömning</span> – övriga villkor"
        ));
        assert!(!panel.contains("Ej uppfyllt"), "{panel}");
        assert!(!panel.contains("Inte uppfyllt"), "{panel}");
        assert_eq!(panel.matches("✓").count(), 1);

        // With another condition failing, the whole is not met, and the judgement still shows.
        let panel = assessment_panel(&Ok(assessment(vec![
            condition("crime_time", false, false),
            condition("close_relative", false, true),
        ])))
        .into_string();
        assert!(panel.contains("Inte uppfyllt"), "{panel}");
        assert!(panel.contains("✗ Ej uppfyllt: </span><strong>Brottets tid"));
        assert!(panel.contains("Kräver beslutsfattarens bedömning: </span><strong>Närstående"));
    }

    #[test]
    fn cases_created_in_the_same_minute_have_different_short_ids() {
        let (first, second) = (
            "01a23b38-051d-774d-90fc-38992bf37b50",
            "01a23b38-4131-7693-ab5c-04f7ce970362",
        );
        assert_eq!(short_id(first), "2bf37b50");
        assert_ne!(short_id(first), short_id(second));
        assert_eq!(short_id("kort"), "kort");
    }
}
