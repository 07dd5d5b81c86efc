//! Signing in and out. Production signs in with OpenID Connect against the organisation's
//! identity provider; development (`tryggdel start`) offers the development directory's users
//! on a page marked as development, and is refused in production mode. Either way the result
//! is a server-side session under a new id.

mod development;
mod oidc;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::html;

pub use development::{DevelopmentUser, development_users};
pub use oidc::{LOGIN_COOKIE, OidcSettings, TokenToForward};

use crate::Shared;
use crate::pages::{Failure, bare_page, development_banner};
use crate::session::{
    SESSION_COOKIE, Session, SignedInUser, cookie, removal_cookie, session_cookie,
};

/// How users sign in.
pub enum SignInSettings {
    /// The development identity provider: pick a user from a list (development mode only).
    Development(development::DevelopmentSignIn),
    /// OpenID Connect against the organisation's identity provider.
    OpenIdConnect(OidcSettings),
}

impl SignInSettings {
    /// A development sign-in minting tokens with the development identity provider's key.
    pub fn development(
        signer: tryggdel_auth::TokenSigner,
        users: Vec<DevelopmentUser>,
    ) -> SignInSettings {
        SignInSettings::Development(development::DevelopmentSignIn { signer, users })
    }

    pub fn is_development(&self) -> bool {
        matches!(self, SignInSettings::Development(_))
    }
}

/// Sign-in as it runs.
pub enum SignIn {
    Development(Box<development::DevelopmentSignIn>),
    /// The provider discovered at start, and the sign-ins under way.
    OpenIdConnect(Box<oidc::Oidc>),
}

impl SignIn {
    /// Sign-in with `settings`; OpenID Connect discovers its provider now, and a provider that
    /// cannot be reached is an error naming it.
    pub async fn new(settings: SignInSettings, public_origin: &str) -> anyhow::Result<SignIn> {
        Ok(match settings {
            SignInSettings::Development(development) => SignIn::Development(Box::new(development)),
            SignInSettings::OpenIdConnect(settings) => {
                SignIn::OpenIdConnect(Box::new(oidc::Oidc::start(settings, public_origin).await?))
            }
        })
    }

    /// Forgets sign-ins that were started and never finished.
    pub fn sweep(&self) {
        if let SignIn::OpenIdConnect(oidc) = self {
            oidc.sweep();
        }
    }

    fn development(&self) -> Option<&development::DevelopmentSignIn> {
        match self {
            SignIn::Development(development) => Some(development),
            SignIn::OpenIdConnect(_) => None,
        }
    }

    fn oidc(&self) -> Option<&oidc::Oidc> {
        match self {
            SignIn::OpenIdConnect(oidc) => Some(oidc),
            SignIn::Development(_) => None,
        }
    }
}

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/logga-in", get(sign_in_page))
        .route("/logga-in/utveckling", post(development::sign_in))
        .route("/logga-in/oidc", get(oidc::begin))
        .route("/logga-in/callback", get(oidc::callback))
        .route("/logga-ut", post(sign_out))
}

async fn sign_in_page(State(console): State<Shared>) -> Response {
    match &console.sign_in {
        SignIn::Development(development) => development::page(development).into_response(),
        SignIn::OpenIdConnect(oidc) => oidc::page(oidc).into_response(),
    }
}

/// Starts a session for `user` and sends the browser on to `/` (development sign-in: a
/// same-site form post, so the browser sends the new SameSite=Strict cookie on the redirect).
fn signed_in(console: &Shared, headers: &HeaderMap, user: SignedInUser) -> Response {
    let session = start_session(console, headers, user);
    let mut response = axum::response::Redirect::to("/").into_response();
    response.headers_mut().append(header::SET_COOKIE, session);
    response
}

/// Starts a session for `user` under a new id, ending any session the browser had; the
/// `Set-Cookie` that hands the browser the new id.
fn start_session(console: &Shared, headers: &HeaderMap, user: SignedInUser) -> HeaderValue {
    let previous = cookie(headers, SESSION_COOKIE);
    tracing::info!(user = %user.principal.user_id, organisation = %user.principal.organisation, "signed in");
    let id = console.sessions.start(user, previous);
    session_cookie(&id)
}

#[derive(serde::Deserialize)]
struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(console): State<Shared>,
    headers: HeaderMap,
    session: Session,
    axum::Form(form): axum::Form<SignOutForm>,
) -> Result<Response, Failure> {
    session.check_csrf(&form.csrf)?;
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        console.sessions.end(id);
    }
    tracing::info!(user = %session.user.principal.user_id, "signed out");
    let body = bare_page(
        "Utloggad",
        html! {
            @if console.development { (development_banner()) }
            h1 { "Du är utloggad" }
            p { "Sessionen är avslutad på servern. " a href="/logga-in" { "Logga in igen" } }
        },
    );
    let mut response = body.into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, removal_cookie(SESSION_COOKIE));
    Ok(response)
}

/// Takes one sign-in attempt from the request's client, or refuses.
fn limit(
    console: &Shared,
    info: &ConnectInfo<SocketAddr>,
    headers: &HeaderMap,
) -> Result<(), Failure> {
    console.limiter.attempt(crate::security::client_address(
        info,
        headers,
        &console.trusted_proxies,
    ))
}
