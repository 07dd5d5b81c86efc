//! Stale disclosures expire, so personal data does not linger: a draft or submitted
//! disclosure left untouched for [`Expiry::after`] becomes `EXPIRED`, and its author is warned
//! [`Expiry::warning`] before.
//!
//! A background task ([`start_expiry_checker`]) runs a round every [`Expiry::check_interval`]:
//! 1. Drafts and submitted disclosures untouched for `after − warning` and not warned since
//!    their last change get a `disclosure.expiry_warned` event (its `expires_at_unix_ms`
//!    detail says when) and `expiry_warned_at` is set, in one write conditional on the row's
//!    version and previous warning, so two instances warn once. The warning changes neither
//!    the version nor `updated_at`: an edit in flight still saves, and it moves the expiry on.
//! 2. Those untouched for `after`, and warned since their last change at least `warning` ago,
//!    move to `EXPIRED` through [`tryggdel_domain::transition`] under their version (an edit
//!    that came first wins; the next round sees its new `updated_at`), with a
//!    `disclosure.expired` event. Their sealed content and protected details are replaced by
//!    an empty draft, sealed as any draft is; the clear columns the audit needs (ids,
//!    organisation, state, times, legal basis) stay. The event is built before the content
//!    is erased, so its entry still carries the keyed person references.
//!
//! The author is always warned before: when the checker was not running (or `after` was
//! lowered), a disclosure expires `warning` after its warning, not before
//! ([`Expiry::expires_at`]). Each step handles at most [`BATCH`] rows a round.
//!
//! Tracing: each warning and expiry is timer-driven and starts its own trace.

use std::time::Duration;

use tracing::Instrument as _;
use tryggdel_domain::{DisclosureState, LifecycleAction};
use tryggdel_service_kit::{Periodic, ServiceError, millis, now_unix_ms};

use crate::api::DisclosureApi;
use crate::events::{Trace, outbox_event, system_actor};
use crate::sealing;
use crate::store::DisclosureRecord;

/// Rows each step of a round handles at most.
pub const BATCH: i64 = 500;
/// A draft or submitted disclosure untouched this long expires.
pub const DEFAULT_EXPIRE_AFTER: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// Its author is warned this long before.
pub const DEFAULT_EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 60 * 60);
/// How often the checker runs a round.
pub const DEFAULT_EXPIRY_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// The warning event's type.
pub const EVENT_EXPIRY_WARNED: &str = "disclosure.expiry_warned";
/// The expiry event's type.
pub const EVENT_EXPIRED: &str = "disclosure.expired";

/// When untouched disclosures expire, and how often that is checked; only built valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry {
    after: Duration,
    warning: Duration,
    check_interval: Duration,
}

/// Expiry settings that cannot work.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    #[error("the expiry time must be longer than zero")]
    NoExpiryTime,
    #[error(
        "the expiry warning must come before the expiry: it must be shorter than the expiry time and longer than zero"
    )]
    WarningNotBefore,
    #[error("the expiry check interval must be longer than zero")]
    NoCheckInterval,
}

/// What a round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpiryRound {
    pub warned: usize,
    pub expired: usize,
}

impl Expiry {
    /// Expire after `after` untouched, warn `warning` before, check every `check_interval`.
    pub fn new(
        after: Duration,
        warning: Duration,
        check_interval: Duration,
    ) -> Result<Expiry, ExpiryError> {
        if after.is_zero() {
            return Err(ExpiryError::NoExpiryTime);
        }
        if warning.is_zero() || warning >= after {
            return Err(ExpiryError::WarningNotBefore);
        }
        if check_interval.is_zero() {
            return Err(ExpiryError::NoCheckInterval);
        }
        Ok(Expiry {
            after,
            warning,
            check_interval,
        })
    }

    pub fn after(&self) -> Duration {
        self.after
    }

    pub fn warning(&self) -> Duration {
        self.warning
    }

    pub fn check_interval(&self) -> Duration {
        self.check_interval
    }

    /// When `record` expires if left untouched (Unix ms): `after` past its last change, or
    /// `warning` past its warning if that is later; None for a state that never expires.
    pub fn expires_at(&self, record: &DisclosureRecord) -> Option<i64> {
        if !matches!(
            record.state,
            DisclosureState::Draft | DisclosureState::Submitted
        ) {
            return None;
        }
        let untouched = record.updated_at.saturating_add(millis(self.after));
        if record.expiry_warned_at >= record.updated_at && record.expiry_warned_at > 0 {
            Some(untouched.max(record.expiry_warned_at.saturating_add(millis(self.warning))))
        } else {
            Some(untouched)
        }
    }
}

impl Default for Expiry {
    fn default() -> Expiry {
        Expiry {
            after: DEFAULT_EXPIRE_AFTER,
            warning: DEFAULT_EXPIRY_WARNING,
            check_interval: DEFAULT_EXPIRY_CHECK_INTERVAL,
        }
    }
}

impl DisclosureApi {
    /// One round of the checker as of `now` (Unix ms): warns the authors of disclosures that
    /// will expire, then expires those whose time has come.
    pub async fn expire_untouched(&self, now: i64) -> Result<ExpiryRound, ServiceError> {
        let after = millis(self.expiry.after);
        let warning = millis(self.expiry.warning);
        let mut round = ExpiryRound::default();
        let to_warn = self
            .store
            .due_for_expiry_warning(now.saturating_sub(after.saturating_sub(warning)), BATCH)
            .await?;
        for record in to_warn {
            let span = expiry_span("warn of expiry", &record);
            if self.warn_one(&record, now).instrument(span).await? {
                round.warned += 1;
            }
        }
        let to_expire = self
            .store
            .due_for_expiry(
                now.saturating_sub(after),
                now.saturating_sub(warning),
                BATCH,
            )
            .await?;
        for record in to_expire {
            let span = expiry_span("expire disclosure", &record);
            if self.expire_one(record, now).instrument(span).await? {
                round.expired += 1;
            }
        }
        if round.warned + round.expired > 0 {
            self.signal_outbox();
        }
        Ok(round)
    }

    /// Warns the author of `record` that it expires; false if it changed since it was read.
    async fn warn_one(&self, record: &DisclosureRecord, now: i64) -> Result<bool, ServiceError> {
        let warned = DisclosureRecord {
            expiry_warned_at: now,
            ..record.clone()
        };
        let expires_at = self.expiry.expires_at(&warned).unwrap_or_default();
        let event = self.payload_as(
            system_actor(),
            &Trace::continuing(""),
            &warned,
            EVENT_EXPIRY_WARNED,
            &[
                ("expires_at_unix_ms", expires_at.to_string()),
                ("untouched_since_unix_ms", record.updated_at.to_string()),
                ("author", record.drafted_by.clone()),
            ],
        )?;
        let written = self
            .store
            .record_expiry_warning(record, now, &outbox_event(event)?)
            .await?;
        if written {
            tracing::info!(
                disclosure_id = %record.id,
                organisation = %record.organisation,
                expires_at_unix_ms = expires_at,
                "untouched disclosure: its author is warned that it expires"
            );
        }
        Ok(written)
    }

    /// Expires `record` and erases its content; false if it changed since it was read.
    async fn expire_one(
        &self,
        mut record: DisclosureRecord,
        now: i64,
    ) -> Result<bool, ServiceError> {
        let expected_version = record.version;
        let untouched_since = record.updated_at;
        let step = record
            .step(LifecycleAction::Expire)
            .map_err(|error| ServiceError::internal(anyhow::Error::new(error)))?;
        record.advance(step, now);
        // Built before the content is erased: the entry keeps the keyed person references.
        let event = self.payload_as(
            system_actor(),
            &Trace::continuing(""),
            &record,
            EVENT_EXPIRED,
            &[
                ("untouched_since_unix_ms", untouched_since.to_string()),
                ("content_erased", "true".to_owned()),
            ],
        )?;
        sealing::seal_empty(&self.cipher, &mut record)?;
        let written = self
            .store
            .update(&record, expected_version, &outbox_event(event)?)
            .await?;
        if written {
            tracing::info!(
                disclosure_id = %record.id,
                organisation = %record.organisation,
                "untouched disclosure expired, its content erased"
            );
        }
        Ok(written)
    }
}

/// Starts the expiry checker: a round every [`Expiry::check_interval`] until it stops.
pub fn start_expiry_checker(api: DisclosureApi) -> Periodic {
    Periodic::start(
        api.expiry.check_interval,
        move || {
            let api = api.clone();
            async move { api.expire_untouched(now_unix_ms()).await.map(drop) }
        },
        |error| {
            let status = tonic::Status::from(error);
            tracing::warn!(
                reason = status.message(),
                "expiry check failed; retrying at the next interval"
            );
        },
    )
}

/// A timer-driven step on one disclosure: its own trace.
fn expiry_span(operation: &'static str, record: &DisclosureRecord) -> tracing::Span {
    tracing::info_span!(
        parent: None,
        "disclosure.expiry",
        otel.name = operation,
        disclosure_id = %record.id,
        state = record.state.as_str(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn the_warning_must_come_before_the_expiry() {
        assert!(Expiry::new(10 * HOUR, HOUR, HOUR).is_ok());
        assert_eq!(
            Expiry::new(Duration::ZERO, Duration::ZERO, HOUR),
            Err(ExpiryError::NoExpiryTime)
        );
        for warning in [Duration::ZERO, 10 * HOUR, 11 * HOUR] {
            assert_eq!(
                Expiry::new(10 * HOUR, warning, HOUR),
                Err(ExpiryError::WarningNotBefore)
            );
        }
        assert_eq!(
            Expiry::new(10 * HOUR, HOUR, Duration::ZERO),
            Err(ExpiryError::NoCheckInterval)
        );
        let default = Expiry::default();
        assert_eq!(
            Expiry::new(default.after(), default.warning(), default.check_interval()),
            Ok(default)
        );
    }

    #[test]
    fn a_disclosure_expires_after_its_last_change_and_never_before_its_warning_ran_out() {
        let expiry = Expiry::new(10 * HOUR, 2 * HOUR, HOUR).unwrap();
        let hour = millis(HOUR);
        let mut record = DisclosureRecord::new_draft("bollnas-kommun", "mitt", "u", "r", "f", hour);
        assert_eq!(expiry.expires_at(&record), Some(11 * hour));
        // Warned on time: the expiry stays.
        record.expiry_warned_at = 9 * hour;
        assert_eq!(expiry.expires_at(&record), Some(11 * hour));
        // Warned late: the author still gets the whole warning.
        record.expiry_warned_at = 10 * hour;
        assert_eq!(expiry.expires_at(&record), Some(12 * hour));
        // Changed after the warning: the warning no longer counts.
        record.updated_at = 11 * hour;
        assert_eq!(expiry.expires_at(&record), Some(21 * hour));
        for state in [
            DisclosureState::Approved,
            DisclosureState::Delivered,
            DisclosureState::Acknowledged,
            DisclosureState::Rejected,
            DisclosureState::Withdrawn,
            DisclosureState::Expired,
        ] {
            record.state = state;
            assert_eq!(expiry.expires_at(&record), None, "{state:?}");
        }
        record.state = DisclosureState::Submitted;
        assert_eq!(expiry.expires_at(&record), Some(21 * hour));
    }
}
