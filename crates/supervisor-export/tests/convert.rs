//! Conversions of a verified export: what each format states, and the refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Cursor;

use common::{
    IDENTITY_NUMBER, ORIGIN, PERSON_REF, converted_at, sample_entries, signed_export,
    signed_export_with_key,
};
use tryggdel_supervisor_export::{CSV_HEADER, ExportError, Format, convert};

fn run(bytes: &[u8], format: Format) -> Result<Vec<u8>, ExportError> {
    let export = signed_export(&sample_entries());
    convert(
        || Ok(Cursor::new(bytes.to_vec())),
        &export.verifier,
        format,
        converted_at(),
        Vec::new(),
    )
    .map(|(_, out)| out)
}

#[test]
fn a_tampered_export_is_refused_in_every_format() {
    let export = signed_export(&sample_entries());
    // Entry 1's bytes changed, its recorded leaf hash and the signed note kept.
    let original = String::from_utf8(export.bytes.clone()).unwrap();
    let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
    let mut line: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    let changed = String::from_utf8(sample_entries()[1].clone())
        .unwrap()
        .replace("bertil", "bertha");
    line["entry"] = base64_encode(changed.as_bytes()).into();
    lines[2] = line.to_string();
    let spliced = format!("{}\n", lines.join("\n"));
    for format in [Format::Csv, Format::Pdf, Format::Fhir] {
        let error = run(spliced.as_bytes(), format).unwrap_err();
        assert!(
            matches!(error, ExportError::NotVerified { .. }),
            "{format:?}: {error}"
        );
        assert!(error.to_string().contains("index 1"), "{error}");
    }
    // Signed by another key: refused as well.
    let other = signed_export_with_key(&sample_entries(), 8);
    let error = convert(
        || Ok(Cursor::new(other.bytes.clone())),
        &export.verifier,
        Format::Csv,
        converted_at(),
        Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(error, ExportError::NotVerified { .. }), "{error}");
}

#[test]
fn an_export_that_changes_between_verifying_and_converting_is_refused() {
    let export = signed_export(&sample_entries());
    let other = signed_export(&sample_entries()[..3]);
    let mut readings = vec![other.bytes.clone(), export.bytes.clone()];
    let error = convert(
        || Ok(Cursor::new(readings.pop().unwrap_or_default())),
        &export.verifier,
        Format::Fhir,
        converted_at(),
        Vec::new(),
    )
    .unwrap_err();
    assert!(
        matches!(error, ExportError::ChangedSinceVerified { .. }),
        "{error}"
    );
}

#[test]
fn csv_has_the_fixed_header_one_row_per_entry_quoting_and_defused_formulas() {
    let export = signed_export(&sample_entries());
    let out = run(&export.bytes, Format::Csv).unwrap();
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, CSV_HEADER);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 5);
    let column = |name: &str| CSV_HEADER.iter().position(|h| *h == name).unwrap();
    for (index, row) in rows.iter().enumerate() {
        assert_eq!(row[column("index")], index.to_string());
        assert_eq!(row[column("checkpoint_origin")], *ORIGIN);
        assert_eq!(row[column("checkpoint_tree_size")], *"5");
        assert_eq!(row[column("checkpoint_root_hash")], export.root_hex);
        assert!(row[column("checkpoint_signatures")].starts_with(&format!("— {ORIGIN} ")));
    }
    assert_eq!(rows[3][column("recipient")], *"polisen-region-vast");
    assert_eq!(rows[1][column("person_refs")], *PERSON_REF);
    // The formula is defused; its quotes, comma and line break survive RFC 4180 quoting.
    assert_eq!(
        rows[4][column("outcome_detail")],
        *"'=HYPERLINK(\"http://evil.example\",\"x\"), said \"no\"\nsecond line"
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(
        "\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\"), said \"\"no\"\"\nsecond line\""
    ));
    assert!(text.contains("\r\n"));
    assert!(!text.contains(IDENTITY_NUMBER));
}

#[test]
fn fhir_bundle_names_the_checkpoint_and_each_index_with_balp_codes() {
    let export = signed_export(&sample_entries());
    let out = run(&export.bytes, Format::Fhir).unwrap();
    let bundle: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    assert_eq!(
        bundle["identifier"]["value"],
        format!("5:{}", export.root_hex)
    );
    assert_eq!(bundle["meta"]["tag"][0]["code"], export.root_hex);
    let note = base64_decode(bundle["signature"]["data"].as_str().unwrap());
    assert!(note.starts_with(&format!("{ORIGIN}\n5\n")), "{note}");
    assert_eq!(bundle["timestamp"], "2026-12-03T12:00:00Z");

    let events: Vec<&serde_json::Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| &entry["resource"])
        .collect();
    assert_eq!(events.len(), 5);
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["resourceType"], "AuditEvent");
        assert_eq!(event["id"], format!("log-entry-{index}"));
        let log_entity = &event["entity"][0];
        assert_eq!(log_entity["what"]["identifier"]["value"], index.to_string());
        assert_eq!(log_entity["detail"][0]["type"], "log-index");
        assert_eq!(log_entity["detail"][0]["valueString"], index.to_string());
    }
    assert_eq!(
        bundle["entry"][0]["fullUrl"],
        "urn:uuid:0190a3b2-7c4d-7e5f-8a9b-0c1d2e3f4a50"
    );

    // The draft: no BALP profile claimed.
    assert!(events[0].get("meta").is_none());
    assert_eq!(events[0]["type"]["code"], "disclosure.draft_created");

    // The read: PatientRead, rest/read, R, the person as a keyed reference.
    let read = events[1];
    assert_eq!(
        read["meta"]["profile"][0],
        "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"
    );
    assert_eq!(read["type"]["code"], "rest");
    assert_eq!(read["subtype"][0]["code"], "read");
    assert_eq!(read["action"], "R");
    assert_eq!(read["outcome"], "0");
    let patient = &read["entity"][1];
    assert_eq!(patient["role"]["code"], "1");
    assert_eq!(patient["what"]["identifier"]["value"], PERSON_REF);
    assert_eq!(read["agent"][0]["who"]["identifier"]["value"], "bertil");
    assert_eq!(read["purposeOfEvent"][0]["coding"][0]["code"], "osl-10-21");

    // The list: PatientQuery, search-type, E, with a query entity.
    let query = events[2];
    assert!(
        query["meta"]["profile"][0]
            .as_str()
            .unwrap()
            .ends_with("IHE.BasicAudit.PatientQuery")
    );
    assert_eq!(query["subtype"][0]["code"], "search-type");
    assert_eq!(query["action"], "E");
    assert!(
        query["entity"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["role"]["code"] == "24")
    );

    // The delivery: PrivacyDisclosure at the source, DCM 110106, disclose, the recipient.
    let disclosure = events[3];
    assert!(
        disclosure["meta"]["profile"][0]
            .as_str()
            .unwrap()
            .ends_with("IHE.BasicAudit.PrivacyDisclosure.Source")
    );
    assert_eq!(
        disclosure["type"]["system"],
        "http://dicom.nema.org/resources/ontology/DCM"
    );
    assert_eq!(disclosure["type"]["code"], "110106");
    assert_eq!(disclosure["subtype"][0]["code"], "disclose");
    let recipient = disclosure["agent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|agent| agent["type"]["coding"][0]["code"] == "IRCP")
        .expect("a recipient agent");
    assert_eq!(
        recipient["who"]["identifier"]["value"],
        "polisen-region-vast"
    );

    // The refused read: minor failure with its description; no person entity.
    assert_eq!(events[4]["outcome"], "4");
    assert_eq!(events[4]["entity"].as_array().unwrap().len(), 2);

    assert!(!String::from_utf8(out).unwrap().contains(IDENTITY_NUMBER));
}

#[test]
fn pdf_is_pdf_a_2b_and_states_the_checkpoint() {
    let export = signed_export(&sample_entries());
    let out = run(&export.bytes, Format::Pdf).unwrap();
    assert!(out.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(&out);
    // The XMP metadata declares PDF/A-2b and carries the root hash.
    assert!(
        text.contains("<pdfaid:part>2</pdfaid:part>"),
        "no PDF/A part in the XMP"
    );
    assert!(text.contains("<pdfaid:conformance>B</pdfaid:conformance>"));
    assert!(
        text.contains(&export.root_hex),
        "the XMP lacks the root hash"
    );
    // The pages' text: the first page names the checkpoint, the table every index.
    let document = lopdf::Document::load_mem(&out).unwrap();
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    assert_eq!(pages.len(), 2);
    let first = document.extract_text(&[pages[0]]).unwrap();
    assert!(first.contains(&export.root_hex), "{first}");
    assert!(first.contains(ORIGIN), "{first}");
    let table = document.extract_text(&[pages[1]]).unwrap();
    assert!(table.contains("disclosure.delivered"), "{table}");
    assert!(table.contains("polisen-region-vast"), "{table}");
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_decode(text: &str) -> String {
    use base64::Engine as _;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap(),
    )
    .unwrap()
}
