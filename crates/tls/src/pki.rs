//! Development PKI: a self-signed CA and the leaf certificates it issues (rcgen, ECDSA P-256).
//!
//! Meant for local runs, tests and the compose/Kubernetes examples; production certificates
//! come from a real CA but are consumed by the same [`crate::server`] and [`crate::client`]
//! functions.

use std::fmt;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::error::{Result, TlsError};

/// Organisation (O) of every service certificate.
pub const SERVICE_ORGANISATION: &str = "tryggdel-services";

/// Validity of a CA certificate.
const CA_VALIDITY: Duration = Duration::days(3650);
/// Validity of a leaf certificate.
const LEAF_VALIDITY: Duration = Duration::days(365);
/// Certificates start this far in the past so that small clock skew does not reject them.
const BACKDATE: Duration = Duration::minutes(5);

/// A certificate authority that can issue leaf certificates.
pub struct CertificateAuthority {
    cert_pem: String,
    common_name: String,
    issuer: Issuer<'static, KeyPair>,
}

/// What goes into a client certificate's subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentitySpec {
    /// Subject common name (CN), e.g. a user or system id.
    pub common_name: String,
    /// Subject organisation (O), e.g. the requesting authority.
    pub organisation: String,
}

/// A leaf certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM. Secret: never logged, never in `Debug`.
    pub key_pem: String,
}

impl CertificateAuthority {
    /// Generates a self-signed CA (ECDSA P-256, 10 years) with subject CN `common_name`.
    ///
    /// The CA may only issue end-entity certificates (path length 0).
    pub fn generate(common_name: &str) -> Result<Self> {
        require_non_empty("ca common name", common_name)?;
        let key = generate_key(common_name)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(common_name, None);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        let certificate = params
            .self_signed(&key)
            .map_err(|source| TlsError::Generate {
                what: format!("ca certificate {common_name}"),
                source,
            })?;
        Ok(Self {
            cert_pem: certificate.pem(),
            common_name: common_name.to_owned(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its certificate and private key (PEM), e.g. written earlier by
    /// [`Self::cert_pem`] and [`Self::key_pem`].
    ///
    /// Refuses a certificate that is not a CA and a key that does not belong to the certificate,
    /// since either would only produce leaf certificates nobody can verify.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self> {
        let key = KeyPair::from_pem(key_pem).map_err(|source| TlsError::Generate {
            what: "ca key pair from pem".to_owned(),
            source,
        })?;
        let der = crate::pem::parse_certificates(cert_pem, "ca certificate")?
            .into_iter()
            .next()
            .ok_or(TlsError::NoCertificate {
                what: "ca certificate",
            })?;
        let invalid = |reason: String| TlsError::InvalidCertificate { what: "ca", reason };
        let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|error| invalid(format!("not x.509: {error}")))?;
        if !parsed.is_ca() {
            return Err(invalid(
                "basic constraints do not mark it as a ca".to_owned(),
            ));
        }
        if parsed.public_key().subject_public_key.data.as_ref()
            != rcgen::PublicKeyData::der_bytes(&key)
        {
            return Err(invalid(
                "private key does not match the certificate".to_owned(),
            ));
        }
        let common_name = parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_owned();
        let issuer = Issuer::from_ca_cert_der(&der, key).map_err(|source| TlsError::Generate {
            what: "ca issuer from certificate".to_owned(),
            source,
        })?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            common_name,
            issuer,
        })
    }

    /// The CA certificate, PEM: what servers and clients trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PEM (PKCS#8). Secret.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Issues a certificate for a service: usable as server AND as client certificate, since
    /// services also call each other.
    ///
    /// CN = `service_name`, O = [`SERVICE_ORGANISATION`], SANs = exactly `dns_names` and
    /// `ip_addresses` (nothing is added: pass "localhost" and 127.0.0.1 if you need them).
    /// At least one SAN is required; ECDSA P-256, 1 year.
    pub fn issue_server(
        &self,
        service_name: &str,
        dns_names: &[String],
        ip_addresses: &[IpAddr],
    ) -> Result<IssuedCertificate> {
        require_non_empty("service name", service_name)?;
        if dns_names.is_empty() && ip_addresses.is_empty() {
            return Err(TlsError::InvalidRequest {
                reason: format!(
                    "server certificate for {service_name} needs at least one dns name or ip address"
                ),
            });
        }
        let mut subject_alt_names = Vec::with_capacity(dns_names.len() + ip_addresses.len());
        for name in dns_names {
            let ia5 = rcgen::string::Ia5String::try_from(name.as_str()).map_err(|source| {
                TlsError::Generate {
                    what: format!("dns name {name:?} for {service_name}"),
                    source,
                }
            })?;
            subject_alt_names.push(SanType::DnsName(ia5));
        }
        subject_alt_names.extend(ip_addresses.iter().copied().map(SanType::IpAddress));

        let mut params = leaf_params(service_name, SERVICE_ORGANISATION);
        params.subject_alt_names = subject_alt_names;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.sign(params, &format!("server certificate for {service_name}"))
    }

    /// Issues a client certificate (client-auth EKU only) with the given CN and O; ECDSA
    /// P-256, 1 year.
    pub fn issue_client(&self, identity: &ClientIdentitySpec) -> Result<IssuedCertificate> {
        require_non_empty("client common name", &identity.common_name)?;
        require_non_empty("client organisation", &identity.organisation)?;
        let mut params = leaf_params(&identity.common_name, &identity.organisation);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(
            params,
            &format!("client certificate for {}", identity.common_name),
        )
    }

    fn sign(&self, params: CertificateParams, what: &str) -> Result<IssuedCertificate> {
        let key = generate_key(what)?;
        let certificate =
            params
                .signed_by(&key, &self.issuer)
                .map_err(|source| TlsError::Generate {
                    what: what.to_owned(),
                    source,
                })?;
        Ok(IssuedCertificate {
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl ClientIdentitySpec {
    /// The subject `CN=common_name, O=organisation`.
    pub fn new(common_name: &str, organisation: &str) -> ClientIdentitySpec {
        ClientIdentitySpec {
            common_name: common_name.to_owned(),
            organisation: organisation.to_owned(),
        }
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("common_name", &self.common_name)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

fn generate_key(for_what: &str) -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| TlsError::Generate {
        what: format!("key pair for {for_what}"),
        source,
    })
}

fn distinguished_name(common_name: &str, organisation: Option<&str>) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    if let Some(organisation) = organisation {
        name.push(DnType::OrganizationName, organisation);
    }
    name
}

fn leaf_params(common_name: &str, organisation: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(common_name, Some(organisation));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + LEAF_VALIDITY;
    params
}

fn require_non_empty(what: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(TlsError::InvalidRequest {
            reason: format!("{what} is empty"),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::test_certificates::{ca_and_client, der, internal_service_certificate};
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::UnixTime;
    use x509_parser::certificate::X509Certificate;
    use x509_parser::extensions::GeneralName;

    /// The trust store holding the certificates in `ca_pem`.
    fn roots(ca_pem: &str) -> std::sync::Arc<rustls::RootCertStore> {
        std::sync::Arc::new(crate::pem::parse_root_store(ca_pem, "ca").unwrap())
    }

    /// Asserts the subject's one CN and first O, read with x509-parser.
    fn assert_subject(cert: &X509Certificate<'_>, common_name: &str, organisation: &str) {
        let cn = cert.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), common_name);
        let o = cert.subject().iter_organization().next().unwrap();
        assert_eq!(o.as_str().unwrap(), organisation);
    }

    /// Verifies `leaf` as a client certificate under `ca_pem` with webpki (via rustls).
    fn verify_as_client(ca_pem: &str, leaf_pem: &str) -> std::result::Result<(), rustls::Error> {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots(ca_pem),
            crate::ring_provider(),
        )
        .build()
        .unwrap();
        verifier
            .verify_client_cert(&der(leaf_pem), &[], UnixTime::now())
            .map(|_| ())
    }

    /// Verifies `leaf` as a server certificate for `name` under `ca_pem`.
    fn verify_as_server(
        ca_pem: &str,
        leaf_pem: &str,
        name: &str,
    ) -> std::result::Result<(), rustls::Error> {
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            roots(ca_pem),
            crate::ring_provider(),
        )
        .build()
        .unwrap();
        let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        verifier
            .verify_server_cert(&der(leaf_pem), &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn server_certificate_has_subject_sans_and_both_ekus() {
        let ca = CertificateAuthority::generate("tryggdel dev ca").unwrap();
        let issued = internal_service_certificate(&ca, "disclosure");
        let der = der(&issued.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        assert_subject(&cert, "disclosure", SERVICE_ORGANISATION);
        assert!(!cert.is_ca());

        let san = cert.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = san
            .value
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::DNSName(d) => format!("dns:{d}"),
                GeneralName::IPAddress(ip) => format!("ip:{ip:?}"),
                other => format!("other:{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            vec![
                "dns:localhost".to_owned(),
                "dns:disclosure.internal".to_owned(),
                format!("ip:{:?}", [127u8, 0, 0, 1].as_slice()),
            ]
        );

        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);

        let validity = cert.validity().time_to_expiration().unwrap();
        assert!(validity > Duration::days(364) && validity <= Duration::days(366));

        verify_as_server(ca.cert_pem(), &issued.cert_pem, "localhost").unwrap();
        verify_as_server(ca.cert_pem(), &issued.cert_pem, "127.0.0.1").unwrap();
        verify_as_client(ca.cert_pem(), &issued.cert_pem).unwrap();
        // No SAN is added silently.
        assert!(verify_as_server(ca.cert_pem(), &issued.cert_pem, "example.org").is_err());
    }

    #[test]
    fn server_certificate_adds_nothing_silently() {
        let ca = CertificateAuthority::generate("ca").unwrap();
        let issued = ca
            .issue_server("audit", &["audit.internal".to_owned()], &[])
            .unwrap();
        assert!(verify_as_server(ca.cert_pem(), &issued.cert_pem, "audit.internal").is_ok());
        assert!(verify_as_server(ca.cert_pem(), &issued.cert_pem, "localhost").is_err());
        assert!(verify_as_server(ca.cert_pem(), &issued.cert_pem, "127.0.0.1").is_err());
    }

    #[test]
    fn client_certificate_is_client_auth_only() {
        let (ca, issued) = ca_and_client("handlaggare-17", "Skatteverket");
        let der = der(&issued.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        assert_subject(&cert, "handlaggare-17", "Skatteverket");
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);

        verify_as_client(ca.cert_pem(), &issued.cert_pem).unwrap();
        // The CA's check of EKU: a client-only certificate cannot act as a server.
        assert!(verify_as_server(ca.cert_pem(), &issued.cert_pem, "localhost").is_err());
    }

    #[test]
    fn ca_is_a_ca_for_ten_years() {
        let ca = CertificateAuthority::generate("tryggdel dev ca").unwrap();
        let der = der(ca.cert_pem());
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        assert!(cert.is_ca());
        let validity = cert.validity().time_to_expiration().unwrap();
        assert!(validity > Duration::days(3649));
    }

    #[test]
    fn from_pem_round_trip_issues_certificates_valid_under_the_original_ca() {
        let original = CertificateAuthority::generate("round trip ca").unwrap();
        let reloaded =
            CertificateAuthority::from_pem(original.cert_pem(), &original.key_pem()).unwrap();
        assert_eq!(reloaded.cert_pem(), original.cert_pem());
        assert_eq!(reloaded.key_pem(), original.key_pem());

        let client = reloaded
            .issue_client(&ClientIdentitySpec::new("after-reload", "Org"))
            .unwrap();
        verify_as_client(original.cert_pem(), &client.cert_pem).unwrap();
        let server = reloaded
            .issue_server("notification", &["localhost".to_owned()], &[])
            .unwrap();
        verify_as_server(original.cert_pem(), &server.cert_pem, "localhost").unwrap();

        // And a different CA does not accept it: the check above can fail.
        let other = CertificateAuthority::generate("round trip ca").unwrap();
        assert!(verify_as_client(other.cert_pem(), &client.cert_pem).is_err());
    }

    #[test]
    fn from_pem_refuses_mismatched_key_and_non_ca_certificate() {
        let ca = CertificateAuthority::generate("ca").unwrap();
        let other = CertificateAuthority::generate("ca").unwrap();
        let error = CertificateAuthority::from_pem(ca.cert_pem(), &other.key_pem()).unwrap_err();
        assert!(error.to_string().contains("does not match"), "{error}");

        let leaf = ca
            .issue_server("svc", &["localhost".to_owned()], &[])
            .unwrap();
        let error = CertificateAuthority::from_pem(&leaf.cert_pem, &leaf.key_pem).unwrap_err();
        assert!(error.to_string().contains("not mark it as a ca"), "{error}");

        assert!(CertificateAuthority::from_pem("", &ca.key_pem()).is_err());
        assert!(CertificateAuthority::from_pem(ca.cert_pem(), "").is_err());
    }

    #[test]
    fn invalid_requests_are_refused() {
        let ca = CertificateAuthority::generate("ca").unwrap();
        assert!(matches!(
            ca.issue_server("svc", &[], &[]),
            Err(TlsError::InvalidRequest { .. })
        ));
        assert!(ca.issue_server("", &["localhost".to_owned()], &[]).is_err());
        assert!(
            ca.issue_server("svc", &["bad name ä".to_owned()], &[])
                .is_err()
        );
        assert!(ca.issue_client(&ClientIdentitySpec::new("x", " ")).is_err());
        assert!(CertificateAuthority::generate("").is_err());
    }

    #[test]
    fn debug_never_prints_private_keys() {
        let ca = CertificateAuthority::generate("ca").unwrap();
        let issued = ca
            .issue_server("svc", &["localhost".to_owned()], &[])
            .unwrap();
        let issued_debug = format!("{issued:?}");
        assert!(!issued_debug.contains("PRIVATE KEY"), "{issued_debug}");
        assert!(!issued_debug.contains(issued.key_pem.lines().nth(1).unwrap()));
        assert!(issued_debug.contains("<redacted>"));
        let ca_debug = format!("{ca:?}");
        assert!(!ca_debug.contains("PRIVATE KEY"), "{ca_debug}");
        assert!(issued.key_pem.contains("PRIVATE KEY"));
    }
}
