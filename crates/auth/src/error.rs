//! The one error type of this crate, and its single mapping to `tonic::Status`.

/// Why a token, a header or a key was refused.
///
/// Variants are grouped by what the caller has to do: present a token at all
/// ([`AuthError::MissingToken`], [`AuthError::MalformedHeader`]), get a fresh or
/// different token (the token variants), or fix the service's configuration
/// ([`AuthError::Key`], [`AuthError::InvalidConfig`]).
///
/// Every field but one is a `&'static str` on purpose: a message can only ever hold text
/// written in this crate, never a token, a claim value or key material. The exception is the
/// `kid` of [`AuthError::UnusableKey`], which comes from the deployment's own key set, never
/// from a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization` metadata, or a `Bearer` scheme with nothing after it.
    #[error("missing bearer token")]
    MissingToken,
    /// The `authorization` metadata is not a single well-formed `Bearer <token>` value.
    #[error("malformed authorization header")]
    MalformedHeader,
    /// The token is not a well-formed, correctly signed JWT.
    #[error("invalid token: {reason}")]
    InvalidToken {
        /// A fixed description of what is wrong.
        reason: &'static str,
    },
    /// The token's `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// The token's `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// The token's `iss` is not the configured issuer.
    #[error("token issued by an untrusted issuer")]
    WrongIssuer,
    /// The token's `aud` is not the configured audience.
    #[error("token not intended for this audience")]
    WrongAudience,
    /// The token's header names an algorithm outside the allow-list (EdDSA, ES256, RS256,
    /// PS256; so `none` and every `HS*`), or one other than its key's own.
    #[error("token signed with a disallowed algorithm")]
    DisallowedAlgorithm,
    /// The token's `kid` names no key of the verifier's key set.
    #[error("token signed with an unknown key")]
    UnknownKey,
    /// A required claim is absent.
    #[error("token is missing the {name} claim")]
    MissingClaim {
        /// The claim's name, e.g. `roles`.
        name: &'static str,
    },
    /// A claim is present but has the wrong type or an unacceptable value.
    #[error("token has an invalid {name} claim: {reason}")]
    InvalidClaim {
        /// The claim's name, e.g. `sub`.
        name: &'static str,
        /// A fixed description of what is wrong.
        reason: &'static str,
    },
    /// A key could not be read, generated or used.
    #[error("key error: {context}")]
    Key {
        /// What was being done with the key.
        context: &'static str,
    },
    /// A key of a key set is refused: symmetric, private, of a disallowed algorithm, broken,
    /// or its `kid` repeated.
    #[error("key {kid} of the key set is refused: {reason}")]
    UnusableKey {
        /// The key's `kid`, as the key set names it.
        kid: String,
        /// A fixed description of what is wrong.
        reason: &'static str,
    },
    /// The verifier or signer configuration is unusable (empty issuer, excessive leeway, ...).
    #[error("invalid auth configuration: {reason}")]
    InvalidConfig {
        /// A fixed description of what is wrong.
        reason: &'static str,
    },
}

impl AuthError {
    /// The gRPC status a service returns for this error.
    ///
    /// Every problem with the caller's token or header is `UNAUTHENTICATED` with a
    /// short fixed message; key and configuration problems are the server's fault and
    /// become a bare `INTERNAL` (log the error itself on the server side).
    pub fn to_status(&self) -> tonic::Status {
        match self {
            AuthError::MissingToken => tonic::Status::unauthenticated("missing bearer token"),
            AuthError::MalformedHeader => {
                tonic::Status::unauthenticated("malformed authorization header")
            }
            AuthError::InvalidToken { .. } => tonic::Status::unauthenticated("invalid token"),
            AuthError::Expired => tonic::Status::unauthenticated("token expired"),
            AuthError::NotYetValid => tonic::Status::unauthenticated("token not yet valid"),
            AuthError::WrongIssuer => {
                tonic::Status::unauthenticated("token issued by an untrusted issuer")
            }
            AuthError::WrongAudience => {
                tonic::Status::unauthenticated("token not intended for this service")
            }
            AuthError::DisallowedAlgorithm => {
                tonic::Status::unauthenticated("token signed with a disallowed algorithm")
            }
            AuthError::UnknownKey => {
                tonic::Status::unauthenticated("token signed with an unknown key")
            }
            AuthError::MissingClaim { name } => {
                tonic::Status::unauthenticated(format!("token is missing the {name} claim"))
            }
            AuthError::InvalidClaim { name, .. } => {
                tonic::Status::unauthenticated(format!("token has an invalid {name} claim"))
            }
            AuthError::Key { .. }
            | AuthError::UnusableKey { .. }
            | AuthError::InvalidConfig { .. } => tonic::Status::internal("internal error"),
        }
    }

    /// Whether this error is the caller's (token or header) rather than the server's.
    pub fn is_caller_error(&self) -> bool {
        !matches!(
            self,
            AuthError::Key { .. } | AuthError::UnusableKey { .. } | AuthError::InvalidConfig { .. }
        )
    }
}

impl From<AuthError> for tonic::Status {
    fn from(error: AuthError) -> Self {
        error.to_status()
    }
}

/// Maps a `jsonwebtoken` error to ours. Only the kind is looked at; the error's
/// own text (which can quote parts of the token) is dropped.
pub(crate) fn from_jwt_error(error: &jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidToken => AuthError::InvalidToken {
            reason: "malformed token",
        },
        ErrorKind::InvalidSignature => AuthError::InvalidToken {
            reason: "signature does not verify",
        },
        ErrorKind::Base64(_) => AuthError::InvalidToken {
            reason: "token is not base64url",
        },
        ErrorKind::Json(_) => AuthError::InvalidToken {
            reason: "token header or payload is not the expected json",
        },
        ErrorKind::Utf8(_) => AuthError::InvalidToken {
            reason: "token is not utf-8",
        },
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm => AuthError::DisallowedAlgorithm,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidSubject => AuthError::InvalidClaim {
            name: "sub",
            reason: "unexpected subject",
        },
        ErrorKind::MissingRequiredClaim(name) => AuthError::MissingClaim {
            name: static_claim_name(name),
        },
        ErrorKind::InvalidClaimFormat(name) => AuthError::InvalidClaim {
            name: static_claim_name(name),
            reason: "wrong type",
        },
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => AuthError::Key {
            context: "key is not usable for its algorithm",
        },
        ErrorKind::RsaFailedSigning | ErrorKind::Signing(_) => AuthError::Key {
            context: "signing failed",
        },
        ErrorKind::Provider(_) => AuthError::Key {
            context: "crypto provider failed",
        },
        // `ErrorKind` is non-exhaustive: anything new is a refusal of the token.
        _ => AuthError::InvalidToken {
            reason: "token refused",
        },
    }
}

/// The registered claim names `jsonwebtoken` reports, as static strings.
fn static_claim_name(name: &str) -> &'static str {
    match name {
        "exp" => "exp",
        "nbf" => "nbf",
        "iss" => "iss",
        "aud" => "aud",
        "sub" => "sub",
        _ => "unknown",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn token_problems_are_unauthenticated_and_server_problems_internal() {
        let caller = [
            AuthError::MissingToken,
            AuthError::MalformedHeader,
            AuthError::InvalidToken { reason: "x" },
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::WrongIssuer,
            AuthError::WrongAudience,
            AuthError::DisallowedAlgorithm,
            AuthError::UnknownKey,
            AuthError::MissingClaim { name: "roles" },
            AuthError::InvalidClaim {
                name: "sub",
                reason: "empty",
            },
        ];
        for error in caller {
            assert!(error.is_caller_error());
            assert_eq!(error.to_status().code(), tonic::Code::Unauthenticated);
        }
        for error in [
            AuthError::Key { context: "x" },
            AuthError::UnusableKey {
                kid: "k1".into(),
                reason: "x",
            },
            AuthError::InvalidConfig { reason: "x" },
        ] {
            assert!(!error.is_caller_error());
            let status = error.to_status();
            assert_eq!(status.code(), tonic::Code::Internal);
            assert_eq!(status.message(), "internal error");
        }
    }

    #[test]
    fn status_messages_are_the_documented_ones() {
        assert_eq!(AuthError::Expired.to_status().message(), "token expired");
        assert_eq!(
            AuthError::DisallowedAlgorithm.to_status().message(),
            "token signed with a disallowed algorithm"
        );
        assert_eq!(
            AuthError::MissingToken.to_status().message(),
            "missing bearer token"
        );
        assert_eq!(
            AuthError::UnknownKey.to_status().message(),
            "token signed with an unknown key"
        );
        assert_eq!(
            AuthError::MissingClaim { name: "roles" }
                .to_status()
                .message(),
            "token is missing the roles claim"
        );
    }
}
