//! Refusals leave a trace for whoever runs the service: a refused TLS handshake at a real
//! listener and a refused token each write a WARN line with the reason and the peer's
//! address (never the token), a burst from one peer writes one line, and every refusal is
//! counted in its metric.
//!
//! This file is its own process: it installs the global log subscriber (writing to a buffer)
//! and the global meter provider (exporting to memory) once, before anything is started.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use tokio::io::AsyncReadExt as _;
use tryggdel_auth::{
    ClaimNames, Role, SignerConfig, TokenRequest, TokenSigner, VerifierConfig,
    generate_ed25519_key_pair,
};
use tryggdel_domain::{DEVELOPMENT_DIRECTORY, Directory, LegalRegistry};
use tryggdel_service_kit::{Authenticator, RunningServer, ServerTls, TokenKeys};
use tryggdel_telemetry::testing::{AggregatedMetrics, InMemoryMetricExporter, MetricData};
use tryggdel_tls::{CertificateAuthority, PeerIdentity, PeerInfo};

/// What the process-wide subscriber and meter provider capture.
struct Captured {
    log: Arc<Mutex<Vec<u8>>>,
    metrics: InMemoryMetricExporter,
    provider: SdkMeterProvider,
}

/// A `MakeWriter` appending to the shared buffer.
#[derive(Clone)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = Buffer(log.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        let metrics = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(metrics.clone()).build())
            .build();
        opentelemetry::global::set_meter_provider(provider.clone());
        Captured {
            log,
            metrics,
            provider,
        }
    })
}

/// The log lines written so far that contain every one of `parts`.
fn lines_with(parts: &[&str]) -> Vec<String> {
    let log = captured().log.lock().unwrap();
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|line| parts.iter().all(|part| line.contains(part)))
        .map(str::to_owned)
        .collect()
}

/// The total of counter `name` for `reason`, as exported now.
fn count(name: &str, reason: &str) -> u64 {
    let captured = captured();
    captured.provider.force_flush().unwrap();
    let exported = captured.metrics.get_finished_metrics().unwrap();
    // Cumulative sums: the latest export holds the totals.
    let Some(latest) = exported.last() else {
        return 0;
    };
    latest
        .scope_metrics()
        .flat_map(|scope| scope.metrics())
        .filter(|metric| metric.name() == name)
        .map(|metric| match metric.data() {
            AggregatedMetrics::U64(MetricData::Sum(sum)) => sum
                .data_points()
                .filter(|point| {
                    point.attributes().any(|attribute| {
                        attribute.key.as_str() == "reason" && attribute.value.as_str() == reason
                    })
                })
                .map(|point| point.value())
                .sum::<u64>(),
            other => panic!("{name} is not a u64 sum: {other:?}"),
        })
        .sum()
}

/// Waits (bounded) until counter `name` for `reason` reaches `expected`.
async fn wait_for_count(name: &str, reason: &str, expected: u64) {
    for _ in 0..100 {
        if count(name, reason) >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(name, reason), expected, "{name}{{reason={reason}}}");
}

/// A TLS 1.3 handshake with no client certificate, which the listener refuses; waits until
/// the server closes the connection.
async fn anonymous_handshake(address: SocketAddr, ca_pem: &str) {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(tryggdel_tls::parse_root_store(ca_pem, "test ca").unwrap())
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    // TLS 1.3: the client may finish its side; the server's refusal then ends the first read.
    if let Ok(mut tls) = connector.connect(name, tcp).await {
        let mut buffer = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buffer)).await;
        assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    }
}

#[tokio::test]
async fn refused_handshakes_are_logged_once_per_burst_and_each_is_counted() {
    captured();
    let ca = CertificateAuthority::generate("refusals test ca").unwrap();
    let server = ca
        .issue_server(
            "refusals-test",
            &["localhost".to_owned()],
            &["127.0.0.1".parse().unwrap()],
        )
        .unwrap();
    let tls = ServerTls {
        cert_chain_pem: server.cert_pem,
        key_pem: server.key_pem,
        client_ca_pem: ca.cert_pem().to_owned(),
    };
    let running = RunningServer::start(
        "refusals-test",
        tonic::service::Routes::default(),
        &tls,
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();

    for _ in 0..25 {
        anonymous_handshake(running.local_addr, ca.cert_pem()).await;
    }
    wait_for_count(
        "tryggdel.tls.handshake_failures",
        "no_client_certificate",
        25,
    )
    .await;
    let lines = lines_with(&["tls handshake refused", "reason=\"no_client_certificate\""]);
    assert_eq!(lines.len(), 1, "one line for the burst: {lines:#?}");
    assert!(lines[0].contains("WARN"), "{}", lines[0]);
    assert!(lines[0].contains("peer=127.0.0.1:"), "{}", lines[0]);
    assert!(lines[0].contains("suppressed=0"), "{}", lines[0]);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn refused_tokens_are_logged_once_per_peer_and_reason_and_each_is_counted() {
    captured();
    let pair = generate_ed25519_key_pair().unwrap();
    let signer = TokenSigner::new(SignerConfig {
        issuer: "https://idp.test".into(),
        audience: "tryggdel".into(),
        private_key_pem: pair.private_key_pem,
    })
    .unwrap();
    let keys = TokenKeys::fixed(VerifierConfig {
        issuer: "https://idp.test".into(),
        audience: "tryggdel".into(),
        keys: signer.key_set(),
        claims: ClaimNames::default(),
        leeway_seconds: 5,
    })
    .unwrap();
    let registry = LegalRegistry::embedded().unwrap();
    let directory = Directory::from_toml(DEVELOPMENT_DIRECTORY, &registry).unwrap();
    let authenticator = Authenticator::new(Arc::new(keys), Arc::new(directory));
    let request = |peer: &str, token: &str| {
        let mut request = tonic::Request::new(());
        request.extensions_mut().insert(PeerInfo {
            remote_addr: Some(peer.parse().unwrap()),
            identity: Some(PeerIdentity {
                common_name: "client".into(),
                organisation: Some("bollnas-kommun".into()),
                dns_names: Vec::new(),
            }),
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    };

    // A burst of tokens signed by a stranger from one peer.
    let stranger = TokenSigner::new(SignerConfig {
        issuer: "https://idp.test".into(),
        audience: "tryggdel".into(),
        private_key_pem: generate_ed25519_key_pair().unwrap().private_key_pem,
    })
    .unwrap();
    let forged = stranger
        .mint(&TokenRequest {
            user_id: "handlaggare".into(),
            organisation: "bollnas-kommun".into(),
            unit: None,
            roles: vec![Role::Caseworker],
            police_region: None,
            display_name: None,
            valid_for: Duration::from_secs(60),
        })
        .unwrap();
    for _ in 0..40 {
        let refused = authenticator
            .user(&request("192.0.2.7:40000", &forged))
            .await
            .unwrap_err();
        assert_eq!(refused.to_string(), "token signed with an unknown key");
    }
    // A malformed token from another peer has its own line.
    authenticator
        .user(&request("192.0.2.8:40000", "not.a.token"))
        .await
        .unwrap_err();

    wait_for_count("tryggdel.auth.refusals", "unknown_key", 40).await;
    wait_for_count("tryggdel.auth.refusals", "invalid_token", 1).await;
    let burst = lines_with(&["caller refused", "reason=\"unknown_key\""]);
    assert_eq!(burst.len(), 1, "one line for the burst: {burst:#?}");
    assert!(burst[0].contains("WARN"), "{}", burst[0]);
    assert!(burst[0].contains("peer=192.0.2.7:40000"), "{}", burst[0]);
    assert!(
        burst[0].contains("token signed with an unknown key"),
        "{}",
        burst[0]
    );
    let other = lines_with(&["caller refused", "reason=\"invalid_token\""]);
    assert_eq!(other.len(), 1, "{other:#?}");
    assert!(other[0].contains("peer=192.0.2.8:40000"), "{}", other[0]);
    // Never the token.
    let log = String::from_utf8_lossy(&captured().log.lock().unwrap()).into_owned();
    let signature = forged.rsplit('.').next().unwrap();
    assert!(!log.contains(signature), "{log}");
    assert!(!log.contains("not.a.token"), "{log}");
}
