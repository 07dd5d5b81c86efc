//! tryggdel-console: the web console. A backend-for-frontend that renders Swedish HTML on the
//! server (maud), enhances it with htmx served from here, and calls the three services over
//! mTLS with its own service certificate, forwarding the signed-in user's token.
//!
//! # Invariants
//!
//! - The browser holds one opaque, HttpOnly, `__Host-` session cookie and nothing else: no
//!   token, certificate or key ever reaches it, and no personal data is ever put in a URL.
//! - Every decision about who may do what is the services'. The console only chooses what to
//!   show; a refusal from a service is shown as a Swedish sentence that says what to do.
//! - Every state-changing request carries the session's CSRF token and a same-origin `Origin`;
//!   every response carries the security headers of [`security`] and `Cache-Control: no-store`
//!   (apart from the version-pinned assets).
//! - Everything a user typed is rendered as text (maud escapes every interpolation).
//! - Development sign-in exists only in development mode; production signs in with OpenID
//!   Connect (authorization code, PKCE, state, nonce).

#![forbid(unsafe_code)]

mod assets;
mod backend;
mod form;
mod pages;
mod refusal;
mod security;
mod session;
pub mod sign_in;
mod words;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::{get, post};
use tryggdel_domain::{Directory, LegalRegistry};
use tryggdel_service_kit::ServiceEndpoint;

pub use session::SessionSettings;
pub use sign_in::{DevelopmentUser, SignInSettings, development_users};

use crate::backend::Backend;
use crate::security::SignInLimiter;
use crate::session::SessionStore;

/// The gRPC service name under which the console reports health over HTTP (`/health`).
pub const SERVICE_NAME: &str = "console";

/// Everything the console needs to run.
pub struct Settings {
    /// The origin users open, e.g. `https://127.0.0.1:8443`: the Origin every form post must
    /// carry and the base of the OpenID Connect redirect URI.
    pub public_origin: String,
    /// The browser-facing certificate chain and key (PEM).
    pub cert_chain_pem: String,
    pub key_pem: String,
    /// How the console reaches each service (with the console's service certificate).
    pub disclosure: ServiceEndpoint,
    pub audit: ServiceEndpoint,
    pub notification: ServiceEndpoint,
    pub sign_in: SignInSettings,
    pub sessions: SessionSettings,
    pub registry: Arc<LegalRegistry>,
    pub directory: Arc<Directory>,
    /// The audit log's verifier key (a note verifier key line), to check inclusion proofs
    /// against signed checkpoints.
    pub audit_log_vkey: String,
    /// Development mode: marks every page and allows development sign-in.
    pub development: bool,
    /// Proxies in front of the console (the ingress) whose `X-Forwarded-For` names the client,
    /// for the sign-in rate limit; empty: the TCP peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// What every handler shares.
pub(crate) struct Console {
    pub(crate) public_origin: String,
    pub(crate) backend: Backend,
    pub(crate) sessions: SessionStore,
    pub(crate) sign_in: sign_in::SignIn,
    pub(crate) limiter: SignInLimiter,
    pub(crate) registry: Arc<LegalRegistry>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) checkpoint_verifier: tryggdel_merkle::checkpoint::CheckpointVerifier,
    pub(crate) development: bool,
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
}

pub(crate) type Shared = Arc<Console>;

/// The running console.
pub struct RunningConsole {
    pub local_addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    sweeper: tokio::task::JoinHandle<()>,
}

impl RunningConsole {
    /// Stops accepting connections, lets open requests finish (live streams are cut after a
    /// grace period) and waits for the server to end.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.handle.graceful_shutdown(Some(Duration::from_secs(2)));
        self.sweeper.abort();
        self.task
            .await
            .context("the console task panicked")?
            .context("the console server failed")
    }

    /// Waits until the server ends by itself (it does not, unless it fails).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task
            .await
            .context("the console task panicked")?
            .context("the console server failed")
    }
}

/// Starts the console on `listener` (HTTPS, TLS 1.3 and 1.2 for browsers).
pub async fn start(
    settings: Settings,
    listener: std::net::TcpListener,
) -> anyhow::Result<RunningConsole> {
    tryggdel_tls::install_crypto_provider();
    let local_addr = listener.local_addr().context("the console's address")?;
    let tls = security::server_tls(&settings.cert_chain_pem, &settings.key_pem)?;
    let console = Arc::new(build(settings).await?);
    let app = router(console.clone());
    let handle = axum_server::Handle::new();
    listener
        .set_nonblocking(true)
        .context("making the console's listener non-blocking")?;
    let server = axum_server::from_tcp_rustls(listener, tls)
        .context("the console's listener")?
        .handle(handle.clone());
    let task = tokio::spawn(async move {
        server
            .serve(app.into_make_service_with_connect_info::<SocketAddr>())
            .await
    });
    let sweeper = {
        let console = console.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(30));
            loop {
                every.tick().await;
                console.sessions.sweep();
                console.sign_in.sweep();
                console.limiter.sweep();
            }
        })
    };
    tracing::info!(address = %local_addr, origin = %console.public_origin, "console listening");
    Ok(RunningConsole {
        local_addr,
        handle,
        task,
        sweeper,
    })
}

async fn build(settings: Settings) -> anyhow::Result<Console> {
    let public_origin = settings.public_origin.trim_end_matches('/').to_owned();
    let parsed: http::Uri = public_origin
        .parse()
        .with_context(|| format!("public origin {public_origin:?} is not a URL"))?;
    if parsed.scheme_str() != Some("https") || parsed.host().is_none() {
        anyhow::bail!("public origin {public_origin:?} must be an https:// origin");
    }
    if settings.sign_in.is_development() && !settings.development {
        anyhow::bail!("development sign-in is refused outside development mode");
    }
    let checkpoint_verifier =
        tryggdel_merkle::checkpoint::CheckpointVerifier::parse_vkey(settings.audit_log_vkey.trim())
            .context("the audit log's verifier key")?;
    let sign_in = sign_in::SignIn::new(settings.sign_in, &public_origin).await?;
    Ok(Console {
        backend: Backend::new(
            &settings.disclosure,
            &settings.audit,
            &settings.notification,
        )?,
        sessions: SessionStore::new(settings.sessions),
        sign_in,
        limiter: SignInLimiter::new(),
        registry: settings.registry,
        directory: settings.directory,
        checkpoint_verifier,
        development: settings.development,
        trusted_proxies: settings.trusted_proxies,
        public_origin,
    })
}

fn router(console: Shared) -> Router {
    use pages::{cases, compliance, decide, police, requests, timeline};
    let pages = Router::new()
        .route("/", get(pages::home))
        .route("/utkast", get(cases::list))
        .route("/utkast/ny", get(cases::new_form).post(cases::create))
        .route("/utkast/bedom", post(cases::assess_partial))
        .route("/utkast/checklista", post(cases::checklist_partial))
        .route("/arenden/{id}", get(cases::show))
        .route(
            "/arenden/{id}/redigera",
            get(cases::edit_form).post(cases::save),
        )
        .route("/arenden/{id}/skicka", post(cases::submit))
        .route("/arenden/{id}/aterkalla", post(cases::withdraw))
        .route("/arenden/{id}/visa-skyddat", post(cases::reveal))
        .route("/arenden/{id}/tidslinje", get(timeline::show))
        .route("/arenden/{id}/utskrift", get(timeline::print))
        .route(
            "/arenden/{id}/svara/{follow_up}",
            get(cases::answer_follow_up),
        )
        .route("/att-besluta", get(decide::queue))
        .route("/att-besluta/{id}", get(decide::show))
        .route("/att-besluta/{id}/godkann", post(decide::approve))
        .route("/att-besluta/{id}/avsla", post(decide::reject))
        .route("/eskaleringar", get(decide::escalations))
        .route("/begaranden", get(requests::list))
        .route(
            "/begaranden/ny",
            get(requests::new_form).post(requests::create),
        )
        .route("/begaranden/{id}", get(requests::show))
        .route("/begaranden/{id}/besvara", get(requests::answer))
        .route("/begaranden/{id}/avsla", post(requests::refuse))
        .route("/inkommande", get(police::inbox))
        .route("/inkommande/strom", get(police::events))
        .route("/inkommande/{id}", get(police::show))
        .route("/inkommande/{id}/kvittera", post(police::acknowledge))
        .route(
            "/inkommande/{id}/kvittera-aterkallelse",
            post(police::acknowledge_recall),
        )
        .route("/inkommande/{id}/fraga", post(police::ask))
        .route(
            "/granskning",
            get(compliance::search_form).post(compliance::search),
        )
        .route("/granskning/post/{index}", get(compliance::entry))
        .route(
            pages::review::PATH,
            get(pages::review::start).post(pages::review::start_run),
        )
        .route(
            "/granskning/logggranskning/kriterier",
            post(pages::review::set_criteria),
        )
        .route("/granskning/logggranskning/{run}", get(pages::review::show))
        .route(
            "/granskning/logggranskning/{run}/fynd/{number}",
            post(pages::review::record_outcome),
        )
        .route(
            pages::report::REPORT_PATH,
            get(pages::report::report_form).post(pages::report::report),
        )
        .route(
            "/granskning/registerutdrag/pdf",
            post(pages::report::report_pdf),
        )
        .route(
            "/granskning/registerutdrag/json",
            post(pages::report::report_json),
        )
        .route(pages::report::HOLDS_PATH, get(pages::report::holds))
        .route("/sparrar/placera", post(pages::report::place))
        .route("/sparrar/forlang", post(pages::report::extend))
        .route("/sparrar/avsluta", post(pages::report::end))
        .route("/granskning/kontrollpunkter", get(compliance::checkpoints))
        .route("/granskning/export", get(compliance::export))
        .route(
            "/granskning/verifiera",
            get(compliance::verify_form).post(compliance::verify_upload),
        )
        .route("/statistik", get(pages::statistics::show))
        .route("/statistik/export.csv", get(pages::statistics::export_csv))
        .route(
            "/statistik/export.json",
            get(pages::statistics::export_json),
        )
        .merge(sign_in::routes())
        .route("/health", get(pages::health))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            security::same_origin_writes,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024));
    Router::new()
        .merge(pages)
        .merge(assets::routes())
        .layer(axum::middleware::from_fn(security::headers))
        .layer(axum::middleware::from_fn(server_timing))
        .with_state(console)
}

/// `Server-Timing: app;dur=<ms>`: the time the console spent on a response until its head
/// (for a page, the whole render including the calls to the services). Browsers show it in
/// their developer tools; the console benchmark reads it.
async fn server_timing(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = http::HeaderValue::from_str(&format!("app;dur={millis:.3}")) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}
