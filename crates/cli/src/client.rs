//! Calling the services as a user: the organisation's client certificate, a token, and
//! refusals turned into errors that say what to do, with exit codes scripts can trust.

use std::path::PathBuf;

use anyhow::bail;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tryggdel_proto::audit::v1::audit_service_client::AuditServiceClient;
use tryggdel_proto::audit::v1::subject_report_service_client::SubjectReportServiceClient;
use tryggdel_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use tryggdel_proto::notification::v1::notification_service_client::NotificationServiceClient;

use crate::token::Bearer;
use tryggdel_system::{DataDirectory, read};

/// Exit codes of every command (also in the README).
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// Could not run: bad arguments, a missing file, an unreachable service.
    pub const FAILED: u8 = 1;
    /// `audit verify`: the log does not verify.
    pub const NOT_VERIFIED: u8 = 2;
    /// Not authenticated: no token, an expired or invalid token, a certificate refused.
    pub const UNAUTHENTICATED: u8 = 3;
    /// Not permitted: the role, organisation, region or delegation does not allow it.
    pub const PERMISSION_DENIED: u8 = 4;
    /// Refused: invalid input, the wrong state, a stale version, not found.
    pub const REFUSED: u8 = 5;
}

/// A call the service refused, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{message}{hint}")]
pub struct Refusal {
    pub code: Code,
    pub message: String,
    pub hint: &'static str,
}

impl Refusal {
    /// The exit code for this refusal.
    pub fn exit_code(&self) -> u8 {
        match self.code {
            Code::Unauthenticated => exit::UNAUTHENTICATED,
            Code::PermissionDenied => exit::PERMISSION_DENIED,
            Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::NotFound
            | Code::AlreadyExists
            | Code::Aborted
            | Code::OutOfRange
            // A request over the service's message size limit.
            | Code::ResourceExhausted => exit::REFUSED,
            _ => exit::FAILED,
        }
    }
}

/// A refused call as an error that says what to do.
pub fn refused(status: Status) -> anyhow::Error {
    let hint = match status.code() {
        Code::Unauthenticated => {
            " — get a fresh token (`tryggdel dev-token --role … --user … --org …`) and pass it with --token or TRYGGDEL_TOKEN"
        }
        Code::PermissionDenied => " — your role, organisation or delegation does not allow this",
        Code::Aborted => " — someone changed it meanwhile: show it again and retry",
        Code::Unavailable => " — is the service running? It may be starting; try again shortly",
        Code::DeadlineExceeded => " — the service did not answer in time; try again",
        _ => "",
    };
    let message = if status.code() == Code::Unavailable && status.message().is_empty() {
        "the service is unavailable".to_owned()
    } else {
        status.message().to_owned()
    };
    anyhow::Error::new(Refusal {
        code: status.code(),
        message,
        hint,
    })
}

/// The exit code for an error a command returned.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Refusal>())
        .map_or(exit::FAILED, Refusal::exit_code)
}

/// How a user reaches one service.
#[derive(Clone, Debug)]
pub struct Connection {
    pub endpoint: String,
    /// The name the server certificate must carry.
    pub server_name: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub token: String,
}

pub type Authed = InterceptedService<Channel, Bearer>;

/// A disclosure service client that presents the user's certificate and token.
pub type DisclosureClient = DisclosureServiceClient<Authed>;

impl Connection {
    /// The development defaults for `organisation` in `data`.
    pub fn development(
        data: &DataDirectory,
        endpoint: &str,
        organisation: &str,
        token: String,
    ) -> Connection {
        Connection {
            endpoint: endpoint.to_owned(),
            server_name: "localhost".to_owned(),
            ca: data.ca_cert(),
            cert: data.client_cert(organisation),
            key: data.client_key(organisation),
            token,
        }
    }

    /// The same caller at another service.
    pub fn at(&self, endpoint: &str) -> Connection {
        Connection {
            endpoint: endpoint.to_owned(),
            ..self.clone()
        }
    }

    async fn channel(&self) -> anyhow::Result<Authed> {
        tryggdel_tls::install_crypto_provider();
        if self.token.trim().is_empty() {
            return Err(anyhow::Error::new(Refusal {
                code: Code::Unauthenticated,
                message: "no token".into(),
                hint: " — get one with `tryggdel dev-token --role … --user … --org …` and pass it with --token or TRYGGDEL_TOKEN",
            }));
        }
        for (what, path) in [
            ("CA certificate", &self.ca),
            ("client certificate", &self.cert),
            ("client key", &self.key),
        ] {
            if !path.exists() {
                bail!(
                    "the {what} {} does not exist: run `tryggdel start` once to create the development certificates (or check --org and --data-dir)",
                    path.display()
                );
            }
        }
        let channel = tryggdel_tls::connect_channel(
            &self.endpoint,
            &self.server_name,
            &read(&self.ca)?,
            &read(&self.cert)?,
            &read(&self.key)?,
        )
        .await
        .map_err(|error| {
            anyhow::anyhow!(
                "cannot reach {}: {error} — is `tryggdel start` running, and is the endpoint right?",
                self.endpoint
            )
        })?;
        Ok(InterceptedService::new(channel, Bearer::new(&self.token)?))
    }

    pub async fn disclosure(&self) -> anyhow::Result<DisclosureClient> {
        Ok(DisclosureServiceClient::new(self.channel().await?))
    }

    pub async fn notification(&self) -> anyhow::Result<NotificationServiceClient<Authed>> {
        Ok(NotificationServiceClient::new(self.channel().await?))
    }

    pub async fn audit(&self) -> anyhow::Result<AuditServiceClient<Authed>> {
        Ok(AuditServiceClient::new(self.channel().await?))
    }

    /// The audit service's subject reports.
    pub async fn subject_reports(&self) -> anyhow::Result<SubjectReportServiceClient<Authed>> {
        Ok(SubjectReportServiceClient::new(self.channel().await?))
    }

    pub async fn review(
        &self,
    ) -> anyhow::Result<
        tryggdel_proto::audit::v1::log_review_service_client::LogReviewServiceClient<Authed>,
    > {
        Ok(
            tryggdel_proto::audit::v1::log_review_service_client::LogReviewServiceClient::new(
                self.channel().await?,
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_exit_with_their_documented_codes() {
        let code = |code: Code| exit_code(&refused(tonic::Status::new(code, "refused")));
        assert_eq!(code(Code::Unauthenticated), exit::UNAUTHENTICATED);
        assert_eq!(code(Code::PermissionDenied), exit::PERMISSION_DENIED);
        assert_eq!(code(Code::InvalidArgument), exit::REFUSED);
        // A request over the service's message size limit is refused as it is.
        assert_eq!(code(Code::ResourceExhausted), exit::REFUSED);
        assert_eq!(code(Code::Unavailable), exit::FAILED);
    }
}
