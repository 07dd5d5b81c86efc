//! CSV: one row per entry under a fixed header, RFC 4180 quoting (the `csv` crate), every
//! row naming the signed checkpoint, and every cell that a spreadsheet would read as a
//! formula defused.

use std::io::Write;

use crate::ExportError;
use crate::record::AuditRecord;
use crate::verified::CheckpointInfo;

/// The header row, in column order.
pub const CSV_HEADER: [&str; 22] = [
    "index",
    "recorded_at",
    "occurred_at",
    "action",
    "outcome",
    "outcome_detail",
    "actor_user_id",
    "actor_roles",
    "actor_organisation",
    "actor_unit",
    "organisation",
    "disclosure_id",
    "recipient",
    "legal_basis_id",
    "purpose",
    "person_refs",
    "event_id",
    "leaf_hash",
    "checkpoint_origin",
    "checkpoint_tree_size",
    "checkpoint_root_hash",
    "checkpoint_signatures",
];

/// Writes the CSV rows, one entry at a time.
pub(crate) struct CsvExport<W: Write> {
    writer: csv::Writer<W>,
    checkpoint: [String; 4],
}

impl<W: Write> CsvExport<W> {
    pub(crate) fn start(out: W, checkpoint: &CheckpointInfo) -> Result<Self, ExportError> {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(out);
        writer.write_record(CSV_HEADER).map_err(csv_error)?;
        Ok(Self {
            writer,
            checkpoint: [
                checkpoint.origin.clone(),
                checkpoint.tree_size.to_string(),
                checkpoint.root_hash_hex.clone(),
                checkpoint.signature_lines.join("\n"),
            ],
        })
    }

    pub(crate) fn record(&mut self, record: &AuditRecord) -> Result<(), ExportError> {
        let [origin, size, root, signatures] = &self.checkpoint;
        let row: [&str; 22] = [
            &record.index.to_string(),
            &record.recorded_at,
            &record.occurred_at,
            &record.action,
            &record.outcome,
            &record.outcome_detail,
            &record.actor_user_id,
            &record.actor_roles.join(" "),
            &record.actor_organisation,
            &record.actor_unit,
            &record.organisation,
            &record.disclosure_id,
            &record.recipient,
            &record.legal_basis_id,
            &record.purpose,
            &record.person_refs.join(" "),
            &record.event_id,
            &record.leaf_hash_hex,
            origin,
            size,
            root,
            signatures,
        ];
        let cells: Vec<std::borrow::Cow<'_, str>> =
            row.iter().map(|cell| defuse_formula(cell)).collect();
        self.writer
            .write_record(cells.iter().map(|cell| cell.as_bytes()))
            .map_err(csv_error)
    }

    pub(crate) fn finish(self) -> Result<W, ExportError> {
        self.writer
            .into_inner()
            .map_err(|e| ExportError::write("CSV", e.into_error()))
    }
}

/// A cell a spreadsheet would evaluate (starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return) gets a leading `'`, as OWASP's CSV injection advice says; the `csv`
/// crate then quotes what needs quoting.
pub fn defuse_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

fn csv_error(error: csv::Error) -> ExportError {
    let source = match error.into_kind() {
        csv::ErrorKind::Io(source) => source,
        other => std::io::Error::other(format!("{other:?}")),
    };
    ExportError::write("CSV", source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused_and_others_kept() {
        assert_eq!(defuse_formula("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(defuse_formula("+46"), "'+46");
        assert_eq!(defuse_formula("-1"), "'-1");
        assert_eq!(defuse_formula("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defuse_formula("\tx"), "'\tx");
        assert_eq!(defuse_formula("disclosure.read"), "disclosure.read");
        assert_eq!(defuse_formula("a=b"), "a=b");
        assert_eq!(defuse_formula(""), "");
    }
}
