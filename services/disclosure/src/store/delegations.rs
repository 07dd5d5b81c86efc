//! Persistence of delegations: rows of `delegations` become [`Delegation`]s as they are read
//! (a row that does not parse is an error). A grant is an insert and a revocation sets the
//! end under the end that was read, each with its outbox event in the same write; nothing is
//! ever deleted, so a past decision can still name the delegation it relied on.

use std::collections::BTreeSet;

use sqlx::Row;
use time::Date;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use tryggdel_domain::{Delegation, DelegationInput, LegalBasisId, OrganisationCode};
use tryggdel_storage::{AnyQuery, Arguments, Change, Written, placeholders, write};

use super::{DisclosureStore, OutboxEvent, wrote_nothing};

/// The columns of `delegations` a [`Delegation`] is read from and inserted with.
const DELEGATION_COLUMNS: &str =
    "id, organisation, user_id, legal_bases, valid_from, valid_to, granted_by, granted_at";

/// How dates are stored: `YYYY-MM-DD`, which also orders them as text.
const DATE_FORMAT: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// What inserting a delegation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantOutcome {
    Granted,
    /// A delegation with that id exists already.
    Exists,
}

/// A new delegation's row (the revocation columns empty).
struct Insert<'a>(&'a Delegation);

/// The end of delegation `id` set to `valid_to` by `revoked_by` at `revoked_at`, if its end is
/// still `previous_to` (as read).
struct Revocation<'a> {
    delegation: &'a Delegation,
    previous_to: String,
    revoked_by: &'a str,
    revoked_at: i64,
}

impl DisclosureStore {
    /// Every delegation of `organisation` ever granted, in the order they were granted.
    pub async fn delegations_of(
        &self,
        organisation: &OrganisationCode,
    ) -> Result<Vec<Delegation>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {DELEGATION_COLUMNS} FROM delegations WHERE organisation = $1 \
             ORDER BY granted_at, id"
        ))
        .bind(organisation.as_str())
        .fetch_all(self.database.pool())
        .await?;
        rows.iter().map(delegation_from_row).collect()
    }

    /// The delegation `id`, if it exists.
    pub async fn delegation(&self, id: &str) -> Result<Option<Delegation>, sqlx::Error> {
        let row = sqlx::query(&format!(
            "SELECT {DELEGATION_COLUMNS} FROM delegations WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.database.pool())
        .await?;
        row.as_ref().map(delegation_from_row).transpose()
    }

    /// Whether no delegation was ever stored (a new deployment, to be seeded).
    pub async fn has_no_delegations(&self) -> Result<bool, sqlx::Error> {
        let row = sqlx::query("SELECT COUNT(*) FROM delegations")
            .fetch_one(self.database.pool())
            .await?;
        Ok(row.try_get::<i64, _>(0)? == 0)
    }

    /// Stores a new delegation with `event`, all or nothing.
    pub async fn insert_delegation(
        &self,
        delegation: &Delegation,
        event: &OutboxEvent,
    ) -> Result<GrantOutcome, sqlx::Error> {
        static STATEMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "INSERT INTO delegations ({DELEGATION_COLUMNS}, revoked_by, revoked_at) \
                 VALUES ({})",
                placeholders(1, DELEGATION_COLUMNS.split(',').count() + 2)
            )
        });
        let insert = Insert(delegation);
        let change = Change::new(STATEMENT.as_str(), &insert, std::slice::from_ref(&event));
        match write(&self.database, &change).await? {
            Written::All => Ok(GrantOutcome::Granted),
            Written::Duplicate => Ok(GrantOutcome::Exists),
            Written::Nothing => Err(wrote_nothing(format!(
                "inserting delegation {}",
                delegation.id()
            ))),
        }
    }

    /// Sets the end of `revoked` (the stored delegation with its new end) by `revoked_by` at
    /// `revoked_at`, with `event`, if its end is still `previous_to`. Returns false (and writes
    /// nothing) when another change came first.
    pub async fn revoke_delegation(
        &self,
        revoked: &Delegation,
        previous_to: Option<Date>,
        revoked_by: &str,
        revoked_at: i64,
        event: &OutboxEvent,
    ) -> Result<bool, sqlx::Error> {
        const STATEMENT: &str = "UPDATE delegations \
             SET valid_to = $1, revoked_by = $2, revoked_at = $3 WHERE id = $4 AND valid_to = $5";
        let revocation = Revocation {
            delegation: revoked,
            previous_to: stored_end(previous_to),
            revoked_by,
            revoked_at,
        };
        let change = Change::new(STATEMENT, &revocation, std::slice::from_ref(&event));
        match write(&self.database, &change).await? {
            Written::All => Ok(true),
            Written::Nothing => Ok(false),
            Written::Duplicate => Err(wrote_nothing(format!(
                "revoking delegation {} collided with a unique key",
                revoked.id()
            ))),
        }
    }
}

impl Arguments for Insert<'_> {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let delegation = self.0;
        query
            .bind(delegation.id())
            .bind(delegation.organisation().as_str())
            .bind(delegation.user())
            .bind(stored_bases(delegation))
            .bind(stored_date(delegation.valid_from()))
            .bind(stored_end(delegation.valid_to()))
            .bind(delegation.granted_by())
            .bind(delegation.granted_at_unix_ms())
            .bind("")
            .bind(0_i64)
    }
}

impl Arguments for Revocation<'_> {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(stored_end(self.delegation.valid_to()))
            .bind(self.revoked_by)
            .bind(self.revoked_at)
            .bind(self.delegation.id())
            .bind(&self.previous_to)
    }
}

/// A date as stored.
pub fn stored_date(date: Date) -> String {
    date.format(DATE_FORMAT).unwrap_or_default()
}

/// An end as stored: `''` for none.
fn stored_end(date: Option<Date>) -> String {
    date.map(stored_date).unwrap_or_default()
}

fn stored_bases(delegation: &Delegation) -> String {
    delegation
        .legal_bases()
        .iter()
        .map(LegalBasisId::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// A stored row as a [`Delegation`]; one that does not parse is a decoding error naming it.
fn delegation_from_row(row: &sqlx::any::AnyRow) -> Result<Delegation, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let bad = |what: String| sqlx::Error::Decode(format!("delegation {id}: {what}").into());
    let organisation: String = row.try_get("organisation")?;
    let organisation = OrganisationCode::parse(&organisation)
        .map_err(|error| bad(format!("organisation: {error}")))?;
    let bases: String = row.try_get("legal_bases")?;
    let legal_bases = bases
        .split(',')
        .filter(|text| !text.is_empty())
        .map(LegalBasisId::parse)
        .collect::<Result<BTreeSet<_>, _>>()
        .map_err(|error| bad(format!("legal_bases: {error}")))?;
    let date = |column: &str| -> Result<Option<Date>, sqlx::Error> {
        let text: String = row.try_get(column)?;
        if text.is_empty() {
            return Ok(None);
        }
        Date::parse(&text, DATE_FORMAT)
            .map(Some)
            .map_err(|error| bad(format!("{column}: {error}")))
    };
    let valid_from = date("valid_from")?.ok_or_else(|| bad("valid_from is empty".into()))?;
    Delegation::new(DelegationInput {
        id: id.clone(),
        organisation,
        user: row.try_get("user_id")?,
        legal_bases,
        valid_from,
        valid_to: date("valid_to")?,
        granted_by: row.try_get("granted_by")?,
        granted_at_unix_ms: row.try_get("granted_at")?,
    })
    .map_err(|error| bad(error.to_string()))
}
