//! The users' own words: Swedish names for states, roles, fields, data items and the other
//! codes the services speak in.

use tryggdel_auth::Role;
use tryggdel_proto::common::v1::DisclosureState;

pub fn state(state: i32) -> &'static str {
    match DisclosureState::try_from(state).unwrap_or(DisclosureState::Unspecified) {
        DisclosureState::Draft => "Utkast",
        DisclosureState::Submitted => "Att besluta",
        DisclosureState::Approved => "Godkänt, skickas",
        DisclosureState::Delivered => "Levererat till polisen",
        DisclosureState::Acknowledged => "Kvitterat",
        DisclosureState::Rejected => "Avslaget",
        DisclosureState::Withdrawn => "Återkallat",
        DisclosureState::Expired => "Förfallet",
        DisclosureState::Unspecified => "Okänt",
    }
}

pub fn role(role: Role) -> &'static str {
    match role {
        Role::Caseworker => "Handläggare",
        Role::DecisionMaker => "Beslutsfattare",
        Role::PoliceOfficer => "Polis",
        Role::ComplianceOfficer => "Granskare",
        Role::Admin => "Administratör",
    }
}

/// The inbox a disclosure goes to, as people say it: `Region Mitt` for a police region, the
/// authority's name (`Åklagarmyndigheten`) for another law-enforcement authority's inbox.
pub fn region(inbox: &str) -> String {
    match tryggdel_domain::Inbox::parse(inbox) {
        Ok(tryggdel_domain::Inbox::Police(region)) => region.display_name().to_owned(),
        Ok(tryggdel_domain::Inbox::Authority(authority)) => {
            authority.recipient().display_name().to_owned()
        }
        Err(_) => "okänd mottagare".to_owned(),
    }
}

/// The relations of the form, in the order they are offered.
pub const RELATIONS: &[(&str, &str)] = &[
    ("spouse", "Make/maka"),
    ("cohabitant", "Sambo"),
    ("partner_not_cohabiting", "Partner, ej sammanboende"),
    ("former_partner", "Tidigare partner"),
    ("parent", "Förälder"),
    ("child", "Barn"),
    ("sibling", "Syskon"),
    ("other_relative", "Annan släkting"),
    ("other", "Annan relation (motivera)"),
];

pub const VICTIM_PROTECTIONS: &[(&str, &str)] = &[
    ("none", "Inget skydd"),
    ("sekretessmarkering", "Sekretessmarkering"),
    ("skyddad_folkbokforing", "Skyddad folkbokföring"),
];

pub const CRIME_TIMES: &[(&str, &str)] = &[
    ("future_risk", "Risk för ett kommande brott"),
    ("committed", "Ett redan begånget brott"),
];

pub const SECRECY: &[(&str, &str)] = &[
    ("OSL-26-1", "Socialtjänstsekretess (26 kap. 1 § OSL)"),
    (
        "OSL-25-1",
        "Hälso- och sjukvårdssekretess (25 kap. 1 § OSL)",
    ),
];

/// The data items, with whether they are protected.
pub const DATA_ITEMS: &[(&str, &str, bool)] = &[
    ("subject_name", "Den enskildes namn", false),
    (
        "subject_identity_number",
        "Den enskildes personnummer",
        false,
    ),
    ("victim_name", "Den utsattes namn", false),
    ("victim_identity_number", "Den utsattes personnummer", false),
    ("victim_address", "Den utsattes adress (skyddad)", true),
    (
        "victim_workplace",
        "Den utsattes arbetsplats (skyddad)",
        true,
    ),
    ("relation", "Relationen", false),
    ("risk_description", "Riskbeskrivningen", false),
    ("crime_category", "Brottskategori", false),
    ("case_reference", "Ärendenummer", false),
    ("contact_person", "Kontaktperson", false),
];

pub fn data_item(item: &str) -> &str {
    DATA_ITEMS
        .iter()
        .find(|(key, _, _)| *key == item)
        .map(|(_, label, _)| *label)
        .unwrap_or(item)
}

pub fn lookup<'a>(table: &'a [(&'a str, &'a str)], key: &'a str) -> &'a str {
    table
        .iter()
        .find(|(code, _)| *code == key)
        .map(|(_, label)| *label)
        .unwrap_or(key)
}

/// The label of a form field, for refusals that name one.
pub fn field_label(field: &str) -> String {
    let label = match field {
        "unit" => "Enhet",
        "case_reference" => "Ärendenummer",
        "subject_identity_number" => "Den enskildes personnummer",
        "subject_name" => "Den enskildes namn",
        "victim_identity_number" => "Den utsattes personnummer",
        "victim_name" => "Den utsattes namn",
        "relation" => "Relation",
        "relation_justification" => "Motivering av relationen",
        "victim_protection" => "Skydd för den utsatte",
        "victim_protected_address" => "Adress",
        "victim_protected_workplace" => "Arbetsplats",
        "victim_protected_school" => "Skola",
        "victim_protected_shelter" => "Skyddat boende",
        "legal_basis_id" => "Rättslig grund",
        "claimed_secrecy" => "Sekretess som bryts",
        "recipient" => "Mottagare",
        "crime_id" => "Brott",
        "crime_time" => "Brottets tid",
        "risk_description" => "Riskbeskrivning",
        "alternatives_considered" => "Övervägda alternativ",
        "contact_person" => "Kontaktperson",
        "comment" => "Kommentar",
        "reason" => "Skäl",
        "police_reference" => "Polisens diarienummer",
        "question" => "Fråga",
        "close_relative_judgement" => "Din bedömning av om den utsatte är närstående",
        "organisation" => "Organisation",
        "information_sought" => "Vilka uppgifter som begärs",
        "purpose" => "Syfte",
        "legal_ground" => "Rättslig grund som åberopas",
        "reply_by" => "Svar senast",
        "weighing" => "Intresseavvägning",
        "until" => "Sista dag",
        "person_identity_number" => "Personnummer",
        other => return other.replace('_', " "),
    };
    label.to_owned()
}

/// A Unix-millisecond time as Swedish local-looking text (UTC, minutes).
pub fn time(unix_ms: i64) -> String {
    if unix_ms <= 0 {
        return "–".to_owned();
    }
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
    else {
        return "–".to_owned();
    };
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.format(&format).unwrap_or_else(|_| "–".to_owned())
}

/// How long ago `unix_ms` was, in words ("3 tim", "2 dagar").
pub fn age(unix_ms: i64, now_ms: i64) -> String {
    let minutes = (now_ms - unix_ms).max(0) / 60_000;
    match minutes {
        0 => "nyss".to_owned(),
        1..=59 => format!("{minutes} min"),
        60..=2879 => format!("{} tim", minutes / 60),
        _ => format!("{} dagar", minutes / 1440),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(0, 30_000), "nyss");
        assert_eq!(age(0, 5 * 60_000), "5 min");
        assert_eq!(age(0, 3 * 3_600_000), "3 tim");
        assert_eq!(age(0, 3 * 86_400_000), "3 dagar");
    }

    #[test]
    fn every_state_has_a_swedish_name() {
        for state in 1..=8 {
            assert_ne!(super::state(state), "Okänt");
        }
    }
}
