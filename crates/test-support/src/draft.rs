//! The disclosure draft the end-to-end tests and the benchmarks file: a complete draft about a
//! threat to kill a spouse, with made-up people whose identity numbers are valid.

use anyhow::Context as _;
use tryggdel_proto::common::v1::Person;
use tryggdel_proto::disclosure::v1::{ChecklistAnswer, DraftContent, SelectedItem};

/// The legal basis the draft is made under.
pub const LEGAL_BASIS: &str = "OSL-10-18c";

/// A test person born on 17 May `year` with birth number `birth`.
pub fn person(year: i32, birth: u16) -> anyhow::Result<Person> {
    let born = time::Date::from_calendar_date(year, time::Month::May, 17).context("birth date")?;
    Ok(Person {
        identity_number: tryggdel_domain::testing::personnummer_from(born, birth),
        name: format!("Testperson {birth}"),
    })
}

/// A complete draft about a threat to kill a spouse (the subject born 1980, the victim 1982),
/// under [`LEGAL_BASIS`], of an organisation whose records are under `claimed_secrecy`
/// (`OSL-26-1` social services, `OSL-25-1` healthcare).
pub fn draft_content(
    case_reference: &str,
    claimed_secrecy: &str,
    urgent: bool,
) -> anyhow::Result<DraftContent> {
    let answer = |key: &str| ChecklistAnswer {
        key: key.into(),
        answer: true,
        justification: "Skriftlig motivering enligt riskbedömning".into(),
    };
    Ok(DraftContent {
        unit: "Socialtjänsten".into(),
        case_reference: case_reference.into(),
        subject: Some(person(1980, 111)?),
        victim: Some(person(1982, 222)?),
        relation: "spouse".into(),
        victim_protection: "none".into(),
        legal_basis_id: LEGAL_BASIS.into(),
        claimed_secrecy: claimed_secrecy.into(),
        recipient: "polismyndigheten".into(),
        crime_id: "mord".into(),
        crime_time: "future_risk".into(),
        risk_description: "Allvarliga hot".into(),
        checklist: vec![
            answer("special_circumstances"),
            answer("contributes_to_prevention"),
            answer("not_unsuitable"),
        ],
        data_items: vec![SelectedItem {
            item: "subject_name".into(),
            reason: "identifiering".into(),
        }],
        urgent,
        ..Default::default()
    })
}
