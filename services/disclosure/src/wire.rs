//! The wire forms of the service's records: domain and store types to and from the
//! `tryggdel.disclosure.v1` messages, and the list's page tokens. Pure mapping; each enum is
//! mapped in exactly one place here.

use prost::Message;
use tryggdel_domain::DisclosureState;
use tryggdel_proto::common::v1::DisclosureState as WireState;
use tryggdel_proto::disclosure::v1::{
    Assessment as WireAssessment, Condition, Decision as WireDecision,
    Delegation as WireDelegation, DeliveryRecord, Disclosure, DisclosureSummary, DraftContent,
    ListOrder, ProtectedDetails,
};
use tryggdel_service_kit::{
    ServiceError, decode_page_token, encode_page_token, invalid_page_token,
};

use crate::content;
use crate::expiry::Expiry;
use crate::store::{Decision, DeliveryRow, DisclosureRecord};

/// A state on the wire.
pub(crate) fn wire_state(state: DisclosureState) -> WireState {
    match state {
        DisclosureState::Draft => WireState::Draft,
        DisclosureState::Submitted => WireState::Submitted,
        DisclosureState::Approved => WireState::Approved,
        DisclosureState::Delivered => WireState::Delivered,
        DisclosureState::Acknowledged => WireState::Acknowledged,
        DisclosureState::Rejected => WireState::Rejected,
        DisclosureState::Withdrawn => WireState::Withdrawn,
        DisclosureState::Expired => WireState::Expired,
    }
}

/// A list's state filter: None for unspecified (every state), INVALID_ARGUMENT on `state` for
/// a number that names no state.
pub(crate) fn state_filter(state: i32) -> Result<Option<DisclosureState>, ServiceError> {
    let state =
        WireState::try_from(state).map_err(|_| ServiceError::invalid("state", "unknown state"))?;
    Ok(DisclosureState::ALL
        .into_iter()
        .find(|candidate| wire_state(*candidate) == state))
}

pub(crate) fn wire_assessment(assessment: &tryggdel_domain::Assessment) -> WireAssessment {
    WireAssessment {
        legal_basis_id: assessment.basis().as_str().to_owned(),
        as_of: content::format_date(assessment.as_of()),
        registry_version: assessment.registry_version().to_owned(),
        catalogue_version: assessment.catalogue_version().to_owned(),
        passed: assessment.passed(),
        conditions: assessment
            .conditions()
            .iter()
            .map(|condition| Condition {
                key: condition.key().to_owned(),
                passed: condition.passed(),
                reason: condition.reason().to_owned(),
                needs_judgement: condition.needs_judgement(),
            })
            .collect(),
        suggested_bases: assessment
            .suggestions()
            .iter()
            .map(|id| id.as_str().to_owned())
            .collect(),
        needs_judgement: assessment.needs_judgement(),
        decision_delegation: None,
    }
}

pub(crate) fn wire_delivery(delivery: DeliveryRow) -> DeliveryRecord {
    DeliveryRecord {
        police_region: delivery.police_region,
        delivered_at_unix_ms: delivery.delivered_at,
        police_reference: delivery.police_reference,
        acknowledged_by: delivery.acknowledged_by,
        acknowledged_at_unix_ms: delivery.acknowledged_at,
        receipt_statement: delivery.receipt_statement.unwrap_or_default(),
        receipt_signature: delivery.receipt_signature.unwrap_or_default(),
        receipt_key_id: delivery.receipt_key_id,
    }
}

/// A disclosure with its opened `content` and the protected details to show (masked or not,
/// as `revealed` says), and when it expires untouched under `expiry`; without its delivery
/// record.
pub(crate) fn disclosure(
    record: &DisclosureRecord,
    expiry: &Expiry,
    mut content: DraftContent,
    protected: ProtectedDetails,
    revealed: bool,
) -> Result<Disclosure, ServiceError> {
    content.victim_protected = Some(protected);
    let decision = record.decision.as_ref().map(wire_decision).transpose()?;
    Ok(Disclosure {
        id: record.id.clone(),
        version: record.version,
        state: wire_state(record.state) as i32,
        organisation: record.organisation.clone(),
        police_region: record.police_region.clone(),
        content: Some(content),
        protected_revealed: revealed,
        drafted_by: record.drafted_by.clone(),
        created_at_unix_ms: record.created_at,
        updated_at_unix_ms: record.updated_at,
        submitted_by: record.submitted_by.clone(),
        submitted_at_unix_ms: record.submitted_at,
        decision,
        delivery: None,
        payload_preview: None,
        expires_at_unix_ms: expiry.expires_at(record).unwrap_or_default(),
    })
}

/// A disclosure in a list, with when it expires untouched under `expiry`: no personal data.
pub(crate) fn summary(record: &DisclosureRecord, expiry: &Expiry) -> DisclosureSummary {
    DisclosureSummary {
        id: record.id.clone(),
        version: record.version,
        state: wire_state(record.state) as i32,
        organisation: record.organisation.clone(),
        legal_basis_id: record.legal_basis_id.clone(),
        urgent: record.urgent,
        drafted_by: record.drafted_by.clone(),
        created_at_unix_ms: record.created_at,
        updated_at_unix_ms: record.updated_at,
        submitted_at_unix_ms: record.submitted_at,
        expires_at_unix_ms: expiry.expires_at(record).unwrap_or_default(),
    }
}

/// The token of the list page after `record` in `order`.
pub(crate) fn page_token_after(record: &DisclosureRecord, order: ListOrder) -> String {
    match order {
        ListOrder::NewestFirst => encode_position(record.created_at, &record.id),
        ListOrder::DecisionQueue => encode_page_token(&format!(
            "q:{}:{}:{}",
            u8::from(record.urgent),
            record.submitted_at,
            record.id
        )),
    }
}

/// Where a decision-queue page continues, from a token this service issued.
pub(crate) fn queue_position(token: &str) -> Result<(bool, i64, String), ServiceError> {
    let text = decode_page_token(token)?;
    let mut parts = text.splitn(4, ':');
    let (Some("q"), Some(urgent), Some(time), Some(id)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid_page_token());
    };
    let urgent = match urgent {
        "0" => false,
        "1" => true,
        _ => return Err(invalid_page_token()),
    };
    let time = time.parse::<i64>().map_err(|_| invalid_page_token())?;
    let id = uuid::Uuid::parse_str(id).map_err(|_| invalid_page_token())?;
    Ok((urgent, time, id.to_string()))
}

/// The (created at, id) a list continues after, from a token this service issued.
pub(crate) fn page_position(token: &str) -> Result<(i64, String), ServiceError> {
    let text = decode_page_token(token)?;
    let (time, id) = text.split_once(':').ok_or_else(invalid_page_token)?;
    let time = time.parse::<i64>().map_err(|_| invalid_page_token())?;
    let id = uuid::Uuid::parse_str(id).map_err(|_| invalid_page_token())?;
    Ok((time, id.to_string()))
}

fn encode_position(created_at: i64, id: &str) -> String {
    encode_page_token(&format!("{created_at}:{id}"))
}

fn wire_decision(decision: &Decision) -> Result<WireDecision, ServiceError> {
    let assessment = match &decision.assessment {
        Some(bytes) => Some(WireAssessment::decode(bytes.as_slice()).map_err(|error| {
            ServiceError::internal(anyhow::Error::new(error).context("assessment"))
        })?),
        None => None,
    };
    Ok(WireDecision {
        outcome: decision.outcome.as_str().to_owned(),
        decided_by: decision.decided_by.clone(),
        decided_at_unix_ms: decision.decided_at,
        reason: decision.reason.clone(),
        payload_sha256: decision.payload_sha256.clone(),
        registry_version: decision.registry_version.clone(),
        catalogue_version: decision.catalogue_version.clone(),
        assessment,
        judgement: decision.judgement.clone(),
        delegation_id: decision.delegation_id.clone(),
    })
}

/// A delegation as clients see it.
pub(crate) fn wire_delegation(delegation: &tryggdel_domain::Delegation) -> WireDelegation {
    WireDelegation {
        id: delegation.id().to_owned(),
        organisation: delegation.organisation().as_str().to_owned(),
        user: delegation.user().to_owned(),
        legal_bases: delegation
            .legal_bases()
            .iter()
            .map(|basis| basis.as_str().to_owned())
            .collect(),
        valid_from: content::format_date(delegation.valid_from()),
        valid_to: delegation
            .valid_to()
            .map(content::format_date)
            .unwrap_or_default(),
        granted_by: delegation.granted_by().to_owned(),
        granted_at_unix_ms: delegation.granted_at_unix_ms(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let id = uuid::Uuid::now_v7().to_string();
        let token = encode_position(1_700_000_000_000, &id);
        assert_eq!(page_position(&token).unwrap(), (1_700_000_000_000, id));
        assert!(page_position("garbage!").is_err());
        assert!(page_position(&encode_page_token("12:not-a-uuid")).is_err());
    }

    #[test]
    fn every_state_filters_by_its_own_name() {
        assert_eq!(state_filter(WireState::Unspecified as i32).unwrap(), None);
        for state in DisclosureState::ALL {
            assert_eq!(state_filter(wire_state(state) as i32).unwrap(), Some(state));
            // The stored name is the wire name without its prefix, lowercased.
            assert_eq!(
                wire_state(state)
                    .as_str_name()
                    .trim_start_matches("DISCLOSURE_STATE_")
                    .to_ascii_lowercase(),
                state.as_str()
            );
        }
        assert!(state_filter(99).is_err());
    }
}
