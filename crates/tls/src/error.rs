//! The one error type of this crate.

use std::path::PathBuf;

/// Result with [`TlsError`].
pub type Result<T, E = TlsError> = std::result::Result<T, E>;

/// Everything that can go wrong building TLS material or connections.
///
/// Variants are grouped by what the caller has to do differently: fix a file, fix the PEM
/// contents, fix the certificate request, or retry/fix the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("could not read pem file {path}")]
    ReadFile {
        /// The file that could not be read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// PEM text is malformed.
    #[error("could not parse {what} pem")]
    PemSyntax {
        /// Which PEM input, e.g. "client ca certificate".
        what: &'static str,
        /// The parser's error.
        #[source]
        source: std::io::Error,
    },

    /// PEM text holds no certificate where at least one is needed.
    #[error("no certificate found in {what} pem")]
    NoCertificate {
        /// Which PEM input.
        what: &'static str,
    },

    /// PEM text holds no private key where one is needed.
    #[error("no private key found in {what} pem")]
    NoPrivateKey {
        /// Which PEM input.
        what: &'static str,
    },

    /// A certificate could not be parsed as X.509, or lacks something this crate requires.
    #[error("invalid {what} certificate: {reason}")]
    InvalidCertificate {
        /// Which certificate.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A certificate request was rejected before asking rcgen (empty name, no SANs, ...).
    #[error("invalid certificate request: {reason}")]
    InvalidRequest {
        /// What is wrong with the request.
        reason: String,
    },

    /// rcgen failed to generate a key or a certificate.
    #[error("could not generate {what}")]
    Generate {
        /// What was being generated, e.g. "server certificate for disclosure".
        what: String,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },

    /// rustls rejected the configuration (key does not match certificate, bad trust anchor, ...).
    #[error("could not build {what}")]
    Rustls {
        /// What was being built.
        what: &'static str,
        /// rustls' error.
        #[source]
        source: rustls::Error,
    },

    /// The client-certificate verifier could not be built from the client CA.
    #[error("could not build client certificate verifier")]
    ClientVerifier {
        /// rustls' error.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },

    /// A tonic channel could not be configured or connected.
    #[error("could not set up channel to {uri}")]
    Channel {
        /// The endpoint URI.
        uri: String,
        /// tonic's error.
        #[source]
        source: tonic::transport::Error,
    },
}

impl TlsError {
    /// For `map_err`: rustls refused to build `what`.
    pub(crate) fn rustls(what: &'static str) -> impl FnOnce(rustls::Error) -> TlsError {
        move |source| TlsError::Rustls { what, source }
    }
}
