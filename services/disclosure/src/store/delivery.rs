//! A disclosure's delivery record as stored: the hand-over to the police and, once
//! acknowledged, the signed receipt. One upsert statement writes both, so a receipt that
//! overtakes the hand-over's own record still leaves one row.

use sqlx::Row;

/// A disclosure's hand-over to the police and, once acknowledged, its signed receipt
/// (empty strings, zero and None until then).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRow {
    pub disclosure_id: String,
    pub police_region: String,
    pub delivered_at: i64,
    pub police_reference: String,
    pub acknowledged_by: String,
    pub acknowledged_at: i64,
    pub receipt_statement: Option<Vec<u8>>,
    pub receipt_signature: Option<Vec<u8>>,
    pub receipt_key_id: String,
}

/// The columns of a [`DeliveryRow`], in [`upsert_delivery`]'s order.
pub(super) const DELIVERY_COLUMNS: &str = "disclosure_id, police_region, delivered_at, \
    police_reference, acknowledged_by, acknowledged_at, receipt_statement, receipt_signature, \
    receipt_key_id";

/// The columns [`upsert_delivery`] writes, bound by [`bind_delivery`].
pub(super) const DELIVERY_COLUMN_COUNT: usize = 9;

impl DeliveryRow {
    /// Reads the columns named `<prefix><column>`.
    pub(super) fn from_prefixed(
        row: &sqlx::any::AnyRow,
        prefix: &str,
    ) -> Result<Self, sqlx::Error> {
        let column = |name: &str| format!("{prefix}{name}");
        Ok(Self {
            disclosure_id: row.try_get(column("disclosure_id").as_str())?,
            police_region: row.try_get(column("police_region").as_str())?,
            delivered_at: row.try_get(column("delivered_at").as_str())?,
            police_reference: row.try_get(column("police_reference").as_str())?,
            acknowledged_by: row.try_get(column("acknowledged_by").as_str())?,
            acknowledged_at: row.try_get(column("acknowledged_at").as_str())?,
            receipt_statement: row.try_get(column("receipt_statement").as_str())?,
            receipt_signature: row.try_get(column("receipt_signature").as_str())?,
            receipt_key_id: row.try_get(column("receipt_key_id").as_str())?,
        })
    }
}

impl sqlx::FromRow<'_, sqlx::any::AnyRow> for DeliveryRow {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        DeliveryRow::from_prefixed(row, "")
    }
}

/// Writes a delivery record from `source` (`VALUES (…)` or a `SELECT` of 9 values), or, if the
/// disclosure has one, its receipt's columns.
pub(super) fn upsert_delivery(source: &str) -> String {
    format!(
        "INSERT INTO deliveries ({DELIVERY_COLUMNS}) {source} \
         ON CONFLICT (disclosure_id) DO UPDATE SET police_reference = excluded.police_reference, \
         acknowledged_by = excluded.acknowledged_by, acknowledged_at = excluded.acknowledged_at, \
         receipt_statement = excluded.receipt_statement, \
         receipt_signature = excluded.receipt_signature, receipt_key_id = excluded.receipt_key_id"
    )
}

/// Binds `delivery` in [`upsert_delivery`]'s column order.
pub(super) fn bind_delivery<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    delivery: &'q DeliveryRow,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(&delivery.disclosure_id)
        .bind(&delivery.police_region)
        .bind(delivery.delivered_at)
        .bind(&delivery.police_reference)
        .bind(&delivery.acknowledged_by)
        .bind(delivery.acknowledged_at)
        .bind(delivery.receipt_statement.clone())
        .bind(delivery.receipt_signature.clone())
        .bind(&delivery.receipt_key_id)
}
