//! The services' errors and their one mapping to gRPC statuses.

use tonic::{Code, Status};

/// What went wrong, by what the caller must do differently.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// Also returned when the thing exists but the caller may not know it does.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{field}: {problem}")]
    InvalidArgument { field: String, problem: String },
    #[error("stale version: expected {expected}, the record is at version {current}")]
    StaleVersion { expected: i64, current: i64 },
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// A service this one depends on is unreachable; the caller may retry.
    #[error("{0}")]
    Unavailable(String),
    /// A fault of ours; the cause is logged, never returned.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, problem: impl ToString) -> ServiceError {
        ServiceError::InvalidArgument {
            field: field.into(),
            problem: problem.to_string(),
        }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> ServiceError {
        ServiceError::Internal(error.into())
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Status {
        let code = match &error {
            ServiceError::Unauthenticated(_) => Code::Unauthenticated,
            ServiceError::PermissionDenied(_) => Code::PermissionDenied,
            ServiceError::NotFound(_) => Code::NotFound,
            ServiceError::InvalidArgument { .. } => Code::InvalidArgument,
            ServiceError::StaleVersion { .. } => Code::Aborted,
            ServiceError::FailedPrecondition(_) => Code::FailedPrecondition,
            ServiceError::AlreadyExists(_) => Code::AlreadyExists,
            ServiceError::Unavailable(_) => Code::Unavailable,
            ServiceError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
                Code::Internal
            }
        };
        Status::new(code, error.to_string())
    }
}

impl From<tryggdel_auth::AuthError> for ServiceError {
    fn from(error: tryggdel_auth::AuthError) -> ServiceError {
        if error.is_caller_error() {
            ServiceError::Unauthenticated(error.to_status().message().to_owned())
        } else {
            // A bad verification key or configuration is our fault, not the caller's.
            ServiceError::Internal(anyhow::Error::new(error).context("token verification"))
        }
    }
}

/// A database outage ([`tryggdel_storage::outage`]: unreachable, no answer within the
/// deadline, a commit of unknown outcome, a full disk, a read-only file) is UNAVAILABLE with
/// what the caller may do; anything else is a defect, INTERNAL. The outage's cause is logged
/// at DEBUG only: the transition of the database's state is the one line an outage logs.
impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> ServiceError {
        match tryggdel_storage::outage(&error) {
            Some(outage) => {
                tracing::debug!(error = %error, "database unavailable");
                ServiceError::Unavailable(outage.message().to_owned())
            }
            None => ServiceError::Internal(anyhow::Error::new(error).context("database")),
        }
    }
}

impl From<tryggdel_storage::SealingError> for ServiceError {
    fn from(error: tryggdel_storage::SealingError) -> ServiceError {
        ServiceError::Internal(anyhow::Error::new(error).context("field encryption"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak() {
        let status: Status =
            ServiceError::internal(anyhow::anyhow!("connection to 10.0.0.5 refused")).into();
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn token_problems_are_unauthenticated_and_key_problems_internal() {
        let status: Status = ServiceError::from(tryggdel_auth::AuthError::Expired).into();
        assert_eq!(status.code(), Code::Unauthenticated);
        let status: Status =
            ServiceError::from(tryggdel_auth::AuthError::Key { context: "pem" }).into();
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn database_outages_are_unavailable_and_defects_internal() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let status: Status = ServiceError::from(refused).into();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "the database is unavailable; retry later");

        let status: Status = ServiceError::from(sqlx::Error::PoolTimedOut).into();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status.message().contains("deadline"),
            "{}",
            status.message()
        );

        let lost = tryggdel_storage::commit_outcome_unknown(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        let status: Status = ServiceError::from(lost).into();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status
                .message()
                .contains("may or may not have been applied; retry with the same request id"),
            "{}",
            status.message()
        );

        let status: Status = ServiceError::from(sqlx::Error::RowNotFound).into();
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn invalid_argument_names_the_field() {
        let status: Status =
            ServiceError::invalid("content.victim.identity_number", "check digit mismatch").into();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "content.victim.identity_number: check digit mismatch"
        );
    }
}
