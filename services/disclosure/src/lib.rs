//! The disclosure service: caseworkers draft disclosures to the police and capture their legal
//! basis; decision makers with the delegation approve or reject them (never the drafter).
//!
//! Invariants:
//! - Every RPC is authenticated twice: a client certificate from the deployment's CA (TLS 1.3,
//!   enforced by the listener) and a verified JWT whose organisation matches the certificate.
//! - Authorisation is deny by default; a caller who may not see a disclosure is told it does
//!   not exist.
//! - Lifecycle transitions come only from `tryggdel_domain::transition`; this crate persists
//!   their results under optimistic versions, each with one outbox event in the same
//!   transaction.
//! - Personal data is sealed at rest; protected details are masked unless revealed to the
//!   drafter or a decision maker of the case, and every reveal is recorded first.
#![forbid(unsafe_code)]

pub mod content;
pub mod error;
pub mod service;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tryggdel_auth::{TokenVerifier, VerifierConfig};
use tryggdel_domain::LegalRegistry;
use tryggdel_proto::disclosure::v1::disclosure_service_server::DisclosureServiceServer;
use tryggdel_storage::{Database, FieldCipher, FieldKey};

pub use tryggdel_domain::{DEVELOPMENT_DIRECTORY, Directory};
pub use service::DisclosureApi;
pub use store::{DisclosureStore, MIGRATIONS};

/// The largest request the service decodes.
const MAX_MESSAGE_BYTES: usize = 512 * 1024;

/// PEM material for the service's TLS listener.
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

/// Everything the service needs, already loaded (files are read by the binary).
#[derive(Debug)]
pub struct Settings {
    pub database_url: String,
    pub tls: ServerTls,
    pub token: VerifierConfig,
    pub field_key: FieldKey,
    pub registry: Arc<LegalRegistry>,
    pub directory: Arc<Directory>,
}

/// Connects the database (running migrations) and builds the handlers.
pub async fn build(settings: &Settings) -> anyhow::Result<DisclosureApi> {
    let database = Database::connect(&settings.database_url, "disclosure", &MIGRATIONS)
        .await
        .context("disclosure database")?;
    let verifier = TokenVerifier::new(settings.token.clone()).context("token verifier")?;
    Ok(DisclosureApi::new(
        DisclosureStore::new(database),
        settings.registry.clone(),
        settings.directory.clone(),
        Arc::new(verifier),
        FieldCipher::new(&settings.field_key),
    ))
}

/// Serves the API, gRPC health and reflection on `listener` over mTLS until `shutdown`.
pub async fn serve(
    api: DisclosureApi,
    tls: &ServerTls,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tryggdel_tls::install_crypto_provider();
    let tls_config =
        tryggdel_tls::server_config(&tls.cert_chain_pem, &tls.key_pem, &tls.client_ca_pem)
            .context("server tls configuration")?;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<DisclosureServiceServer<DisclosureApi>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tryggdel_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("reflection service")?;
    let disclosure = DisclosureServiceServer::new(api).max_decoding_message_size(MAX_MESSAGE_BYTES);
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(disclosure)
        .serve_with_incoming_shutdown(tryggdel_tls::tls_incoming(listener, tls_config), shutdown)
        .await
        .context("disclosure server")
}

/// A service started in the background (tests and the all-in-one binary).
pub struct RunningService {
    pub local_addr: SocketAddr,
    pub api: DisclosureApi,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningService {
    /// Stops accepting, lets in-flight calls finish, and waits for the server to end.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.task.await.context("disclosure server task")??;
        self.api.store().database().close().await;
        Ok(())
    }
}

/// Builds and starts the service on `address` (port 0 for any free port).
pub async fn spawn(settings: &Settings, address: SocketAddr) -> anyhow::Result<RunningService> {
    let api = build(settings).await?;
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}"))?;
    let local_addr = listener.local_addr().context("listener address")?;
    let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
    let tls = settings.tls.clone();
    let served = api.clone();
    let task = tokio::spawn(async move {
        serve(served, &tls, listener, async {
            let _ = signal.await;
        })
        .await
    });
    tracing::info!(%local_addr, "disclosure service listening");
    Ok(RunningService {
        local_addr,
        api,
        shutdown: Some(shutdown),
        task,
    })
}

/// Loads the field-encryption key from its base64 text.
pub fn field_key(text: &str) -> anyhow::Result<FieldKey> {
    FieldKey::from_base64(text).context("field encryption key")
}
