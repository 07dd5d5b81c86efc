//! Reading PEM files and parsing PEM text into rustls types.

use std::path::Path;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Result, TlsError};

/// Reads a PEM file into a string; the error names the path.
///
/// Blocking file I/O: call it at start-up or from `spawn_blocking`.
pub fn read_pem_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| TlsError::ReadFile {
        path: path.to_path_buf(),
        source,
    })
}

/// All certificates in `pem`, in order; at least one.
pub fn parse_certificates(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>> {
    let certificates = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|source| TlsError::PemSyntax { what, source })?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate { what });
    }
    Ok(certificates)
}

/// The first private key (PKCS#8, SEC1 or PKCS#1) in `pem`.
pub fn parse_private_key(pem: &str, what: &'static str) -> Result<PrivateKeyDer<'static>> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|source| TlsError::PemSyntax { what, source })?
        .ok_or(TlsError::NoPrivateKey { what })
}

/// A root store holding every certificate in `pem` as a trust anchor.
pub fn parse_root_store(pem: &str, what: &'static str) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in parse_certificates(pem, what)? {
        roots
            .add(certificate)
            .map_err(|source| TlsError::Rustls { what, source })?;
    }
    Ok(roots)
}

/// The subject (CN, O) of the first certificate in `pem`, e.g. to recognise a development CA.
pub fn certificate_identity(pem: &str, what: &'static str) -> Result<crate::PeerIdentity> {
    let certificates = parse_certificates(pem, what)?;
    let first = certificates
        .first()
        .ok_or(crate::TlsError::InvalidCertificate {
            what,
            reason: "no certificate in the PEM text".to_owned(),
        })?;
    crate::PeerIdentity::from_der(first.as_ref())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn read_pem_file_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing-ca.pem");
        let error = read_pem_file(&missing).unwrap_err();
        assert!(matches!(error, TlsError::ReadFile { .. }));
        assert!(
            error.to_string().contains("missing-ca.pem"),
            "message must name the file: {error}"
        );
    }

    #[test]
    fn read_pem_file_reads_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "hello").unwrap();
        assert_eq!(read_pem_file(&path).unwrap(), "hello");
    }

    #[test]
    fn empty_pem_has_no_certificate_and_no_key() {
        assert!(matches!(
            parse_certificates("", "test"),
            Err(TlsError::NoCertificate { what: "test" })
        ));
        assert!(matches!(
            parse_private_key("not pem at all", "test"),
            Err(TlsError::NoPrivateKey { what: "test" })
        ));
        assert!(matches!(
            parse_root_store("", "test"),
            Err(TlsError::NoCertificate { .. })
        ));
    }

    #[test]
    fn garbage_inside_certificate_block_is_refused() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        // Valid base64 but not a certificate: rustls refuses it as a trust anchor.
        assert!(parse_root_store(pem, "test").is_err());
    }
}
