//! Statistics for compliance officers and supervisors (GetStatistics), and the clear columns
//! they and clearing read, filled from the sealed content.
//!
//! Who sees what:
//! - An organisation's compliance officers see their organisation's figures; supervisors any
//!   organisation's, or every organisation's together.
//! - Counts under [`SUPPRESSION_THRESHOLD`] are suppressed ("<5", no number) and the group's
//!   times hidden, as is any time over fewer than that many disclosures, in everything that
//!   leaves the organisation: every supervisor's view and every export (the CLI and the
//!   console's downloads never ask for internal figures).
//! - Exact small counts ([`Figures::Internal`]) only for the organisation's own compliance
//!   officers, on the console's screen or over the RPC, when they ask for them.
//!
//! Invariant: the figures are computed in SQL over the clear columns (never by opening sealed
//! content per query); the clear columns are filled before every query for rows changed
//! since, so a query counts every disclosure as it is.

use time::OffsetDateTime;
use time::macros::format_description;
use tryggdel_auth::Role;
use tryggdel_domain::{IdentityNumber, swedish_time};
use tryggdel_proto::common::v1::Person;
use tryggdel_proto::disclosure::v1::{
    DurationFigures, GetStatisticsRequest, Statistics, StatisticsRow,
};
use tryggdel_service_kit::{Caller, ServiceError, today_in_sweden};

use crate::api::DisclosureApi;
use crate::sealing;
use crate::store::{
    ClearColumns, Dimension, DisclosureRecord, FILL_BATCH, SpanFigures, StatisticsGroup,
    StatisticsQuery,
};

/// Counts under this are suppressed in anything that leaves the organisation.
pub const SUPPRESSION_THRESHOLD: i64 = 5;

/// Which figures a caller gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figures {
    /// Counts under the threshold suppressed, their times hidden.
    Suppressed,
    /// Every count exact (the organisation's own compliance officers, on request).
    Internal,
}

impl DisclosureApi {
    pub(crate) async fn get_statistics(
        &self,
        caller: &Caller,
        request: GetStatisticsRequest,
    ) -> Result<Statistics, ServiceError> {
        let (organisation, figures) = statistics_scope(caller, &request)?;
        let query = StatisticsQuery {
            organisation: organisation.clone(),
            from: request.from_unix_ms,
            until: if request.until_unix_ms == 0 {
                i64::MAX
            } else {
                request.until_unix_ms
            },
            group_by: parse_dimensions(&request.group_by)?,
        };
        if query.from < 0 || query.until < 0 {
            return Err(ServiceError::invalid(
                "from_unix_ms",
                "times must not be negative",
            ));
        }
        if query.until <= query.from {
            return Err(ServiceError::invalid(
                "until_unix_ms",
                "must be later than from_unix_ms",
            ));
        }
        self.fill_clear_columns().await?;
        let groups = self.store.statistics(&query).await?;
        tracing::info!(
            user = %caller.user(),
            organisation = organisation.as_deref().unwrap_or("*"),
            groups = groups.len(),
            internal = figures == Figures::Internal,
            "statistics computed"
        );
        Ok(Statistics {
            group_by: request.group_by,
            rows: groups.iter().map(|group| row(group, figures)).collect(),
            suppressed_small_counts: figures == Figures::Suppressed,
            suppression_threshold: SUPPRESSION_THRESHOLD as u32,
            from_unix_ms: query.from,
            until_unix_ms: request.until_unix_ms,
            organisation: organisation.unwrap_or_default(),
        })
    }

    /// Fills the clear columns of every disclosure whose columns are behind its version, from
    /// its sealed content. Returns how many it filled.
    pub(crate) async fn fill_clear_columns(&self) -> Result<u64, ServiceError> {
        let mut after = String::new();
        let mut filled = 0;
        loop {
            let records = self.store.behind_clear_columns(&after, FILL_BATCH).await?;
            let Some(last) = records.last() else {
                return Ok(filled);
            };
            after.clone_from(&last.id);
            let columns = records
                .iter()
                .map(|record| self.clear_columns(record))
                .collect::<Result<Vec<_>, _>>()?;
            self.store.record_clear_columns(&columns).await?;
            filled += columns.len() as u64;
        }
    }

    /// What `record` keeps in its clear columns.
    fn clear_columns(&self, record: &DisclosureRecord) -> Result<ClearColumns, ServiceError> {
        let (crime_id, recipient, subject_ref, victim_ref) = if record.content_sealed.is_empty() {
            Default::default()
        } else {
            let content = sealing::open_content(&self.cipher, record)?;
            (
                content.crime_id,
                content.recipient,
                self.reference(record, content.subject.as_ref())?,
                self.reference(record, content.victim.as_ref())?,
            )
        };
        Ok(ClearColumns {
            id: record.id.clone(),
            version: record.version,
            crime_id,
            recipient,
            month: swedish_month(record.created_at),
            subject_ref,
            victim_ref,
        })
    }

    /// The keyed reference of `person`'s identity number ('' without one).
    fn reference(
        &self,
        record: &DisclosureRecord,
        person: Option<&Person>,
    ) -> Result<String, ServiceError> {
        let Some(person) = person.filter(|person| !person.identity_number.is_empty()) else {
            return Ok(String::new());
        };
        let number =
            IdentityNumber::parse(&person.identity_number, today_in_sweden()).map_err(|_| {
                ServiceError::internal(anyhow::anyhow!(
                    "disclosure {}: a stored identity number does not parse",
                    record.id
                ))
            })?;
        Ok(self.person_key.reference(&number).as_str().to_owned())
    }
}

/// Fills the clear columns of disclosures written before they existed (or changed since the
/// last fill), so that statistics and clearing count old disclosures too.
pub(crate) async fn fill_clear_columns_at_start(api: &DisclosureApi) -> anyhow::Result<()> {
    let filled = api
        .fill_clear_columns()
        .await
        .map_err(|error| anyhow::anyhow!("filling the clear columns of disclosures: {error:?}"))?;
    if filled > 0 {
        tracing::info!(
            disclosures = filled,
            "clear columns of disclosures filled in"
        );
    }
    Ok(())
}

/// The organisation a caller's statistics are about (None: every organisation) and which
/// figures they get.
fn statistics_scope(
    caller: &Caller,
    request: &GetStatisticsRequest,
) -> Result<(Option<String>, Figures), ServiceError> {
    let own = caller.organisation.code().as_str();
    if caller.is_supervisor() {
        if request.internal {
            return Err(ServiceError::PermissionDenied(
                "internal figures are only for the organisation's own compliance officers".into(),
            ));
        }
        let organisation = (!request.organisation.is_empty()).then(|| request.organisation.clone());
        return Ok((organisation, Figures::Suppressed));
    }
    caller.require_any(&[Role::ComplianceOfficer], "reading statistics")?;
    if !request.organisation.is_empty() && request.organisation != own {
        return Err(ServiceError::PermissionDenied(
            "statistics of another organisation are for supervisors".into(),
        ));
    }
    let figures = if request.internal {
        Figures::Internal
    } else {
        Figures::Suppressed
    };
    Ok((Some(own.to_owned()), figures))
}

/// The dimensions asked for, each known and named once.
fn parse_dimensions(names: &[String]) -> Result<Vec<Dimension>, ServiceError> {
    let mut dimensions = Vec::with_capacity(names.len());
    for name in names {
        let dimension = Dimension::parse(name.trim()).ok_or_else(|| {
            ServiceError::invalid(
                "group_by",
                format!(
                    "unknown dimension {name:?}; known: {}",
                    Dimension::ALL.map(Dimension::as_str).join(", ")
                ),
            )
        })?;
        if dimensions.contains(&dimension) {
            return Err(ServiceError::invalid(
                "group_by",
                format!("{name:?} is named twice"),
            ));
        }
        dimensions.push(dimension);
    }
    Ok(dimensions)
}

/// A group as the caller sees it under `figures`.
fn row(group: &StatisticsGroup, figures: Figures) -> StatisticsRow {
    let small = |count: i64| figures == Figures::Suppressed && count < SUPPRESSION_THRESHOLD;
    let suppressed = small(group.count);
    let span = |span: Option<SpanFigures>| {
        let span = span?;
        Some(if suppressed || small(span.samples) {
            DurationFigures {
                suppressed: true,
                ..DurationFigures::default()
            }
        } else {
            DurationFigures {
                samples: u64::try_from(span.samples).unwrap_or_default(),
                median_seconds: span.median_ms / 1000,
                p90_seconds: span.p90_ms / 1000,
                suppressed: false,
            }
        })
    };
    StatisticsRow {
        keys: group.keys.clone(),
        count: if suppressed {
            0
        } else {
            u64::try_from(group.count).unwrap_or_default()
        },
        suppressed,
        draft_to_decision: span(group.draft_to_decision),
        decision_to_delivery: span(group.decision_to_delivery),
        delivery_to_acknowledgement: span(group.delivery_to_acknowledgement),
    }
}

/// The Swedish month (YYYY-MM) of a time in Unix milliseconds ('' if out of range).
fn swedish_month(unix_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|at| {
            swedish_time(at)
                .format(format_description!("[year]-[month]"))
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn group(count: i64, samples: i64) -> StatisticsGroup {
        StatisticsGroup {
            keys: vec!["OSL-10-18c".into()],
            count,
            draft_to_decision: Some(SpanFigures {
                samples,
                median_ms: 61_000,
                p90_ms: 125_500,
            }),
            decision_to_delivery: None,
            delivery_to_acknowledgement: None,
        }
    }

    #[test]
    fn counts_under_five_are_suppressed_with_their_times() {
        let four = row(&group(4, 4), Figures::Suppressed);
        assert!(four.suppressed);
        assert_eq!(four.count, 0);
        let times = four.draft_to_decision.unwrap();
        assert!(times.suppressed);
        assert_eq!((times.samples, times.median_seconds), (0, 0));

        let five = row(&group(5, 5), Figures::Suppressed);
        assert!(!five.suppressed);
        assert_eq!(five.count, 5);
        let times = five.draft_to_decision.unwrap();
        assert_eq!(
            (times.samples, times.median_seconds, times.p90_seconds),
            (5, 61, 125)
        );
        assert!(five.decision_to_delivery.is_none());
    }

    #[test]
    fn times_over_fewer_than_five_are_hidden_in_a_shown_group() {
        let shown = row(&group(9, 3), Figures::Suppressed);
        assert_eq!(shown.count, 9);
        assert!(shown.draft_to_decision.unwrap().suppressed);
    }

    #[test]
    fn internal_figures_are_exact() {
        let internal = row(&group(2, 1), Figures::Internal);
        assert!(!internal.suppressed);
        assert_eq!(internal.count, 2);
        assert_eq!(internal.draft_to_decision.unwrap().samples, 1);
    }

    #[test]
    fn months_are_swedish() {
        // 2025-12-31T23:30:00Z is 00:30 on 1 January 2026 in Sweden.
        assert_eq!(swedish_month(1_767_223_800_000), "2026-01");
        assert_eq!(swedish_month(1_767_218_400_000), "2025-12");
    }

    #[test]
    fn dimensions_are_known_and_named_once() {
        assert_eq!(
            parse_dimensions(&["month".into(), "legal_basis".into()]).unwrap(),
            vec![Dimension::Month, Dimension::LegalBasis]
        );
        assert!(parse_dimensions(&["month".into(), "month".into()]).is_err());
        assert!(parse_dimensions(&["name".into()]).is_err());
    }
}
