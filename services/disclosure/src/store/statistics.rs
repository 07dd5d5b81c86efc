//! Statistics over disclosures, computed set-based in SQL on both backends: counts grouped by
//! the dimensions asked for, and per group the median and 90th percentile (nearest rank, by
//! window functions) of the times from draft to decision, decision to delivery and delivery
//! to acknowledgement. Also the clear columns statistics and clearing read (migration 0014),
//! which the service fills from the sealed content.

use std::collections::BTreeMap;

use sqlx::Row;

use super::DisclosureStore;
use super::record::{COLUMNS, DisclosureRecord};

/// A dimension statistics are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dimension {
    Organisation,
    LegalBasis,
    CrimeCategory,
    /// The law-enforcement authority it goes to.
    Recipient,
    PoliceRegion,
    /// The disclosure's state: draft, submitted, approved, delivered, acknowledged, rejected,
    /// withdrawn or expired.
    Outcome,
    /// `urgent` or `normal`.
    Urgency,
    /// The Swedish month it was created, YYYY-MM.
    Month,
}

/// A kind of time between two steps of a disclosure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Span {
    /// From creation to approval or rejection.
    DraftToDecision,
    /// From approval to the hand-over to the police.
    DecisionToDelivery,
    /// From the hand-over to the police's acknowledgement.
    DeliveryToAcknowledgement,
}

/// What to count: disclosures created in `[from, until)` (Unix milliseconds) of `organisation`
/// (None: every organisation), grouped by `group_by`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatisticsQuery {
    pub organisation: Option<String>,
    pub from: i64,
    pub until: i64,
    pub group_by: Vec<Dimension>,
}

/// The median and 90th percentile of one span in a group, in milliseconds, over `samples`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanFigures {
    pub samples: i64,
    pub median_ms: i64,
    pub p90_ms: i64,
}

/// One group: its keys (in the query's dimension order), its count and its spans' figures
/// (None: no disclosure of the group has reached that span).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatisticsGroup {
    pub keys: Vec<String>,
    pub count: i64,
    pub draft_to_decision: Option<SpanFigures>,
    pub decision_to_delivery: Option<SpanFigures>,
    pub delivery_to_acknowledgement: Option<SpanFigures>,
}

/// The clear columns of one disclosure at `version`, as the service read them from its
/// sealed content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClearColumns {
    pub id: String,
    pub version: i64,
    pub crime_id: String,
    pub recipient: String,
    pub month: String,
    pub subject_ref: String,
    pub victim_ref: String,
}

impl Dimension {
    /// Every dimension, in the order the wire lists them.
    pub const ALL: [Dimension; 8] = [
        Dimension::Organisation,
        Dimension::LegalBasis,
        Dimension::CrimeCategory,
        Dimension::Recipient,
        Dimension::PoliceRegion,
        Dimension::Outcome,
        Dimension::Urgency,
        Dimension::Month,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Organisation => "organisation",
            Dimension::LegalBasis => "legal_basis",
            Dimension::CrimeCategory => "crime_category",
            Dimension::Recipient => "recipient",
            Dimension::PoliceRegion => "police_region",
            Dimension::Outcome => "outcome",
            Dimension::Urgency => "urgency",
            Dimension::Month => "month",
        }
    }

    pub fn parse(text: &str) -> Option<Dimension> {
        Dimension::ALL
            .into_iter()
            .find(|dimension| dimension.as_str() == text)
    }

    /// The SQL expression of the dimension over `disclosures d`. Only these fixed strings
    /// are ever written into a statement.
    fn expression(self) -> &'static str {
        match self {
            Dimension::Organisation => "d.organisation",
            Dimension::LegalBasis => "d.legal_basis_id",
            Dimension::CrimeCategory => "d.stat_crime_id",
            Dimension::Recipient => "d.stat_recipient",
            Dimension::PoliceRegion => "d.police_region",
            Dimension::Outcome => "d.state",
            Dimension::Urgency => "CASE WHEN d.urgent <> 0 THEN 'urgent' ELSE 'normal' END",
            Dimension::Month => "d.stat_month",
        }
    }
}

impl Span {
    const ALL: [Span; 3] = [
        Span::DraftToDecision,
        Span::DecisionToDelivery,
        Span::DeliveryToAcknowledgement,
    ];

    fn code(self) -> i64 {
        match self {
            Span::DraftToDecision => 0,
            Span::DecisionToDelivery => 1,
            Span::DeliveryToAcknowledgement => 2,
        }
    }
}

impl StatisticsGroup {
    fn new(keys: Vec<String>) -> StatisticsGroup {
        StatisticsGroup {
            keys,
            count: 0,
            draft_to_decision: None,
            decision_to_delivery: None,
            delivery_to_acknowledgement: None,
        }
    }

    fn span_mut(&mut self, span: Span) -> &mut Option<SpanFigures> {
        match span {
            Span::DraftToDecision => &mut self.draft_to_decision,
            Span::DecisionToDelivery => &mut self.decision_to_delivery,
            Span::DeliveryToAcknowledgement => &mut self.delivery_to_acknowledgement,
        }
    }
}

/// How many rows a fill reads at a time.
pub const FILL_BATCH: i64 = 500;

/// The filter of a statistics query on `$1` (organisation), `$2` and `$3` (the period).
fn period_scope(query: &StatisticsQuery) -> &'static str {
    if query.organisation.is_some() {
        "d.organisation = $1 AND d.created_at >= $2 AND d.created_at < $3"
    } else {
        "$1 = '' AND d.created_at >= $2 AND d.created_at < $3"
    }
}

/// `k0, k1, …` as a select list (with `expressions` as the values when given), each followed
/// by a comma; empty for no dimensions.
fn key_list(count: usize, expressions: Option<&[Dimension]>) -> String {
    (0..count)
        .map(|index| match expressions {
            Some(dimensions) => format!("{} AS k{index}, ", dimensions[index].expression()),
            None => format!("k{index}, "),
        })
        .collect()
}

/// The statement counting the groups.
fn count_statement(query: &StatisticsQuery) -> String {
    let dimensions = &query.group_by;
    let keys = key_list(dimensions.len(), Some(dimensions));
    let group_by = if dimensions.is_empty() {
        String::new()
    } else {
        let expressions: Vec<&str> = dimensions.iter().map(|d| d.expression()).collect();
        format!(" GROUP BY {}", expressions.join(", "))
    };
    format!(
        "SELECT {keys}COUNT(*) AS n FROM disclosures d WHERE {}{group_by}",
        period_scope(query)
    )
}

/// The statement giving each group's spans: samples, median and 90th percentile by nearest
/// rank (rank ⌈n/2⌉ and ⌈9n/10⌉ in integer arithmetic).
fn span_statement(query: &StatisticsQuery) -> String {
    let count = query.group_by.len();
    let selected = key_list(count, Some(&query.group_by));
    let keys = key_list(count, None);
    let [decision, delivery, acknowledgement] = Span::ALL.map(Span::code);
    format!(
        "WITH base AS (\
             SELECT {selected}d.created_at AS created_at, d.decided_at AS decided_at, \
                    d.decision_outcome AS outcome, x.delivered_at AS delivered_at, \
                    x.acknowledged_at AS acknowledged_at \
             FROM disclosures d LEFT JOIN deliveries x ON x.disclosure_id = d.id \
             WHERE {scope}), \
         spans AS (\
             SELECT {keys}CAST({decision} AS BIGINT) AS span, decided_at - created_at AS ms \
             FROM base WHERE outcome IN ('approved', 'rejected') \
             UNION ALL \
             SELECT {keys}CAST({delivery} AS BIGINT) AS span, delivered_at - decided_at AS ms \
             FROM base WHERE outcome = 'approved' AND delivered_at IS NOT NULL \
             UNION ALL \
             SELECT {keys}CAST({acknowledgement} AS BIGINT) AS span, \
                    acknowledged_at - delivered_at AS ms \
             FROM base WHERE delivered_at IS NOT NULL AND acknowledged_at > 0), \
         ranked AS (\
             SELECT {keys}span, ms, \
                    ROW_NUMBER() OVER (PARTITION BY {keys}span ORDER BY ms) AS rn, \
                    COUNT(*) OVER (PARTITION BY {keys}span) AS n \
             FROM spans) \
         SELECT {keys}span, MAX(n) AS samples, \
                MIN(CASE WHEN rn = (n + 1) / 2 THEN ms END) AS median, \
                MIN(CASE WHEN rn = (9 * n + 9) / 10 THEN ms END) AS p90 \
         FROM ranked GROUP BY {keys}span",
        scope = period_scope(query),
    )
}

fn keys_of(row: &sqlx::any::AnyRow, count: usize) -> Result<Vec<String>, sqlx::Error> {
    (0..count)
        .map(|index| row.try_get::<String, _>(index))
        .collect()
}

impl DisclosureStore {
    /// The groups of `query` with their counts and spans, in the order of their keys. A group
    /// exists when at least one disclosure is in it.
    pub async fn statistics(
        &self,
        query: &StatisticsQuery,
    ) -> Result<Vec<StatisticsGroup>, sqlx::Error> {
        let count = query.group_by.len();
        let organisation = query.organisation.clone().unwrap_or_default();
        let counted = sqlx::query(&count_statement(query))
            .bind(&organisation)
            .bind(query.from)
            .bind(query.until)
            .fetch_all(self.database.pool())
            .await?;
        let mut groups: BTreeMap<Vec<String>, StatisticsGroup> = BTreeMap::new();
        for row in &counted {
            let keys = keys_of(row, count)?;
            let n: i64 = row.try_get(count)?;
            if n > 0 {
                let mut group = StatisticsGroup::new(keys.clone());
                group.count = n;
                groups.insert(keys, group);
            }
        }
        let spans = sqlx::query(&span_statement(query))
            .bind(&organisation)
            .bind(query.from)
            .bind(query.until)
            .fetch_all(self.database.pool())
            .await?;
        for row in &spans {
            let keys = keys_of(row, count)?;
            let code: i64 = row.try_get(count)?;
            let samples: i64 = row.try_get(count + 1)?;
            let median: Option<i64> = row.try_get(count + 2)?;
            let p90: Option<i64> = row.try_get(count + 3)?;
            let (Some(span), Some(group), Some(median_ms), Some(p90_ms)) = (
                Span::ALL.into_iter().find(|span| span.code() == code),
                groups.get_mut(&keys),
                median,
                p90,
            ) else {
                continue;
            };
            *group.span_mut(span) = Some(SpanFigures {
                samples,
                median_ms,
                p90_ms,
            });
        }
        Ok(groups.into_values().collect())
    }

    /// Up to `limit` disclosures after `after` (by id) whose clear columns are behind their
    /// version.
    pub async fn behind_clear_columns(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<DisclosureRecord>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM disclosures \
             WHERE clear_version <> version AND id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(self.database.pool())
        .await
    }

    /// Writes `columns` in one transaction, each only if its row is still at the version it
    /// was read at (a row changed meanwhile is filled on the next pass).
    pub async fn record_clear_columns(&self, columns: &[ClearColumns]) -> Result<(), sqlx::Error> {
        let mut transaction = self.database.pool().begin().await?;
        for row in columns {
            sqlx::query(
                "UPDATE disclosures SET stat_crime_id = $1, stat_recipient = $2, \
                 stat_month = $3, subject_ref = $4, victim_ref = $5, clear_version = $6 \
                 WHERE id = $7 AND version = $6",
            )
            .bind(&row.crime_id)
            .bind(&row.recipient)
            .bind(&row.month)
            .bind(&row.subject_ref)
            .bind(&row.victim_ref)
            .bind(row.version)
            .bind(&row.id)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_parse_from_their_names_only() {
        for dimension in Dimension::ALL {
            assert_eq!(Dimension::parse(dimension.as_str()), Some(dimension));
        }
        assert_eq!(Dimension::parse("d.organisation"), None);
        assert_eq!(Dimension::parse("Month"), None);
    }

    #[test]
    fn statements_group_by_the_dimensions_in_order() {
        let query = StatisticsQuery {
            organisation: None,
            from: 0,
            until: i64::MAX,
            group_by: vec![Dimension::Month, Dimension::LegalBasis],
        };
        let counting = count_statement(&query);
        assert!(
            counting.starts_with("SELECT d.stat_month AS k0, d.legal_basis_id AS k1, COUNT(*)")
        );
        assert!(counting.ends_with("GROUP BY d.stat_month, d.legal_basis_id"));
        assert!(counting.contains("$1 = ''"));
        let spans = span_statement(&query);
        assert!(spans.contains("PARTITION BY k0, k1, span ORDER BY ms"));
        let total = StatisticsQuery {
            group_by: Vec::new(),
            organisation: Some("x".into()),
            ..query
        };
        assert!(!count_statement(&total).contains("GROUP BY"));
        assert!(count_statement(&total).contains("d.organisation = $1"));
        assert!(span_statement(&total).contains("PARTITION BY span ORDER BY ms"));
    }
}
