//! `tryggdel clearing run`: runs a clearing decision (gallringsbeslut, a TOML file) over the
//! user's organisation's disclosures, or with `--dry-run` only shows what it would do. Prints
//! what was cleared and what was kept and why, as a table or JSON.

use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};
use tryggdel_proto::disclosure::v1::{ClearingReport, RunClearingRequest};

use crate::client::refused;
use crate::commands::Session;
use crate::output;

/// Whether a run changes anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClearingMode {
    Clear,
    DryRun,
}

/// Runs the decision in the file `decision`.
pub async fn run(session: &Session, decision: &Path, mode: ClearingMode) -> anyhow::Result<()> {
    let decision_toml = std::fs::read_to_string(decision)
        .with_context(|| format!("reading the clearing decision {}", decision.display()))?;
    let connection = session.connection.at(&session.endpoints.disclosure);
    let report = connection
        .disclosure()
        .await?
        .run_clearing(RunClearingRequest {
            decision_toml,
            dry_run: mode == ClearingMode::DryRun,
        })
        .await
        .map_err(refused)?
        .into_inner();
    if session.json {
        output::emit(format_args!(
            "{}",
            serde_json::to_string_pretty(&report_json(&report))?
        ));
    } else {
        output::emit(format_args!("{}", report_text(&report)));
    }
    Ok(())
}

pub fn report_json(report: &ClearingReport) -> Value {
    json!({
        "decision_id": report.decision_id,
        "decision_sha256": report.decision_sha256,
        "dry_run": report.dry_run,
        "retention_years": report.retention_years,
        "cutoff": output::time(report.cutoff_unix_ms),
        "cleared": report.cleared.iter().map(|cleared| json!({
            "disclosure_id": cleared.disclosure_id,
            "last_entry": output::time(cleared.last_entry_unix_ms),
        })).collect::<Vec<_>>(),
        "kept": report.kept.iter().map(|kept| json!({
            "disclosure_id": kept.disclosure_id,
            "last_entry": output::time(kept.last_entry_unix_ms),
            "reason": kept.reason,
        })).collect::<Vec<_>>(),
        "persons_cleared": report.persons_cleared,
        "audit_log_cleared": report.audit_log_cleared,
    })
}

pub fn report_text(report: &ClearingReport) -> String {
    let mut rows: Vec<Vec<String>> = report
        .cleared
        .iter()
        .map(|cleared| {
            vec![
                cleared.disclosure_id.clone(),
                output::time(cleared.last_entry_unix_ms),
                if report.dry_run {
                    "would be cleared".into()
                } else {
                    "cleared".into()
                },
            ]
        })
        .collect();
    rows.extend(report.kept.iter().map(|kept| {
        vec![
            kept.disclosure_id.clone(),
            output::time(kept.last_entry_unix_ms),
            format!("kept: {}", kept.reason.replace('_', " ")),
        ]
    }));
    let heading = format!(
        "{}decision {} (sha256 {}), retention {} years: last entries before {} are due; \
         {} cleared, {} kept, {} persons with nothing left{}",
        if report.dry_run { "DRY RUN — " } else { "" },
        report.decision_id,
        report.decision_sha256,
        report.retention_years,
        output::time(report.cutoff_unix_ms),
        report.cleared.len(),
        report.kept.len(),
        report.persons_cleared,
        if report.dry_run || report.audit_log_cleared {
            ""
        } else {
            " (the audit log was not cleared: run again)"
        },
    );
    if rows.is_empty() {
        return format!("{heading}\n");
    }
    format!(
        "{heading}\n{}\n",
        output::table(&["disclosure", "last entry", "outcome"], rows)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tryggdel_proto::disclosure::v1::{ClearedDisclosure, KeptDisclosure};

    #[test]
    fn the_report_names_what_was_cleared_and_kept_and_why() {
        let report = ClearingReport {
            decision_id: "GB-2026-03".into(),
            decision_sha256: "ab".repeat(32),
            dry_run: false,
            cutoff_unix_ms: 1_000,
            cleared: vec![ClearedDisclosure {
                disclosure_id: "d-1".into(),
                last_entry_unix_ms: 500,
            }],
            kept: vec![KeptDisclosure {
                disclosure_id: "d-2".into(),
                last_entry_unix_ms: 600,
                reason: "exempt_birth_day".into(),
            }],
            persons_cleared: 2,
            audit_log_cleared: true,
            retention_years: 5,
        };
        let text = report_text(&report);
        assert!(text.contains("retention 5 years"));
        assert!(text.contains("1 cleared, 1 kept, 2 persons"));
        assert!(text.contains("kept: exempt birth day"));
        let value = report_json(&report);
        assert_eq!(value["kept"][0]["reason"], "exempt_birth_day");
        assert_eq!(value["cleared"][0]["disclosure_id"], "d-1");
    }
}
