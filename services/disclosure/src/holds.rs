//! Holds on disclosures: an officer places a hold (a legal ground and the last day it holds)
//! on a disclosure, extends it or ends it; everyone who may place one lists them. While a hold
//! holds, the disclosure and the log entries about it are left out of subject reports and out
//! of clearing. Each change is stored with its outbox event (`disclosure.hold_placed`,
//! `disclosure.hold_extended`, `disclosure.hold_ended`, details `hold_id`, `until`,
//! `legal_ground`, `issuer`: the issuing organisation), so the audit log learns every hold.
//!
//! Invariants: a hold lasts at most `hold_max_days` from the day it is placed or extended; it
//! ends on its last day by itself (it is evaluated against the date, no job ends it); it is
//! never deleted. Who may place one: the disclosing organisation's caseworkers, decision makers
//! and compliance officers, and an officer of the authority that received the disclosure (an
//! approved one in their inbox); the hold names the placer's organisation as its issuer, and
//! only that organisation changes it. Anyone else is told the disclosure does not exist.

use time::{Date, Duration};
use tryggdel_auth::Role;
use tryggdel_proto::disclosure::v1::{
    EndHoldRequest, ExtendHoldRequest, Hold as WireHold, ListHoldsRequest, ListHoldsResponse,
    PlaceHoldRequest,
};
use tryggdel_service_kit::{Caller, ServiceError, now_unix_ms, today_in_sweden};

use crate::api::DisclosureApi;
use crate::checks::{self, parse_disclosure_id};
use crate::content;
use crate::policy;
use crate::requests::requester_inbox;
use crate::store::{DecisionOutcome, DisclosureRecord, Hold, HoldEnd, PlaceOutcome};

/// The longest a hold may last by default, in days from the day it is placed or extended.
pub const DEFAULT_HOLD_MAX_DAYS: u32 = 365;

/// The longest legal ground, in characters.
const MAX_LEGAL_GROUND_CHARS: usize = 200;

/// The audit actions of the changes to a hold.
pub const HOLD_PLACED: &str = "disclosure.hold_placed";
pub const HOLD_EXTENDED: &str = "disclosure.hold_extended";
pub const HOLD_ENDED: &str = "disclosure.hold_ended";

impl DisclosureApi {
    pub(crate) async fn place_hold(
        &self,
        caller: &Caller,
        request: PlaceHoldRequest,
    ) -> Result<WireHold, ServiceError> {
        let client_request_id = checks::client_request_id(&request.client_request_id)?;
        let record = self.holdable(caller, &request.disclosure_id).await?;
        let legal_ground = checks::optional_line(
            "legal_ground",
            &request.legal_ground,
            MAX_LEGAL_GROUND_CHARS,
        )?;
        if legal_ground.is_empty() {
            return Err(ServiceError::invalid("legal_ground", "required"));
        }
        let today = today_in_sweden();
        let until = self.last_day("until", &request.until, today)?;
        let now = now_unix_ms();
        let hold = Hold {
            id: uuid::Uuid::now_v7().to_string(),
            disclosure_id: record.id.clone(),
            issuer_organisation: caller.organisation.code().clone(),
            placed_by: caller.user().to_owned(),
            client_request_id: client_request_id.to_owned(),
            legal_ground,
            until,
            placed_at_unix_ms: now,
            version: 1,
            updated_by: caller.user().to_owned(),
            updated_at_unix_ms: now,
            ended: None,
        };
        let event = self.event(caller, &record, HOLD_PLACED, &hold_details(&hold))?;
        match self.store.place_hold(&hold, &event).await? {
            PlaceOutcome::Placed => {
                self.signal_outbox();
                tracing::info!(hold_id = %hold.id, disclosure_id = %hold.disclosure_id, "hold placed");
                Ok(wire_hold(&hold, today))
            }
            PlaceOutcome::Repeated(earlier) => {
                if earlier.disclosure_id != hold.disclosure_id {
                    return Err(ServiceError::AlreadyExists(format!(
                        "client_request_id {client_request_id} was used for a hold on another \
                         disclosure"
                    )));
                }
                Ok(wire_hold(&earlier, today))
            }
        }
    }

    pub(crate) async fn extend_hold(
        &self,
        caller: &Caller,
        request: ExtendHoldRequest,
    ) -> Result<WireHold, ServiceError> {
        let (stored, record) = self
            .changeable_hold(caller, &request.hold_id, request.expected_version)
            .await?;
        let today = today_in_sweden();
        let until = self.last_day("until", &request.until, today)?;
        if until <= stored.until {
            return Err(ServiceError::invalid(
                "until",
                format!(
                    "the hold already lasts until {}; an extension names a later day",
                    content::format_date(stored.until)
                ),
            ));
        }
        let extended = Hold {
            until,
            version: stored.version + 1,
            updated_by: caller.user().to_owned(),
            updated_at_unix_ms: now_unix_ms(),
            ..stored.clone()
        };
        self.save_hold(caller, &record, &stored, &extended, HOLD_EXTENDED)
            .await?;
        Ok(wire_hold(&extended, today))
    }

    pub(crate) async fn end_hold(
        &self,
        caller: &Caller,
        request: EndHoldRequest,
    ) -> Result<WireHold, ServiceError> {
        let (stored, record) = self
            .changeable_hold(caller, &request.hold_id, request.expected_version)
            .await?;
        let now = now_unix_ms();
        let ended = Hold {
            version: stored.version + 1,
            updated_by: caller.user().to_owned(),
            updated_at_unix_ms: now,
            ended: Some(HoldEnd {
                by: caller.user().to_owned(),
                at_unix_ms: now,
            }),
            ..stored.clone()
        };
        self.save_hold(caller, &record, &stored, &ended, HOLD_ENDED)
            .await?;
        Ok(wire_hold(&ended, today_in_sweden()))
    }

    pub(crate) async fn list_holds(
        &self,
        caller: &Caller,
        request: ListHoldsRequest,
    ) -> Result<ListHoldsResponse, ServiceError> {
        let record = self.holdable(caller, &request.disclosure_id).await?;
        let today = today_in_sweden();
        let holds = self
            .store
            .holds_of(&record.id)
            .await?
            .iter()
            .map(|hold| wire_hold(hold, today))
            .collect();
        Ok(ListHoldsResponse { holds })
    }

    /// The disclosure `id` names, if the caller may place holds on it; NOT_FOUND if they may
    /// not see it, PERMISSION_DENIED if they see it but may not place holds (a supervisor).
    async fn holdable(&self, caller: &Caller, id: &str) -> Result<DisclosureRecord, ServiceError> {
        let id = parse_disclosure_id(id)?;
        let record = self
            .store
            .get(&id)
            .await?
            .ok_or(ServiceError::NotFound("disclosure"))?;
        match may_hold(caller, &record) {
            Holder::Yes => Ok(record),
            Holder::SeesOnly => Err(ServiceError::PermissionDenied(
                "only the disclosing organisation's officers and the receiving authority's \
                 officers place holds"
                    .into(),
            )),
            Holder::No => Err(ServiceError::NotFound("disclosure")),
        }
    }

    /// The hold `id` names and its disclosure, if the caller may change it (their organisation
    /// issued it and they may place holds on the disclosure), it still holds today, and it is
    /// at `expected_version`.
    async fn changeable_hold(
        &self,
        caller: &Caller,
        id: &str,
        expected_version: i64,
    ) -> Result<(Hold, DisclosureRecord), ServiceError> {
        let id = uuid::Uuid::parse_str(id.trim())
            .map_err(|_| ServiceError::invalid("hold_id", "must be a hold id (a UUID)"))?
            .to_string();
        let hold = self
            .store
            .hold(&id)
            .await?
            .ok_or(ServiceError::NotFound("hold"))?;
        let record =
            self.holdable(caller, &hold.disclosure_id)
                .await
                .map_err(|error| match error {
                    ServiceError::NotFound(_) => ServiceError::NotFound("hold"),
                    other => other,
                })?;
        if &hold.issuer_organisation != caller.organisation.code() {
            return Err(ServiceError::PermissionDenied(format!(
                "the hold was placed by {}; only that organisation changes it",
                hold.issuer_organisation
            )));
        }
        if expected_version < 1 {
            return Err(ServiceError::invalid(
                "expected_version",
                "required: the version you last saw (1 or more)",
            ));
        }
        if expected_version != hold.version {
            return Err(ServiceError::StaleVersion {
                expected: expected_version,
                current: hold.version,
            });
        }
        if !hold.holds_on(today_in_sweden()) {
            return Err(ServiceError::FailedPrecondition(format!(
                "hold {} no longer holds (ended, or its last day {} has passed); place a new one",
                hold.id,
                content::format_date(hold.until)
            )));
        }
        Ok((hold, record))
    }

    /// Writes `changed` (from `stored`) with its `action` event, or reports the conflict.
    async fn save_hold(
        &self,
        caller: &Caller,
        record: &DisclosureRecord,
        stored: &Hold,
        changed: &Hold,
        action: &str,
    ) -> Result<(), ServiceError> {
        let event = self.event(caller, record, action, &hold_details(changed))?;
        if !self
            .store
            .update_hold(changed, stored.version, &event)
            .await?
        {
            let current = self
                .store
                .hold(&stored.id)
                .await?
                .map(|hold| hold.version)
                .unwrap_or_default();
            return Err(ServiceError::StaleVersion {
                expected: stored.version,
                current,
            });
        }
        self.signal_outbox();
        tracing::info!(hold_id = %changed.id, action, "hold changed");
        Ok(())
    }

    /// The last day a hold placed or extended `today` may hold, from `field`: not before
    /// today, at most `hold_max_days` after it.
    fn last_day(&self, field: &str, text: &str, today: Date) -> Result<Date, ServiceError> {
        if text.trim().is_empty() {
            return Err(ServiceError::invalid(
                field,
                "required: the last day (YYYY-MM-DD)",
            ));
        }
        let until =
            content::parse_date(text).map_err(|problem| ServiceError::invalid(field, problem))?;
        check_length(until, today, self.hold_max_days)
            .map_err(|problem| ServiceError::invalid(field, problem))?;
        Ok(until)
    }
}

/// Whether `until` is a last day a hold placed `today` may have, at most `max_days` ahead.
fn check_length(until: Date, today: Date, max_days: u32) -> Result<(), String> {
    if until < today {
        return Err(format!(
            "{} has passed; a hold's last day is today or later",
            content::format_date(until)
        ));
    }
    let latest = today.saturating_add(Duration::days(i64::from(max_days)));
    if until > latest {
        return Err(format!(
            "a hold lasts at most {max_days} days (hold_max_days): the latest last day now is {}",
            content::format_date(latest)
        ));
    }
    Ok(())
}

/// What a caller may do about holds on a disclosure.
#[derive(Debug, PartialEq, Eq)]
enum Holder {
    /// Place, change (if their organisation issued it) and list them.
    Yes,
    /// See the disclosure, but not place holds (a supervisor).
    SeesOnly,
    /// Not even know it exists.
    No,
}

fn may_hold(caller: &Caller, record: &DisclosureRecord) -> Holder {
    let own = caller.organisation.code().as_str() == record.organisation
        && policy::READERS.iter().any(|role| caller.has(*role));
    if own || is_receiving_officer(caller, record) {
        Holder::Yes
    } else if policy::may_see(caller, record) {
        Holder::SeesOnly
    } else {
        Holder::No
    }
}

/// Whether the caller is an officer of the authority that received `record`: approved, and
/// addressed to the caller's inbox.
fn is_receiving_officer(caller: &Caller, record: &DisclosureRecord) -> bool {
    // A recall (a withdrawal after approval) keeps the approved payload's hash.
    let approved = record.decision.as_ref().is_some_and(|decision| {
        decision.outcome == DecisionOutcome::Approved
            || (decision.outcome == DecisionOutcome::Withdrawn
                && !decision.payload_sha256.is_empty())
    });
    caller.has(Role::PoliceOfficer)
        && approved
        && requester_inbox(caller, "placing a hold")
            .is_ok_and(|inbox| inbox.as_str() == record.police_region)
}

/// The details of a hold's event.
fn hold_details(hold: &Hold) -> Vec<(&'static str, String)> {
    vec![
        ("hold_id", hold.id.clone()),
        ("until", content::format_date(hold.until)),
        ("legal_ground", hold.legal_ground.clone()),
        ("issuer", hold.issuer_organisation.as_str().to_owned()),
    ]
}

/// A hold as a client sees it, whether it holds on `today`.
pub(crate) fn wire_hold(hold: &Hold, today: Date) -> WireHold {
    let (ended_by, ended_at_unix_ms) = hold
        .ended
        .as_ref()
        .map_or((String::new(), 0), |end| (end.by.clone(), end.at_unix_ms));
    WireHold {
        id: hold.id.clone(),
        disclosure_id: hold.disclosure_id.clone(),
        version: hold.version,
        issuer_organisation: hold.issuer_organisation.as_str().to_owned(),
        placed_by: hold.placed_by.clone(),
        placed_at_unix_ms: hold.placed_at_unix_ms,
        legal_ground: hold.legal_ground.clone(),
        until: content::format_date(hold.until),
        ended_by,
        ended_at_unix_ms,
        active: hold.holds_on(today),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn a_hold_lasts_from_today_to_at_most_the_maximum() {
        let today = date!(2026 - 12 - 03);
        assert!(check_length(today, today, 365).is_ok());
        assert!(check_length(date!(2027 - 12 - 03), today, 365).is_ok());
        let too_long = check_length(date!(2027 - 12 - 04), today, 365).unwrap_err();
        assert!(too_long.contains("at most 365 days"), "{too_long}");
        assert!(too_long.contains("2027-12-03"), "{too_long}");
        let past = check_length(date!(2026 - 12 - 02), today, 365).unwrap_err();
        assert!(past.contains("has passed"), "{past}");
    }
}
