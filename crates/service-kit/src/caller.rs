//! Who is calling: a user (verified token + certificate of the token's organisation) or a
//! Tryggdel service (certificate only).

use std::sync::Arc;

use tonic::Request;
use tryggdel_auth::{Principal, Role, TokenVerifier, bearer_token};
use tryggdel_domain::{Directory, Organisation, OrganisationCode, OrganisationKind};

use crate::ServiceError;

/// An authenticated user: a verified token whose organisation is registered and matches the
/// client certificate.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub organisation: Organisation,
    /// The trace id of this call (see [`trace_id`]).
    pub trace_id: String,
    /// The W3C `traceparent` of this call's server span (empty without tracing): work the
    /// call leaves in an outbox continues this trace when it is relayed.
    pub traceparent: String,
}

impl Caller {
    pub fn user(&self) -> &str {
        &self.principal.user_id
    }

    pub fn has(&self, role: Role) -> bool {
        self.principal.has_role(role)
    }

    /// Holds one of `roles`, or is refused naming what they tried to do.
    pub fn require_any(&self, roles: &[Role], action: &str) -> Result<(), ServiceError> {
        if roles.iter().any(|role| self.has(*role)) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
        Err(ServiceError::PermissionDenied(format!(
            "{action} requires the role {}",
            names.join(" or ")
        )))
    }

    /// A compliance officer of a supervisory organisation (e.g. IVO): may look across
    /// organisations.
    pub fn is_supervisor(&self) -> bool {
        matches!(self.organisation.kind(), OrganisationKind::Supervisor)
            && self.has(Role::ComplianceOfficer)
    }

    /// The caller's roles as wire names.
    pub fn role_names(&self) -> Vec<String> {
        self.principal
            .roles
            .iter()
            .map(|role| role.as_str().to_owned())
            .collect()
    }
}

/// A Tryggdel service, known by its certificate's common name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePeer {
    pub name: String,
}

/// Authenticates callers against the token verifier and the organisation directory.
#[derive(Clone)]
pub struct Authenticator {
    verifier: Arc<TokenVerifier>,
    directory: Arc<Directory>,
}

impl Authenticator {
    pub fn new(verifier: Arc<TokenVerifier>, directory: Arc<Directory>) -> Authenticator {
        Authenticator {
            verifier,
            directory,
        }
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The user behind `request`, or why not.
    pub fn user<T>(&self, request: &Request<T>) -> Result<Caller, ServiceError> {
        let peer = tryggdel_tls::peer_identity(request).ok_or_else(|| {
            ServiceError::Unauthenticated("a client certificate is required".into())
        })?;
        let token = bearer_token(request.metadata())?;
        let principal = self.verifier.verify(token)?;
        let code = OrganisationCode::parse(&principal.organisation).map_err(|_| {
            ServiceError::Unauthenticated("the token names an invalid organisation".into())
        })?;
        let organisation = self.directory.organisation(&code).cloned().ok_or_else(|| {
            ServiceError::PermissionDenied(format!(
                "organisation {code} is not registered in this deployment"
            ))
        })?;
        if peer.organisation.as_deref() != Some(code.as_str()) {
            return Err(ServiceError::PermissionDenied(
                "the client certificate does not belong to the token's organisation".into(),
            ));
        }
        Ok(Caller {
            principal,
            organisation,
            trace_id: trace_id(request.metadata()),
            traceparent: tryggdel_telemetry::current_traceparent().unwrap_or_default(),
        })
    }

    /// The service behind `request` if its certificate is a Tryggdel service certificate.
    pub fn service<T>(request: &Request<T>) -> Option<ServicePeer> {
        let peer = tryggdel_tls::peer_identity(request)?;
        if peer.organisation.as_deref() != Some(tryggdel_tls::SERVICE_ORGANISATION) {
            return None;
        }
        Some(ServicePeer {
            name: peer.common_name.clone(),
        })
    }
}

/// The W3C trace id of the request: the trace of the current span when tracing is on (the
/// server span continues the caller's `traceparent`), else from a valid `traceparent` header
/// if the caller sent one, otherwise a fresh random id, so that every event can be tied to the
/// call that caused it.
pub fn trace_id(metadata: &tonic::metadata::MetadataMap) -> String {
    if let Some(trace_id) = tryggdel_telemetry::current_trace_id() {
        return trace_id;
    }
    metadata
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_traceparent)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

fn parse_traceparent(value: &str) -> Option<String> {
    let mut parts = value.split('-');
    let (Some(version), Some(trace), Some(parent), Some(flags)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let hex = |text: &str, len: usize| {
        text.len() == len
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && hex(flags, 2);
    valid.then(|| trace.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_gives_its_trace_id() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        assert_eq!(trace_id(&metadata), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn an_invalid_or_missing_traceparent_gives_a_fresh_id() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "garbage",
        ] {
            let mut metadata = tonic::metadata::MetadataMap::new();
            metadata.insert("traceparent", bad.parse().unwrap());
            let id = trace_id(&metadata);
            assert_eq!(id.len(), 32, "{bad}");
            assert_ne!(id, "4bf92f3577b34da6a3ce929d0e0e4736");
        }
        let fresh = trace_id(&tonic::metadata::MetadataMap::new());
        assert!(parse_traceparent(&format!("00-{fresh}-00f067aa0ba902b7-01")).is_some());
    }
}
