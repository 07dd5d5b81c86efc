//! Who is calling: a user (verified token + certificate of the token's organisation, or the
//! console's certificate forwarding the signed-in user's token) or a Tryggdel service
//! (certificate only). Every user refused is logged and counted (`refusals.rs`).

use std::sync::Arc;

use tonic::Request;
use tryggdel_auth::{AuthError, Principal, Role, bearer_token};
use tryggdel_domain::{Directory, Organisation, OrganisationCode, OrganisationKind};
use tryggdel_tls::PeerIdentity;

use crate::refusals::Refusals;
use crate::{ServiceError, TokenKeys};

/// The common name of the console's service certificate: the one service that makes calls on
/// a signed-in user's behalf, with the user's token.
pub const CONSOLE_SERVICE_NAME: &str = "console";

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

impl ServicePeer {
    /// Whether this is the console, which calls on its signed-in users' behalf.
    pub fn is_console(&self) -> bool {
        self.name == CONSOLE_SERVICE_NAME
    }
}

/// Authenticates callers against the identity provider's keys and the organisation directory.
#[derive(Clone)]
pub struct Authenticator {
    keys: Arc<TokenKeys>,
    directory: Arc<Directory>,
    refusals: Arc<Refusals>,
}

/// Why a user call is refused: the caller's fault, with its reason for the log and the
/// metric, or ours (a key or configuration problem, logged as an internal error).
struct Refused {
    reason: Option<&'static str>,
    error: ServiceError,
}

/// Who presents a user's token, by the client certificate.
enum Presenter {
    /// A user client, with a certificate of its organisation: the token's must be the same.
    Organisation(Option<String>),
    /// The console, forwarding its signed-in user's token.
    Console,
}

impl Authenticator {
    /// Refusals are counted with the global meter's instruments ([`crate::metrics::meter`]).
    pub fn new(keys: Arc<TokenKeys>, directory: Arc<Directory>) -> Authenticator {
        Authenticator {
            keys,
            directory,
            refusals: Arc::new(Refusals::new(&crate::metrics::meter())),
        }
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The user behind `request`, or why not.
    ///
    /// The token is always verified in full and its organisation must be registered. A user
    /// client's certificate must belong to the token's organisation; the console's service
    /// certificate may present any user's token (it forwards its signed-in user's); any other
    /// service certificate may not make user calls at all.
    ///
    /// A refusal is logged at WARN with its reason and the peer's address (at most once per
    /// peer and reason every ten seconds) and counted in `tryggdel.auth.refusals`.
    pub async fn user<T>(&self, request: &Request<T>) -> Result<Caller, ServiceError> {
        self.identify_user(request).await.map_err(|refused| {
            if let Some(reason) = refused.reason {
                let peer =
                    tryggdel_tls::server::peer_info(request).and_then(|info| info.remote_addr);
                self.refusals
                    .caller_refused(peer, reason, &refused.error.to_string());
            }
            refused.error
        })
    }

    async fn identify_user<T>(&self, request: &Request<T>) -> Result<Caller, Refused> {
        let peer = tryggdel_tls::peer_identity(request).ok_or_else(|| {
            Refused::caller(
                "no_certificate_identity",
                ServiceError::Unauthenticated("a client certificate is required".into()),
            )
        })?;
        let presenter =
            presenter(peer).map_err(|error| Refused::caller("service_certificate", error))?;
        let token = bearer_token(request.metadata()).map_err(Refused::token)?;
        let principal = self.keys.verify(token).await.map_err(Refused::token)?;
        let code = OrganisationCode::parse(&principal.organisation).map_err(|_| {
            Refused::caller(
                "invalid_organisation",
                ServiceError::Unauthenticated("the token names an invalid organisation".into()),
            )
        })?;
        let organisation = self.directory.organisation(&code).cloned().ok_or_else(|| {
            Refused::caller(
                "unregistered_organisation",
                ServiceError::PermissionDenied(format!(
                    "organisation {code} is not registered in this deployment"
                )),
            )
        })?;
        match presenter {
            Presenter::Console => {}
            Presenter::Organisation(certificate) => {
                if certificate.as_deref() != Some(code.as_str()) {
                    return Err(Refused::caller(
                        "organisation_mismatch",
                        ServiceError::PermissionDenied(
                            "the client certificate does not belong to the token's organisation"
                                .into(),
                        ),
                    ));
                }
            }
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
        service_peer(tryggdel_tls::peer_identity(request)?)
    }

    /// The service calling in its own name: a Tryggdel service certificate, but not the
    /// console's when it presents a user's token (then the call is the user's, see
    /// [`Authenticator::user`]).
    pub fn service_in_own_name<T>(request: &Request<T>) -> Option<ServicePeer> {
        let service = Authenticator::service(request)?;
        let forwards_user =
            service.is_console() && request.metadata().contains_key("authorization");
        (!forwards_user).then_some(service)
    }
}

impl Refused {
    fn caller(reason: &'static str, error: ServiceError) -> Refused {
        Refused {
            reason: Some(reason),
            error,
        }
    }

    /// A refused token or `authorization` header; a key or configuration problem is ours.
    fn token(error: AuthError) -> Refused {
        Refused {
            reason: token_refusal_reason(&error),
            error: ServiceError::from(error),
        }
    }
}

/// The reason a token or header is refused, as the metric and the log name it; None for a
/// problem of the service's own keys or configuration.
fn token_refusal_reason(error: &AuthError) -> Option<&'static str> {
    Some(match error {
        AuthError::MissingToken => "missing_token",
        AuthError::MalformedHeader => "malformed_header",
        AuthError::InvalidToken { .. } => "invalid_token",
        AuthError::Expired => "expired",
        AuthError::NotYetValid => "not_yet_valid",
        AuthError::WrongIssuer => "wrong_issuer",
        AuthError::WrongAudience => "wrong_audience",
        AuthError::DisallowedAlgorithm => "disallowed_algorithm",
        AuthError::UnknownKey => "unknown_key",
        AuthError::MissingClaim { .. } => "missing_claim",
        AuthError::InvalidClaim { .. } => "invalid_claim",
        AuthError::Key { .. } | AuthError::UnusableKey { .. } | AuthError::InvalidConfig { .. } => {
            return None;
        }
    })
}

fn service_peer(peer: &PeerIdentity) -> Option<ServicePeer> {
    (peer.organisation.as_deref() == Some(tryggdel_tls::SERVICE_ORGANISATION)).then(|| {
        ServicePeer {
            name: peer.common_name.clone(),
        }
    })
}

/// Who may present a user's token with this certificate: a user client of an organisation, or
/// the console; any other service is refused.
fn presenter(peer: &PeerIdentity) -> Result<Presenter, ServiceError> {
    match service_peer(peer) {
        None => Ok(Presenter::Organisation(peer.organisation.clone())),
        Some(service) if service.is_console() => Ok(Presenter::Console),
        Some(_) => Err(ServiceError::PermissionDenied(
            "service certificates other than the console's may not make user calls".into(),
        )),
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
    use std::time::Duration;

    use tryggdel_auth::{
        ClaimNames, SignerConfig, TokenRequest, TokenSigner, VerifierConfig,
        generate_ed25519_key_pair,
    };
    use tryggdel_domain::{DEVELOPMENT_DIRECTORY, LegalRegistry};
    use tryggdel_tls::PeerInfo;

    use super::*;

    const BOLLNAS: &str = "bollnas-kommun";
    const JONKOPING: &str = "jonkoping-kommun";

    /// An authenticator over the development directory, and a signer its keys trust.
    fn fixture() -> (Authenticator, TokenSigner) {
        let pair = generate_ed25519_key_pair().unwrap();
        let signer = TokenSigner::new(SignerConfig {
            issuer: "https://idp.test".into(),
            audience: "tryggdel".into(),
            private_key_pem: pair.private_key_pem,
        })
        .unwrap();
        let keys = TokenKeys::fixed(VerifierConfig {
            issuer: "https://idp.test".into(),
            audience: "tryggdel".into(),
            keys: signer.key_set(),
            claims: ClaimNames::default(),
            leeway_seconds: 5,
        })
        .unwrap();
        let registry = LegalRegistry::embedded().unwrap();
        let directory = Directory::from_toml(DEVELOPMENT_DIRECTORY, &registry).unwrap();
        (
            Authenticator::new(Arc::new(keys), Arc::new(directory)),
            signer,
        )
    }

    fn token(signer: &TokenSigner, organisation: &str) -> String {
        signer
            .mint(&TokenRequest {
                user_id: "handlaggare".into(),
                organisation: organisation.into(),
                unit: None,
                roles: vec![Role::Caseworker],
                police_region: None,
                display_name: None,
                valid_for: Duration::from_secs(60),
            })
            .unwrap()
    }

    /// A request over a connection whose client certificate says `common_name` and
    /// `organisation`, carrying `token` if given.
    fn request(common_name: &str, organisation: &str, token: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        request.extensions_mut().insert(PeerInfo {
            remote_addr: None,
            identity: Some(PeerIdentity {
                common_name: common_name.into(),
                organisation: Some(organisation.into()),
                dns_names: Vec::new(),
            }),
        });
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    }

    fn console(token: &str) -> Request<()> {
        request(
            CONSOLE_SERVICE_NAME,
            tryggdel_tls::SERVICE_ORGANISATION,
            Some(token),
        )
    }

    #[tokio::test]
    async fn a_user_certificate_must_be_of_the_tokens_organisation() {
        let (authenticator, signer) = fixture();
        let own = request("client", BOLLNAS, Some(&token(&signer, BOLLNAS)));
        let caller = authenticator.user(&own).await.unwrap();
        assert_eq!(caller.organisation.code().as_str(), BOLLNAS);
        let other = request("client", BOLLNAS, Some(&token(&signer, JONKOPING)));
        let refused = authenticator.user(&other).await.unwrap_err();
        assert!(
            matches!(refused, ServiceError::PermissionDenied(_)),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn the_console_may_present_any_registered_organisations_verified_token() {
        let (authenticator, signer) = fixture();
        for organisation in [BOLLNAS, JONKOPING] {
            let caller = authenticator
                .user(&console(&token(&signer, organisation)))
                .await
                .unwrap();
            assert_eq!(caller.organisation.code().as_str(), organisation);
        }
        // Still every check of the token and the directory.
        let unregistered = authenticator
            .user(&console(&token(&signer, "okand-kommun")))
            .await
            .unwrap_err();
        assert!(matches!(unregistered, ServiceError::PermissionDenied(_)));
        let (_, stranger) = fixture();
        let foreign = authenticator
            .user(&console(&token(&stranger, BOLLNAS)))
            .await
            .unwrap_err();
        assert!(matches!(foreign, ServiceError::Unauthenticated(_)));
        let missing = authenticator
            .user(&request(
                CONSOLE_SERVICE_NAME,
                tryggdel_tls::SERVICE_ORGANISATION,
                None,
            ))
            .await
            .unwrap_err();
        assert!(matches!(missing, ServiceError::Unauthenticated(_)));
    }

    #[tokio::test]
    async fn no_other_service_certificate_makes_user_calls() {
        let (authenticator, signer) = fixture();
        let audit = request(
            "audit",
            tryggdel_tls::SERVICE_ORGANISATION,
            Some(&token(&signer, BOLLNAS)),
        );
        match authenticator.user(&audit).await.unwrap_err() {
            ServiceError::PermissionDenied(message) => assert_eq!(
                message,
                "service certificates other than the console's may not make user calls"
            ),
            other => panic!("{other}"),
        }
        // A console common name under another organisation is an ordinary client.
        let impostor = request(
            CONSOLE_SERVICE_NAME,
            BOLLNAS,
            Some(&token(&signer, JONKOPING)),
        );
        assert!(matches!(
            authenticator.user(&impostor).await.unwrap_err(),
            ServiceError::PermissionDenied(_)
        ));
    }

    #[test]
    fn the_console_forwarding_a_token_is_not_a_service_in_its_own_name() {
        let service = |name: &str, token: Option<&str>| {
            Authenticator::service_in_own_name(&request(
                name,
                tryggdel_tls::SERVICE_ORGANISATION,
                token,
            ))
        };
        assert_eq!(service(CONSOLE_SERVICE_NAME, Some("t")), None);
        assert!(service(CONSOLE_SERVICE_NAME, None).unwrap().is_console());
        assert_eq!(service("audit", Some("t")).unwrap().name, "audit");
        assert_eq!(
            Authenticator::service_in_own_name(&request("client", BOLLNAS, None)),
            None
        );
    }

    #[test]
    fn refused_tokens_have_a_reason_and_our_own_key_problems_none() {
        assert_eq!(token_refusal_reason(&AuthError::Expired), Some("expired"));
        assert_eq!(
            token_refusal_reason(&AuthError::MissingToken),
            Some("missing_token")
        );
        assert_eq!(
            token_refusal_reason(&AuthError::InvalidClaim {
                name: "sub",
                reason: "empty"
            }),
            Some("invalid_claim")
        );
        assert_eq!(token_refusal_reason(&AuthError::Key { context: "x" }), None);
        assert_eq!(
            token_refusal_reason(&AuthError::InvalidConfig { reason: "x" }),
            None
        );
    }

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
