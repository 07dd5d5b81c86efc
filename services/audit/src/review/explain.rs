//! Plain explanations of findings, in English and Swedish, naming who did what and when.

use crate::entry::EntryRecord;

use super::holidays::day_off;
use super::period::{local_date, local_text};
use super::rules::{
    RULE_COMPLIANCE_READ, RULE_NO_RELATION, RULE_OUTSIDE_HOURS, RULE_PROTECTED_IDENTITY,
    RULE_PROTECTED_REVEALED, RULE_SAMPLE,
};
use super::settings::ReviewSettings;

/// What an access action did, in English and Swedish.
fn action_words(action: &str) -> (String, String) {
    let (en, sv) = match action {
        "disclosure.read" => ("read", "läste"),
        "disclosure.listed" => ("listed", "listade"),
        "disclosure.protected_revealed" => (
            "revealed the protected details of",
            "visade de skyddade uppgifterna i",
        ),
        "notification.read" => ("read the delivery of", "läste leveransen av"),
        "information_request.read" => ("read the request", "läste förfrågan"),
        "information_request.listed" => ("listed requests", "listade förfrågningar"),
        "audit.queried" => ("searched the audit log", "sökte i granskningsloggen"),
        "audit.exported" => ("exported the audit log", "exporterade granskningsloggen"),
        "audit.review_run" => ("ran a log review", "gjorde en logggranskning"),
        other => return (format!("did {other} on"), format!("utförde {other} på")),
    };
    (en.to_owned(), sv.to_owned())
}

/// Who acted, as the entry names them.
fn who(record: &EntryRecord) -> String {
    let actor = &record.body.actor;
    let user = if actor.user_id.is_empty() {
        "(no user)".to_owned()
    } else {
        actor.user_id.clone()
    };
    let mut place: Vec<&str> = Vec::new();
    if !actor.unit.is_empty() {
        place.push(&actor.unit);
    }
    if !actor.organisation.is_empty() {
        place.push(&actor.organisation);
    }
    if place.is_empty() {
        user
    } else {
        format!("{user} ({})", place.join(", "))
    }
}

/// What was accessed: the disclosure, or the disclosures of a page.
fn what(record: &EntryRecord) -> (String, String) {
    let body = &record.body;
    if !body.disclosure_id.is_empty() {
        return (
            format!("disclosure {}", body.disclosure_id),
            format!("utlämnande {}", body.disclosure_id),
        );
    }
    let disclosures = body
        .objects
        .iter()
        .filter(|object| object.kind == "disclosure")
        .count();
    if disclosures > 0 {
        (
            format!("a page of {disclosures} disclosures"),
            format!("en sida med {disclosures} utlämnanden"),
        )
    } else if body.action.starts_with("audit.") {
        (String::new(), String::new())
    } else {
        ("records".to_owned(), "uppgifter".to_owned())
    }
}

/// Why the rule flagged it.
fn reason(rule: &str, settings: &ReviewSettings, record: &EntryRecord) -> (String, String) {
    match rule {
        RULE_SAMPLE => (
            "drawn at random for review (sample)".into(),
            "slumpvis utvald för granskning (stickprov)".into(),
        ),
        RULE_PROTECTED_IDENTITY => (
            "the disclosure concerns a person with protected identity".into(),
            "utlämnandet rör en person med skyddad identitet".into(),
        ),
        RULE_NO_RELATION => (
            "the user has no documented relation to the case: not its drafter, submitter or \
             decision maker, nor an officer of its receiving region or authority"
                .into(),
            "användaren har ingen dokumenterad koppling till ärendet: varken den som upprättade, \
             lämnade in eller beslutade om det, eller handläggare hos mottagande region eller \
             myndighet"
                .into(),
        ),
        RULE_OUTSIDE_HOURS => match local_date(record.body.occurred_at_unix_ms).and_then(day_off) {
            Some(day) => (
                format!("on a day off ({day}), when there are no working hours"),
                format!("på en ledig dag ({day}), som saknar arbetstid"),
            ),
            None => (
                format!(
                    "outside working hours (weekdays {}, Swedish time)",
                    settings.working_hours()
                ),
                format!(
                    "utanför arbetstid (vardagar {}, svensk tid)",
                    settings.working_hours()
                ),
            ),
        },
        RULE_PROTECTED_REVEALED => (
            "protected details (address, workplace, school, shelter) were revealed".into(),
            "skyddade uppgifter (adress, arbetsplats, skola, skyddat boende) visades".into(),
        ),
        RULE_COMPLIANCE_READ => {
            let filters: Vec<String> = record
                .body
                .details
                .iter()
                .filter(|(key, _)| !key.contains("note"))
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            if filters.is_empty() {
                (
                    "a compliance read of the log".into(),
                    "en läsning av loggen i granskningssyfte".into(),
                )
            } else {
                (
                    format!("a compliance read of the log ({})", filters.join(", ")),
                    format!(
                        "en läsning av loggen i granskningssyfte ({})",
                        filters.join(", ")
                    ),
                )
            }
        }
        other => (format!("rule {other}"), format!("regel {other}")),
    }
}

/// The English and Swedish explanation of an entry flagged by `rule`.
pub fn entry_explanation(
    rule: &str,
    settings: &ReviewSettings,
    record: &EntryRecord,
) -> (String, String) {
    let who = who(record);
    let (did_en, did_sv) = action_words(&record.body.action);
    let (what_en, what_sv) = what(record);
    let when = local_text(record.body.occurred_at_unix_ms);
    let (why_en, why_sv) = reason(rule, settings, record);
    let join = |did: &str, what: &str| {
        if what.is_empty() {
            did.to_owned()
        } else {
            format!("{did} {what}")
        }
    };
    (
        format!("{who} {} on {when}: {why_en}.", join(&did_en, &what_en)),
        format!("{who} {} {when}: {why_sv}.", join(&did_sv, &what_sv)),
    )
}

/// The explanation of one user's many persons in a short time.
pub fn burst_explanation(
    settings: &ReviewSettings,
    user: &str,
    persons: i64,
    first_at: i64,
    last_at: i64,
) -> (String, String) {
    let (from, until) = (local_text(first_at), local_text(last_at));
    (
        format!(
            "{user} accessed {persons} different persons between {from} and {until} (the \
             threshold is {} persons within {} minutes).",
            settings.burst_persons(),
            settings.burst_minutes()
        ),
        format!(
            "{user} tog del av uppgifter om {persons} olika personer mellan {from} och {until} \
             (gränsen är {} personer inom {} minuter).",
            settings.burst_persons(),
            settings.burst_minutes()
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeMap;

    use crate::entry::{EntryActor, EntryBody, EntryPurpose};

    use super::*;

    fn record(action: &str) -> EntryRecord {
        EntryBody {
            event_id: "e".into(),
            source: "disclosure".into(),
            action: action.into(),
            occurred_at: String::new(),
            // 2026-03-27 20:15 CET.
            occurred_at_unix_ms: 1_774_638_900_000,
            outcome: "success".into(),
            outcome_detail: String::new(),
            actor: EntryActor {
                user_id: "handlaggare-bollnas".into(),
                roles: vec!["caseworker".into()],
                organisation: "bollnas-kommun".into(),
                unit: "IFO".into(),
            },
            organisation: "bollnas-kommun".into(),
            disclosure_id: "d-1".into(),
            objects: Vec::new(),
            purpose: EntryPurpose {
                legal_basis_id: String::new(),
                registry_version: String::new(),
                purpose: String::new(),
            },
            recipient: String::new(),
            person_refs: Vec::new(),
            trace_id: String::new(),
            details: BTreeMap::new(),
        }
        .record(1_774_638_900_000)
    }

    #[test]
    fn an_explanation_names_who_what_when_and_why() {
        let (en, sv) = entry_explanation(
            RULE_OUTSIDE_HOURS,
            &ReviewSettings::default(),
            &record("disclosure.read"),
        );
        assert_eq!(
            en,
            "handlaggare-bollnas (IFO, bollnas-kommun) read disclosure d-1 on 2026-03-27 20:15: \
             outside working hours (weekdays 07:00-18:00, Swedish time)."
        );
        assert!(sv.starts_with("handlaggare-bollnas (IFO, bollnas-kommun) läste utlämnande d-1 2026-03-27 20:15: utanför arbetstid"), "{sv}");
        // Christmas Eve 2026, 10:30: within the hours, but a day off.
        let mut on_christmas_eve = record("disclosure.read");
        on_christmas_eve.body.occurred_at_unix_ms = 1_798_104_600_000;
        let (en, sv) = entry_explanation(
            RULE_OUTSIDE_HOURS,
            &ReviewSettings::default(),
            &on_christmas_eve,
        );
        assert!(
            en.ends_with(
                "on 2026-12-24 10:30: on a day off (julafton), when there are no working hours."
            ),
            "{en}"
        );
        assert!(
            sv.ends_with("på en ledig dag (julafton), som saknar arbetstid."),
            "{sv}"
        );
        let (en, _) = burst_explanation(
            &ReviewSettings::default(),
            "u",
            25,
            1_774_638_900_000,
            1_774_639_200_000,
        );
        assert!(
            en.contains("25 different persons between 2026-03-27 20:15 and 2026-03-27 20:20"),
            "{en}"
        );
    }
}
