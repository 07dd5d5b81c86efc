//! The police officer's pages: the region's inbox, live (server-sent events fed by the
//! notification service's Subscribe stream; a reconnect resumes from the last event id, so
//! nothing is missed, and the page never shows a delivery twice); a delivery with its payload;
//! acknowledging with the police reference; asking a follow-up question; a delivery its
//! organisation withdrew shows the recall and its reason, and the officer acknowledges the
//! recall instead of the delivery.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use futures::{Stream, StreamExt as _};
use maud::{Markup, html};
use tryggdel_domain::PolicePayload;
use tryggdel_proto::notification::v1::{
    AcknowledgeRecallRequest, AcknowledgeRequest, AskFollowUpRequest, Delivery, ListPendingRequest,
    Recall, Receipt, SubscribeRequest,
};

use super::cases::short_id;
use super::{Failure, csrf_field, page, refusal_box};
use crate::assets::LIVE_PATH;
use crate::refusal::Refusal;
use crate::session::{SESSION_COOKIE, Session, cookie};
use crate::{Shared, words};

/// Unacknowledged deliveries read per page for the inbox.
const PENDING_PAGE: u32 = 200;

/// Every unacknowledged delivery of the officer's region, oldest first.
async fn pending(console: &Shared, session: &Session) -> Result<Vec<Delivery>, Failure> {
    let mut deliveries = Vec::new();
    let mut page_token = String::new();
    loop {
        let response = console
            .backend
            .notifications(&session.user)
            .list_pending(ListPendingRequest {
                page_size: PENDING_PAGE,
                page_token: page_token.clone(),
            })
            .await?
            .into_inner();
        deliveries.extend(response.deliveries);
        if response.next_page_token.is_empty() {
            return Ok(deliveries);
        }
        page_token = response.next_page_token;
    }
}

/// One inbox row; its id is the disclosure's, so the live script adds it only once, and
/// replaces it when the same delivery comes again recalled (`data-recalled`).
pub fn inbox_row(console: &Shared, delivery: &Delivery) -> Markup {
    let organisation = super::organisation_name(console, &delivery.organisation);
    html! {
        tr id={"leverans-" (delivery.disclosure_id)} data-label=(organisation)
            data-recalled=[delivery.recall.as_ref().map(|_| "true")] {
            td {
                a href={"/inkommande/" (delivery.disclosure_id)} { (short_id(&delivery.disclosure_id)) }
                @if let Some(recall) = &delivery.recall { br; span.urgent { "Återkallad: " (recall.reason) } }
            }
            td { (organisation) }
            td { @if delivery.urgent { span.urgent { "Brådskande" } } @else { "Nej" } }
            td { (words::time(delivery.delivered_at_unix_ms)) }
            td { (words::time(delivery.deadline_unix_ms)) @if delivery.overdue { " " span.urgent { "(försenad)" } } }
        }
    }
}

pub async fn inbox(State(console): State<Shared>, session: Session) -> Result<Markup, Failure> {
    let mut deliveries = pending(&console, &session).await?;
    let cursor = deliveries
        .iter()
        .map(|delivery| delivery.sequence)
        .max()
        .unwrap_or(0);
    deliveries.sort_by_key(|delivery| {
        (
            !delivery.urgent,
            std::cmp::Reverse(delivery.delivered_at_unix_ms),
        )
    });
    // A police officer's inbox is their region's; another authority's officer has its one.
    let inbox = match &session.user.principal.police_region {
        Some(region) => words::region(region),
        None => super::organisation_name(&console, &session.user.principal.organisation),
    };
    Ok(page(
        &console,
        &session,
        "Inkommande",
        html! {
            h1 { "Inkommande – " (inbox) }
            p id="live-status" role="status" aria-live="polite" { "Nya leveranser visas här utan att du laddar om sidan." }
            table {
                caption { "Okvitterade leveranser, brådskande först" }
                thead { tr {
                    th scope="col" { "Ärende" } th scope="col" { "Från" } th scope="col" { "Brådskande" }
                    th scope="col" { "Levererat" } th scope="col" { "Kvitteras senast" }
                } }
                tbody id="inkommande" data-stream={"/inkommande/strom?efter=" (cursor)} {
                    @if deliveries.is_empty() { tr id="inga-leveranser" { td colspan="5" { "Inga okvitterade leveranser." } } }
                    @for delivery in &deliveries { (inbox_row(&console, delivery)) }
                }
            }
            script src=(LIVE_PATH) defer {}
        },
    ))
}

#[derive(serde::Deserialize, Default)]
pub struct StreamQuery {
    #[serde(default)]
    efter: u64,
}

/// The live inbox: deliveries after the cursor (the browser's `Last-Event-ID` on a
/// reconnect, else the page's own), as HTML rows. Each event's id is the delivery's
/// sequence number. When the session ends the stream says so and closes.
pub async fn events(
    State(console): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Response {
    let session = cookie(&headers, SESSION_COOKIE).and_then(|id| console.sessions.find(id).ok());
    let Some(session) = session else {
        let ended = futures::stream::once(async {
            Ok::<_, Infallible>(Event::default().event("signed-out").data("utloggad"))
        });
        return Sse::new(ended).into_response();
    };
    let cursor = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or(query.efter);
    let stream = live_rows(console, session, cursor).await;
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

async fn live_rows(
    console: Shared,
    session: Session,
    cursor: u64,
) -> std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> {
    let subscribed = console
        .backend
        .notifications(&session.user)
        .subscribe(SubscribeRequest { cursor })
        .await;
    let deliveries = match subscribed {
        Ok(response) => response.into_inner(),
        Err(status) => {
            let refusal = Refusal::from(status);
            tracing::warn!(code = ?refusal.code, "the live inbox could not subscribe");
            let name = if refusal.is_unauthenticated() {
                "signed-out"
            } else {
                "unavailable"
            };
            return Box::pin(futures::stream::once(async move {
                Ok(Event::default().event(name).data(refusal.sentence))
            }));
        }
    };
    Box::pin(
        deliveries
            .take_while(|item| std::future::ready(item.is_ok()))
            .filter_map(move |item| {
                let console = console.clone();
                async move {
                    let delivery = item.ok()?;
                    let open_recall = delivery
                        .recall
                        .as_ref()
                        .is_some_and(|recall| recall.acknowledged_at_unix_ms == 0);
                    if delivery.receipt.is_some() && !open_recall {
                        // Acknowledged meanwhile: nothing to add, but the cursor moves past it.
                        return Some(Ok(
                            Event::default().comment(format!("acknowledged {}", delivery.sequence))
                        ));
                    }
                    let row = inbox_row(&console, &delivery).into_string();
                    Some(Ok(Event::default()
                        .event("delivery")
                        .id(delivery.sequence.to_string())
                        .data(row)))
                }
            }),
    )
}

/// An unacknowledged delivery of the officer's region, from the inbox.
pub async fn show(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, Failure> {
    delivery_page(&console, &session, &id, None).await
}

/// The delivery with its payload and the forms to acknowledge it and to ask a question. A
/// police officer reads deliveries only through the region's pending list (the delivery
/// status is the disclosing organisation's), so one acknowledged meanwhile, or of another
/// region, is not found.
async fn delivery_page(
    console: &Shared,
    session: &Session,
    id: &str,
    refusal: Option<&Refusal>,
) -> Result<Markup, Failure> {
    let delivery = pending(console, session)
        .await?
        .into_iter()
        .find(|delivery| delivery.disclosure_id == id)
        .ok_or(Failure::NotFound)?;
    Ok(page(
        console,
        session,
        "Leverans",
        html! {
            h1 { "Leverans " (short_id(id)) }
            (refusal_box(refusal))
            dl.facts {
                dt { "Från" } dd { (super::organisation_name(console, &delivery.organisation)) }
                dt { "Inkorg" } dd { (words::region(&delivery.police_region)) }
                dt { "Brådskande" } dd { @if delivery.urgent { span.urgent { "Ja" } } @else { "Nej" } }
                dt { "Levererat" } dd { (words::time(delivery.delivered_at_unix_ms)) }
                dt { "Kvitteras senast" } dd { (words::time(delivery.deadline_unix_ms)) @if delivery.overdue { " " span.urgent { "(försenad)" } } }
            }
            @if let Some(recall) = &delivery.recall {
                h2 { "Återkallad" }
                p.notice role="status" { "Återkallad: " (recall.reason) }
                dl.facts {
                    dt { "Återkallad av" } dd { (recall.withdrawn_by) }
                    dt { "Återkallad" } dd { (words::time(recall.withdrawn_at_unix_ms)) }
                }
                form.stacked method="post" action={"/inkommande/" (id) "/kvittera-aterkallelse"} {
                    (csrf_field(session))
                    div.actions { button type="submit" { "Kvittera återkallelsen" } }
                }
            }
            h2 { "Underlaget" }
            (payload(&delivery))
            @if delivery.recall.is_none() {
                h2 { "Kvittera" }
                form.stacked method="post" action={"/inkommande/" (id) "/kvittera"} {
                    (csrf_field(session))
                    @let error = refusal.filter(|refusal| refusal.field.as_deref() == Some("police_reference"));
                    label for="police_reference" { "Polisens diarienummer" span.hint { "t.ex. 5000-K123456-26" } }
                    @if let Some(error) = error { p.error id="police_reference-fel" { (error.sentence) } }
                    input type="text" id="police_reference" name="police_reference" required
                        aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "police_reference-fel")];
                    div.actions { button type="submit" { "Kvittera mottagandet" } }
                }
            }
            h2 { "Följdfråga till avsändaren" }
            form.stacked method="post" action={"/inkommande/" (id) "/fraga"} {
                (csrf_field(session))
                label for="question" { "Fråga" }
                textarea id="question" name="question" required {}
                div.actions { button.secondary type="submit" { "Skicka frågan" } }
            }
        },
    ))
}

/// The signed receipt an acknowledgement answered (a second acknowledgement answers the
/// same receipt, so sending the form again is harmless).
fn receipt_page(console: &Shared, session: &Session, receipt: &Receipt) -> Markup {
    page(
        console,
        session,
        "Kvitterad",
        html! {
            h1 { "Leverans " (short_id(&receipt.disclosure_id)) " är kvitterad" }
            p.notice role="status" { "Mottagandet är kvitterat och kvittensen signerad. Avsändaren ser den i sitt ärende." }
            dl.facts {
                dt { "Inkorg" } dd { (words::region(&receipt.police_region)) }
                dt { "Kvittens" } dd { (words::time(receipt.acknowledged_at_unix_ms)) " av " (receipt.acknowledged_by) ", diarienummer " (receipt.police_reference) }
                dt { "Underlagets SHA-256" } dd { code.hash { (receipt.payload_sha256) } }
                dt { "Signerad med nyckel" } dd { code { (receipt.key_id) } }
            }
            p { a href="/inkommande" { "Till inkommande" } }
        },
    )
}

/// The acknowledged recall (acknowledging again answers the same, so sending the form again
/// is harmless).
fn recall_acknowledged_page(console: &Shared, session: &Session, recall: &Recall) -> Markup {
    page(
        console,
        session,
        "Återkallelsen kvitterad",
        html! {
            h1 { "Återkallelsen av " (short_id(&recall.disclosure_id)) " är kvitterad" }
            p.notice role="status" { "Återkallad: " (recall.reason) }
            dl.facts {
                dt { "Återkallad av" } dd { (recall.withdrawn_by) }
                dt { "Kvitterad" } dd { (words::time(recall.acknowledged_at_unix_ms)) " av " (recall.acknowledged_by) }
            }
            p { a href="/inkommande" { "Till inkommande" } }
        },
    )
}

/// The payload as delivered: every item (protected ones were approved for this disclosure,
/// or they would not be here) and its hash.
fn payload(delivery: &Delivery) -> Markup {
    match PolicePayload::from_canonical_bytes(&delivery.payload) {
        Err(_) => html! { p.refusal { "Underlaget kunde inte läsas. Kontakta avsändaren." } },
        Ok(payload) => html! {
            table {
                caption { "Uppgifter från " (delivery.organisation) }
                thead { tr { th scope="col" { "Uppgift" } th scope="col" { "Värde" } } }
                tbody {
                    @for (item, value) in payload.items() {
                        tr {
                            th scope="row" { (words::data_item(item)) }
                            td { (value) }
                        }
                    }
                }
            }
            p { "SHA-256: " code.hash { (delivery.payload_sha256) } }
        },
    }
}

#[derive(serde::Deserialize)]
pub struct AcknowledgeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    police_reference: String,
}

pub async fn acknowledge(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<AcknowledgeForm>,
) -> Result<Response, Failure> {
    session.check_csrf(&form.csrf)?;
    let result = console
        .backend
        .notifications(&session.user)
        .acknowledge(AcknowledgeRequest {
            disclosure_id: id.clone(),
            police_reference: form.police_reference.trim().to_owned(),
        })
        .await;
    match result {
        Ok(receipt) => Ok(receipt_page(&console, &session, &receipt.into_inner()).into_response()),
        Err(status) => done(&console, &session, &id, Err(status)).await,
    }
}

#[derive(serde::Deserialize)]
pub struct RecallForm {
    #[serde(default)]
    csrf: String,
}

pub async fn acknowledge_recall(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<RecallForm>,
) -> Result<Response, Failure> {
    session.check_csrf(&form.csrf)?;
    let result = console
        .backend
        .notifications(&session.user)
        .acknowledge_recall(AcknowledgeRecallRequest {
            disclosure_id: id.clone(),
        })
        .await;
    match result {
        Ok(recall) => {
            Ok(recall_acknowledged_page(&console, &session, &recall.into_inner()).into_response())
        }
        Err(status) => done(&console, &session, &id, Err(status)).await,
    }
}

#[derive(serde::Deserialize)]
pub struct QuestionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    question: String,
}

pub async fn ask(
    State(console): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<QuestionForm>,
) -> Result<Response, Failure> {
    session.check_csrf(&form.csrf)?;
    let result = console
        .backend
        .notifications(&session.user)
        .ask_follow_up(AskFollowUpRequest {
            disclosure_id: id.clone(),
            question: form.question,
        })
        .await;
    done(&console, &session, &id, result.map(|_| ())).await
}

async fn done(
    console: &Shared,
    session: &Session,
    id: &str,
    result: Result<(), tonic::Status>,
) -> Result<Response, Failure> {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/inkommande/{id}")).into_response()),
        Err(status) => {
            let refusal = Refusal::from(status);
            if refusal.is_unauthenticated() {
                return Err(Failure::Expired);
            }
            if refusal.is_not_found() {
                return Err(Failure::NotFound);
            }
            Ok(delivery_page(console, session, id, Some(&refusal))
                .await?
                .into_response())
        }
    }
}
