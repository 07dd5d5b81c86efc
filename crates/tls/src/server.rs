//! Server side: a TLS 1.3 configuration that requires client certificates, and a stream of
//! handshaken connections for `tonic::transport::Server::serve_with_incoming`.
//!
//! ```text
//! let config = tryggdel_tls::server_config(&cert_pem, &key_pem, &client_ca_pem)?;
//! let listener = tokio::net::TcpListener::bind(addr).await?;
//! tonic::transport::Server::builder()
//!     .add_service(service)
//!     .serve_with_incoming_shutdown(tryggdel_tls::tls_incoming(listener, config), shutdown)
//!     .await?;
//! // in a handler:
//! let caller = tryggdel_tls::peer_identity(&request);
//! ```

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, warn};
use x509_parser::extensions::GeneralName;

use crate::error::{Result, TlsError};
use crate::pem::{parse_certificates, parse_private_key, parse_root_store};

/// How long a client may take to complete the TLS handshake before it is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many handshakes run at once; beyond it, accepting waits (back-pressure).
const MAX_CONCURRENT_HANDSHAKES: usize = 1024;
/// Handshaken connections waiting for tonic to pick them up.
const READY_QUEUE: usize = 128;
/// Longest pause after an accept error caused by resource exhaustion.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// A server-side TLS connection that completed the handshake with a verified client
/// certificate. Implements tokio's I/O traits and tonic's [`Connected`], whose
/// [`PeerInfo`] tonic places in every request's extensions.
///
/// [`Connected`]: tonic::transport::server::Connected
#[derive(Debug)]
pub struct TlsConnection {
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    peer: PeerInfo,
}

/// What the server knows about the other end of a connection.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The client's address, if the socket could tell.
    pub remote_addr: Option<SocketAddr>,
    /// The identity in the client's verified certificate; `None` only if the certificate has
    /// no (or no unambiguous) common name, which the handler should treat as unauthenticated.
    pub identity: Option<PeerIdentity>,
}

/// A TLS handshake the server refused: the client's address and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeFailure {
    /// The client's address.
    pub peer: SocketAddr,
    /// Why the handshake did not complete.
    pub reason: HandshakeFailureReason,
}

/// Why a handshake did not complete, in a few kinds (bounded, for metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandshakeFailureReason {
    /// The client presented no certificate.
    NoClientCertificate,
    /// The client's certificate is not one of the configured CA's, or not valid now.
    InvalidClientCertificate,
    /// The client cannot speak what the server requires: TLS 1.3, its cipher suites, ALPN `h2`.
    IncompatibleClient,
    /// Not TLS (e.g. plaintext HTTP/2), or malformed TLS.
    NotTls,
    /// The client ended the handshake with an alert (e.g. it does not trust the server).
    AlertFromClient,
    /// The client did not complete the handshake within the timeout.
    Timeout,
    /// The connection closed or broke before the handshake completed.
    ConnectionClosed,
    /// Any other protocol error.
    Other,
}

/// Called with every handshake the server refused, on the handshake's task: must not block.
pub type ReportHandshakeFailure = Arc<dyn Fn(&HandshakeFailure) + Send + Sync>;

/// The identity asserted by a verified client certificate (its end-entity certificate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Subject common name (CN).
    pub common_name: String,
    /// Subject organisation (O), if present.
    pub organisation: Option<String>,
    /// DNS names in the subject alternative name extension, in certificate order.
    pub dns_names: Vec<String>,
}

/// Builds the server configuration: TLS 1.3 only, ring provider, ALPN `h2`, and a client
/// certificate REQUIRED and verified against the CA certificate(s) in `client_ca_pem`.
///
/// `cert_chain_pem` is the server certificate followed by any intermediates; `key_pem` its
/// private key.
pub fn server_config(
    cert_chain_pem: &str,
    key_pem: &str,
    client_ca_pem: &str,
) -> Result<Arc<ServerConfig>> {
    let chain = parse_certificates(cert_chain_pem, "server certificate chain")?;
    let key = parse_private_key(key_pem, "server private key")?;
    let client_roots = parse_root_store(client_ca_pem, "client ca certificate")?;

    let provider = crate::ring_provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider.clone())
            .build()
            .map_err(|source| TlsError::ClientVerifier { source })?;
    let builder = ServerConfig::builder_with_provider(provider);
    let mut config = crate::tls13_only(builder, "server tls configuration")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(TlsError::rustls("server certificate and key"))?;
    config.alpn_protocols = vec![crate::ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TCP connections from `listener`, performs the TLS handshake with `config` and yields
/// the connections that completed it; to be given to
/// `tonic::transport::Server::serve_with_incoming(_shutdown)`.
///
/// Handshakes run concurrently in spawned tasks with a [`HANDSHAKE_TIMEOUT`], so a slow or
/// plaintext client never holds up the others. A failed handshake is logged at debug with the
/// peer address and dropped; it is not yielded, because an `Err` item stops tonic's server.
/// [`tls_incoming_reporting`] also reports each one, with its reason.
/// Transient accept errors are skipped (resource exhaustion with a short back-off); the stream
/// yields an `Err` and ends only when the listener fails otherwise. Dropping the stream stops
/// accepting and closes the listener.
///
/// Must be called within a Tokio runtime.
pub fn tls_incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
) -> impl Stream<Item = std::result::Result<TlsConnection, io::Error>> + Send + 'static {
    tls_incoming_with_timeout(listener, config, HANDSHAKE_TIMEOUT)
}

/// [`tls_incoming`] with a chosen handshake timeout (tests, or unusually slow networks).
pub fn tls_incoming_with_timeout(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
) -> impl Stream<Item = std::result::Result<TlsConnection, io::Error>> + Send + 'static {
    tls_incoming_reporting(listener, config, handshake_timeout, Arc::new(|_| {}))
}

/// [`tls_incoming_with_timeout`] that also calls `report` with every refused handshake (the
/// peer and the reason), so that the caller can log and count refusals.
pub fn tls_incoming_reporting(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
    report: ReportHandshakeFailure,
) -> impl Stream<Item = std::result::Result<TlsConnection, io::Error>> + Send + 'static {
    let (ready_tx, ready_rx) = mpsc::channel(READY_QUEUE);
    tokio::spawn(accept_loop(
        listener,
        TlsAcceptor::from(config),
        handshake_timeout,
        ready_tx,
        report,
    ));
    ReceiverStream::new(ready_rx)
}

/// The identity of the caller of `request`, if it came over a [`TlsConnection`].
pub fn peer_identity<T>(request: &tonic::Request<T>) -> Option<&PeerIdentity> {
    peer_info(request).and_then(|info| info.identity.as_ref())
}

/// The [`PeerInfo`] of the connection `request` came over, if it was a [`TlsConnection`].
pub fn peer_info<T>(request: &tonic::Request<T>) -> Option<&PeerInfo> {
    request.extensions().get::<PeerInfo>()
}

impl TlsConnection {
    /// What is known about the client.
    pub fn peer_info(&self) -> &PeerInfo {
        &self.peer
    }

    /// The negotiated TLS version (always TLS 1.3 with [`server_config`]).
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.stream.get_ref().1.protocol_version()
    }

    /// The negotiated ALPN protocol.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.stream.get_ref().1.alpn_protocol()
    }

    /// The client's certificate chain as presented (end-entity first), already verified.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.stream.get_ref().1.peer_certificates()
    }

    /// The underlying TLS stream.
    pub fn get_ref(&self) -> &tokio_rustls::server::TlsStream<TcpStream> {
        &self.stream
    }

    fn new(stream: tokio_rustls::server::TlsStream<TcpStream>, remote_addr: SocketAddr) -> Self {
        let identity = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|end_entity| match PeerIdentity::from_der(end_entity.as_ref()) {
                Ok(identity) => Some(identity),
                Err(error) => {
                    debug!(peer = %remote_addr, %error, "client certificate has no usable identity");
                    None
                }
            });
        Self {
            stream,
            peer: PeerInfo {
                remote_addr: Some(remote_addr),
                identity,
            },
        }
    }
}

impl HandshakeFailureReason {
    /// The reason's name, e.g. `no_client_certificate`.
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeFailureReason::NoClientCertificate => "no_client_certificate",
            HandshakeFailureReason::InvalidClientCertificate => "invalid_client_certificate",
            HandshakeFailureReason::IncompatibleClient => "incompatible_client",
            HandshakeFailureReason::NotTls => "not_tls",
            HandshakeFailureReason::AlertFromClient => "alert_from_client",
            HandshakeFailureReason::Timeout => "timeout",
            HandshakeFailureReason::ConnectionClosed => "connection_closed",
            HandshakeFailureReason::Other => "other",
        }
    }

    /// The reason of a failed `accept` (tokio-rustls carries rustls' error inside the
    /// `io::Error`).
    fn of(error: &io::Error) -> HandshakeFailureReason {
        let Some(tls_error) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        else {
            return HandshakeFailureReason::ConnectionClosed;
        };
        match tls_error {
            rustls::Error::NoCertificatesPresented => HandshakeFailureReason::NoClientCertificate,
            rustls::Error::InvalidCertificate(_) | rustls::Error::InvalidCertRevocationList(_) => {
                HandshakeFailureReason::InvalidClientCertificate
            }
            rustls::Error::PeerIncompatible(_) | rustls::Error::NoApplicationProtocol => {
                HandshakeFailureReason::IncompatibleClient
            }
            rustls::Error::InvalidMessage(_) | rustls::Error::PeerSentOversizedRecord => {
                HandshakeFailureReason::NotTls
            }
            rustls::Error::AlertReceived(_) => HandshakeFailureReason::AlertFromClient,
            _ => HandshakeFailureReason::Other,
        }
    }
}

impl std::fmt::Display for HandshakeFailureReason {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl PeerIdentity {
    /// Reads the identity from a DER certificate with an X.509 parser.
    ///
    /// Refuses a certificate without a common name, and one with more than one common name or
    /// organisation (an ambiguous identity). Does NOT verify the certificate: use it on
    /// certificates rustls has verified.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let invalid = |reason: String| TlsError::InvalidCertificate {
            what: "peer",
            reason,
        };
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|error| invalid(format!("not x.509: {error}")))?;
        let subject = cert.subject();

        let common_names = subject
            .iter_common_name()
            .map(|attribute| attribute.as_str().map(str::to_owned))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|error| invalid(format!("common name is not a string: {error}")))?;
        let common_name = match common_names.as_slice() {
            [single] if !single.is_empty() => single.clone(),
            [] | [_] => return Err(invalid("no common name".to_owned())),
            _ => return Err(invalid("more than one common name".to_owned())),
        };

        let organisations = subject
            .iter_organization()
            .map(|attribute| attribute.as_str().map(str::to_owned))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|error| invalid(format!("organisation is not a string: {error}")))?;
        if organisations.len() > 1 {
            return Err(invalid("more than one organisation".to_owned()));
        }
        let organisation = organisations.into_iter().next();

        let dns_names = cert
            .subject_alternative_name()
            .map_err(|error| invalid(format!("bad subject alternative name: {error}")))?
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();

        Ok(Self {
            common_name,
            organisation,
            dns_names,
        })
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.peer.clone()
    }
}

/// Accepts until the listener fails fatally or the receiving stream is dropped.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    ready_tx: mpsc::Sender<io::Result<TlsConnection>>,
    report: ReportHandshakeFailure,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            () = ready_tx.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote_addr) = match accepted {
            Ok(connection) => {
                backoff = Duration::from_millis(10);
                connection
            }
            Err(error) => match classify_accept_error(&error) {
                AcceptError::Transient => {
                    debug!(%error, "accept failed, continuing");
                    continue;
                }
                AcceptError::ResourceExhausted => {
                    warn!(%error, backoff_ms = backoff.as_millis(), "accept failed, backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                    continue;
                }
                AcceptError::Fatal => {
                    warn!(%error, "listener failed, no longer accepting connections");
                    let _receiver_gone = ready_tx.send(Err(error)).await;
                    return;
                }
            },
        };
        let permit = tokio::select! {
            () = ready_tx.closed() => return,
            permit = handshakes.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed; if it were, stop like a dropped stream.
                Err(_closed) => return,
            },
        };
        if let Err(error) = tcp.set_nodelay(true) {
            debug!(peer = %remote_addr, %error, "could not set tcp_nodelay");
        }
        let acceptor = acceptor.clone();
        let ready_tx = ready_tx.clone();
        let report = report.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let reason = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let connection = TlsConnection::new(stream, remote_addr);
                    // Fails only if the server stopped; the connection is then just dropped.
                    let _receiver_gone = ready_tx.send(Ok(connection)).await;
                    return;
                }
                Ok(Err(error)) => {
                    debug!(peer = %remote_addr, %error, "tls handshake failed, connection dropped");
                    HandshakeFailureReason::of(&error)
                }
                Err(_elapsed) => {
                    debug!(
                        peer = %remote_addr,
                        timeout_ms = handshake_timeout.as_millis(),
                        "tls handshake timed out, connection dropped"
                    );
                    HandshakeFailureReason::Timeout
                }
            };
            report(&HandshakeFailure {
                peer: remote_addr,
                reason,
            });
        });
    }
}

enum AcceptError {
    /// The failed connection is gone; the listener is fine.
    Transient,
    /// Out of file descriptors or memory: pause, then try again.
    ResourceExhausted,
    /// The listener itself is broken.
    Fatal,
}

fn classify_accept_error(error: &io::Error) -> AcceptError {
    // EMFILE (24) and ENFILE (23) have the same numbers on Linux, the BSDs and macOS.
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    match error.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionRefused
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock
        | io::ErrorKind::TimedOut => AcceptError::Transient,
        io::ErrorKind::OutOfMemory => AcceptError::ResourceExhausted,
        _ if matches!(error.raw_os_error(), Some(EMFILE | ENFILE)) => {
            AcceptError::ResourceExhausted
        }
        _ => AcceptError::Fatal,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::pki::{CertificateAuthority, IssuedCertificate};
    use crate::test_certificates::{ca_and_client, der, internal_service_certificate};

    /// A fresh CA and a server certificate `svc` for `localhost` it issued.
    fn ca_and_localhost_server() -> (CertificateAuthority, IssuedCertificate) {
        let ca = CertificateAuthority::generate("ca").unwrap();
        let issued = ca
            .issue_server("svc", &["localhost".to_owned()], &[])
            .unwrap();
        (ca, issued)
    }

    #[test]
    fn identity_of_a_service_certificate() {
        let ca = CertificateAuthority::generate("ca").unwrap();
        let issued = internal_service_certificate(&ca, "audit");
        let identity = PeerIdentity::from_der(&der(&issued.cert_pem)).unwrap();
        assert_eq!(
            identity,
            PeerIdentity {
                common_name: "audit".to_owned(),
                organisation: Some("tryggdel-services".to_owned()),
                dns_names: vec!["localhost".to_owned(), "audit.internal".to_owned()],
            }
        );
    }

    #[test]
    fn identity_of_a_client_certificate_has_no_dns_names() {
        let (_, issued) = ca_and_client("user-1", "Försäkringskassan");
        let identity = PeerIdentity::from_der(&der(&issued.cert_pem)).unwrap();
        assert_eq!(identity.common_name, "user-1");
        assert_eq!(identity.organisation.as_deref(), Some("Försäkringskassan"));
        assert!(identity.dns_names.is_empty());
    }

    #[test]
    fn ambiguous_or_missing_common_name_is_no_identity() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();

        // rcgen keeps one value per attribute type, so write CN, O and OU, then rewrite the
        // OU's OID (2.5.4.11) in the DER to CN (2.5.4.3) or O (2.5.4.10). Same length, and
        // from_der does not check signatures.
        let mut params = rcgen::CertificateParams::default();
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::CommonName, "alice");
        name.push(rcgen::DnType::OrganizationName, "org");
        name.push(rcgen::DnType::OrganizationalUnitName, "admin");
        params.distinguished_name = name;
        let der = params.self_signed(&key).unwrap().der().to_vec();
        let unit_oid = [0x06, 0x03, 0x55, 0x04, 0x0b];
        let with_unit_as = |last: u8| {
            let mut patched = der.clone();
            let mut replaced = 0;
            for i in 0..patched.len() - unit_oid.len() {
                if patched[i..i + unit_oid.len()] == unit_oid {
                    patched[i + 4] = last;
                    replaced += 1;
                }
            }
            // Self-signed: the OU is in issuer and subject.
            assert_eq!(replaced, 2);
            patched
        };
        let unpatched = PeerIdentity::from_der(&der).unwrap();
        assert_eq!(unpatched.common_name, "alice");
        assert_eq!(unpatched.organisation.as_deref(), Some("org"));

        let error = PeerIdentity::from_der(&with_unit_as(0x03)).unwrap_err();
        assert!(
            error.to_string().contains("more than one common name"),
            "{error}"
        );
        let error = PeerIdentity::from_der(&with_unit_as(0x0a)).unwrap_err();
        assert!(
            error.to_string().contains("more than one organisation"),
            "{error}"
        );

        let mut no_cn = rcgen::CertificateParams::default();
        no_cn.distinguished_name = rcgen::DistinguishedName::new();
        let cert = no_cn.self_signed(&key).unwrap();
        let error = PeerIdentity::from_der(cert.der()).unwrap_err();
        assert!(error.to_string().contains("no common name"), "{error}");

        assert!(PeerIdentity::from_der(b"not a certificate").is_err());
    }

    #[test]
    fn server_config_offers_h2() {
        let (ca, issued) = ca_and_localhost_server();
        let config = server_config(&issued.cert_pem, &issued.key_pem, ca.cert_pem()).unwrap();
        // TLS 1.3 only and mandatory client auth are checked end to end in tests/mtls.rs.
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
    }

    #[test]
    fn server_config_errors_name_the_input() {
        let (ca, issued) = ca_and_localhost_server();
        let other = ca
            .issue_server("other", &["localhost".to_owned()], &[])
            .unwrap();

        let error = server_config("", &issued.key_pem, ca.cert_pem()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no certificate found in server certificate chain pem"
        );
        let error = server_config(&issued.cert_pem, "", ca.cert_pem()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no private key found in server private key pem"
        );
        let error = server_config(&issued.cert_pem, &issued.key_pem, "").unwrap_err();
        assert_eq!(
            error.to_string(),
            "no certificate found in client ca certificate pem"
        );
        // Key of another certificate.
        let error = server_config(&issued.cert_pem, &other.key_pem, ca.cert_pem()).unwrap_err();
        assert!(matches!(error, TlsError::Rustls { .. }), "{error}");
    }

    #[test]
    fn peer_identity_reads_request_extensions() {
        let identity = PeerIdentity {
            common_name: "x".to_owned(),
            organisation: None,
            dns_names: vec![],
        };
        let mut request = tonic::Request::new(());
        assert!(peer_identity(&request).is_none());
        request.extensions_mut().insert(PeerInfo {
            remote_addr: None,
            identity: Some(identity.clone()),
        });
        assert_eq!(peer_identity(&request), Some(&identity));
    }

    #[test]
    fn handshake_errors_are_classified_by_reason() {
        let tls = |error: rustls::Error| {
            HandshakeFailureReason::of(&io::Error::new(io::ErrorKind::InvalidData, error))
        };
        assert_eq!(
            tls(rustls::Error::NoCertificatesPresented),
            HandshakeFailureReason::NoClientCertificate
        );
        assert_eq!(
            tls(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            )),
            HandshakeFailureReason::InvalidClientCertificate
        );
        assert_eq!(
            tls(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::SupportedVersionsExtensionRequired
            )),
            HandshakeFailureReason::IncompatibleClient
        );
        assert_eq!(
            tls(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType
            )),
            HandshakeFailureReason::NotTls
        );
        assert_eq!(
            tls(rustls::Error::AlertReceived(
                rustls::AlertDescription::UnknownCA
            )),
            HandshakeFailureReason::AlertFromClient
        );
        assert_eq!(
            tls(rustls::Error::DecryptError),
            HandshakeFailureReason::Other
        );
        assert_eq!(
            HandshakeFailureReason::of(&io::Error::from(io::ErrorKind::UnexpectedEof)),
            HandshakeFailureReason::ConnectionClosed
        );
        assert_eq!(
            HandshakeFailureReason::NoClientCertificate.to_string(),
            "no_client_certificate"
        );
    }

    #[test]
    fn accept_errors_are_classified() {
        let kind = |k| classify_accept_error(&io::Error::from(k));
        assert!(matches!(
            kind(io::ErrorKind::ConnectionAborted),
            AcceptError::Transient
        ));
        assert!(matches!(
            classify_accept_error(&io::Error::from_raw_os_error(24)),
            AcceptError::ResourceExhausted
        ));
        assert!(matches!(
            kind(io::ErrorKind::InvalidInput),
            AcceptError::Fatal
        ));
    }
}
