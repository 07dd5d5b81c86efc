//! A compliance officer's `report subject`: the audit service's subject report
//! (registerutdrag) about one person, written to a file as the service's JSON document or as a
//! PDF/A letter to the person (Swedish). The file is written beside its destination and renamed
//! into place only when complete, so a failed report leaves no file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use time::OffsetDateTime;
use tryggdel_proto::audit::v1::{GetSubjectReportRequest, SubjectReport};

use crate::client::{Connection, refused};

/// The file format of a subject report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    /// The audit service's JSON document, as it is.
    Json,
    /// A PDF/A-2b letter to the person, in Swedish.
    Pdf,
}

/// What `report subject` asks for.
#[derive(Clone, Debug)]
pub struct SubjectReportRequest {
    /// The person's identity number.
    pub person: String,
    /// Supervisors: one organisation's part only.
    pub organisation: Option<String>,
    pub format: ReportFormat,
    pub out: PathBuf,
}

/// Fetches the subject report and writes it to `request.out`; returns the report.
pub async fn subject_report(
    connection: &Connection,
    request: &SubjectReportRequest,
) -> anyhow::Result<SubjectReport> {
    let report = connection
        .subject_reports()
        .await?
        .get_subject_report(GetSubjectReportRequest {
            person_identity_number: request.person.clone(),
            organisation: request.organisation.clone().unwrap_or_default(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    let bytes = render(&report, request.format)?;
    write_whole(&request.out, &bytes)?;
    Ok(report)
}

/// The report's file content in `format`.
pub fn render(report: &SubjectReport, format: ReportFormat) -> anyhow::Result<Vec<u8>> {
    match format {
        ReportFormat::Json => Ok(report.json.clone()),
        ReportFormat::Pdf => {
            tryggdel_supervisor_export::subject_report_pdf(&report.json, OffsetDateTime::now_utc())
                .context("rendering the subject report as PDF")
        }
    }
}

/// A one-line summary of a written report.
pub fn summary(report: &SubjectReport, out: &Path) -> String {
    format!(
        "subject report {} (as of {}): {} disclosures, {} accesses, written to {}",
        report.report_id,
        report.as_of,
        report.disclosures.len(),
        report.accesses.len(),
        out.display()
    )
}

/// Writes `bytes` to a file beside `out`, then renames it to `out`.
fn write_whole(out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, out).with_context(|| format!("renaming into {}", out.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn report() -> SubjectReport {
        SubjectReport {
            report_id: "r1".into(),
            as_of: "2026-12-03".into(),
            json: br#"{"format":"tryggdel.subject_report/1","report_id":"r1","as_of":"2026-12-03","disclosures":[],"accesses":[]}"#.to_vec(),
            ..SubjectReport::default()
        }
    }

    #[test]
    fn json_is_the_service_document_and_pdf_a_letter() {
        let report = report();
        assert_eq!(render(&report, ReportFormat::Json).unwrap(), report.json);
        let pdf = render(&report, ReportFormat::Pdf).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        let broken = SubjectReport {
            json: b"{}".to_vec(),
            ..report
        };
        assert!(render(&broken, ReportFormat::Pdf).is_err());
    }

    #[test]
    fn the_file_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("utdrag.pdf");
        write_whole(&out, b"%PDF-").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"%PDF-");
        assert!(!dir.path().join("utdrag.pdf.partial").exists());
        assert!(summary(&report(), &out).contains("0 disclosures"));
    }
}
