//! Printing results: readable tables by default, JSON for scripts.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tryggdel_proto::common::v1::DisclosureState;
use tryggdel_proto::disclosure::v1::{Assessment, Disclosure, DisclosureSummary};
use tryggdel_proto::notification::v1::{Delivery, Escalation, FollowUp, Recall, Receipt};

/// A table with a header row.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_style(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if header.iter().any(|title| !title.is_empty()) {
        table.set_header(header.to_vec());
    }
    for row in rows {
        table.add_row(row);
    }
    table.to_string()
}

/// Unix milliseconds as RFC 3339 (empty for 0).
pub fn time(unix_ms: i64) -> String {
    if unix_ms <= 0 {
        return String::new();
    }
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_default()
}

pub fn state(state: i32) -> String {
    DisclosureState::try_from(state)
        .map(|state| {
            state
                .as_str_name()
                .trim_start_matches("DISCLOSURE_STATE_")
                .to_owned()
        })
        .unwrap_or_else(|_| format!("UNKNOWN({state})"))
}

pub fn assessment_json(assessment: &Assessment) -> Value {
    json!({
        "legal_basis_id": assessment.legal_basis_id,
        "as_of": assessment.as_of,
        "passed": assessment.passed,
        "registry_version": assessment.registry_version,
        "conditions": assessment.conditions.iter().map(|condition| json!({
            "key": condition.key, "passed": condition.passed, "reason": condition.reason,
        })).collect::<Vec<_>>(),
        "suggested_bases": assessment.suggested_bases,
    })
}

pub fn assessment_text(assessment: &Assessment) -> String {
    let verdict = if assessment.passed {
        "PASSES"
    } else {
        "DOES NOT PASS"
    };
    let mut text = format!(
        "{} as of {}: {verdict}\n",
        assessment.legal_basis_id, assessment.as_of
    );
    text.push_str(&table(
        &["condition", "", "why"],
        assessment
            .conditions
            .iter()
            .map(|condition| {
                vec![
                    condition.key.clone(),
                    if condition.passed { "ok" } else { "NOT MET" }.to_owned(),
                    condition.reason.clone(),
                ]
            })
            .collect(),
    ));
    if !assessment.suggested_bases.is_empty() {
        text.push_str(&format!(
            "\nconsider instead: {}",
            assessment.suggested_bases.join(", ")
        ));
    }
    text
}

pub fn disclosure_json(disclosure: &Disclosure) -> Value {
    let content = disclosure.content.as_ref();
    json!({
        "id": disclosure.id,
        "version": disclosure.version,
        "state": state(disclosure.state),
        "organisation": disclosure.organisation,
        "police_region": disclosure.police_region,
        "legal_basis_id": content.map(|content| content.legal_basis_id.clone()),
        "urgent": content.map(|content| content.urgent),
        "drafted_by": disclosure.drafted_by,
        "created_at": time(disclosure.created_at_unix_ms),
        "updated_at": time(disclosure.updated_at_unix_ms),
        "submitted_by": disclosure.submitted_by,
        "decision": disclosure.decision.as_ref().map(|decision| json!({
            "outcome": decision.outcome,
            "decided_by": decision.decided_by,
            "decided_at": time(decision.decided_at_unix_ms),
            "reason": decision.reason,
            "payload_sha256": decision.payload_sha256,
            "registry_version": decision.registry_version,
        })),
        "delivery": disclosure.delivery.as_ref().map(|delivery| json!({
            "police_region": delivery.police_region,
            "delivered_at": time(delivery.delivered_at_unix_ms),
            "police_reference": delivery.police_reference,
            "acknowledged_by": delivery.acknowledged_by,
            "acknowledged_at": time(delivery.acknowledged_at_unix_ms),
            "receipt_key_id": delivery.receipt_key_id,
        })),
        "protected_revealed": disclosure.protected_revealed,
    })
}

pub fn disclosure_text(disclosure: &Disclosure) -> String {
    let mut rows = vec![
        row("id", disclosure.id.clone()),
        row("state", state(disclosure.state)),
        row("version", disclosure.version.to_string()),
        row("organisation", disclosure.organisation.clone()),
        row("police region", disclosure.police_region.clone()),
        row("drafted by", disclosure.drafted_by.clone()),
        row("created", time(disclosure.created_at_unix_ms)),
    ];
    if let Some(content) = &disclosure.content {
        rows.push(row("legal basis", content.legal_basis_id.clone()));
        rows.push(row("crime", content.crime_id.clone()));
        rows.push(row("urgent", content.urgent.to_string()));
        if let Some(protected) = &content.victim_protected {
            rows.push(row("protected address", protected.address.clone()));
        }
    }
    if let Some(decision) = &disclosure.decision {
        let decided = format!(
            "{} by {} at {}",
            decision.outcome,
            decision.decided_by,
            time(decision.decided_at_unix_ms)
        );
        rows.push(row("decision", decided));
        if !decision.payload_sha256.is_empty() {
            rows.push(row("payload sha-256", decision.payload_sha256.clone()));
        }
    }
    if let Some(delivery) = &disclosure.delivery {
        let delivered = format!(
            "to region {} at {}",
            delivery.police_region,
            time(delivery.delivered_at_unix_ms)
        );
        rows.push(row("delivered", delivered));
        if !delivery.acknowledged_by.is_empty() {
            let received = format!(
                "by {} at {}, police reference {} (signed receipt, key {})",
                delivery.acknowledged_by,
                time(delivery.acknowledged_at_unix_ms),
                delivery.police_reference,
                delivery.receipt_key_id
            );
            rows.push(row("received", received));
        }
    }
    table(&["", ""], rows)
}

/// One row of a two-column table: a label and its value.
fn row(label: &str, value: String) -> Vec<String> {
    vec![label.to_owned(), value]
}

pub fn summaries_text(summaries: &[DisclosureSummary]) -> String {
    table(
        &[
            "id",
            "state",
            "legal basis",
            "urgent",
            "drafted by",
            "created",
        ],
        summaries
            .iter()
            .map(|summary| {
                vec![
                    summary.id.clone(),
                    state(summary.state),
                    summary.legal_basis_id.clone(),
                    summary.urgent.to_string(),
                    summary.drafted_by.clone(),
                    time(summary.created_at_unix_ms),
                ]
            })
            .collect(),
    )
}

pub fn summaries_json(summaries: &[DisclosureSummary]) -> Value {
    Value::Array(
        summaries
            .iter()
            .map(|summary| {
                json!({
                    "id": summary.id,
                    "version": summary.version,
                    "state": state(summary.state),
                    "organisation": summary.organisation,
                    "legal_basis_id": summary.legal_basis_id,
                    "urgent": summary.urgent,
                    "drafted_by": summary.drafted_by,
                    "created_at": time(summary.created_at_unix_ms),
                })
            })
            .collect(),
    )
}

pub fn delivery_json(delivery: &Delivery) -> Value {
    json!({
        "sequence": delivery.sequence,
        "disclosure_id": delivery.disclosure_id,
        "organisation": delivery.organisation,
        "police_region": delivery.police_region,
        "urgent": delivery.urgent,
        "payload_sha256": delivery.payload_sha256,
        "payload": serde_json::from_slice::<Value>(&delivery.payload).unwrap_or(Value::Null),
        "delivered_at": time(delivery.delivered_at_unix_ms),
        "deadline": time(delivery.deadline_unix_ms),
        "overdue": delivery.overdue,
        "acknowledged": delivery.receipt.is_some(),
        "recall": delivery.recall.as_ref().map(recall_json),
    })
}

pub fn delivery_row(delivery: &Delivery) -> Vec<String> {
    vec![
        delivery.sequence.to_string(),
        delivery.disclosure_id.clone(),
        delivery.organisation.clone(),
        if delivery.urgent { "URGENT" } else { "" }.to_owned(),
        time(delivery.deadline_unix_ms),
        if delivery.overdue { "OVERDUE" } else { "" }.to_owned(),
    ]
}

pub const DELIVERY_HEADER: [&str; 6] =
    ["seq", "disclosure", "from", "urgent", "deadline", "overdue"];

pub fn receipt_json(receipt: &Receipt) -> Value {
    json!({
        "disclosure_id": receipt.disclosure_id,
        "police_reference": receipt.police_reference,
        "acknowledged_by": receipt.acknowledged_by,
        "police_region": receipt.police_region,
        "acknowledged_at": time(receipt.acknowledged_at_unix_ms),
        "payload_sha256": receipt.payload_sha256,
        "key_id": receipt.key_id,
        "statement": String::from_utf8_lossy(&receipt.statement),
        "signature_hex": hex::encode(&receipt.signature),
    })
}

pub fn recall_json(recall: &Recall) -> Value {
    json!({
        "disclosure_id": recall.disclosure_id,
        "reason": recall.reason,
        "withdrawn_by": recall.withdrawn_by,
        "withdrawn_at": time(recall.withdrawn_at_unix_ms),
        "recalled_at": time(recall.recalled_at_unix_ms),
        "acknowledged_by": recall.acknowledged_by,
        "acknowledged_at": (recall.acknowledged_at_unix_ms > 0)
            .then(|| time(recall.acknowledged_at_unix_ms)),
    })
}

pub fn follow_up_json(follow_up: &FollowUp) -> Value {
    json!({
        "id": follow_up.id,
        "disclosure_id": follow_up.disclosure_id,
        "asked_by": follow_up.asked_by,
        "police_region": follow_up.police_region,
        "question": follow_up.question,
        "asked_at": time(follow_up.asked_at_unix_ms),
    })
}

pub fn escalation_json(escalation: &Escalation) -> Value {
    json!({
        "disclosure_id": escalation.disclosure_id,
        "round": escalation.round,
        "urgent": escalation.urgent,
        "deadline": time(escalation.deadline_unix_ms),
        "raised_at": time(escalation.raised_at_unix_ms),
        "police_region": escalation.police_region,
    })
}

/// Writes a line to stdout. When the reader has gone (`… | head`), exits quietly as command
/// line tools do, instead of failing on the broken pipe.
pub fn emit(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{args}").and_then(|()| stdout.flush())
        && error.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// `println!` for command output: see [`emit`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::emit(format_args!($($arg)*))
    };
}
