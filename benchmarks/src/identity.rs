//! The identity of a development deployment, read from its data directory: the CA that issues
//! the services' and the organisations' certificates, and the identity provider's token key.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tonic::transport::Channel;
use tryggdel_auth::{
    ClaimNames, Role, SignerConfig, SigningKeyPair, TokenRequest, TokenSigner, VerifierConfig,
};
use tryggdel_service_kit::{ClientTls, ServerTls, ServiceEndpoint};
use tryggdel_system::DataDirectory;
use tryggdel_system::development::{AUDIENCE, ISSUER};
use tryggdel_test_support::{connect, localhost_service_certificate, organisation_certificate};
use tryggdel_tls::{CertificateAuthority, IssuedCertificate};

/// The CA, and the identity provider's key and signer.
pub struct BenchIdentity {
    /// The development data directory the identity was read from.
    pub data: DataDirectory,
    pub ca: CertificateAuthority,
    pub keys: SigningKeyPair,
    issuer: String,
    audience: String,
    signer: TokenSigner,
}

impl BenchIdentity {
    /// The CA and token key of a development PKI written by `tryggdel pki` (what the services
    /// of a [`crate::cluster::Cluster`] trust).
    pub fn from_development_pki(data: &DataDirectory) -> anyhow::Result<BenchIdentity> {
        tryggdel_tls::install_crypto_provider();
        let read = |path: std::path::PathBuf| {
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        };
        let ca = CertificateAuthority::from_pem(&read(data.ca_cert())?, &read(data.ca_key())?)
            .context("the development CA")?;
        let keys = SigningKeyPair {
            private_key_pem: read(data.signing_key())?,
            public_key_pem: read(data.verifying_key())?,
        };
        let signer = TokenSigner::new(SignerConfig {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            private_key_pem: keys.private_key_pem.clone(),
        })
        .context("token signer")?;
        Ok(BenchIdentity {
            data: DataDirectory::new(&data.root),
            ca,
            keys,
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            signer,
        })
    }

    pub fn verifier_config(&self) -> VerifierConfig {
        VerifierConfig {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            keys: self.signer.key_set(),
            claims: ClaimNames::default(),
            leeway_seconds: 30,
        }
    }

    /// A token for `user` of `organisation` with `roles` (and a police region for officers).
    pub fn token(
        &self,
        user: &str,
        organisation: &str,
        roles: &[Role],
        police_region: Option<&str>,
        valid_for: Duration,
    ) -> anyhow::Result<String> {
        self.signer
            .mint(&TokenRequest {
                user_id: user.to_owned(),
                organisation: organisation.to_owned(),
                unit: Some("Enheten för våld i nära relationer".to_owned()),
                roles: roles.to_vec(),
                police_region: police_region.map(str::to_owned),
                display_name: None,
                valid_for,
            })
            .with_context(|| format!("token for {user}"))
    }

    /// A certificate of the Tryggdel service `name`, for localhost and 127.0.0.1.
    pub fn service_certificate(&self, name: &str) -> anyhow::Result<IssuedCertificate> {
        localhost_service_certificate(&self.ca, name)
    }

    pub fn server_tls(&self, name: &str) -> anyhow::Result<ServerTls> {
        let certificate = self.service_certificate(name)?;
        Ok(ServerTls {
            cert_chain_pem: certificate.cert_pem,
            key_pem: certificate.key_pem,
            client_ca_pem: self.ca.cert_pem().to_owned(),
        })
    }

    /// How service `name` reaches another service at `address`.
    pub fn endpoint(&self, name: &str, address: SocketAddr) -> anyhow::Result<ServiceEndpoint> {
        let certificate = self.service_certificate(name)?;
        Ok(ServiceEndpoint {
            uri: format!("https://{address}"),
            server_name: "localhost".to_owned(),
            tls: ClientTls {
                ca_pem: self.ca.cert_pem().to_owned(),
                cert_pem: certificate.cert_pem,
                key_pem: certificate.key_pem,
            },
            timeout: Duration::from_secs(30),
        })
    }

    /// A connected mTLS channel to `address` as the Tryggdel service `name`.
    pub async fn service_channel(
        &self,
        address: SocketAddr,
        name: &str,
    ) -> anyhow::Result<Channel> {
        connect(&self.ca, address, &self.service_certificate(name)?).await
    }

    /// A connected mTLS channel to `address` with a client certificate of `organisation`.
    pub async fn channel(
        &self,
        address: SocketAddr,
        organisation: &str,
    ) -> anyhow::Result<Channel> {
        connect(
            &self.ca,
            address,
            &organisation_certificate(&self.ca, organisation)?,
        )
        .await
    }
}

/// Adds `authorization: Bearer <token>` to every request.
pub type Bearer = tryggdel_test_support::BearerInterceptor;

/// The interceptor for `token`.
pub fn bearer(token: &str) -> anyhow::Result<Bearer> {
    Bearer::try_new(token).context("a token is ASCII")
}
