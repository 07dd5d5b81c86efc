//! Certificates shared by the unit tests of this crate's modules.

use rustls::pki_types::CertificateDer;

use crate::pki::{CertificateAuthority, ClientIdentitySpec, IssuedCertificate};

/// The first certificate in `pem`.
pub(crate) fn der(pem: &str) -> CertificateDer<'static> {
    crate::pem::parse_certificates(pem, "test")
        .unwrap()
        .remove(0)
}

/// A certificate for `service` as the services are deployed: SANs `localhost`,
/// `<service>.internal` and 127.0.0.1, issued by `ca`.
pub(crate) fn internal_service_certificate(
    ca: &CertificateAuthority,
    service: &str,
) -> IssuedCertificate {
    ca.issue_server(
        service,
        &["localhost".to_owned(), format!("{service}.internal")],
        &["127.0.0.1".parse().unwrap()],
    )
    .unwrap()
}

/// A fresh CA (CN `ca`) and a client certificate `CN=common_name, O=organisation` it issued.
pub(crate) fn ca_and_client(
    common_name: &str,
    organisation: &str,
) -> (CertificateAuthority, IssuedCertificate) {
    let ca = CertificateAuthority::generate("ca").unwrap();
    let client = ca
        .issue_client(&ClientIdentitySpec::new(common_name, organisation))
        .unwrap();
    (ca, client)
}
