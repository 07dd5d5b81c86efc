//! tryggdel-tls: TLS 1.3 with client certificates (mTLS) for every Tryggdel gRPC connection.
//!
//! What this crate gives the services:
//!
//! - [`pki`]: a development PKI (a CA and the leaf certificates it issues) built with rcgen.
//! - [`server`]: a rustls [`rustls::ServerConfig`] that requires a client certificate, and
//!   [`server::tls_incoming`], a connection stream for
//!   `tonic::transport::Server::serve_with_incoming` that carries the verified identity of the
//!   peer ([`server::PeerInfo`]) into every request's extensions.
//! - [`client`]: the matching client configuration and tonic channels.
//! - [`read_pem_file`]: loading PEM files with errors that name the file.
//!
//! # Invariants
//!
//! - Every configuration built here speaks TLS 1.3 only, with the ring provider passed
//!   explicitly: nothing depends on the process-wide default provider, and
//!   [`install_crypto_provider`] exists only for code outside this crate (tonic's own client
//!   TLS) that looks the default up.
//! - The server refuses a client without a certificate, or with one that does not chain to the
//!   configured client CA. There is no "optional client auth" switch.
//! - Plaintext never reaches a service: a connection is handed to tonic only after a completed
//!   TLS handshake. A failed or slow handshake (10 s limit) is logged at debug, reported with
//!   its peer and reason ([`server::tls_incoming_reporting`]) and dropped; it neither blocks
//!   other clients nor stops the server.
//! - The peer's identity is read from the verified end-entity certificate with an X.509 parser,
//!   never by scanning bytes; a certificate with more than one common name or organisation has no
//!   identity rather than an ambiguous one.
//! - Private keys never appear in `Debug` output or in logs.
//! - No `unsafe`, no `unwrap`/`expect`/`panic` outside tests.

#![forbid(unsafe_code)]

pub mod client;
mod error;
mod pem;
pub mod pki;
pub mod server;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod test_certificates;

pub use client::{client_config, connect_channel, lazy_channel};
pub use error::{Result, TlsError};
pub use pem::{
    certificate_identity, parse_certificates, parse_private_key, parse_root_store, read_pem_file,
};
pub use pki::{CertificateAuthority, ClientIdentitySpec, IssuedCertificate, SERVICE_ORGANISATION};
pub use server::{
    HandshakeFailure, HandshakeFailureReason, PeerIdentity, PeerInfo, ReportHandshakeFailure,
    TlsConnection, peer_identity, server_config, tls_incoming, tls_incoming_reporting,
};

/// The ALPN protocol every configuration here offers: gRPC runs over HTTP/2 only.
pub const ALPN_H2: &[u8] = b"h2";

/// Installs rustls' ring provider as the process-wide default.
///
/// Idempotent: if a provider is already installed (by an earlier call or by another crate), that
/// one stays and this call does nothing. The configurations built by this crate do not need it;
/// call it once at start-up so that code which looks the default up (tonic's client TLS) uses
/// ring, as the workspace compiles no other provider.
pub fn install_crypto_provider() {
    // `Err` only means a provider is already installed, which is what we want.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

/// The crypto provider every configuration in this crate is built with.
fn ring_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS 1.3-only start of every client and server configuration in this crate (the first
/// invariant above); `what` names the configuration in the error.
fn tls13_only<Side: rustls::ConfigSide>(
    builder: rustls::ConfigBuilder<Side, rustls::WantsVersions>,
    what: &'static str,
) -> Result<rustls::ConfigBuilder<Side, rustls::WantsVerifier>> {
    builder
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::rustls(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_crypto_provider_is_idempotent_and_installs_ring() {
        install_crypto_provider();
        install_crypto_provider();
        let installed = rustls::crypto::CryptoProvider::get_default();
        assert!(installed.is_some(), "a default provider must be installed");
        if let Some(provider) = installed {
            let ring = rustls::crypto::ring::default_provider();
            let names = |p: &rustls::crypto::CryptoProvider| {
                p.cipher_suites
                    .iter()
                    .map(|s| s.suite())
                    .collect::<Vec<_>>()
            };
            assert_eq!(names(provider), names(&ring));
        }
    }
}
