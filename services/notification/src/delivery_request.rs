//! A Deliver request checked once: [`ValidDelivery::parse`] runs every wire check, in the
//! order a caller can observe, and gives the handler typed fields instead of the request.
//!
//! Invariant: a [`ValidDelivery`] exists only for an approved disclosure of a registered
//! organisation with a county (so a police region), whose payload bytes are at most
//! [`MAX_PAYLOAD_BYTES`], hash to the SHA-256 the request names, are canonical, and name the
//! same disclosure, organisation, region, urgency, legal basis and registry version as the
//! request.

use sha2::{Digest, Sha256};
use tryggdel_domain::{Directory, Inbox, OrganisationCode, PersonRef, PolicePayload};

/// Most persons a delivery names (a disclosure concerns its subject and its victim).
const MAX_PERSON_REFS: usize = 16;
use tryggdel_proto::notification::v1::DeliverRequest;
use tryggdel_service_kit::ServiceError;

use crate::validate::{DisclosureId, MAX_TEXT_CHARS, is_sha256_hex, is_trace_id, required_text};

/// The largest payload Deliver takes.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// A Deliver request that passed every check.
#[derive(Clone, Debug)]
pub struct ValidDelivery {
    pub disclosure_id: DisclosureId,
    /// The disclosing organisation, registered in this deployment.
    pub organisation: OrganisationCode,
    /// The inbox the approved payload names: a police region (the organisation's county's,
    /// or the asking officer's for an answer to a request for information), or another
    /// law-enforcement authority's.
    pub police_region: Inbox,
    pub urgent: bool,
    pub payload: VerifiedPayload,
    pub approved_by: String,
    /// Positive.
    pub approved_at_unix_ms: i64,
    /// The trace id the sender named; None when it named none (the call's own is used).
    pub trace_id: Option<TraceId>,
    /// The persons the disclosure concerns, as keyed references (each parsed).
    pub person_refs: Vec<String>,
}

/// Payload bytes with their verified SHA-256, parsed as the canonical police payload.
#[derive(Clone, Debug)]
pub struct VerifiedPayload {
    bytes: Vec<u8>,
    sha256_hex: String,
    payload: PolicePayload,
}

/// A W3C trace id: 32 lowercase hex digits, not all zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceId(String);

impl ValidDelivery {
    /// Checks `request`, looking its organisation up in `directory`. The first failing check
    /// is the refusal: disclosure_id, organisation (format, registered, has a region), state
    /// (FAILED_PRECONDITION unless `approved`), payload size, payload_sha256 (format, then
    /// the payload's hash), payload (canonical, then the same disclosure, organisation and
    /// region), urgent, legal_basis_id, registry_version, approved_by, approved_at_unix_ms,
    /// trace_id.
    pub fn parse(
        request: DeliverRequest,
        directory: &Directory,
    ) -> Result<ValidDelivery, ServiceError> {
        let disclosure_id = DisclosureId::parse(&request.disclosure_id)?;
        let organisation = OrganisationCode::parse(&request.organisation)
            .map_err(|error| ServiceError::invalid("organisation", error))?;
        directory
            .organisation(&organisation)
            .ok_or_else(|| {
                ServiceError::invalid("organisation", "is not registered in this deployment")
            })?
            .secrecy()
            .ok_or_else(|| {
                ServiceError::invalid(
                    "organisation",
                    "holds no secrecy a disclosure breaks (only municipalities and healthcare \
                     providers disclose)",
                )
            })?;
        if request.state != "approved" {
            return Err(ServiceError::FailedPrecondition(format!(
                "only approved disclosures are delivered to the police; state is {:?}",
                request.state
            )));
        }
        let payload = VerifiedPayload::parse(request.payload, request.payload_sha256)?;
        payload.check_names(&disclosure_id, &organisation)?;
        let police_region = payload.police_payload().inbox();
        let police_payload = payload.police_payload();
        if police_payload.urgent() != request.urgent {
            return Err(ServiceError::invalid(
                "urgent",
                "differs from the payload's urgency",
            ));
        }
        if !request.legal_basis_id.is_empty()
            && request.legal_basis_id != police_payload.legal_basis().as_str()
        {
            return Err(ServiceError::invalid(
                "legal_basis_id",
                "differs from the payload's legal basis",
            ));
        }
        if !request.registry_version.is_empty()
            && request.registry_version != police_payload.registry_version()
        {
            return Err(ServiceError::invalid(
                "registry_version",
                "differs from the payload's registry version",
            ));
        }
        let approved_by = required_text("approved_by", &request.approved_by, MAX_TEXT_CHARS)?;
        if request.approved_at_unix_ms <= 0 {
            return Err(ServiceError::invalid(
                "approved_at_unix_ms",
                "must be a positive unix time in milliseconds",
            ));
        }
        let trace_id = TraceId::parse_optional(request.trace_id)?;
        if request.person_refs.len() > MAX_PERSON_REFS {
            return Err(ServiceError::invalid(
                "person_refs",
                format!("at most {MAX_PERSON_REFS}"),
            ));
        }
        let person_refs = request
            .person_refs
            .iter()
            .map(|text| {
                PersonRef::parse(text)
                    .map(|reference| reference.as_str().to_owned())
                    .map_err(|error| ServiceError::invalid("person_refs", error))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ValidDelivery {
            disclosure_id,
            organisation,
            police_region,
            urgent: request.urgent,
            payload,
            approved_by,
            approved_at_unix_ms: request.approved_at_unix_ms,
            trace_id,
            person_refs,
        })
    }
}

impl VerifiedPayload {
    /// At most [`MAX_PAYLOAD_BYTES`], `sha256_hex` 64 lowercase hex digits and the SHA-256 of
    /// `bytes`, and `bytes` the canonical form of a police payload.
    fn parse(bytes: Vec<u8>, sha256_hex: String) -> Result<VerifiedPayload, ServiceError> {
        if bytes.len() > MAX_PAYLOAD_BYTES {
            return Err(ServiceError::invalid(
                "payload",
                format!("at most {MAX_PAYLOAD_BYTES} bytes"),
            ));
        }
        if !is_sha256_hex(&sha256_hex) {
            return Err(ServiceError::invalid(
                "payload_sha256",
                "must be 64 lowercase hex digits",
            ));
        }
        if hex::encode(Sha256::digest(&bytes)) != sha256_hex {
            return Err(ServiceError::invalid(
                "payload_sha256",
                "does not match the SHA-256 of the payload: the payload is not the one bound \
                 at approval",
            ));
        }
        let payload = PolicePayload::from_canonical_bytes(&bytes)
            .map_err(|error| ServiceError::invalid("payload", error))?;
        Ok(VerifiedPayload {
            bytes,
            sha256_hex,
            payload,
        })
    }

    /// The payload must be about this disclosure, from this organisation.
    fn check_names(
        &self,
        disclosure_id: &DisclosureId,
        organisation: &OrganisationCode,
    ) -> Result<(), ServiceError> {
        let payload = &self.payload;
        if payload.disclosure_id() != disclosure_id.as_str() {
            return Err(ServiceError::invalid(
                "payload",
                "is for another disclosure than disclosure_id",
            ));
        }
        if payload.organisation_code() != organisation {
            return Err(ServiceError::invalid(
                "payload",
                "is from another organisation than organisation",
            ));
        }
        Ok(())
    }

    /// The exact bytes delivered (what the police receive).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The SHA-256 of [`Self::bytes`], 64 lowercase hex digits.
    pub fn sha256_hex(&self) -> &str {
        &self.sha256_hex
    }

    pub fn police_payload(&self) -> &PolicePayload {
        &self.payload
    }
}

impl TraceId {
    /// The `trace_id` field: empty (None) or a trace id.
    pub(crate) fn parse_optional(value: String) -> Result<Option<TraceId>, ServiceError> {
        if value.is_empty() {
            Ok(None)
        } else if is_trace_id(&value) {
            Ok(Some(TraceId(value)))
        } else {
            Err(ServiceError::invalid(
                "trace_id",
                "must be empty or 32 lowercase hex digits",
            ))
        }
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tonic::{Code, Status};
    use tryggdel_domain::{DEVELOPMENT_DIRECTORY, LegalRegistry};

    use super::*;
    use crate::fixtures::police_payload;
    use tryggdel_domain::PoliceRegion;

    const DISCLOSURE: &str = "0193a1b2-0000-7000-8000-000000000001";
    const BOLLNAS: &str = "bollnas-kommun";

    struct Fixture {
        registry: LegalRegistry,
        directory: Directory,
    }

    impl Fixture {
        fn new() -> Fixture {
            let registry = LegalRegistry::embedded().unwrap();
            let directory = Directory::from_toml(DEVELOPMENT_DIRECTORY, &registry).unwrap();
            Fixture {
                registry,
                directory,
            }
        }

        fn payload(&self, disclosure_id: &str, urgent: bool) -> PolicePayload {
            police_payload(
                &self.registry,
                &self.directory,
                disclosure_id,
                BOLLNAS,
                urgent,
                "Hot vid flytten.",
            )
        }

        fn approved(&self) -> DeliverRequest {
            let payload = self.payload(DISCLOSURE, true);
            DeliverRequest {
                disclosure_id: DISCLOSURE.to_uppercase(),
                organisation: BOLLNAS.into(),
                state: "approved".into(),
                urgent: true,
                payload: payload.canonical_bytes(),
                payload_sha256: payload.sha256_hex(),
                approved_by: "beslut-bollnas".into(),
                approved_at_unix_ms: 1_795_341_600_000,
                legal_basis_id: "OSL-10-18c".into(),
                registry_version: self.registry.registry_version().to_owned(),
                trace_id: String::new(),
                person_refs: vec![format!("hmac-sha256:{}", "ab".repeat(32))],
            }
        }

        /// The code of the refusal and the field it names first.
        fn refusal(&self, request: DeliverRequest) -> (Code, String) {
            let status: Status = ValidDelivery::parse(request, &self.directory)
                .unwrap_err()
                .into();
            let field = status
                .message()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned();
            (status.code(), field)
        }
    }

    #[test]
    fn an_approved_delivery_parses_into_typed_fields() {
        let fixture = Fixture::new();
        let request = fixture.approved();
        let valid = ValidDelivery::parse(request.clone(), &fixture.directory).unwrap();
        assert_eq!(valid.disclosure_id.as_str(), DISCLOSURE);
        assert_eq!(valid.organisation.as_str(), BOLLNAS);
        assert_eq!(valid.police_region, Inbox::Police(PoliceRegion::Mitt));
        assert!(valid.urgent);
        assert_eq!(valid.payload.bytes(), request.payload.as_slice());
        assert_eq!(valid.payload.sha256_hex(), request.payload_sha256);
        assert_eq!(valid.payload.police_payload().disclosure_id(), DISCLOSURE);
        assert_eq!(valid.approved_by, "beslut-bollnas");
        assert_eq!(valid.approved_at_unix_ms, 1_795_341_600_000);
        assert!(valid.trace_id.is_none());

        let traced = DeliverRequest {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            ..request
        };
        let valid = ValidDelivery::parse(traced, &fixture.directory).unwrap();
        assert_eq!(
            valid.trace_id.unwrap().into_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn each_check_refuses_naming_its_field() {
        let fixture = Fixture::new();
        let invalid = |field: &str| (Code::InvalidArgument, field.to_owned());
        let cases: Vec<(DeliverRequest, (Code, String))> = vec![
            (
                DeliverRequest {
                    disclosure_id: "not-a-uuid".into(),
                    ..fixture.approved()
                },
                invalid("disclosure_id"),
            ),
            (
                DeliverRequest {
                    organisation: "Bollnäs".into(),
                    ..fixture.approved()
                },
                invalid("organisation"),
            ),
            (
                DeliverRequest {
                    organisation: "okand-kommun".into(),
                    ..fixture.approved()
                },
                invalid("organisation"),
            ),
            (
                DeliverRequest {
                    organisation: "polisen".into(),
                    ..fixture.approved()
                },
                invalid("organisation"),
            ),
            (
                DeliverRequest {
                    state: "submitted".into(),
                    ..fixture.approved()
                },
                (
                    Code::FailedPrecondition,
                    "only approved disclosures are delivered to the police; state is \"submitted\""
                        .into(),
                ),
            ),
            (
                DeliverRequest {
                    payload: vec![b' '; MAX_PAYLOAD_BYTES + 1],
                    ..fixture.approved()
                },
                invalid("payload"),
            ),
            (
                DeliverRequest {
                    payload_sha256: fixture.approved().payload_sha256.to_uppercase(),
                    ..fixture.approved()
                },
                invalid("payload_sha256"),
            ),
            (
                DeliverRequest {
                    payload_sha256: "ab".repeat(32),
                    ..fixture.approved()
                },
                invalid("payload_sha256"),
            ),
            (
                DeliverRequest {
                    urgent: false,
                    ..fixture.approved()
                },
                invalid("urgent"),
            ),
            (
                DeliverRequest {
                    legal_basis_id: "OSL-10-2".into(),
                    ..fixture.approved()
                },
                invalid("legal_basis_id"),
            ),
            (
                DeliverRequest {
                    registry_version: "sha256:other".into(),
                    ..fixture.approved()
                },
                invalid("registry_version"),
            ),
            (
                DeliverRequest {
                    approved_by: String::new(),
                    ..fixture.approved()
                },
                invalid("approved_by"),
            ),
            (
                DeliverRequest {
                    approved_at_unix_ms: 0,
                    ..fixture.approved()
                },
                invalid("approved_at_unix_ms"),
            ),
            (
                DeliverRequest {
                    person_refs: vec!["19800517-1111".into()],
                    ..fixture.approved()
                },
                invalid("person_refs"),
            ),
            (
                DeliverRequest {
                    trace_id: "0".repeat(32),
                    ..fixture.approved()
                },
                invalid("trace_id"),
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(fixture.refusal(request), expected);
        }
        // Empty optional fields are not checked against the payload.
        let bare = DeliverRequest {
            legal_basis_id: String::new(),
            registry_version: String::new(),
            ..fixture.approved()
        };
        assert!(ValidDelivery::parse(bare, &fixture.directory).is_ok());
    }

    #[test]
    fn a_payload_must_name_this_disclosure() {
        let fixture = Fixture::new();
        let other = fixture.payload("0193a1b2-0000-7000-8000-000000000002", true);
        let swapped = DeliverRequest {
            payload: other.canonical_bytes(),
            payload_sha256: other.sha256_hex(),
            ..fixture.approved()
        };
        let status: Status = ValidDelivery::parse(swapped, &fixture.directory)
            .unwrap_err()
            .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "payload: is for another disclosure than disclosure_id"
        );
    }

    #[test]
    fn checks_run_in_order_the_first_failure_is_the_refusal() {
        let fixture = Fixture::new();
        // A bad id and a wrong state: the id is named.
        let both = DeliverRequest {
            disclosure_id: String::new(),
            state: "draft".into(),
            ..fixture.approved()
        };
        assert_eq!(
            fixture.refusal(both),
            (Code::InvalidArgument, "disclosure_id".into())
        );
        // A wrong state and a bad hash: the state is named.
        let both = DeliverRequest {
            state: "draft".into(),
            payload_sha256: String::new(),
            ..fixture.approved()
        };
        assert_eq!(fixture.refusal(both).0, Code::FailedPrecondition);
        // A bad hash and a bad trace id: the hash is named.
        let both = DeliverRequest {
            payload_sha256: String::new(),
            trace_id: "x".into(),
            ..fixture.approved()
        };
        assert_eq!(
            fixture.refusal(both),
            (Code::InvalidArgument, "payload_sha256".into())
        );
    }
}
