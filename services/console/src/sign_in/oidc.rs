//! OpenID Connect sign-in: the authorization code flow with PKCE (S256), `state` and `nonce`,
//! against an issuer found by discovery when the console starts.
//!
//! 1. `GET /logga-in/oidc` keeps a pending sign-in on the server (PKCE verifier, state, nonce)
//!    under a random id in the `__Host-tryggdel-login` cookie, and sends the browser to the
//!    provider. That cookie is SameSite=Lax: the provider's redirect back is a cross-site
//!    top-level navigation, which would not carry a Strict cookie.
//! 2. `GET /logga-in/callback` takes the pending sign-in out of the store (one use: a replayed
//!    callback finds nothing), checks `state` (constant time) and `iss` if given, exchanges the
//!    code with the PKCE verifier, verifies the ID token (signature by the provider's keys,
//!    issuer, audience, expiry, nonce), then verifies the token the console forwards to the
//!    services exactly as they do (issuer, audience, key by `kid`, claim names) to learn who
//!    signed in and until when, and starts the session.
//!
//! The session cookie is SameSite=Strict and the callback came cross-site, so the browser would
//! not send the new cookie on a redirect from here: the callback answers a page that moves on
//! to `/` itself. Every failure ends on one page saying to try again; the reason is logged,
//! never a token, code or secret.
//!
//! The provider is reached with our own HTTP client: rustls on ring, the web's roots plus an
//! optional private CA, no redirects followed (openidconnect's advice against SSRF), bounded
//! time and size.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{DOCTYPE, Markup, html};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreIdToken, CoreIdTokenVerifier,
    CoreJsonWebKey, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AsyncHttpClient, AuthorizationCode, ClaimsVerificationError,
    ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, IssuerUrl, JsonWebKeySet, JsonWebKeySetUrl, Nonce, OAuth2TokenResponse as _,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    SignatureVerificationError, StandardErrorResponse, TokenResponse as _,
};
use sha2::{Digest as _, Sha256};
use tryggdel_service_kit::{TokenKeys, TokenSettings};

use super::{limit, start_session};
use crate::Shared;
use crate::assets::CSS_PATH;
use crate::pages::{Failure, bare_page};
use crate::session::{SignedInUser, cookie, random_id, removal_cookie};

/// The pending sign-in's cookie. `__Host-`: Secure, Path=/, no Domain.
pub const LOGIN_COOKIE: &str = "__Host-tryggdel-login";
/// How long a started sign-in may take at the provider.
pub const PENDING_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Started sign-ins kept at most (the sign-in rate limit keeps far fewer in practice).
pub const MAX_PENDING: usize = 10_000;
/// How long the provider has to answer one request in full.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from the provider (discovery, keys, tokens).
pub const MAX_PROVIDER_ANSWER_BYTES: usize = 1024 * 1024;
/// The least time between two reads of the provider's keys for an ID token naming an unknown
/// key.
pub const KEYS_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Which token the console forwards to the services for the signed-in user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenToForward {
    /// The access token: a JWT (RFC 9068) for the services' audience.
    AccessToken,
    /// The ID token, for providers whose access tokens the services cannot verify; its
    /// audience is the console's client id.
    IdToken,
}

/// How the console signs users in with OpenID Connect.
pub struct OidcSettings {
    /// The issuer URL, found by discovery (`<issuer>/.well-known/openid-configuration`):
    /// https, or http to a loopback host.
    pub issuer: String,
    pub client_id: String,
    /// The client secret (client_secret_basic); none for a public client, which PKCE protects.
    pub client_secret: Option<String>,
    /// The scopes asked for (`openid` is always asked for).
    pub scopes: Vec<String>,
    /// A CA (PEM) to trust for the provider's TLS besides the web's roots.
    pub extra_ca_pem: Option<String>,
    pub token: TokenToForward,
    /// How the forwarded token is verified: the services' own token settings (issuer,
    /// audience, keys, claim names).
    pub verifier: TokenSettings,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("scopes", &self.scopes)
            .field("extra_ca_pem", &self.extra_ca_pem.is_some())
            .field("token", &self.token)
            .field("verifier", &self.verifier)
            .finish()
    }
}

/// The client once discovery told where the provider's endpoints are: authorization and token
/// endpoints set, redirect URI set.
type ProviderClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointMaybeSet,
>;

/// OpenID Connect sign-in as it runs.
pub struct Oidc {
    issuer: IssuerUrl,
    client_id: ClientId,
    client: ProviderClient,
    http: ProviderHttp,
    scopes: Vec<Scope>,
    token: TokenToForward,
    verifier: TokenKeys,
    id_token_algorithms: Vec<CoreJwsSigningAlgorithm>,
    jwks_uri: JsonWebKeySetUrl,
    keys: RwLock<JsonWebKeySet<CoreJsonWebKey>>,
    keys_read_at: tokio::sync::Mutex<Instant>,
    pending: PendingLogins,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id.as_str())
            .finish_non_exhaustive()
    }
}

/// The algorithms an ID token may be signed with: asymmetric only, as for the services'
/// tokens (an HMAC keyed with the client secret is refused).
const ID_TOKEN_ALGORITHMS: [CoreJwsSigningAlgorithm; 4] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EdDsa,
];

impl Oidc {
    /// Discovers the provider and reads the keys of the forwarded token: a provider that
    /// cannot be reached now is an error naming the issuer.
    pub async fn start(settings: OidcSettings, public_origin: &str) -> anyhow::Result<Oidc> {
        checked_issuer(&settings.issuer)?;
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .with_context(|| format!("the OpenID Connect issuer {:?}", settings.issuer))?;
        let http = ProviderHttp::new(settings.extra_ca_pem.as_deref())?;
        let metadata = CoreProviderMetadata::discover_async(issuer.clone(), &http)
            .await
            .with_context(|| {
                format!(
                    "discovering the OpenID Connect provider {}",
                    settings.issuer
                )
            })?;
        let token_url = metadata.token_endpoint().cloned().with_context(|| {
            format!(
                "the OpenID Connect provider {} names no token endpoint",
                settings.issuer
            )
        })?;
        let id_token_algorithms: Vec<CoreJwsSigningAlgorithm> = metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|algorithm| ID_TOKEN_ALGORITHMS.contains(algorithm))
            .cloned()
            .collect();
        if id_token_algorithms.is_empty() {
            bail!(
                "the OpenID Connect provider {} signs ID tokens with none of RS256, PS256, ES256 and EdDSA",
                settings.issuer
            );
        }
        let jwks_uri = metadata.jwks_uri().clone();
        let keys = metadata.jwks().clone();
        let redirect = RedirectUrl::new(format!("{public_origin}/logga-in/callback"))
            .context("the OpenID Connect redirect URI")?;
        let client_id = ClientId::new(settings.client_id.clone());
        let client = CoreClient::from_provider_metadata(
            metadata,
            client_id.clone(),
            settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_token_uri(token_url)
        .set_redirect_uri(redirect);
        let verifier = TokenKeys::load(&settings.verifier)
            .await
            .context("the keys of the token the console forwards")?;
        let mut scopes: Vec<Scope> = settings
            .scopes
            .iter()
            .filter(|scope| scope.as_str() != "openid")
            .map(|scope| Scope::new(scope.clone()))
            .collect();
        scopes.dedup();
        tracing::info!(issuer = %settings.issuer, client_id = %settings.client_id, token = ?settings.token, "OpenID Connect provider discovered");
        Ok(Oidc {
            issuer,
            client_id,
            client,
            http,
            scopes,
            token: settings.token,
            verifier,
            id_token_algorithms,
            jwks_uri,
            keys: RwLock::new(keys),
            keys_read_at: tokio::sync::Mutex::new(Instant::now()),
            pending: PendingLogins::new(PENDING_LIFETIME),
        })
    }

    /// The provider's host, as the sign-in page names it.
    pub fn issuer_host(&self) -> String {
        self.issuer
            .url()
            .host_str()
            .unwrap_or(self.issuer.as_str())
            .to_owned()
    }

    /// Forgets sign-ins started and never finished.
    pub fn sweep(&self) {
        self.pending.sweep();
    }

    /// A new pending sign-in: its id (for the cookie) and where to send the browser.
    fn begin(&self) -> Result<(String, String), Failure> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(self.scopes.iter().cloned())
            .set_pkce_challenge(challenge)
            .url();
        let id = self
            .pending
            .insert(PendingLogin {
                verifier,
                state,
                nonce,
                started: Instant::now(),
            })
            .ok_or(Failure::TooManyAttempts)?;
        Ok((id, url.to_string()))
    }

    /// Finishes the sign-in `pending` with the provider's answer `callback`: who signed in.
    async fn finish(
        &self,
        pending: PendingLogin,
        callback: Callback,
    ) -> Result<SignedInUser, Refusal> {
        if let Some(error) = &callback.error {
            return Err(Refusal::Provider(short(error)));
        }
        let state = callback.state.as_deref().ok_or(Refusal::State)?;
        if !same_secret(state, pending.state.secret()) {
            return Err(Refusal::State);
        }
        if let Some(iss) = &callback.iss
            && iss != self.issuer.as_str()
        {
            return Err(Refusal::Issuer);
        }
        let code = callback.code.ok_or(Refusal::NoCode)?;
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.http)
            .await
            .map_err(|error| Refusal::Exchange(exchange_failure(&error)))?;
        let id_token = response.id_token().ok_or(Refusal::NoIdToken)?;
        let access_token = response.access_token();
        let subject = self
            .verify_id_token(id_token, &pending.nonce, access_token)
            .await?;
        let token = match self.token {
            TokenToForward::AccessToken => access_token.secret().clone(),
            TokenToForward::IdToken => id_token.to_string(),
        };
        let principal = self
            .verifier
            .verify(&token)
            .await
            .map_err(|error| Refusal::Forwarded(error.to_string()))?;
        let claims =
            payload(&token).ok_or(Refusal::Forwarded("its payload cannot be read".to_owned()))?;
        if claims.get("sub").and_then(serde_json::Value::as_str) != Some(subject.as_str()) {
            return Err(Refusal::Subject);
        }
        let token_expires_at = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .ok_or(Refusal::Forwarded("it has no exp".to_owned()))?;
        Ok(SignedInUser {
            principal,
            token,
            token_expires_at,
        })
    }

    /// Verifies the ID token (signature, issuer, audience, expiry, nonce, and `at_hash` when
    /// present); a key the provider's key set does not hold makes it read the set again, at
    /// most once a [`KEYS_REFRESH_INTERVAL`]. The token's subject.
    async fn verify_id_token(
        &self,
        id_token: &CoreIdToken,
        nonce: &Nonce,
        access_token: &AccessToken,
    ) -> Result<String, Refusal> {
        let mut verifier = self.id_token_verifier();
        let claims = match id_token.claims(&verifier, nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) if self.read_keys_again().await => {
                verifier = self.id_token_verifier();
                id_token.claims(&verifier, nonce)
            }
            result => result,
        }
        .map_err(|error| Refusal::IdToken(error.to_string()))?;
        if let Some(expected) = claims.access_token_hash() {
            let refused = |error: SignatureVerificationError| Refusal::IdToken(error.to_string());
            let algorithm = id_token.signing_alg().map_err(refused)?;
            let key = id_token.signing_key(&verifier).map_err(refused)?;
            let actual = AccessTokenHash::from_token(access_token, algorithm, key)
                .map_err(|error| Refusal::IdToken(error.to_string()))?;
            if actual != *expected {
                return Err(Refusal::AccessTokenHash);
            }
        }
        Ok(claims.subject().as_str().to_owned())
    }

    fn id_token_verifier(&self) -> CoreIdTokenVerifier<'static> {
        let keys = match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        CoreIdTokenVerifier::new_public_client(self.client_id.clone(), self.issuer.clone(), keys)
            .set_allowed_algs(self.id_token_algorithms.iter().cloned())
    }

    /// Reads the provider's key set again unless it was read less than
    /// [`KEYS_REFRESH_INTERVAL`] ago. Whether new keys were read.
    async fn read_keys_again(&self) -> bool {
        let mut read_at = self.keys_read_at.lock().await;
        if read_at.elapsed() < KEYS_REFRESH_INTERVAL {
            return false;
        }
        *read_at = Instant::now();
        match JsonWebKeySet::fetch_async(&self.jwks_uri, &self.http).await {
            Ok(keys) => {
                tracing::info!(issuer = %self.issuer.as_str(), "the provider's keys read again");
                match self.keys.write() {
                    Ok(mut held) => *held = keys,
                    Err(poisoned) => *poisoned.into_inner() = keys,
                }
                true
            }
            Err(error) => {
                tracing::warn!(issuer = %self.issuer.as_str(), error = %error, "reading the provider's keys again failed");
                false
            }
        }
    }
}

/// The issuer as configured: an absolute https URL, or http to a loopback host (a provider on
/// the same machine); no credentials, query or fragment.
fn checked_issuer(issuer: &str) -> anyhow::Result<openidconnect::url::Url> {
    let url = openidconnect::url::Url::parse(issuer)
        .with_context(|| format!("the OpenID Connect issuer {issuer:?} is not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        bail!("the OpenID Connect issuer {issuer:?} must not carry credentials");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("the OpenID Connect issuer {issuer:?} must have no query or fragment");
    }
    let loopback = url.host_str().is_some_and(|host| {
        host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|address| address.is_loopback())
    });
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(url),
        "http" if loopback => Ok(url),
        _ => bail!(
            "the OpenID Connect issuer {issuer:?} must be an https URL (http only to a loopback host)"
        ),
    }
}

/// The answer of the provider's redirect back.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    /// RFC 9207: the issuer that answered, when the provider says.
    iss: Option<String>,
    error: Option<String>,
}

/// Why a sign-in failed, for the log (never a token, code or secret).
#[derive(Debug)]
enum Refusal {
    NoPendingLogin,
    Provider(String),
    State,
    Issuer,
    NoCode,
    Exchange(String),
    NoIdToken,
    IdToken(String),
    AccessTokenHash,
    Forwarded(String),
    Subject,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NoPendingLogin => {
                f.write_str("no pending sign-in for this browser (unknown, used or expired)")
            }
            Refusal::Provider(error) => write!(f, "the provider answered error {error}"),
            Refusal::State => f.write_str("the state does not match the pending sign-in"),
            Refusal::Issuer => f.write_str("the callback names another issuer"),
            Refusal::NoCode => f.write_str("the callback carries no code"),
            Refusal::Exchange(why) => write!(f, "exchanging the code failed: {why}"),
            Refusal::NoIdToken => f.write_str("the token response has no ID token"),
            Refusal::IdToken(why) => write!(f, "the ID token was refused: {why}"),
            Refusal::AccessTokenHash => {
                f.write_str("the access token is not the one the ID token was issued with")
            }
            Refusal::Forwarded(why) => {
                write!(
                    f,
                    "the token to forward is not one the services accept: {why}"
                )
            }
            Refusal::Subject => {
                f.write_str("the token to forward is for another subject than the ID token")
            }
        }
    }
}

/// What a failed code exchange says, without anything the provider echoed back.
fn exchange_failure<RE: std::error::Error + 'static>(
    error: &RequestTokenError<RE, StandardErrorResponse<CoreErrorResponseType>>,
) -> String {
    match error {
        RequestTokenError::ServerResponse(response) => {
            format!("the provider refused: {}", response.error())
        }
        RequestTokenError::Request(error) => format!("the request failed: {error}"),
        RequestTokenError::Parse(_, _) => "the token response could not be read".to_owned(),
        RequestTokenError::Other(why) => why.clone(),
    }
}

/// At most 64 printable characters of a value the provider sent, for the log.
fn short(value: &str) -> String {
    value
        .chars()
        .filter(|character| character.is_ascii_graphic())
        .take(64)
        .collect()
}

/// Whether two secrets are equal, compared in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// The claims of a JWT whose signature was verified already.
fn payload(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let encoded = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A sign-in started and not yet finished.
struct PendingLogin {
    verifier: PkceCodeVerifier,
    state: CsrfToken,
    nonce: Nonce,
    started: Instant,
}

/// Pending sign-ins by the SHA-256 of their cookie's id; each is taken once.
struct PendingLogins {
    lifetime: Duration,
    logins: Mutex<HashMap<[u8; 32], PendingLogin>>,
}

impl PendingLogins {
    fn new(lifetime: Duration) -> PendingLogins {
        PendingLogins {
            lifetime,
            logins: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], PendingLogin>> {
        match self.logins.lock() {
            Ok(logins) => logins,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Keeps `login` under a new id; `None` when [`MAX_PENDING`] sign-ins are under way.
    fn insert(&self, login: PendingLogin) -> Option<String> {
        let mut logins = self.lock();
        if logins.len() >= MAX_PENDING {
            let lifetime = self.lifetime;
            logins.retain(|_, login| login.started.elapsed() <= lifetime);
            if logins.len() >= MAX_PENDING {
                return None;
            }
        }
        let id = random_id();
        logins.insert(Sha256::digest(id.as_bytes()).into(), login);
        Some(id)
    }

    /// Takes the sign-in behind `id` out of the store, if it has not expired.
    fn take(&self, id: &str) -> Option<PendingLogin> {
        let key: [u8; 32] = Sha256::digest(id.as_bytes()).into();
        let login = self.lock().remove(&key)?;
        (login.started.elapsed() <= self.lifetime).then_some(login)
    }

    fn sweep(&self) {
        let lifetime = self.lifetime;
        self.lock()
            .retain(|_, login| login.started.elapsed() <= lifetime);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// `Set-Cookie` for a pending sign-in: `__Host-`, HttpOnly, Secure, SameSite=Lax (the
/// provider's redirect back is cross-site), for as long as the sign-in may take.
fn login_cookie(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        PENDING_LIFETIME.as_secs()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("__Host-tryggdel-login=; Path=/; Secure"))
}

/// The sign-in page: one way in, through the organisation's identity provider.
pub fn page(oidc: &Oidc) -> Markup {
    bare_page(
        "Logga in",
        html! {
            h1 { "Logga in" }
            p { "Du loggar in med din organisations inloggningstjänst." }
            p { a.button href="/logga-in/oidc" { "Logga in via " (oidc.issuer_host()) } }
        },
    )
}

/// `GET /logga-in/oidc`: starts a sign-in and sends the browser to the provider.
pub async fn begin(
    State(console): State<Shared>,
    info: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let oidc = console.sign_in.oidc().ok_or(Failure::NotFound)?;
    limit(&console, &info, &headers)?;
    let (id, url) = oidc.begin()?;
    let mut response = Redirect::to(&url).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, login_cookie(&id));
    Ok(response)
}

/// `GET /logga-in/callback`: the provider's answer. Starts the session, or says the sign-in
/// failed.
pub async fn callback(
    State(console): State<Shared>,
    info: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    answer: Result<Query<Callback>, QueryRejection>,
) -> Result<Response, Failure> {
    let oidc = console.sign_in.oidc().ok_or(Failure::NotFound)?;
    limit(&console, &info, &headers)?;
    let Ok(Query(answer)) = answer else {
        tracing::warn!(
            reason = "the callback's query is malformed",
            "sign-in failed"
        );
        return Ok(failed());
    };
    let pending = cookie(&headers, LOGIN_COOKIE).and_then(|id| oidc.pending.take(id));
    let result = match pending {
        Some(pending) => oidc.finish(pending, answer).await,
        None => Err(Refusal::NoPendingLogin),
    };
    let user = match result {
        Ok(user) => user,
        Err(refusal) => {
            tracing::warn!(reason = %refusal, "sign-in failed");
            return Ok(failed());
        }
    };
    let session = start_session(&console, &headers, user);
    let mut response = continue_page().into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, session);
    headers.append(header::SET_COOKIE, removal_cookie(LOGIN_COOKIE));
    Ok(response)
}

/// The page after a successful sign-in: it moves on to `/` by itself (a same-site navigation
/// from here, so the browser sends the SameSite=Strict session cookie).
fn continue_page() -> Markup {
    html! {
        (DOCTYPE)
        html lang="sv" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="0;url=/";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Inloggad – Tryggdel" }
                link rel="stylesheet" href=(CSS_PATH);
            }
            body {
                header.top { a.brand href="/" { "Tryggdel" } }
                main id="innehall" {
                    h1 { "Du är inloggad" }
                    p { a href="/" { "Fortsätt" } }
                }
            }
        }
    }
}

/// The page of a failed sign-in: what to do, and the pending sign-in's cookie removed.
fn failed() -> Response {
    let body = bare_page(
        "Inloggningen misslyckades",
        html! {
            h1 { "Inloggningen misslyckades" }
            p.refusal role="alert" {
                "Inloggningen kunde inte slutföras. Det kan bero på att den tog för lång tid, att den redan har använts eller att den avbröts. Försök logga in igen; om det upprepas, kontakta supporten."
            }
            p { a href="/logga-in" { "Logga in igen" } }
        },
    );
    let mut response = (StatusCode::BAD_REQUEST, body).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, removal_cookie(LOGIN_COOKIE));
    response
}

/// The console's HTTP client towards the provider (discovery, keys, token endpoint).
#[derive(Clone)]
pub struct ProviderHttp {
    client: reqwest::Client,
}

/// Why a request to the provider failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderHttpError {
    #[error("the request could not be built: {0}")]
    Build(String),
    #[error("{0}")]
    Request(#[from] reqwest::Error),
    #[error("the provider answered more than {MAX_PROVIDER_ANSWER_BYTES} bytes")]
    TooLarge,
}

impl ProviderHttp {
    /// rustls on ring with the web's roots and `extra_ca_pem`; no redirects; bounded time.
    pub fn new(extra_ca_pem: Option<&str>) -> anyhow::Result<ProviderHttp> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(pem) = extra_ca_pem {
            let certificates = tryggdel_tls::parse_certificates(pem, "OpenID Connect CA")
                .context("the OpenID Connect provider's CA")?;
            for certificate in certificates {
                roots
                    .add(certificate)
                    .context("the OpenID Connect provider's CA")?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions for the OpenID Connect provider")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(PROVIDER_TIMEOUT)
            .build()
            .context("the HTTP client for the OpenID Connect provider")?;
        Ok(ProviderHttp { client })
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, ProviderHttpError> {
        let request = reqwest::Request::try_from(request)
            .map_err(|error| ProviderHttpError::Build(error.to_string()))?;
        let mut response = self.client.execute(request).await?;
        if response
            .content_length()
            .is_some_and(|length| length > MAX_PROVIDER_ANSWER_BYTES as u64)
        {
            return Err(ProviderHttpError::TooLarge);
        }
        let mut answer = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_PROVIDER_ANSWER_BYTES {
                return Err(ProviderHttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        answer
            .body(body)
            .map_err(|error| ProviderHttpError::Build(error.to_string()))
    }
}

impl<'c> AsyncHttpClient<'c> for ProviderHttp {
    type Error = ProviderHttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<HttpResponse, ProviderHttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn login() -> PendingLogin {
        let (_, verifier) = PkceCodeChallenge::new_random_sha256();
        PendingLogin {
            verifier,
            state: CsrfToken::new_random(),
            nonce: Nonce::new_random(),
            started: Instant::now(),
        }
    }

    #[test]
    fn a_pending_sign_in_is_taken_once() {
        let pending = PendingLogins::new(PENDING_LIFETIME);
        let id = pending.insert(login()).unwrap();
        assert!(pending.take("another id").is_none());
        assert!(pending.take(&id).is_some());
        assert!(pending.take(&id).is_none(), "a second take finds nothing");
        assert_eq!(pending.len(), 0);
    }

    #[test]
    fn an_expired_pending_sign_in_is_refused_and_swept() {
        let pending = PendingLogins::new(Duration::from_millis(1));
        let id = pending.insert(login()).unwrap();
        let other = pending.insert(login()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(pending.take(&id).is_none());
        assert_eq!(pending.len(), 1);
        pending.sweep();
        assert_eq!(pending.len(), 0);
        assert!(pending.take(&other).is_none());
    }

    #[test]
    fn pending_sign_ins_are_bounded() {
        let pending = PendingLogins::new(PENDING_LIFETIME);
        for _ in 0..MAX_PENDING {
            pending.insert(login()).unwrap();
        }
        assert!(pending.insert(login()).is_none());
    }

    #[test]
    fn the_login_cookie_is_host_only_http_only_secure_and_lax() {
        let cookie = login_cookie("abc");
        let cookie = cookie.to_str().unwrap();
        assert!(cookie.starts_with("__Host-tryggdel-login=abc;"), "{cookie}");
        for attribute in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Max-Age=600",
        ] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        assert!(!cookie.contains("Domain"));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn issuers_are_https_or_loopback_http() {
        for issuer in [
            "https://idp.example.se",
            "https://idp.example.se/realms/tryggdel",
            "http://127.0.0.1:8080",
            "http://localhost:9000/oidc",
            "http://[::1]:4000",
        ] {
            assert!(checked_issuer(issuer).is_ok(), "{issuer}");
        }
        for issuer in [
            "http://idp.example.se",
            "http://10.0.0.1",
            "https://user:secret@idp.example.se",
            "https://idp.example.se/?a=b",
            "ftp://idp.example.se",
            "idp.example.se",
        ] {
            assert!(checked_issuer(issuer).is_err(), "{issuer}");
        }
    }

    #[test]
    fn the_payload_of_a_token_is_read_after_verification() {
        let token = format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"sub":"u1","exp":42}"#)
        );
        let claims = payload(&token).unwrap();
        assert_eq!(claims["sub"], "u1");
        assert_eq!(claims["exp"], 42);
        assert!(payload("not a token").is_none());
    }

    #[test]
    fn the_client_secret_is_not_in_debug_output() {
        let settings = OidcSettings {
            issuer: "https://idp.example.se".into(),
            client_id: "tryggdel-console".into(),
            client_secret: Some("very-secret-value".into()),
            scopes: vec!["openid".into()],
            extra_ca_pem: None,
            token: TokenToForward::AccessToken,
            verifier: TokenSettings {
                issuer: "https://idp.example.se".into(),
                audience: "tryggdel".into(),
                keys: tryggdel_service_kit::KeySource::JwksFile("/jwks.json".into()),
                claims: tryggdel_auth::ClaimNames::default(),
                leeway_seconds: 30,
                min_refresh_interval: Duration::from_secs(60),
            },
        };
        let debug = format!("{settings:?}");
        assert!(!debug.contains("very-secret-value"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn provider_values_are_shortened_for_the_log() {
        assert_eq!(short("access_denied"), "access_denied");
        assert_eq!(short("a\nb c"), "abc");
        assert_eq!(short(&"x".repeat(100)).len(), 64);
    }
}
