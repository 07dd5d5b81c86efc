//! Persistence of holds on disclosures: rows of `disclosure_holds` become [`Hold`]s as they
//! are read (a row that does not parse is an error). Placing is an insert, extending and ending
//! are updates under the version read, each with its outbox event in the same write; nothing is
//! ever deleted. A hold ends on its last day by itself: [`Hold::holds_on`] and
//! [`DisclosureStore::active_hold`] evaluate it against the date they are given.

use sqlx::Row;
use time::Date;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use tryggdel_domain::OrganisationCode;
use tryggdel_storage::{AnyQuery, Arguments, Change, Written, placeholders, write};

use super::{DisclosureStore, OutboxEvent, wrote_nothing};

/// The columns of `disclosure_holds`, in the order a [`Hold`] is inserted with.
const HOLD_COLUMNS: &str = "id, disclosure_id, issuer_organisation, placed_by, \
     client_request_id, legal_ground, until_date, placed_at, version, updated_by, updated_at, \
     ended_by, ended_at";

/// How dates are stored: `YYYY-MM-DD`, which also orders them as text.
const DATE_FORMAT: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// A hold on a disclosure, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub id: String,
    pub disclosure_id: String,
    /// The organisation whose officer placed it (the disclosing organisation, or the
    /// authority that received the disclosure).
    pub issuer_organisation: OrganisationCode,
    pub placed_by: String,
    /// Chosen by the client so that a retried placement returns this hold.
    pub client_request_id: String,
    /// The legal ground it rests on (a registry-style id or short text, nothing personal).
    pub legal_ground: String,
    /// The last day it holds (inclusive).
    pub until: Date,
    pub placed_at_unix_ms: i64,
    /// 1 when placed, one more with each change.
    pub version: i64,
    pub updated_by: String,
    pub updated_at_unix_ms: i64,
    /// Who ended it and when; None while it was not ended.
    pub ended: Option<HoldEnd>,
}

/// Who ended a hold before its date, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldEnd {
    pub by: String,
    pub at_unix_ms: i64,
}

impl Hold {
    /// Whether it holds on `day`: not ended and `day` is not after its last day.
    pub fn holds_on(&self, day: Date) -> bool {
        self.ended.is_none() && day <= self.until
    }
}

/// What inserting a hold did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlaceOutcome {
    Placed,
    /// The placer already used the client request id: the hold it placed then.
    Repeated(Box<Hold>),
}

/// A hold's update under the version it was read at: the hold as it is to be, then the version.
struct Versioned<'a> {
    hold: &'a Hold,
    expected_version: i64,
}

impl DisclosureStore {
    /// Stores a new hold with `event`, all or nothing, unless its placer already used its client
    /// request id (then the hold placed then, and nothing is written).
    pub async fn place_hold(
        &self,
        hold: &Hold,
        event: &OutboxEvent,
    ) -> Result<PlaceOutcome, sqlx::Error> {
        static STATEMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "INSERT INTO disclosure_holds ({HOLD_COLUMNS}) VALUES ({})",
                placeholders(1, HOLD_COLUMNS.split(',').count())
            )
        });
        let change = Change::new(STATEMENT.as_str(), hold, std::slice::from_ref(&event));
        match write(&self.database, &change).await? {
            Written::All => Ok(PlaceOutcome::Placed),
            Written::Duplicate => {
                let earlier = self
                    .hold_by_client_request(
                        &hold.issuer_organisation,
                        &hold.placed_by,
                        &hold.client_request_id,
                    )
                    .await?
                    .ok_or_else(|| {
                        wrote_nothing(format!("inserting hold {} collided with a key", hold.id))
                    })?;
                Ok(PlaceOutcome::Repeated(Box::new(earlier)))
            }
            Written::Nothing => Err(wrote_nothing(format!("inserting hold {}", hold.id))),
        }
    }

    /// Writes `changed` (an extension or an end of a stored hold, its version one more) with
    /// `event` if the stored version is still `expected_version`. Returns false (and writes
    /// nothing) when another change came first.
    pub async fn update_hold(
        &self,
        changed: &Hold,
        expected_version: i64,
        event: &OutboxEvent,
    ) -> Result<bool, sqlx::Error> {
        const STATEMENT: &str = "UPDATE disclosure_holds SET until_date = $1, version = $2, \
             updated_by = $3, updated_at = $4, ended_by = $5, ended_at = $6 \
             WHERE id = $7 AND version = $8";
        let versioned = Versioned {
            hold: changed,
            expected_version,
        };
        let change = Change::new(STATEMENT, &versioned, std::slice::from_ref(&event));
        match write(&self.database, &change).await? {
            Written::All => Ok(true),
            Written::Nothing => Ok(false),
            Written::Duplicate => Err(wrote_nothing(format!(
                "updating hold {} collided with a unique key",
                changed.id
            ))),
        }
    }

    /// The hold `id`, if it exists.
    pub async fn hold(&self, id: &str) -> Result<Option<Hold>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {HOLD_COLUMNS} FROM disclosure_holds WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.database.pool())
        .await?;
        row.as_ref().map(hold_from_row).transpose()
    }

    /// Every hold ever placed on `disclosure_id`, in the order they were placed.
    pub async fn holds_of(&self, disclosure_id: &str) -> Result<Vec<Hold>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {HOLD_COLUMNS} FROM disclosure_holds WHERE disclosure_id = $1 \
             ORDER BY placed_at, id"
        ))
        .bind(disclosure_id)
        .fetch_all(self.database.pool())
        .await?;
        rows.iter().map(hold_from_row).collect()
    }

    /// A hold that holds on `disclosure_id` on `today`, if any (the one lasting longest).
    pub async fn active_hold(
        &self,
        disclosure_id: &str,
        today: Date,
    ) -> Result<Option<Hold>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {HOLD_COLUMNS} FROM disclosure_holds \
             WHERE disclosure_id = $1 AND ended_at = 0 AND until_date >= $2 \
             ORDER BY until_date DESC, id"
        ))
        .bind(disclosure_id)
        .bind(stored_date(today))
        .fetch_all(self.database.pool())
        .await?;
        let holds = rows
            .iter()
            .map(hold_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(holds.into_iter().find(|hold| hold.holds_on(today)))
    }

    /// The hold `placed_by` of `organisation` placed with `client_request_id`, if any.
    async fn hold_by_client_request(
        &self,
        organisation: &OrganisationCode,
        placed_by: &str,
        client_request_id: &str,
    ) -> Result<Option<Hold>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {HOLD_COLUMNS} FROM disclosure_holds \
             WHERE issuer_organisation = $1 AND placed_by = $2 AND client_request_id = $3"
        ))
        .bind(organisation.as_str())
        .bind(placed_by)
        .bind(client_request_id)
        .fetch_optional(self.database.pool())
        .await?;
        row.as_ref().map(hold_from_row).transpose()
    }
}

impl Arguments for Hold {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let (ended_by, ended_at) = ended_columns(self);
        query
            .bind(self.id.as_str())
            .bind(self.disclosure_id.as_str())
            .bind(self.issuer_organisation.as_str())
            .bind(self.placed_by.as_str())
            .bind(self.client_request_id.as_str())
            .bind(self.legal_ground.as_str())
            .bind(stored_date(self.until))
            .bind(self.placed_at_unix_ms)
            .bind(self.version)
            .bind(self.updated_by.as_str())
            .bind(self.updated_at_unix_ms)
            .bind(ended_by)
            .bind(ended_at)
    }
}

impl Arguments for Versioned<'_> {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let hold = self.hold;
        let (ended_by, ended_at) = ended_columns(hold);
        query
            .bind(stored_date(hold.until))
            .bind(hold.version)
            .bind(hold.updated_by.as_str())
            .bind(hold.updated_at_unix_ms)
            .bind(ended_by)
            .bind(ended_at)
            .bind(hold.id.as_str())
            .bind(self.expected_version)
    }
}

/// The end columns as stored: `''` and 0 while not ended.
fn ended_columns(hold: &Hold) -> (&str, i64) {
    hold.ended
        .as_ref()
        .map_or(("", 0), |end| (end.by.as_str(), end.at_unix_ms))
}

/// A date as stored.
fn stored_date(date: Date) -> String {
    date.format(DATE_FORMAT).unwrap_or_default()
}

/// A stored row as a [`Hold`]; one that does not parse is a decoding error naming it.
fn hold_from_row(row: &sqlx::any::AnyRow) -> Result<Hold, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let bad = |what: String| sqlx::Error::Decode(format!("hold {id}: {what}").into());
    let organisation: String = row.try_get("issuer_organisation")?;
    let issuer_organisation = OrganisationCode::parse(&organisation)
        .map_err(|error| bad(format!("issuer_organisation: {error}")))?;
    let until: String = row.try_get("until_date")?;
    let until =
        Date::parse(&until, DATE_FORMAT).map_err(|error| bad(format!("until_date: {error}")))?;
    let ended_at: i64 = row.try_get("ended_at")?;
    let ended = (ended_at != 0)
        .then(|| -> Result<HoldEnd, sqlx::Error> {
            Ok(HoldEnd {
                by: row.try_get("ended_by")?,
                at_unix_ms: ended_at,
            })
        })
        .transpose()?;
    Ok(Hold {
        disclosure_id: row.try_get("disclosure_id")?,
        issuer_organisation,
        placed_by: row.try_get("placed_by")?,
        client_request_id: row.try_get("client_request_id")?,
        legal_ground: row.try_get("legal_ground")?,
        until,
        placed_at_unix_ms: row.try_get("placed_at")?,
        version: row.try_get("version")?,
        updated_by: row.try_get("updated_by")?,
        updated_at_unix_ms: row.try_get("updated_at")?,
        ended,
        id,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use time::macros::date;

    use super::*;

    fn hold(until: Date) -> Hold {
        Hold {
            id: "h".into(),
            disclosure_id: "d".into(),
            issuer_organisation: OrganisationCode::parse("bollnas-kommun").unwrap(),
            placed_by: "u".into(),
            client_request_id: "c".into(),
            legal_ground: "RB-27-1".into(),
            until,
            placed_at_unix_ms: 1,
            version: 1,
            updated_by: "u".into(),
            updated_at_unix_ms: 1,
            ended: None,
        }
    }

    #[test]
    fn a_hold_holds_through_its_last_day_unless_ended() {
        let held = hold(date!(2026 - 12 - 31));
        assert!(held.holds_on(date!(2026 - 12 - 03)));
        assert!(held.holds_on(date!(2026 - 12 - 31)));
        assert!(!held.holds_on(date!(2027 - 01 - 01)));
        let ended = Hold {
            ended: Some(HoldEnd {
                by: "u".into(),
                at_unix_ms: 2,
            }),
            ..held
        };
        assert!(!ended.holds_on(date!(2026 - 12 - 03)));
    }

    #[test]
    fn dates_are_stored_so_that_text_order_is_date_order() {
        assert_eq!(stored_date(date!(2026 - 01 - 05)), "2026-01-05");
        assert!(stored_date(date!(2026 - 01 - 05)) < stored_date(date!(2026 - 10 - 01)));
    }
}
