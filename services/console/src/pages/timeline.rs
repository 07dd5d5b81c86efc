//! For everyone who may see a disclosure: its timeline (who did what when, from the
//! disclosure's own record, the police's questions and the escalations) and a print view of
//! its decision.

use axum::extract::{Path, State};
use maud::{DOCTYPE, Markup, html};
use tryggdel_proto::disclosure::v1::{Disclosure, GetRequest};
use tryggdel_proto::notification::v1::{ListEscalationsRequest, ListFollowUpsRequest};

use super::cases::short_id;
use super::{Failure, page};
use crate::assets::CSS_PATH;
use crate::session::Session;
use crate::{Shared, words};

async fn disclosure(console: &Shared, session: &Session, id: &str) -> Result<Disclosure, Failure> {
    Ok(console
        .backend
        .disclosures(&session.user)
        .get(GetRequest {
            disclosure_id: id.to_owned(),
            reveal_protected: false,
        })
        .await?
        .into_inner())
}

/// The steps of a disclosure, oldest first: (when, who, what).
fn steps(disclosure: &Disclosure) -> Vec<(i64, String, String)> {
    let mut steps = vec![(
        disclosure.created_at_unix_ms,
        disclosure.drafted_by.clone(),
        "Skapade utkastet".to_owned(),
    )];
    if disclosure.submitted_at_unix_ms > 0 {
        steps.push((
            disclosure.submitted_at_unix_ms,
            disclosure.submitted_by.clone(),
            "Skickade för beslut".to_owned(),
        ));
    }
    if let Some(decision) = &disclosure.decision {
        let what = match decision.outcome.as_str() {
            "approved" => "Godkände utlämnandet".to_owned(),
            "rejected" => format!("Avslog: {}", decision.reason),
            "withdrawn" => format!("Återkallade: {}", decision.reason),
            other => other.to_owned(),
        };
        steps.push((
            decision.decided_at_unix_ms,
            decision.decided_by.clone(),
            what,
        ));
    }
    if let Some(delivery) = &disclosure.delivery {
        steps.push((
            delivery.delivered_at_unix_ms,
            "Tryggdel".to_owned(),
            format!("Levererade till {}", words::region(&delivery.police_region)),
        ));
        if delivery.acknowledged_at_unix_ms > 0 {
            steps.push((
                delivery.acknowledged_at_unix_ms,
                delivery.acknowledged_by.clone(),
                format!("Kvitterade med diarienummer {}", delivery.police_reference),
            ));
        }
    }
    steps
}

pub async fn show(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, Failure> {
    let disclosure = disclosure(&console, &session, &id).await?;
    let mut steps = steps(&disclosure);
    let notifications = console.backend.notifications(&session.user);
    if let Ok(response) = notifications
        .clone()
        .list_follow_ups(ListFollowUpsRequest {
            disclosure_id: id.clone(),
        })
        .await
    {
        for question in response.into_inner().follow_ups {
            steps.push((
                question.asked_at_unix_ms,
                question.asked_by,
                format!("Ställde en följdfråga: {}", question.question),
            ));
        }
    }
    if let Ok(response) = notifications
        .clone()
        .list_escalations(ListEscalationsRequest {
            disclosure_id: id.clone(),
        })
        .await
    {
        for escalation in response.into_inner().escalations {
            steps.push((
                escalation.raised_at_unix_ms,
                "Tryggdel".to_owned(),
                format!(
                    "Eskalerade (omgång {}): ej kvitterat i tid",
                    escalation.round
                ),
            ));
        }
    }
    steps.sort_by_key(|(at, _, _)| *at);
    Ok(page(
        &console,
        &session,
        "Tidslinje",
        html! {
            h1 { "Tidslinje för ärende " (short_id(&id)) }
            ol {
                @for (at, who, what) in &steps {
                    li { time { (words::time(*at)) } " – " strong { (who) } ": " (what) }
                }
            }
            p { a href={"/arenden/" (id)} { "Till ärendet" } }
        },
    ))
}

/// The decision on one page, for printing and filing.
pub async fn print(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, Failure> {
    let disclosure = disclosure(&console, &session, &id).await?;
    let content = disclosure.content.clone().unwrap_or_default();
    let organisation = super::organisation_name(&console, &disclosure.organisation);
    Ok(html! {
        (DOCTYPE)
        html lang="sv" {
            head {
                meta charset="utf-8";
                title { "Beslut om utlämnande – " (short_id(&id)) " – Tryggdel" }
                link rel="stylesheet" href=(CSS_PATH);
            }
            body {
                main {
                    h1 { "Beslut om utlämnande av uppgifter" }
                    p { (organisation) ", " (content.unit) }
                    dl.facts {
                        dt { "Ärende" } dd { (disclosure.id) }
                        dt { "Ärendenummer" } dd { (content.case_reference) }
                        dt { "Rättslig grund" } dd { (content.legal_basis_id) }
                        dt { "Mottagare" } dd { (content.recipient) @if !disclosure.police_region.is_empty() { ", " (words::region(&disclosure.police_region)) } }
                        dt { "Status" } dd { (words::state(disclosure.state)) }
                        @if let Some(decision) = &disclosure.decision {
                            dt { "Beslut" } dd { (decision.outcome) }
                            dt { "Beslutsfattare" } dd { (decision.decided_by) }
                            dt { "Beslutat" } dd { (words::time(decision.decided_at_unix_ms)) }
                            @if !decision.reason.is_empty() { dt { "Kommentar/skäl" } dd { (decision.reason) } }
                            @if !decision.payload_sha256.is_empty() { dt { "Underlagets SHA-256" } dd { code.hash { (decision.payload_sha256) } } }
                            dt { "Registerversion" } dd { code.hash { (decision.registry_version) } }
                        }
                    }
                    h2 { "Checklista" }
                    ul { @for answer in &content.checklist {
                        li { (if answer.answer { "Ja" } else { "Nej" }) ": " (answer.key) @if !answer.justification.is_empty() { " – " (answer.justification) } }
                    } }
                    h2 { "Utlämnade uppgifter" }
                    ul { @for item in &content.data_items { li { (words::data_item(&item.item)) @if !item.reason.is_empty() { " – " (item.reason) } } } }
                    h2 { "Förlopp" }
                    ol { @for (at, who, what) in steps(&disclosure) { li { (words::time(at)) " – " (who) ": " (what) } } }
                    p.actions { a href={"/arenden/" (id)} { "Tillbaka till ärendet" } }
                }
            }
        }
    })
}
