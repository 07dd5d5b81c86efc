//! The outbox convention every service follows: a table `outbox` with `seq` (in commit
//! order), `event_type`, `payload` (JSON) and one `<destination>_relayed_at` column per
//! destination, NULL until that destination holds the event. These queries read what a relay
//! still has to send and record what it sent.

use sqlx::Row;

use crate::Database;

/// One destination of a service's outbox.
#[derive(Clone, Copy, Debug)]
pub struct OutboxDestination {
    /// The `…_relayed_at` column.
    column: &'static str,
    /// Only events of this type go to the destination (all when None).
    event_type: Option<&'static str>,
}

impl OutboxDestination {
    /// A destination of every event, recorded in `column`. `column` is a compile-time name
    /// (lowercase letters and `_`), never input.
    pub const fn all(column: &'static str) -> OutboxDestination {
        OutboxDestination {
            column,
            event_type: None,
        }
    }

    /// A destination of events of `event_type` only.
    pub const fn only(column: &'static str, event_type: &'static str) -> OutboxDestination {
        OutboxDestination {
            column,
            event_type: Some(event_type),
        }
    }

    fn filter(&self) -> String {
        match self.event_type {
            Some(_) => format!("{} IS NULL AND event_type = $2", self.column),
            None => format!("{} IS NULL", self.column),
        }
    }

    /// Up to `limit` events not yet at the destination, as (seq, payload), oldest first.
    pub async fn pending(
        &self,
        database: &Database,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let sql = format!(
            "SELECT seq, payload FROM outbox WHERE {} ORDER BY seq LIMIT $1",
            self.filter()
        );
        let mut query = sqlx::query(&sql).bind(limit);
        if let Some(event_type) = self.event_type {
            query = query.bind(event_type);
        }
        let rows = query.fetch_all(database.pool()).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("seq")?, row.try_get("payload")?)))
            .collect()
    }

    /// Records that the destination holds the events `seqs`.
    pub async fn mark(
        &self,
        database: &Database,
        seqs: &[i64],
        at: i64,
    ) -> Result<(), sqlx::Error> {
        if seqs.is_empty() {
            return Ok(());
        }
        let placeholders: Vec<String> = (2..seqs.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "UPDATE outbox SET {} = $1 WHERE seq IN ({})",
            self.column,
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(at);
        for seq in seqs {
            query = query.bind(*seq);
        }
        query.execute(database.pool()).await?;
        Ok(())
    }

    /// How many events the destination does not hold yet.
    pub async fn backlog(&self, database: &Database) -> Result<i64, sqlx::Error> {
        let sql = format!(
            "SELECT COUNT(*) FROM outbox WHERE {}",
            self.filter().replace("$2", "$1")
        );
        let mut query = sqlx::query_scalar(&sql);
        if let Some(event_type) = self.event_type {
            query = query.bind(event_type);
        }
        query.fetch_one(database.pool()).await
    }
}
