//! The pages: one module per kind of work, sharing the layout and the ways a page can fail.

pub mod cases;
pub mod compliance;
pub mod decide;
pub mod police;
pub mod report;
pub mod requests;
pub mod review;
pub mod statistics;
pub mod timeline;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use tryggdel_auth::Role;

use crate::assets::{CSS_PATH, HTMX_PATH};
use crate::refusal::Refusal;
use crate::session::Session;
use crate::{Shared, words};

/// htmx without eval, without injected styles (the CSP allows neither), and only towards
/// this origin.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScript":false,"selfRequestsOnly":true,"historyCacheSize":0}"#;

/// Why a page could not be shown; each becomes a page that says what to do.
#[derive(Debug)]
pub enum Failure {
    /// Not signed in: to the sign-in page.
    SignedOut,
    /// The session timed out.
    Expired,
    /// A state-changing request without this session's CSRF token or from another origin.
    Forged,
    /// Too many sign-in attempts from this address.
    TooManyAttempts,
    /// Nothing here, or nothing this user may know of.
    NotFound,
    /// A service refused; its sentence says what to do.
    Refused(Refusal),
    /// Bad input the console itself caught (a sentence in Swedish).
    BadInput(String),
    /// A fault of ours; logged, never shown.
    Internal(anyhow::Error),
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Failure {
        let refusal = Refusal::from(status);
        if refusal.is_unauthenticated() {
            Failure::Expired
        } else if refusal.is_not_found() {
            Failure::NotFound
        } else {
            Failure::Refused(refusal)
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        Failure::Internal(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, title, sentence) = match self {
            Failure::SignedOut => return Redirect::to("/logga-in").into_response(),
            Failure::Expired => (
                StatusCode::UNAUTHORIZED,
                "Sessionen har gått ut",
                "Du har varit inaktiv för länge eller inloggningen har gått ut. Logga in igen för att fortsätta.".to_owned(),
            ),
            Failure::Forged => (
                StatusCode::FORBIDDEN,
                "Begäran avvisades",
                "Begäran kom inte från ett formulär i konsolen och avvisades av säkerhetsskäl. Gå tillbaka, ladda om sidan och försök igen.".to_owned(),
            ),
            Failure::TooManyAttempts => (
                StatusCode::TOO_MANY_REQUESTS,
                "För många inloggningsförsök",
                "Det har gjorts för många inloggningsförsök härifrån. Vänta en minut och försök igen.".to_owned(),
            ),
            Failure::NotFound => (
                StatusCode::NOT_FOUND,
                "Sidan finns inte",
                "Det du söker finns inte, eller så har du inte behörighet att se det. Gå till startsidan.".to_owned(),
            ),
            Failure::Refused(refusal) => (
                StatusCode::CONFLICT,
                "Det gick inte",
                refusal.sentence,
            ),
            Failure::BadInput(sentence) => (StatusCode::BAD_REQUEST, "Kontrollera uppgifterna", sentence),
            Failure::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "console error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Något gick fel",
                    "Något gick fel i konsolen. Försök igen; om det upprepas, kontakta supporten.".to_owned(),
                )
            }
        };
        let signed_out = status == StatusCode::UNAUTHORIZED;
        let body = bare_page(
            title,
            html! {
                h1 { (title) }
                p.refusal role="alert" { (sentence) }
                p {
                    @if signed_out { a href="/logga-in" { "Logga in" } }
                    @else { a href="/" { "Till startsidan" } }
                }
            },
        );
        (status, body).into_response()
    }
}

/// A page without navigation (errors, sign-in).
pub fn bare_page(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="sv" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – Tryggdel" }
                link rel="stylesheet" href=(CSS_PATH);
            }
            body {
                header.top { a.brand href="/" { "Tryggdel" } }
                main id="innehall" { (content) }
            }
        }
    }
}

/// A page of the console: the layout with the signed-in user's navigation.
pub fn page(console: &Shared, session: &Session, title: &str, content: Markup) -> Markup {
    let user = &session.user;
    let organisation = organisation_name(console, &user.principal.organisation);
    let roles: Vec<&str> = user
        .principal
        .roles
        .iter()
        .map(|role| words::role(*role))
        .collect();
    html! {
        (DOCTYPE)
        html lang="sv" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (title) " – Tryggdel" }
                link rel="stylesheet" href=(CSS_PATH);
                script src=(HTMX_PATH) defer {}
            }
            body {
                a.skip href="#innehall" { "Hoppa till innehållet" }
                @if console.development { (development_banner()) }
                header.top {
                    a.brand href="/" { "Tryggdel" }
                    nav aria-label="Huvudmeny" {
                        ul {
                            @if user.has(Role::Caseworker) {
                                li { a href="/utkast" { "Ärenden" } }
                                li { a href="/utkast/ny" { "Nytt utkast" } }
                            }
                            @if user.has(Role::DecisionMaker) {
                                li { a href="/att-besluta" { "Att besluta" } }
                                li { a href="/eskaleringar" { "Eskaleringar" } }
                            }
                            @if user.has(Role::Caseworker) || user.has(Role::DecisionMaker) || user.has(Role::PoliceOfficer) {
                                li { a href="/begaranden" { "Begäranden" } }
                            }
                            @if user.has(Role::PoliceOfficer) {
                                li { a href="/inkommande" { "Inkommande" } }
                            }
                            @if user.has(Role::Caseworker) || user.has(Role::DecisionMaker) || user.has(Role::ComplianceOfficer) || user.has(Role::PoliceOfficer) {
                                li { a href=(report::HOLDS_PATH) { "Spärrar" } }
                            }
                            @if user.has(Role::ComplianceOfficer) {
                                li { a href="/granskning" { "Granskning" } }
                                li { a href="/granskning/logggranskning" { "Logggranskning" } }
                                li { a href=(report::REPORT_PATH) { "Registerutdrag" } }
                                li { a href="/granskning/kontrollpunkter" { "Kontrollpunkter" } }
                                li { a href="/granskning/verifiera" { "Verifiera export" } }
                                li { a href="/statistik" { "Statistik" } }
                            }
                        }
                    }
                    p.who {
                        (user.principal.display_name.as_deref().unwrap_or(&user.principal.user_id))
                        ", " (roles.join(", ")) ", " (organisation)
                    }
                    form method="post" action="/logga-ut" {
                        (csrf_field(session))
                        button.secondary type="submit" { "Logga ut" }
                    }
                }
                main id="innehall" { (content) }
            }
        }
    }
}

pub fn development_banner() -> Markup {
    html! {
        p.devbanner role="note" { "Utvecklingsmiljö – inga riktiga uppgifter. Inloggningen här finns inte i produktion." }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A refusal shown above a form.
pub fn refusal_box(refusal: Option<&Refusal>) -> Markup {
    html! {
        @if let Some(refusal) = refusal {
            div.refusal role="alert" id="fel" {
                p { (refusal.sentence) }
                @if let Some(field) = &refusal.field {
                    p { a href={"#" (field)} { "Gå till fältet " (words::field_label(field)) } }
                }
            }
        }
    }
}

/// Where each role starts.
pub async fn home(State(console): State<Shared>, session: Session) -> Response {
    let user = &session.user;
    let start = if user.has(Role::Caseworker) {
        "/utkast"
    } else if user.has(Role::DecisionMaker) {
        "/att-besluta"
    } else if user.has(Role::PoliceOfficer) {
        "/inkommande"
    } else if user.has(Role::ComplianceOfficer) {
        "/granskning"
    } else {
        let body = page(
            &console,
            &session,
            "Start",
            html! { h1 { "Välkommen" } p { "Din roll har inga sidor i konsolen." } },
        );
        return body.into_response();
    };
    Redirect::to(start).into_response()
}

pub async fn health() -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], "ok").into_response()
}

pub async fn not_found() -> Failure {
    Failure::NotFound
}

/// An organisation's name from the directory, or its code when it is not there.
pub fn organisation_name(console: &Shared, code: &str) -> String {
    tryggdel_domain::OrganisationCode::parse(code)
        .ok()
        .and_then(|code| console.directory.organisation(&code))
        .map(|organisation| organisation.name().to_owned())
        .unwrap_or_else(|| code.to_owned())
}
