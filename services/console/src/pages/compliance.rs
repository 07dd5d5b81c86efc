//! The compliance officer's pages: search of the audit log (posted, so an identity number is
//! never in a URL), an entry with its inclusion proof checked here against the signed
//! checkpoint, the checkpoint, the export download, and an uploaded export's verification.

use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use tryggdel_audit_verify::{ExportEntry, ExportHeader, ExportWriter, VerifyOptions};
use tryggdel_merkle::{hash_from_slice, leaf_hash, verify_inclusion};
use tryggdel_proto::audit::v1::{
    ExportRequest, GetCheckpointRequest, GetInclusionProofRequest, QueryRequest, export_chunk,
    get_inclusion_proof_request,
};

use super::{Failure, csrf_field, page, refusal_box};
use crate::form::Posted;
use crate::refusal::Refusal;
use crate::session::Session;
use crate::{Shared, words};

/// Entries per page of search results.
const PAGE_SIZE: u32 = 50;

/// The search form, empty.
pub async fn search_form(
    State(console): State<Shared>,
    session: Session,
) -> Result<Markup, Failure> {
    Ok(search_page(
        &console,
        &session,
        &Posted::default(),
        None,
        None,
    ))
}

/// What the search found (or why not), with the form kept as it was filled in.
pub async fn search(
    State(console): State<Shared>,
    session: Session,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Markup, Failure> {
    let posted = Posted::new(pairs);
    session.check_csrf(&posted.csrf())?;
    let millis = |name: &str| -> Result<i64, Failure> {
        let text = posted.text(name);
        if text.is_empty() {
            return Ok(0);
        }
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let date = time::Date::parse(&text, &format)
            .map_err(|_| Failure::BadInput(format!("Datumet ”{text}” ska skrivas ÅÅÅÅ-MM-DD.")))?;
        let at = date.midnight().assume_utc().unix_timestamp() * 1000;
        Ok(if name == "till" { at + 86_400_000 } else { at })
    };
    let request = QueryRequest {
        occurred_from_unix_ms: millis("fran")?,
        occurred_until_unix_ms: millis("till")?,
        organisation: posted.text("organisation"),
        actor_user_id: posted.text("aktor"),
        action: posted.text("handling"),
        legal_basis_id: posted.text("grund"),
        disclosure_id: posted.text("arende"),
        person_identity_number: posted.text("personnummer"),
        page_size: PAGE_SIZE,
        page_token: posted.text("sida"),
    };
    let result = console
        .backend
        .audit(&session.user)
        .query(request)
        .await
        .map(tonic::Response::into_inner);
    let (results, refusal) = match result {
        Ok(response) => (Some(response), None),
        Err(status) => {
            let refusal = Refusal::from(status);
            if refusal.is_unauthenticated() {
                return Err(Failure::Expired);
            }
            (None, Some(refusal))
        }
    };
    Ok(search_page(
        &console,
        &session,
        &posted,
        results.as_ref(),
        refusal.as_ref(),
    ))
}

fn search_page(
    console: &Shared,
    session: &Session,
    posted: &Posted,
    results: Option<&tryggdel_proto::audit::v1::QueryResponse>,
    refusal: Option<&Refusal>,
) -> Markup {
    let field = |name: &str, label: &str, hint: Option<&str>| {
        html! {
            label for=(name) { (label) @if let Some(hint) = hint { span.hint { (hint) } } }
            input type="text" id=(name) name=(name) value=(posted.text(name));
        }
    };
    page(
        console,
        session,
        "Granskning",
        html! {
            h1 { "Granskning av granskningsloggen" }
            (refusal_box(refusal))
            form.stacked method="post" action="/granskning" {
                (csrf_field(session))
                (field("arende", "Ärende (id)", None))
                (field("handling", "Handling", Some("t.ex. disclosure.approved")))
                (field("aktor", "Användare", None))
                (field("grund", "Rättslig grund", Some("t.ex. OSL-10-18c")))
                (field("organisation", "Organisation", Some("t.ex. bollnas-kommun")))
                (field("personnummer", "Person (personnummer)", Some("Sökningen loggas. Personnumret visas aldrig i en adress.")))
                label for="fran" { "Från och med" span.hint { "ÅÅÅÅ-MM-DD" } }
                input type="date" id="fran" name="fran" value=(posted.text("fran"));
                label for="till" { "Till och med" span.hint { "ÅÅÅÅ-MM-DD" } }
                input type="date" id="till" name="till" value=(posted.text("till"));
                div.actions { button type="submit" { "Sök" } }
            }
            @if let Some(results) = results {
                h2 { "Resultat" }
                @if let Some(checkpoint) = &results.checkpoint {
                    p { "Loggen har " (checkpoint.tree_size) " poster enligt den signerade kontrollpunkten." }
                }
                table {
                    caption { "Poster som matchar sökningen" }
                    thead { tr {
                        th scope="col" { "Post" } th scope="col" { "Tid" } th scope="col" { "Handling" }
                        th scope="col" { "Användare" } th scope="col" { "Organisation" } th scope="col" { "Ärende" }
                    } }
                    tbody {
                        @if results.entries.is_empty() { tr { td colspan="6" { "Inga poster." } } }
                        @for entry in &results.entries {
                            @let json = serde_json::from_slice::<serde_json::Value>(&entry.entry).unwrap_or_default();
                            tr {
                                td { a href={"/granskning/post/" (entry.index)} { "#" (entry.index) } }
                                td { (json["occurred_at"].as_str().unwrap_or("")) }
                                td { (json["action"].as_str().unwrap_or("")) }
                                td { (json["actor"]["user_id"].as_str().filter(|user| !user.is_empty()).unwrap_or("(en tjänst)")) }
                                td { (json["organisation"].as_str().unwrap_or("")) }
                                td { (json["disclosure_id"].as_str().map(super::cases::short_id).unwrap_or("")) }
                            }
                        }
                    }
                }
                @if !results.next_page_token.is_empty() {
                    form method="post" action="/granskning" {
                        (csrf_field(session))
                        @for name in ["arende", "handling", "aktor", "grund", "organisation", "personnummer", "fran", "till"] {
                            input type="hidden" name=(name) value=(posted.text(name));
                        }
                        input type="hidden" name="sida" value=(results.next_page_token);
                        button.secondary type="submit" { "Nästa sida" }
                    }
                }
            }
        },
    )
}

/// An entry with its inclusion proof, verified here: the checkpoint's signature against the
/// pinned log key, then the proof from the entry's own hash to the signed root.
pub async fn entry(
    State(console): State<Shared>,
    session: Session,
    Path(index): Path<u64>,
) -> Result<Markup, Failure> {
    let mut audit = console.backend.audit(&session.user);
    let checkpoint = audit
        .get_checkpoint(GetCheckpointRequest { tree_size: 0 })
        .await?
        .into_inner();
    if index >= checkpoint.tree_size {
        return Err(Failure::NotFound);
    }
    let proof = audit
        .get_inclusion_proof(GetInclusionProofRequest {
            entry: Some(get_inclusion_proof_request::Entry::Index(index)),
            tree_size: checkpoint.tree_size,
        })
        .await?
        .into_inner();
    let verdict = verify_entry(&console, &checkpoint.note, index, &proof);
    let json = serde_json::from_slice::<serde_json::Value>(&proof.entry)
        .ok()
        .and_then(|json| serde_json::to_string_pretty(&json).ok())
        .unwrap_or_else(|| "(posten är inte JSON)".to_owned());
    Ok(page(
        &console,
        &session,
        "Post i loggen",
        html! {
            h1 { "Post #" (index) }
            @match &verdict {
                Ok(size) => p.verified role="status" { "Verifierad: posten ingår i loggen enligt den signerade kontrollpunkten över " (size) " poster." },
                Err(why) => p.not-verified role="alert" { "Inte verifierad: " (why) },
            }
            h2 { "Posten" }
            pre { code { (json) } }
            h2 { "Beviset" }
            dl.facts {
                dt { "Postens hash" } dd { code.hash { (hex::encode(&proof.leaf_hash)) } }
                dt { "Trädstorlek" } dd { (proof.tree_size) }
                dt { "Syskonhashar" } dd { ol { @for hash in &proof.hashes { li { code.hash { (hex::encode(hash)) } } } } }
            }
            h2 { "Kontrollpunkten" }
            pre { code { (checkpoint.note) } }
        },
    ))
}

/// Checks the checkpoint's signature and the entry's inclusion; answers the size verified
/// against, or why not (in Swedish).
fn verify_entry(
    console: &Shared,
    note: &str,
    index: u64,
    proof: &tryggdel_proto::audit::v1::InclusionProof,
) -> Result<u64, String> {
    let checkpoint = console
        .checkpoint_verifier
        .verify(note)
        .map_err(|_| "kontrollpunktens signatur stämmer inte med loggens nyckel".to_owned())?;
    let hashes = proof
        .hashes
        .iter()
        .map(|hash| hash_from_slice(hash))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "beviset innehåller en felaktig hash".to_owned())?;
    if proof.tree_size != checkpoint.size() {
        return Err("beviset gäller en annan trädstorlek än kontrollpunkten".to_owned());
    }
    verify_inclusion(
        &leaf_hash(&proof.entry),
        index,
        checkpoint.size(),
        &hashes,
        checkpoint.root(),
    )
    .map_err(|_| "beviset leder inte till kontrollpunktens rot".to_owned())?;
    Ok(checkpoint.size())
}

/// The latest signed checkpoint, its signature checked against the pinned key.
pub async fn checkpoints(
    State(console): State<Shared>,
    session: Session,
) -> Result<Markup, Failure> {
    let checkpoint = console
        .backend
        .audit(&session.user)
        .get_checkpoint(GetCheckpointRequest { tree_size: 0 })
        .await?
        .into_inner();
    let verified = console.checkpoint_verifier.verify(&checkpoint.note);
    Ok(page(
        &console,
        &session,
        "Kontrollpunkter",
        html! {
            h1 { "Kontrollpunkter" }
            @match &verified {
                Ok(_) => p.verified role="status" { "Signaturen är verifierad med loggens nyckel " code { (console.checkpoint_verifier.name()) } "." },
                Err(_) => p.not-verified role="alert" { "Signaturen kunde inte verifieras med loggens nyckel." },
            }
            dl.facts {
                dt { "Logg" } dd { (checkpoint.origin) }
                dt { "Antal poster" } dd { (checkpoint.tree_size) }
                dt { "Rot (SHA-256)" } dd { code.hash { (hex::encode(&checkpoint.root_hash)) } }
                dt { "Signerad" } dd { (words::time(checkpoint.signed_at_unix_ms)) }
            }
            h2 { "Den signerade kontrollpunkten" }
            pre { code { (checkpoint.note) } }
            p { a.button href="/granskning/export" download { "Ladda ner hela loggen (export)" } }
        },
    ))
}

/// A `Write` whose bytes are taken out batch by batch and sent on as the response body.
#[derive(Clone, Default)]
struct ExportBuffer(Arc<Mutex<Vec<u8>>>);

impl ExportBuffer {
    fn take(&self) -> Vec<u8> {
        match self.0.lock() {
            Ok(mut buffer) => std::mem::take(&mut *buffer),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

impl Write for ExportBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut buffer) => buffer.extend_from_slice(bytes),
            Err(poisoned) => poisoned.into_inner().extend_from_slice(bytes),
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The whole log as an export file (the format `tryggdel audit verify` reads), streamed.
pub async fn export(State(console): State<Shared>, session: Session) -> Result<Response, Failure> {
    let mut stream = console
        .backend
        .audit(&session.user)
        .export(ExportRequest { tree_size: 0 })
        .await?
        .into_inner();
    let first = stream
        .message()
        .await?
        .context("the audit service sent an empty export")?;
    let Some(export_chunk::Part::Checkpoint(checkpoint)) = first.part else {
        return Err(Failure::Internal(anyhow::anyhow!(
            "the export did not start with its checkpoint"
        )));
    };
    let buffer = ExportBuffer::default();
    let mut writer = ExportWriter::new(
        buffer.clone(),
        &ExportHeader {
            origin: checkpoint.origin.clone(),
            tree_size: checkpoint.tree_size,
            checkpoint_note: checkpoint.note.clone(),
        },
    )
    .context("starting the export")?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let head = buffer.take();
    tokio::spawn(async move {
        if sender.send(Ok(head)).await.is_err() {
            return;
        }
        loop {
            let chunk = match stream.message().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(status) => {
                    tracing::warn!(code = ?status.code(), "the export stream failed");
                    let _ = sender
                        .send(Err(std::io::Error::other("the export stream failed")))
                        .await;
                    return;
                }
            };
            let Some(export_chunk::Part::Entries(batch)) = chunk.part else {
                let _ = sender
                    .send(Err(std::io::Error::other("a second checkpoint")))
                    .await;
                return;
            };
            for entry in batch.entries {
                // Each entry's openings (its personal data not cleared) go beside it, for the
                // verifier to check against the leaf's commitments.
                let openings: Vec<tryggdel_audit_verify::ExportOpening> = entry
                    .openings
                    .into_iter()
                    .map(|opening| tryggdel_audit_verify::ExportOpening {
                        key: opening.key,
                        salt: opening.salt,
                        data: opening.data,
                    })
                    .collect();
                let written = hash_from_slice(&entry.leaf_hash)
                    .map_err(|_| std::io::Error::other("a bad leaf hash"))
                    .and_then(|recorded_leaf_hash| {
                        writer
                            .write_entry_with_openings(
                                &ExportEntry {
                                    index: entry.index,
                                    recorded_leaf_hash,
                                    entry: entry.entry,
                                },
                                &openings,
                            )
                            .map_err(std::io::Error::other)
                    });
                if let Err(error) = written {
                    let _ = sender.send(Err(error)).await;
                    return;
                }
            }
            if sender.send(Ok(buffer.take())).await.is_err() {
                return;
            }
        }
        let finished = writer
            .finish()
            .map(|_| buffer.take())
            .map_err(std::io::Error::other);
        let _ = sender.send(finished).await;
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"tryggdel-audit-export.jsonl\""),
    );
    Ok(response)
}

pub async fn verify_form(
    State(console): State<Shared>,
    session: Session,
) -> Result<Markup, Failure> {
    Ok(verify_page(&console, &session, None, None))
}

/// Verifies an uploaded export against the pinned log key and shows the verifier's report.
pub async fn verify_upload(
    State(console): State<Shared>,
    session: Session,
    mut multipart: Multipart,
) -> Result<Markup, Failure> {
    let mut csrf = String::new();
    let mut file = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| Failure::BadInput("Filen kunde inte tas emot. Försök igen.".into()))?
    {
        match field.name() {
            Some("csrf") => {
                csrf = field.text().await.unwrap_or_default();
            }
            Some("export") => {
                session.check_csrf(&csrf)?;
                file = Some(field.bytes().await.map_err(|_| {
                    Failure::BadInput("Filen är för stor eller kom inte fram. Försök igen.".into())
                })?);
            }
            _ => {}
        }
    }
    session.check_csrf(&csrf)?;
    let file = file
        .filter(|file| !file.is_empty())
        .ok_or_else(|| Failure::BadInput("Välj en exportfil att verifiera.".into()))?;
    let options = VerifyOptions {
        verifier: console.checkpoint_verifier.clone(),
        older_checkpoints: Vec::new(),
        inclusion_of: None,
    };
    let report = tokio::task::spawn_blocking(move || {
        tryggdel_audit_verify::verify_export(std::io::Cursor::new(file), &options, &mut |_| {})
    })
    .await
    .context("the verifier stopped")?;
    let outcome = report.map_err(|error| error.to_string());
    Ok(verify_page(&console, &session, Some(outcome), None))
}

fn verify_page(
    console: &Shared,
    session: &Session,
    outcome: Option<Result<tryggdel_audit_verify::Report, String>>,
    refusal: Option<&Refusal>,
) -> Markup {
    page(
        console,
        session,
        "Verifiera export",
        html! {
            h1 { "Verifiera en export av loggen" }
            (refusal_box(refusal))
            p { "Exporten kontrolleras här mot loggens fastställda nyckel: kontrollpunktens signatur, varje posts hash och trädets rot." }
            form.stacked method="post" action="/granskning/verifiera" enctype="multipart/form-data" {
                (csrf_field(session))
                label for="export" { "Exportfil" }
                input type="file" id="export" name="export" accept=".jsonl,application/x-ndjson";
                div.actions { button type="submit" { "Verifiera" } }
            }
            @match &outcome {
                None => {},
                Some(Err(why)) => { p.not-verified role="alert" { "Filen kunde inte läsas som en export: " (why) } },
                Some(Ok(report)) => {
                    @if report.is_ok() {
                        p.verified role="status" { "Verifierad: alla " (report.tree_size) " poster stämmer med den signerade kontrollpunkten." }
                    } @else {
                        p.not-verified role="alert" { "Inte verifierad: se stegen nedan." }
                    }
                    table {
                        caption { "Verifierarens rapport" }
                        thead { tr { th scope="col" { "Kontroll" } th scope="col" { "Resultat" } th scope="col" { "Detaljer" } } }
                        tbody {
                            @for step in &report.steps {
                                tr {
                                    td { (format!("{:?}", step.check)) }
                                    td { (format!("{:?}", step.status)) }
                                    td {
                                        (step.message)
                                        @if !step.findings.is_empty() {
                                            ul { @for finding in &step.findings { li { (finding.message) } } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                },
            }
        },
    )
}
