//! Test harness shared by the services' integration tests and the end-to-end tests: a
//! throw-away PKI and token keys, authenticated gRPC channels, and a fresh database per test
//! on SQLite or on the PostgreSQL server named by `TRYGGDEL_TEST_POSTGRES_URL`.
//!
//! Invariant: the PostgreSQL suite is skipped only when that variable is unset, and then says
//! so; with `TRYGGDEL_REQUIRE_POSTGRES=1` (set by CI) a skip is a failure.
//!
//! The tests' helpers stop the test at once with its cause when set-up fails (no PostgreSQL, a
//! certificate that will not generate), so they unwrap; each is built on a fallible helper
//! (certificates, channels, databases) that the benchmarks use with their own error handling,
//! so the two never keep copies of each other.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod draft;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use sqlx::Connection;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tryggdel_auth::{
    ClaimNames, KeySet, Role, SignerConfig, SigningKeyPair, TokenRequest, TokenSigner,
    VerifierConfig, generate_ed25519_key_pair,
};
use tryggdel_domain::PersonKey;
use tryggdel_proto::audit::v1::QueryRequest;
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_service_kit::{ClientTls, ServerTls, ServiceEndpoint};
use tryggdel_tls::{CertificateAuthority, ClientIdentitySpec, IssuedCertificate};

pub const ISSUER: &str = "https://idp.test.tryggdel.se";
pub const AUDIENCE: &str = "tryggdel";
pub const POSTGRES_URL_VARIABLE: &str = "TRYGGDEL_TEST_POSTGRES_URL";
pub const REQUIRE_POSTGRES_VARIABLE: &str = "TRYGGDEL_REQUIRE_POSTGRES";

/// A CA with a server certificate, and the token-signing key pair of an identity provider,
/// made for one test or read from a development data directory.
pub struct TestIdentity {
    pub ca: CertificateAuthority,
    pub server: IssuedCertificate,
    pub keys: SigningKeyPair,
    /// The identity provider's issuer its tokens name.
    pub issuer: String,
}

impl TestIdentity {
    pub fn generate() -> TestIdentity {
        tryggdel_tls::install_crypto_provider();
        let ca = CertificateAuthority::generate("Tryggdel test CA").unwrap();
        TestIdentity::with(ca, generate_ed25519_key_pair().unwrap(), ISSUER)
    }

    /// The identity of a deployment whose CA and token keys are these PEM texts (as a
    /// development data directory holds them), with tokens issued by `issuer`.
    pub fn from_pem(
        ca_cert_pem: &str,
        ca_key_pem: &str,
        keys: SigningKeyPair,
        issuer: &str,
    ) -> TestIdentity {
        tryggdel_tls::install_crypto_provider();
        let ca = CertificateAuthority::from_pem(ca_cert_pem, ca_key_pem).unwrap();
        TestIdentity::with(ca, keys, issuer)
    }

    fn with(ca: CertificateAuthority, keys: SigningKeyPair, issuer: &str) -> TestIdentity {
        let server = localhost_service_certificate(&ca, "disclosure").unwrap();
        TestIdentity {
            ca,
            server,
            keys,
            issuer: issuer.to_owned(),
        }
    }

    /// A client certificate of `organisation` (its O attribute), as a user client presents.
    pub fn client_certificate(&self, organisation: &str) -> IssuedCertificate {
        organisation_certificate(&self.ca, organisation).unwrap()
    }

    /// What a verifier of this identity provider's tokens trusts: its one key, named by its
    /// thumbprint as its signer names it.
    pub fn verifier_config(&self) -> VerifierConfig {
        VerifierConfig {
            issuer: self.issuer.clone(),
            audience: AUDIENCE.to_owned(),
            keys: KeySet::single_ed25519_pem(&self.keys.public_key_pem).unwrap(),
            claims: ClaimNames::default(),
            leeway_seconds: 5,
        }
    }

    pub fn signer(&self) -> TokenSigner {
        TokenSigner::new(SignerConfig {
            issuer: self.issuer.clone(),
            audience: AUDIENCE.to_owned(),
            private_key_pem: self.keys.private_key_pem.clone(),
        })
        .unwrap()
    }

    /// A valid token for the development directory's caseworker or decision maker of
    /// `organisation` ([`caseworker_of`], [`decision_maker_of`]), with that one role.
    pub fn role_token(&self, organisation: &str, role: Role) -> String {
        let user = match role {
            Role::DecisionMaker => decision_maker_of(organisation),
            _ => caseworker_of(organisation),
        };
        self.token(&user, organisation, &[role])
    }

    /// A valid token for `user` of `organisation` with `roles`.
    pub fn token(&self, user: &str, organisation: &str, roles: &[Role]) -> String {
        self.signer()
            .mint(&TokenRequest {
                user_id: user.to_owned(),
                organisation: organisation.to_owned(),
                unit: Some("Enheten för våld i nära relationer".to_owned()),
                roles: roles.to_vec(),
                police_region: None,
                display_name: None,
                valid_for: Duration::from_secs(600),
            })
            .unwrap()
    }

    /// A valid token for an officer `user` of the law-enforcement authority `organisation`,
    /// naming police `region` when given (the police's officers need one).
    pub fn officer_token(&self, user: &str, organisation: &str, region: Option<&str>) -> String {
        self.signer()
            .mint(&TokenRequest {
                user_id: user.to_owned(),
                organisation: organisation.to_owned(),
                unit: None,
                roles: vec![Role::PoliceOfficer],
                police_region: region.map(str::to_owned),
                display_name: None,
                valid_for: Duration::from_secs(600),
            })
            .unwrap()
    }

    /// A certificate of the Tryggdel service `name` (server and client use), for 127.0.0.1.
    pub fn service_certificate(&self, name: &str) -> IssuedCertificate {
        localhost_service_certificate(&self.ca, name).unwrap()
    }

    /// The listener TLS of service `name`.
    pub fn server_tls(&self, name: &str) -> ServerTls {
        let certificate = self.service_certificate(name);
        ServerTls {
            cert_chain_pem: certificate.cert_pem,
            key_pem: certificate.key_pem,
            client_ca_pem: self.ca.cert_pem().to_owned(),
        }
    }

    /// What service `name` presents when it calls another service.
    pub fn client_tls(&self, name: &str) -> ClientTls {
        let certificate = self.service_certificate(name);
        ClientTls {
            ca_pem: self.ca.cert_pem().to_owned(),
            cert_pem: certificate.cert_pem,
            key_pem: certificate.key_pem,
        }
    }

    /// How service `name` reaches another service at `address`.
    pub fn endpoint(&self, name: &str, address: SocketAddr) -> ServiceEndpoint {
        ServiceEndpoint {
            uri: format!("https://{address}"),
            server_name: "localhost".to_owned(),
            tls: self.client_tls(name),
            timeout: Duration::from_secs(5),
        }
    }

    /// An mTLS channel to `address` as the Tryggdel service `name`.
    pub async fn service_channel(&self, address: SocketAddr, name: &str) -> Channel {
        connect(&self.ca, address, &self.service_certificate(name))
            .await
            .unwrap()
    }

    /// An mTLS channel to `address` with a client certificate of `organisation`.
    pub async fn channel(&self, address: SocketAddr, organisation: &str) -> Channel {
        connect(&self.ca, address, &self.client_certificate(organisation))
            .await
            .unwrap()
    }

    /// The entries about one disclosure in the audit log at `audit`, in log order, as the JSON
    /// they are, read by IVO's compliance officer.
    pub async fn audit_entries(
        &self,
        audit: SocketAddr,
        disclosure_id: &str,
    ) -> Vec<serde_json::Value> {
        let channel = self.channel(audit, "ivo").await;
        let token = self.token("granskare-ivo", "ivo", &[Role::ComplianceOfficer]);
        let mut officer =
            AuditServiceClient::with_interceptor(channel, BearerInterceptor::new(&token));
        officer
            .query(QueryRequest {
                disclosure_id: disclosure_id.into(),
                ..QueryRequest::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries
            .iter()
            .map(merged_entry)
            .collect()
    }
}

/// An entry's JSON as a reader sees it: the leaf with the personal data of its openings
/// (entry format 2: person references, outcome detail, free-text details) merged in.
pub fn merged_entry(entry: &tryggdel_proto::audit::v1::Entry) -> serde_json::Value {
    let mut value: serde_json::Value = serde_json::from_slice(&entry.entry).unwrap();
    for opening in &entry.openings {
        let data: serde_json::Value = serde_json::from_slice(&opening.data).unwrap();
        for (field, part) in data.as_object().into_iter().flatten() {
            match (&mut value[field], part) {
                (serde_json::Value::Array(list), serde_json::Value::Array(more)) => {
                    list.extend(more.iter().cloned());
                }
                (serde_json::Value::Object(map), serde_json::Value::Object(more)) => {
                    map.extend(more.clone());
                }
                (slot, part) => *slot = part.clone(),
            }
        }
    }
    value
}

/// A certificate of the Tryggdel service `name` (server and client use) for localhost and
/// 127.0.0.1, issued by `ca`.
pub fn localhost_service_certificate(
    ca: &CertificateAuthority,
    name: &str,
) -> anyhow::Result<IssuedCertificate> {
    ca.issue_server(name, &["localhost".to_owned()], &[[127, 0, 0, 1].into()])
        .with_context(|| format!("certificate of service {name}"))
}

/// A client certificate of `organisation` (its O attribute), as a user client presents,
/// issued by `ca`.
pub fn organisation_certificate(
    ca: &CertificateAuthority,
    organisation: &str,
) -> anyhow::Result<IssuedCertificate> {
    ca.issue_client(&ClientIdentitySpec {
        common_name: format!("client.{organisation}"),
        organisation: organisation.to_owned(),
    })
    .with_context(|| format!("client certificate of {organisation}"))
}

/// A connected mTLS channel to `address` (server name localhost) presenting `certificate`,
/// trusting `ca`.
pub async fn connect(
    ca: &CertificateAuthority,
    address: SocketAddr,
    certificate: &IssuedCertificate,
) -> anyhow::Result<Channel> {
    tryggdel_tls::connect_channel(
        &format!("https://{address}"),
        "localhost",
        ca.cert_pem(),
        &certificate.cert_pem,
        &certificate.key_pem,
    )
    .await
    .with_context(|| format!("connecting to {address}"))
}

/// A random per-deployment person key.
pub fn person_key() -> PersonKey {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    PersonKey::from_bytes(bytes)
}

/// A random Ed25519 key for signing checkpoints.
pub fn log_signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng)
}

/// A client of the notification service with a user's token (a police officer's, say).
pub type NotificationClient =
    tryggdel_proto::notification::v1::notification_service_client::NotificationServiceClient<
        tonic::service::interceptor::InterceptedService<Channel, BearerInterceptor>,
    >;

/// `officer` acknowledges the delivery of `disclosure_id` under `police_reference`: the
/// signed receipt, or the refusal.
pub async fn acknowledge(
    officer: &mut NotificationClient,
    disclosure_id: &str,
    police_reference: &str,
) -> Result<tryggdel_proto::notification::v1::Receipt, tonic::Status> {
    officer
        .acknowledge(tryggdel_proto::notification::v1::AcknowledgeRequest {
            disclosure_id: disclosure_id.to_owned(),
            police_reference: police_reference.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The rounds of the escalations of `disclosure_id` that `client` sees, oldest first.
pub async fn escalation_rounds(client: &mut NotificationClient, disclosure_id: &str) -> Vec<u32> {
    client
        .list_escalations(tryggdel_proto::notification::v1::ListEscalationsRequest {
            disclosure_id: disclosure_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .escalations
        .iter()
        .map(|escalation| escalation.round)
        .collect()
}

/// An organisation's short name in the development directory's user names:
/// bollnas-kommun → bollnas, region-gavleborg → gavleborg.
pub fn short_name(organisation: &str) -> &str {
    organisation
        .trim_end_matches("-kommun")
        .trim_start_matches("region-")
}

/// The development directory's caseworker of `organisation` (`handlaggare-<short name>`).
pub fn caseworker_of(organisation: &str) -> String {
    format!("handlaggare-{}", short_name(organisation))
}

/// The development directory's decision maker of `organisation` (`beslut-<short name>`).
pub fn decision_maker_of(organisation: &str) -> String {
    format!("beslut-{}", short_name(organisation))
}

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub struct BearerInterceptor(MetadataValue<Ascii>);

impl BearerInterceptor {
    pub fn new(token: &str) -> BearerInterceptor {
        BearerInterceptor::try_new(token).unwrap()
    }

    /// For a token that may not be ASCII (one that is not, no server accepts).
    pub fn try_new(
        token: &str,
    ) -> Result<BearerInterceptor, tonic::metadata::errors::InvalidMetadataValue> {
        Ok(BearerInterceptor(format!("Bearer {token}").parse()?))
    }
}

impl tonic::service::Interceptor for BearerInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// A database that exists only for one test.
pub struct TestDatabase {
    pub url: String,
    _directory: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

/// The PostgreSQL server for tests, or None (with a note on stderr) when it is not configured.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var(REQUIRE_POSTGRES_VARIABLE).is_ok_and(|value| value == "1") {
                panic!("{REQUIRE_POSTGRES_VARIABLE}=1 but {POSTGRES_URL_VARIABLE} is not set");
            }
            eprintln!(
                "postgres suite skipped: set {POSTGRES_URL_VARIABLE}=postgres://user@host:port/db to run it"
            );
            None
        }
    }
}

/// `url` with its database name replaced by `database` (query string kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|index| index + 3).unwrap_or(0);
    let host_end = base[after_scheme..]
        .find('/')
        .map(|index| after_scheme + index)
        .unwrap_or(base.len());
    let mut result = format!("{}/{database}", &base[..host_end]);
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}

/// Creates the empty PostgreSQL database `name` on the server of `admin_url`.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    execute_on_server(
        admin_url,
        &format!("CREATE DATABASE {name}"),
        &format!("creating database {name}"),
    )
    .await
}

/// Drops the PostgreSQL database `name` if it exists, ending its connections.
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    execute_on_server(
        admin_url,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        &format!("dropping database {name}"),
    )
    .await
}

/// `url` without user name and password, for printing.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Runs one `statement` on its own connection to the server of `admin_url`; `doing` names the
/// statement in the error.
async fn execute_on_server(admin_url: &str, statement: &str, doing: &str) -> anyhow::Result<()> {
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", redacted(admin_url)))?;
    sqlx::query(statement)
        .execute(&mut admin)
        .await
        .with_context(|| doing.to_owned())?;
    admin.close().await.ok();
    Ok(())
}

impl TestDatabase {
    /// A fresh, empty database, or None when the backend is PostgreSQL and none is configured.
    pub async fn create(backend: TestBackend) -> Option<TestDatabase> {
        match backend {
            TestBackend::Sqlite => {
                let directory = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", directory.path().join("test.db").display());
                Some(TestDatabase {
                    url,
                    _directory: Some(directory),
                    postgres: None,
                })
            }
            TestBackend::Postgres => {
                let admin_url = postgres_admin_url()?;
                let run = std::env::var("TRYGGDEL_TEST_RUN_ID").unwrap_or_else(|_| "local".into());
                let name = format!("tryggdel_test_{run}_{}", uuid::Uuid::new_v4().simple());
                create_postgres_database(&admin_url, &name)
                    .await
                    .with_context(|| format!("a test database on {POSTGRES_URL_VARIABLE}"))
                    .unwrap();
                Some(TestDatabase {
                    url: with_database(&admin_url, &name),
                    _directory: None,
                    postgres: Some((admin_url, name)),
                })
            }
        }
    }

    /// Removes a PostgreSQL test database (SQLite files go with their directory).
    pub async fn remove(self) {
        if let Some((admin_url, name)) = &self.postgres {
            // A database left behind is dropped by the test command's clean-up.
            drop_postgres_database(admin_url, name).await.ok();
        }
    }
}

/// Defines each named scenario `async fn name(backend: TestBackend)` as two tests,
/// `sqlite::name` and `postgres::name`. The calling module must import `TestBackend`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::TestBackend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::TestBackend::Postgres).await })*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
