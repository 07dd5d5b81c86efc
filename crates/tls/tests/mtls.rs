//! End-to-end tests of the mTLS layer: a real listener on 127.0.0.1:0 accepting through
//! `tls_incoming`, real tokio-rustls clients, and a real tonic server and channel.
//!
//! Each refusal test also proves the server kept serving: after the refused client, a valid
//! client connects, and it must be the FIRST connection the server ever yields.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_stream::StreamExt;
use tryggdel_tls::server::tls_incoming_with_timeout;
use tryggdel_tls::{
    CertificateAuthority, ClientIdentitySpec, HandshakeFailure, HandshakeFailureReason,
    IssuedCertificate, PeerIdentity, PeerInfo, client_config, connect_channel, peer_identity,
    server_config, tls_incoming, tls_incoming_reporting,
};

/// Generous bound on every network wait, so a broken test fails instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

struct Pki {
    ca: CertificateAuthority,
    server: IssuedCertificate,
    client: IssuedCertificate,
}

fn pki() -> Pki {
    let ca = CertificateAuthority::generate("tryggdel test ca").unwrap();
    let server = ca
        .issue_server(
            "disclosure",
            &["localhost".to_owned()],
            &["127.0.0.1".parse().unwrap()],
        )
        .unwrap();
    let client = ca
        .issue_client(&ClientIdentitySpec::new("valid-client", "Skatteverket"))
        .unwrap();
    Pki { ca, server, client }
}

/// What the echo server reports for each connection it got from `tls_incoming`.
#[derive(Debug)]
struct Accepted {
    peer: PeerInfo,
    version: Option<rustls::ProtocolVersion>,
    alpn: Option<Vec<u8>>,
}

/// The connections `tls_incoming` and its variants yield.
type Incoming = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = std::io::Result<tryggdel_tls::TlsConnection>> + Send>,
>;

/// Starts an echo server behind `tls_incoming`; returns its address and the connections it
/// accepted, in order.
async fn echo_server(
    pki: &Pki,
    handshake_timeout: Option<Duration>,
) -> (SocketAddr, mpsc::UnboundedReceiver<Accepted>) {
    let config =
        server_config(&pki.server.cert_pem, &pki.server.key_pem, pki.ca.cert_pem()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming: Incoming = match handshake_timeout {
        Some(timeout) => Box::pin(tls_incoming_with_timeout(listener, config, timeout)),
        None => Box::pin(tls_incoming(listener, config)),
    };
    (addr, serve_echo(incoming))
}

/// An echo server behind `tls_incoming_reporting`: its address, the connections it accepted
/// and the handshakes it refused, in order.
async fn reporting_echo_server(
    pki: &Pki,
    handshake_timeout: Duration,
) -> (
    SocketAddr,
    mpsc::UnboundedReceiver<Accepted>,
    mpsc::UnboundedReceiver<HandshakeFailure>,
) {
    let config =
        server_config(&pki.server.cert_pem, &pki.server.key_pem, pki.ca.cert_pem()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (failures_tx, failures_rx) = mpsc::unbounded_channel();
    let incoming = tls_incoming_reporting(
        listener,
        config,
        handshake_timeout,
        Arc::new(move |failure: &HandshakeFailure| {
            let _ = failures_tx.send(*failure);
        }),
    );
    (addr, serve_echo(Box::pin(incoming)), failures_rx)
}

/// Echoes on every connection `incoming` yields; answers what it accepted, in order.
fn serve_echo(mut incoming: Incoming) -> mpsc::UnboundedReceiver<Accepted> {
    let (accepted_tx, accepted_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(connection) = incoming.next().await {
            let mut connection = connection.unwrap();
            let _ = accepted_tx.send(Accepted {
                peer: connection.peer_info().clone(),
                version: connection.protocol_version(),
                alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
            });
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                loop {
                    match connection.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if connection.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    accepted_rx
}

fn rustls_client(config: rustls::ClientConfig) -> TlsConnector {
    TlsConnector::from(Arc::new(config))
}

/// The trust store holding the certificates in `ca_pem`.
fn root_store(ca_pem: &str) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

/// A client configuration builder on ring offering exactly `versions`.
fn client_builder(
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
}

/// `config`, offering ALPN `h2` as tonic does.
fn offering_h2(mut config: rustls::ClientConfig) -> rustls::ClientConfig {
    config.alpn_protocols = vec![b"h2".to_vec()];
    config
}

/// A client config for `ca_pem` with no client certificate at all.
fn anonymous_client_config(
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let config = client_builder(versions)
        .with_root_certificates(root_store(ca_pem))
        .with_no_client_auth();
    offering_h2(config)
}

/// A TLS 1.2-only client config presenting a valid client certificate.
fn tls12_client_config(pki: &Pki) -> rustls::ClientConfig {
    let chain = rustls_pemfile::certs(&mut pki.client.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut pki.client.key_pem.as_bytes())
        .unwrap()
        .unwrap();
    let config = client_builder(&[&rustls::version::TLS12])
        .with_root_certificates(root_store(pki.ca.cert_pem()))
        .with_client_auth_cert(chain, key)
        .unwrap();
    offering_h2(config)
}

/// Handshakes, writes `message` and reads the echo; `Err` describes where it failed.
async fn echo_round_trip(
    addr: SocketAddr,
    config: rustls::ClientConfig,
    message: &[u8],
) -> Result<(Vec<u8>, Option<rustls::ProtocolVersion>), String> {
    let run = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut tls = rustls_client(config)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let version = tls.get_ref().1.protocol_version();
        tls.write_all(message)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut echoed = vec![0u8; message.len()];
        tls.read_exact(&mut echoed)
            .await
            .map_err(|e| format!("read: {e}"))?;
        Ok((echoed, version))
    };
    tokio::time::timeout(WAIT, run)
        .await
        .map_err(|_| "timed out".to_owned())?
}

async fn valid_round_trip(pki: &Pki, addr: SocketAddr) {
    let config =
        client_config(pki.ca.cert_pem(), &pki.client.cert_pem, &pki.client.key_pem).unwrap();
    let (echoed, version) = echo_round_trip(addr, config, b"ping").await.unwrap();
    assert_eq!(echoed, b"ping");
    assert_eq!(version, Some(rustls::ProtocolVersion::TLSv1_3));
}

/// Sends `bytes` to `addr` in plaintext and reads until the server closes, waiting at most
/// [`WAIT`]: the read's outcome (`Err` if it timed out) and what came back.
async fn plaintext_exchange(
    addr: SocketAddr,
    bytes: &[u8],
) -> (
    Result<std::io::Result<usize>, tokio::time::error::Elapsed>,
    Vec<u8>,
) {
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain.write_all(bytes).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(WAIT, plain.read_to_end(&mut received)).await;
    (read, received)
}

/// The next connection the server accepted; fails the test if none arrives.
async fn next_accepted(accepted: &mut mpsc::UnboundedReceiver<Accepted>) -> Accepted {
    tokio::time::timeout(WAIT, accepted.recv())
        .await
        .expect("server accepted nothing in time")
        .expect("server stopped")
}

/// After a refused client: a valid client still works, and is the first connection ever yielded.
async fn assert_still_serving_and_refused_client_was_never_yielded(
    pki: &Pki,
    addr: SocketAddr,
    accepted: &mut mpsc::UnboundedReceiver<Accepted>,
) {
    valid_round_trip(pki, addr).await;
    let first = next_accepted(accepted).await;
    assert_eq!(
        first.peer.identity.map(|i| i.common_name).as_deref(),
        Some("valid-client"),
        "the refused client must never reach the service"
    );
    assert!(
        accepted.try_recv().is_err(),
        "exactly one connection yielded"
    );
}

/// Starts an echo server and makes one round trip with `config`, which must fail (`refusal`
/// says why) and not by timing out; then checks the server still serves and never yielded the
/// refused client. Returns the error, for the caller's checks of where the round trip failed.
async fn refused_round_trip(pki: &Pki, config: rustls::ClientConfig, refusal: &str) -> String {
    let (addr, mut accepted) = echo_server(pki, None).await;
    let error = echo_round_trip(addr, config, b"ping")
        .await
        .expect_err(refusal);
    assert!(!error.contains("timed out"), "{error}");
    assert_still_serving_and_refused_client_was_never_yielded(pki, addr, &mut accepted).await;
    error
}

#[tokio::test]
async fn valid_client_completes_tls13_handshake_and_its_identity_reaches_the_server() {
    let pki = pki();
    let (addr, mut accepted) = echo_server(&pki, None).await;

    valid_round_trip(&pki, addr).await;

    let accepted = next_accepted(&mut accepted).await;
    assert_eq!(accepted.version, Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(accepted.alpn.as_deref(), Some(b"h2".as_slice()));
    assert_eq!(
        accepted.peer.identity,
        Some(PeerIdentity {
            common_name: "valid-client".to_owned(),
            organisation: Some("Skatteverket".to_owned()),
            dns_names: vec![],
        })
    );
    let remote = accepted.peer.remote_addr.unwrap();
    assert!(remote.ip().is_loopback());
}

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let pki = pki();
    let config = anonymous_client_config(pki.ca.cert_pem(), &[&rustls::version::TLS13]);
    let error =
        refused_round_trip(&pki, config, "a client without certificate must be refused").await;
    // TLS 1.3: the client may finish its side of the handshake, then the server's
    // certificate_required alert fails the first read.
    assert!(
        error.starts_with("handshake") || error.starts_with("read") || error.starts_with("write"),
        "{error}"
    );
}

#[tokio::test]
async fn client_with_certificate_from_another_ca_is_refused() {
    let pki = pki();
    let rogue_ca = CertificateAuthority::generate("tryggdel test ca").unwrap();
    let rogue_client = rogue_ca
        .issue_client(&ClientIdentitySpec::new("intruder", "Skatteverket"))
        .unwrap();
    // Trusts the right server CA; only its own certificate is foreign.
    let config = client_config(
        pki.ca.cert_pem(),
        &rogue_client.cert_pem,
        &rogue_client.key_pem,
    )
    .unwrap();
    refused_round_trip(
        &pki,
        config,
        "a certificate from another ca must be refused",
    )
    .await;
}

#[tokio::test]
async fn tls12_only_client_is_refused() {
    let pki = pki();
    let error =
        refused_round_trip(&pki, tls12_client_config(&pki), "tls 1.2 must be refused").await;
    assert!(error.starts_with("handshake"), "{error}");
}

#[tokio::test]
async fn plaintext_http2_client_gets_no_application_data_and_server_keeps_serving() {
    let pki = pki();
    let (addr, mut accepted) = echo_server(&pki, None).await;

    let (read, received) = plaintext_exchange(
        addr,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
    )
    .await;
    let read = read.expect("server must close the plaintext connection, not leave it hanging");
    // Closed (EOF) or reset; at most a TLS alert record came back, never HTTP/2.
    if read.is_ok() && !received.is_empty() {
        assert_eq!(
            received[0], 0x15,
            "only a tls alert may come back: {received:?}"
        );
        assert!(
            received.len() <= 7,
            "one alert record at most: {received:?}"
        );
    }

    assert_still_serving_and_refused_client_was_never_yielded(&pki, addr, &mut accepted).await;
}

#[tokio::test]
async fn silent_client_does_not_block_others_and_is_dropped_after_the_handshake_timeout() {
    let pki = pki();
    let handshake_timeout = Duration::from_secs(2);
    let (addr, mut accepted) = echo_server(&pki, Some(handshake_timeout)).await;

    // Connects and says nothing: its handshake is pending on the server.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let started = tokio::time::Instant::now();

    // Meanwhile a valid client is served at once, not after the silent one timed out...
    assert_still_serving_and_refused_client_was_never_yielded(&pki, addr, &mut accepted).await;
    let mut buf = [0u8; 16];
    assert!(
        started.elapsed() < handshake_timeout
            && tokio::time::timeout(Duration::from_millis(100), silent.read(&mut buf))
                .await
                .is_err(),
        "the valid client must be served while the silent one is still pending"
    );

    // ...and the silent one is dropped once the timeout passes.
    let read = tokio::time::timeout(WAIT, silent.read(&mut buf))
        .await
        .expect("silent client must be dropped after the handshake timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= handshake_timeout - Duration::from_millis(100));
}

#[tokio::test]
async fn many_refused_clients_in_parallel_do_not_stop_the_stream() {
    let pki = pki();
    let (addr, mut accepted) = echo_server(&pki, None).await;
    let mut refused = Vec::new();
    for _ in 0..20 {
        let config = anonymous_client_config(pki.ca.cert_pem(), &[&rustls::version::TLS13]);
        refused.push(tokio::spawn(echo_round_trip(addr, config, b"x")));
    }
    for handle in refused {
        assert!(handle.await.unwrap().is_err());
    }
    assert_still_serving_and_refused_client_was_never_yielded(&pki, addr, &mut accepted).await;
}

#[tokio::test]
async fn every_refused_handshake_is_reported_with_the_peer_and_the_reason() {
    let pki = pki();
    let (addr, mut accepted, mut failures) =
        reporting_echo_server(&pki, Duration::from_secs(1)).await;
    let mut next_failure = async || {
        tokio::time::timeout(WAIT, failures.recv())
            .await
            .expect("a refused handshake is reported")
            .unwrap()
    };

    let anonymous = anonymous_client_config(pki.ca.cert_pem(), &[&rustls::version::TLS13]);
    assert!(echo_round_trip(addr, anonymous, b"x").await.is_err());
    let failure = next_failure().await;
    assert_eq!(failure.reason, HandshakeFailureReason::NoClientCertificate);
    assert!(failure.peer.ip().is_loopback(), "{failure:?}");

    let rogue_ca = CertificateAuthority::generate("tryggdel test ca").unwrap();
    let rogue = rogue_ca
        .issue_client(&ClientIdentitySpec::new("intruder", "Skatteverket"))
        .unwrap();
    let foreign = client_config(pki.ca.cert_pem(), &rogue.cert_pem, &rogue.key_pem).unwrap();
    assert!(echo_round_trip(addr, foreign, b"x").await.is_err());
    assert_eq!(
        next_failure().await.reason,
        HandshakeFailureReason::InvalidClientCertificate
    );

    assert!(
        echo_round_trip(addr, tls12_client_config(&pki), b"x")
            .await
            .is_err()
    );
    assert_eq!(
        next_failure().await.reason,
        HandshakeFailureReason::IncompatibleClient
    );

    let _ = plaintext_exchange(addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    assert_eq!(next_failure().await.reason, HandshakeFailureReason::NotTls);

    let silent = TcpStream::connect(addr).await.unwrap();
    assert_eq!(next_failure().await.reason, HandshakeFailureReason::Timeout);
    drop(silent);

    // A completed handshake is not a failure.
    assert_still_serving_and_refused_client_was_never_yielded(&pki, addr, &mut accepted).await;
    assert!(failures.try_recv().is_err());
}

// --- tonic: a real tonic server over tls_incoming and a channel from connect_channel ---

/// A hand-written gRPC service (no codegen in this crate): answers every call with a
/// trailers-only OK response carrying the caller's CN and O in headers, read through
/// `tryggdel_tls::peer_identity`.
#[derive(Clone)]
struct WhoAmI;

impl tonic::server::NamedService for WhoAmI {
    const NAME: &'static str = "tryggdel.test.WhoAmI";
}

impl tonic::codegen::Service<tonic::codegen::http::Request<tonic::body::Body>> for WhoAmI {
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        let request = tonic::Request::from_http(request);
        let identity = peer_identity(&request).cloned();
        let mut response = tonic::codegen::http::Response::builder()
            .status(200)
            .header("content-type", "application/grpc")
            .header("grpc-status", "0");
        if let Some(identity) = identity {
            response = response
                .header("x-peer-cn", identity.common_name)
                .header("x-peer-o", identity.organisation.unwrap_or_default());
        }
        std::future::ready(Ok(response.body(tonic::body::Body::empty()).unwrap()))
    }
}

/// A tonic channel from `connect_channel` to `addr` (server name localhost) presenting
/// `client` and trusting the test CA.
async fn channel_presenting(
    pki: &Pki,
    addr: SocketAddr,
    client: &IssuedCertificate,
) -> tryggdel_tls::Result<tonic::transport::Channel> {
    connect_channel(
        &format!("https://{addr}"),
        "localhost",
        pki.ca.cert_pem(),
        &client.cert_pem,
        &client.key_pem,
    )
    .await
}

/// A gRPC call to `WhoAmI`, with no message.
fn who_am_i_request() -> tonic::codegen::http::Request<tonic::body::Body> {
    tonic::codegen::http::Request::builder()
        .method("POST")
        .uri("/tryggdel.test.WhoAmI/Check")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::empty())
        .unwrap()
}

#[tokio::test]
async fn tonic_channel_reaches_tonic_server_and_handler_sees_the_peer_identity() {
    tryggdel_tls::install_crypto_provider();
    let pki = pki();
    let config =
        server_config(&pki.server.cert_pem, &pki.server.key_pem, pki.ca.cert_pem()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(WhoAmI)
            .serve_with_incoming_shutdown(tls_incoming(listener, config), async {
                let _ = shutdown_rx.await;
            }),
    );

    // A plaintext client first: the tonic server must survive it.
    let _ = plaintext_exchange(addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;

    let mut channel = tokio::time::timeout(WAIT, channel_presenting(&pki, addr, &pki.client))
        .await
        .unwrap()
        .unwrap();

    let request = who_am_i_request();
    std::future::poll_fn(|cx| tonic::codegen::Service::poll_ready(&mut channel, cx))
        .await
        .unwrap();
    let response = tokio::time::timeout(WAIT, tonic::codegen::Service::call(&mut channel, request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "0");
    assert_eq!(response.headers()["x-peer-cn"], "valid-client");
    assert_eq!(response.headers()["x-peer-o"], "Skatteverket");

    // A channel whose client certificate comes from another CA cannot connect.
    let rogue_ca = CertificateAuthority::generate("rogue").unwrap();
    let rogue = rogue_ca
        .issue_client(&ClientIdentitySpec::new("intruder", "x"))
        .unwrap();
    let rogue_result = tokio::time::timeout(WAIT, async {
        let mut channel = channel_presenting(&pki, addr, &rogue).await?;
        let request = who_am_i_request();
        std::future::poll_fn(|cx| tonic::codegen::Service::poll_ready(&mut channel, cx))
            .await
            .map_err(|_| ())
            .ok();
        let response = tonic::codegen::Service::call(&mut channel, request).await;
        Ok::<_, tryggdel_tls::TlsError>(response.is_ok())
    })
    .await
    .unwrap();
    assert!(
        !matches!(rogue_result, Ok(true)),
        "a client certificate from another ca must not get a response"
    );

    shutdown_tx.send(()).unwrap();
    tokio::time::timeout(WAIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
