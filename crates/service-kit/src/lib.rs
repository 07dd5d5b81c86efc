//! What every Tryggdel gRPC service shares: the mTLS listener with gRPC health and reflection,
//! authentication of callers (users and services), and the one mapping from errors to statuses.
//!
//! Invariants:
//! - Every listener is TLS 1.3 with a client certificate from the deployment's CA; plaintext
//!   and anonymous clients never reach a handler.
//! - A user is authenticated twice: a verified JWT (keys from the identity provider's key set,
//!   chosen by `kid`), and a client certificate of the token's organisation, which must be
//!   registered in the directory. The one exception is the console's service certificate
//!   ([`CONSOLE_SERVICE_NAME`]), which forwards its signed-in user's token: the token is still
//!   verified in full and its organisation must be registered, but it may be any
//!   organisation's. No other service certificate makes user calls.
//! - An unknown `kid` reads the key source again at most once per interval, one read for all
//!   callers waiting ([`TokenKeys`]); a read that fails keeps the keys in use.
//! - A service is recognised by its certificate alone (organisation
//!   [`tryggdel_tls::SERVICE_ORGANISATION`]); it is never mistaken for a user.
//! - Internal errors are logged with their cause and reach the caller as `internal error`.
//! - Every refused TLS handshake and every refused user is logged at WARN with its reason and
//!   the peer's address (never a token), at most once per peer and reason every ten seconds,
//!   and counted (`tryggdel.tls.handshake_failures`, `tryggdel.auth.refusals`).
//! - A database outage is UNAVAILABLE with what the caller may do, never INTERNAL; while a
//!   service's database is down its gRPC health is NOT_SERVING (the server as a whole stays
//!   SERVING), and each change of that state is one log line and one count
//!   (`tryggdel.database.transitions`), never one per failed call. Relays stand aside while
//!   their database is down and go again as soon as it answers.
//! - A request over a service's message size limit is refused RESOURCE_EXHAUSTED before any
//!   handler sees it.
//! - Every call is traced (a server span continuing the caller's `traceparent`) and counted
//!   and timed per method; every outgoing call carries the current trace context. Neither
//!   records metadata (the bearer token) or messages.
#![forbid(unsafe_code)]

pub mod audit_event;
mod audit_link;
mod caller;
mod edge;
mod error;
mod host;
mod link;
mod message_size;
pub mod metrics;
mod observe;
pub mod readiness;
mod refusals;
mod relay;
mod token_keys;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tryggdel_storage::DatabaseHealth;

pub use audit_link::{
    AuditLink, AuditLinkError, ClientTls, MAX_CALLS_PER_BATCH, ServiceEndpoint, TracedEvent,
};
pub use caller::{Authenticator, CONSOLE_SERVICE_NAME, Caller, ServicePeer, trace_id};
pub use edge::{
    ServiceOnly, bounded_text, decode_page_token, encode_page_token, invalid_page_token, millis,
    no_control_characters, now_unix_ms, page_size, respond, rfc3339, today_in_sweden, unix_ms,
};
pub use error::ServiceError;
pub use host::{Background, Periodic, ServiceHost, bind};
pub use link::{Retry, ServiceLink};
pub use observe::{
    PropagateTrace, RpcLayer, RpcService, TracedChannel, call_in_span, client_span,
    record_client_outcome, traced,
};
pub use relay::{
    AuditDestination, Destination, Relay, RelayConfig, Sent, fill_in_audit_events, relay_step,
    start_relay,
};
pub use token_keys::{
    DEFAULT_MIN_REFRESH_INTERVAL, JWKS_FETCH_TIMEOUT, KeySource, MAX_JWKS_BYTES, TokenKeys,
    TokenSettings, Url,
};
pub use tryggdel_telemetry::{
    context_from_traceparent, current_trace_id, current_traceparent, link_to, set_parent,
};

/// PEM material for a service's TLS listener.
#[derive(Clone)]
pub struct ServerTls {
    pub cert_chain_pem: String,
    pub key_pem: String,
    pub client_ca_pem: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ServerTls { .. }")
    }
}

/// Serves `routes` plus gRPC health (reporting `service_name` as serving) and reflection on
/// `listener` over mTLS until `shutdown` resolves; in-flight calls finish first.
pub async fn serve(
    service_name: &str,
    routes: Routes,
    tls: &ServerTls,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_following(
        service_name,
        routes,
        tls,
        listener,
        shutdown,
        DatabaseHealth::up(),
    )
    .await
}

/// [`serve`], with `service_name`'s gRPC health following `database`: NOT_SERVING while it is
/// down, SERVING while it answers (see [`readiness`]). The server as a whole (the empty
/// service name, what liveness asks) stays SERVING: an outage is not a reason to restart.
pub async fn serve_following(
    service_name: &str,
    routes: Routes,
    tls: &ServerTls,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    database: DatabaseHealth,
) -> anyhow::Result<()> {
    tryggdel_tls::install_crypto_provider();
    let tls_config =
        tryggdel_tls::server_config(&tls.cert_chain_pem, &tls.key_pem, &tls.client_ca_pem)
            .context("server tls configuration")?;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let follower = readiness::follow(service_name.to_owned(), database, health_reporter).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tryggdel_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("reflection service")?;
    let routes = routes.add_service(health_service).add_service(reflection);
    let refusals = Arc::new(refusals::Refusals::new(&metrics::meter()));
    let incoming = tryggdel_tls::tls_incoming_reporting(
        listener,
        tls_config,
        tryggdel_tls::server::HANDSHAKE_TIMEOUT,
        Arc::new(move |failure: &tryggdel_tls::HandshakeFailure| {
            refusals.handshake_failed(failure);
        }),
    );
    let served = tonic::transport::Server::builder()
        // Outermost: every call traced and counted, with the status the caller gets.
        .layer(RpcLayer::new())
        // A request over the service's size limit: RESOURCE_EXHAUSTED, not tonic's OUT_OF_RANGE.
        .layer(message_size::MessageSizeLayer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .with_context(|| format!("{service_name} server"));
    follower.abort();
    served
}

/// A server started in the background (tests and the all-in-one binary).
pub struct RunningServer {
    pub local_addr: std::net::SocketAddr,
    service_name: &'static str,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Binds `address` (port 0 for any free port) and serves `routes` there until stopped.
    pub async fn start(
        service_name: &'static str,
        routes: Routes,
        tls: &ServerTls,
        address: std::net::SocketAddr,
    ) -> anyhow::Result<RunningServer> {
        RunningServer::start_on(
            service_name,
            routes,
            tls,
            bind(address, service_name).await?,
        )
    }

    /// Serves `routes` on an already bound `listener` until stopped.
    pub fn start_on(
        service_name: &'static str,
        routes: Routes,
        tls: &ServerTls,
        listener: TcpListener,
    ) -> anyhow::Result<RunningServer> {
        RunningServer::start_following(service_name, routes, tls, listener, DatabaseHealth::up())
    }

    /// [`RunningServer::start_on`], its health following `database` (see [`serve_following`]).
    pub fn start_following(
        service_name: &'static str,
        routes: Routes,
        tls: &ServerTls,
        listener: TcpListener,
        database: DatabaseHealth,
    ) -> anyhow::Result<RunningServer> {
        let local_addr = listener.local_addr().context("listener address")?;
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        let tls = tls.clone();
        let task = tokio::spawn(async move {
            serve_following(
                service_name,
                routes,
                &tls,
                listener,
                async {
                    let _ = signal.await;
                },
                database,
            )
            .await
        });
        tracing::info!(%local_addr, service = service_name, "listening");
        Ok(RunningServer {
            local_addr,
            service_name,
            shutdown: Some(shutdown),
            task,
        })
    }

    /// Stops accepting, lets in-flight calls finish, and waits for the server to end.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.task
            .await
            .with_context(|| format!("{} server task", self.service_name))?
    }
}
