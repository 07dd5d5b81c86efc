//! `tryggdel audit clear`: clears personal data from the audit log under a clearing decision
//! (gallringsbeslut): the free text of disclosures and, for persons, their references and the
//! free text of their entries outside any disclosure (access logs). The log keeps verifying:
//! what was cleared is named in an `audit.cleared` tombstone entry. The disclosure service's
//! `tryggdel clearing run` does the same for the disclosures it clears.

use std::path::Path;

use anyhow::Context;
use serde_json::json;
use tryggdel_proto::audit::v1::{ClearRequest, ClearResponse};

use crate::client::Connection;

/// Sends the decision in `decision_file` with the disclosures and persons to clear.
pub async fn clear(
    connection: &Connection,
    decision_file: &Path,
    disclosure_ids: Vec<String>,
    identity_numbers: Vec<String>,
) -> anyhow::Result<ClearResponse> {
    let decision_toml = std::fs::read_to_string(decision_file)
        .with_context(|| format!("reading the clearing decision {}", decision_file.display()))?;
    let mut client = connection.audit().await?;
    Ok(client
        .clear(ClearRequest {
            decision_toml,
            disclosure_ids,
            identity_numbers,
        })
        .await
        .map_err(crate::client::refused)?
        .into_inner())
}

/// What was cleared, in a sentence and the tombstones' indices.
pub fn report_text(response: &ClearResponse) -> String {
    let tombstones = response
        .tombstone_indices
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "cleared under decision {} (sha256 {}): {} disclosures, {} persons; {} keys destroyed, \
         {} openings deleted, {} person index rows deleted; tombstone entries: {}",
        response.decision_id,
        response.decision_sha256,
        response.disclosures_cleared,
        response.persons_cleared,
        response.keys_destroyed,
        response.openings_deleted,
        response.person_index_rows_deleted,
        tombstones
    )
}

/// The same as JSON.
pub fn report_json(response: &ClearResponse) -> serde_json::Value {
    json!({
        "decision_id": response.decision_id,
        "decision_sha256": response.decision_sha256,
        "disclosures_cleared": response.disclosures_cleared,
        "persons_cleared": response.persons_cleared,
        "keys_destroyed": response.keys_destroyed,
        "openings_deleted": response.openings_deleted,
        "person_index_rows_deleted": response.person_index_rows_deleted,
        "tombstone_indices": response.tombstone_indices,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_the_decision_and_the_counts() {
        let response = ClearResponse {
            decision_id: "GB-2026-03".into(),
            decision_sha256: "ab".repeat(32),
            disclosures_cleared: 2,
            persons_cleared: 1,
            keys_destroyed: 4,
            openings_deleted: 9,
            person_index_rows_deleted: 3,
            tombstone_indices: vec![41],
        };
        let text = report_text(&response);
        assert!(text.contains("decision GB-2026-03"), "{text}");
        assert!(
            text.contains("2 disclosures, 1 persons; 4 keys destroyed"),
            "{text}"
        );
        assert!(text.ends_with("tombstone entries: 41"), "{text}");
        assert_eq!(report_json(&response)["openings_deleted"], 9);
    }
}
