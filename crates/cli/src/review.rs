//! A compliance officer's `review …` commands (systematic log review): set and show the
//! organisation's written criteria, run a review over a period (a seeded sample and the
//! targeted rules), show or list runs, and record an outcome per finding. Each prints a
//! table, or JSON with `--json`.

use serde_json::{Value, json};
use tryggdel_proto::audit::v1::{
    GetReviewCriteriaRequest, GetReviewRunRequest, ListReviewRunsRequest,
    RecordReviewOutcomeRequest, ReviewCriteria, ReviewFinding, ReviewOutcome, ReviewRun,
    SetReviewCriteriaRequest, StartReviewRunRequest,
};

use crate::client::refused;
use crate::commands::Session;
use crate::output;

/// What a review command does.
#[derive(Clone, Debug)]
pub enum ReviewAction {
    /// Stores `text` as the organisation's next version of its criteria.
    SetCriteria { text: String },
    /// The criteria of `organisation` (None: one's own), `version` (None: the latest).
    ShowCriteria {
        organisation: Option<String>,
        version: Option<u32>,
    },
    /// Runs a review of `organisation` from `from` to `until` (days, both included).
    Run {
        organisation: Option<String>,
        from: String,
        until: String,
        seed: Option<String>,
        sample: Option<u32>,
    },
    /// A run with its findings.
    Show { run_id: String },
    /// The organisation's runs, newest first.
    List { organisation: Option<String> },
    /// Records the outcome of finding `finding` of run `run_id`.
    Outcome {
        run_id: String,
        finding: u32,
        outcome: ReviewOutcome,
        note: Option<String>,
    },
}

/// `no-remark`, `explained` or `unauthorised-escalated` (underscores also taken).
pub fn parse_outcome(text: &str) -> Result<ReviewOutcome, String> {
    match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "no-remark" => Ok(ReviewOutcome::NoRemark),
        "explained" => Ok(ReviewOutcome::Explained),
        "unauthorised-escalated" | "unauthorized-escalated" => {
            Ok(ReviewOutcome::UnauthorisedEscalated)
        }
        _ => Err(format!(
            "{text:?}: expected no-remark, explained or unauthorised-escalated"
        )),
    }
}

/// Runs a review command.
pub async fn review(session: &Session, action: ReviewAction) -> anyhow::Result<()> {
    let connection = session.connection.at(&session.endpoints.audit);
    let mut client = connection.review().await?;
    let (value, text) = match action {
        ReviewAction::SetCriteria { text } => {
            let criteria = client
                .set_review_criteria(SetReviewCriteriaRequest {
                    organisation: String::new(),
                    text,
                })
                .await
                .map_err(refused)?
                .into_inner();
            (criteria_json(&criteria), criteria_text(&criteria))
        }
        ReviewAction::ShowCriteria {
            organisation,
            version,
        } => {
            let criteria = client
                .get_review_criteria(GetReviewCriteriaRequest {
                    organisation: organisation.unwrap_or_default(),
                    version: version.unwrap_or_default(),
                })
                .await
                .map_err(refused)?
                .into_inner();
            (criteria_json(&criteria), criteria_text(&criteria))
        }
        ReviewAction::Run {
            organisation,
            from,
            until,
            seed,
            sample,
        } => {
            let run = client
                .start_review_run(StartReviewRunRequest {
                    organisation: organisation.unwrap_or_default(),
                    from,
                    until,
                    seed: seed.unwrap_or_default(),
                    sample_size: sample.unwrap_or_default(),
                })
                .await
                .map_err(refused)?
                .into_inner();
            (run_json(&run), run_text(&run))
        }
        ReviewAction::Show { run_id } => {
            let run = client
                .get_review_run(GetReviewRunRequest { run_id })
                .await
                .map_err(refused)?
                .into_inner();
            (run_json(&run), run_text(&run))
        }
        ReviewAction::List { organisation } => {
            let mut runs = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_review_runs(ListReviewRunsRequest {
                        organisation: organisation.clone().unwrap_or_default(),
                        page_size: 100,
                        page_token,
                    })
                    .await
                    .map_err(refused)?
                    .into_inner();
                runs.extend(page.runs);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            (
                json!(runs.iter().map(run_json).collect::<Vec<_>>()),
                runs_text(&runs),
            )
        }
        ReviewAction::Outcome {
            run_id,
            finding,
            outcome,
            note,
        } => {
            let finding = client
                .record_review_outcome(RecordReviewOutcomeRequest {
                    run_id,
                    finding,
                    outcome: outcome as i32,
                    note: note.unwrap_or_default(),
                })
                .await
                .map_err(refused)?
                .into_inner();
            (
                finding_json(&finding),
                format!(
                    "{}\noutcome recorded",
                    findings_text(std::slice::from_ref(&finding))
                ),
            )
        }
    };
    if session.json {
        crate::out!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        crate::out!("{text}");
    }
    Ok(())
}

fn outcome_text(outcome: i32) -> &'static str {
    match ReviewOutcome::try_from(outcome) {
        Ok(ReviewOutcome::NoRemark) => "no remark",
        Ok(ReviewOutcome::Explained) => "explained",
        Ok(ReviewOutcome::UnauthorisedEscalated) => "unauthorised, escalated",
        _ => "open",
    }
}

pub fn criteria_json(criteria: &ReviewCriteria) -> Value {
    json!({
        "organisation": criteria.organisation,
        "version": criteria.version,
        "text": criteria.text,
        "set_by": criteria.set_by,
        "set_at": output::time(criteria.set_at_unix_ms),
    })
}

pub fn criteria_text(criteria: &ReviewCriteria) -> String {
    if criteria.version == 0 {
        return format!(
            "{} has no written review criteria yet (set them with `tryggdel review criteria set`)",
            criteria.organisation
        );
    }
    format!(
        "Criteria of {}, version {} (set by {} at {}):\n\n{}",
        criteria.organisation,
        criteria.version,
        criteria.set_by,
        output::time(criteria.set_at_unix_ms),
        criteria.text
    )
}

pub fn finding_json(finding: &ReviewFinding) -> Value {
    json!({
        "run_id": finding.run_id,
        "number": finding.number,
        "rule": finding.rule,
        "entry_index": finding.entry_index,
        "actor_user_id": finding.actor_user_id,
        "disclosure_id": finding.disclosure_id,
        "action": finding.action,
        "occurred_at": output::time(finding.occurred_at_unix_ms),
        "explanation": finding.explanation,
        "explanation_sv": finding.explanation_sv,
        "outcome": outcome_text(finding.outcome),
        "note": finding.note,
        "outcome_by": finding.outcome_by,
        "outcome_at": output::time(finding.outcome_at_unix_ms),
    })
}

pub fn run_json(run: &ReviewRun) -> Value {
    json!({
        "run_id": run.run_id,
        "organisation": run.organisation,
        "from": run.from,
        "until": run.until,
        "seed": run.seed,
        "sample_size": run.sample_size,
        "sample_algorithm": run.sample_algorithm,
        "criteria": run.criteria.as_ref().map(criteria_json),
        "rules": run.rules,
        "rule_counts": run.rule_counts.iter().map(|count| json!({
            "rule": count.rule,
            "matched": count.matched,
            "findings": count.findings,
        })).collect::<Vec<_>>(),
        "started_by": run.started_by,
        "started_at": output::time(run.started_at_unix_ms),
        "access_entries": run.access_entries,
        "finding_count": run.finding_count,
        "open_findings": run.open_findings,
        "findings": run.findings.iter().map(finding_json).collect::<Vec<_>>(),
    })
}

pub fn findings_text(findings: &[ReviewFinding]) -> String {
    let rows = findings
        .iter()
        .map(|finding| {
            vec![
                finding.number.to_string(),
                finding.rule.clone(),
                if finding.entry_index < 0 {
                    "-".to_owned()
                } else {
                    finding.entry_index.to_string()
                },
                finding.explanation.clone(),
                outcome_text(finding.outcome).to_owned(),
            ]
        })
        .collect();
    output::table(&["#", "RULE", "ENTRY", "EXPLANATION", "OUTCOME"], rows)
}

pub fn run_text(run: &ReviewRun) -> String {
    let counts = run
        .rule_counts
        .iter()
        .map(|count| {
            vec![
                count.rule.clone(),
                count.matched.to_string(),
                count.findings.to_string(),
            ]
        })
        .collect();
    let criteria = run.criteria.as_ref().map(criteria_text).unwrap_or_default();
    format!(
        "Review {} of {}, {} to {}: {} access entries, {} findings ({} open)\n\
         seed {} ({}), started by {} at {}\n\n{}\n\n{}\n\n{}",
        run.run_id,
        run.organisation,
        run.from,
        run.until,
        run.access_entries,
        run.finding_count,
        run.open_findings,
        run.seed,
        run.sample_algorithm,
        run.started_by,
        output::time(run.started_at_unix_ms),
        output::table(&["RULE", "MATCHED", "FINDINGS"], counts),
        criteria,
        findings_text(&run.findings)
    )
}

pub fn runs_text(runs: &[ReviewRun]) -> String {
    let rows = runs
        .iter()
        .map(|run| {
            vec![
                run.run_id.clone(),
                format!("{} – {}", run.from, run.until),
                run.finding_count.to_string(),
                run.open_findings.to_string(),
                run.started_by.clone(),
                output::time(run.started_at_unix_ms),
            ]
        })
        .collect();
    output::table(
        &[
            "RUN",
            "PERIOD",
            "FINDINGS",
            "OPEN",
            "STARTED BY",
            "STARTED AT",
        ],
        rows,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_parse_from_their_command_line_names() {
        assert_eq!(parse_outcome("no-remark").unwrap(), ReviewOutcome::NoRemark);
        assert_eq!(
            parse_outcome("EXPLAINED").unwrap(),
            ReviewOutcome::Explained
        );
        assert_eq!(
            parse_outcome("unauthorised_escalated").unwrap(),
            ReviewOutcome::UnauthorisedEscalated
        );
        assert!(parse_outcome("fine").is_err());
    }

    #[test]
    fn an_open_finding_reads_open_and_has_its_explanation() {
        let finding = ReviewFinding {
            number: 3,
            rule: "outside_hours".into(),
            entry_index: 41,
            explanation: "u read disclosure d on 2026-03-26 22:30: outside working hours.".into(),
            ..ReviewFinding::default()
        };
        let text = findings_text(std::slice::from_ref(&finding));
        assert!(text.contains("outside_hours"), "{text}");
        assert!(text.contains("open"), "{text}");
        assert_eq!(finding_json(&finding)["outcome"], "open");
    }
}
