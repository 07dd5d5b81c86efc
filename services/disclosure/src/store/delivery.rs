//! A disclosure's delivery record as stored: the hand-over to the police and, once
//! acknowledged, the signed receipt. One upsert writes both, so a receipt that
//! overtakes the hand-over's own record still leaves one row.

use sqlx::Row;
use tryggdel_storage::{AnyQuery, Arguments};

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

/// The columns of a [`DeliveryRow`], in its binding order.
pub(super) const DELIVERY_COLUMNS: &str = "disclosure_id, police_region, delivered_at, \
    police_reference, acknowledged_by, acknowledged_at, receipt_statement, receipt_signature, \
    receipt_key_id";

/// The columns a delivery record's upsert writes.
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

/// What a delivery record's upsert does when the disclosure has one already: it takes the
/// receipt's columns (a receipt that overtook the hand-over's own record keeps one row).
pub(super) const DELIVERY_UPSERT_TAIL: &str = "ON CONFLICT (disclosure_id) DO UPDATE SET \
    police_reference = excluded.police_reference, acknowledged_by = excluded.acknowledged_by, \
    acknowledged_at = excluded.acknowledged_at, receipt_statement = excluded.receipt_statement, \
    receipt_signature = excluded.receipt_signature, receipt_key_id = excluded.receipt_key_id";

/// Binds the delivery record in `DELIVERY_COLUMNS` order.
impl Arguments for DeliveryRow {
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(&self.disclosure_id)
            .bind(&self.police_region)
            .bind(self.delivered_at)
            .bind(&self.police_reference)
            .bind(&self.acknowledged_by)
            .bind(self.acknowledged_at)
            .bind(self.receipt_statement.as_deref())
            .bind(self.receipt_signature.as_deref())
            .bind(&self.receipt_key_id)
    }
}
