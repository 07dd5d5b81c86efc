//! The role commands: a caseworker's and decision maker's `disclosure …`, a police officer's
//! `police …`, a compliance officer's `audit query`. Each prints a readable table (`disclosure
//! draft` only the new id, for scripts), or JSON with `--json`, and returns errors that say
//! what to do.

use anyhow::Context;
use serde_json::json;
use tokio_stream::StreamExt as _;
use tryggdel_proto::audit::v1::QueryRequest;
use tryggdel_proto::common::v1::DisclosureState;
use tryggdel_proto::disclosure::v1::{
    ApproveRequest, AssessLegalBasisRequest, CreateDraftRequest, Disclosure, GetRequest,
    ListRequest, RejectRequest, SubmitRequest, UpdateDraftRequest, WithdrawRequest,
    assess_legal_basis_request::Target,
};
use tryggdel_proto::notification::v1::{
    AcknowledgeRecallRequest, AcknowledgeRequest, AskFollowUpRequest, ListEscalationsRequest,
    ListFollowUpsRequest, ListPendingRequest, SubscribeRequest,
};

use crate::client::{Connection, refused};
use crate::draft_file::DraftFile;
use crate::output;

/// Where a user's commands go.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub disclosure: String,
    pub notification: String,
    pub audit: String,
}

/// Who runs a command and how it answers: the user's connection, where the services are,
/// and whether to print JSON instead of tables.
#[derive(Clone, Debug)]
pub struct Session {
    /// The user's client certificate and token.
    pub connection: Connection,
    /// Where each service is.
    pub endpoints: Endpoints,
    /// Print JSON instead of tables.
    pub json: bool,
}

/// What a disclosure command does.
#[derive(Clone, Debug)]
pub enum DisclosureAction {
    Draft {
        file: std::path::PathBuf,
        request_id: Option<String>,
    },
    Update {
        id: String,
        file: std::path::PathBuf,
    },
    Assess {
        id: Option<String>,
        file: Option<std::path::PathBuf>,
        as_of: Option<String>,
    },
    Submit {
        id: String,
    },
    Approve {
        id: String,
        comment: String,
        close_relative_judgement: String,
    },
    Reject {
        id: String,
        reason: String,
    },
    Withdraw {
        id: String,
        reason: String,
    },
    List {
        state: Option<String>,
    },
    Show {
        id: String,
        reveal: bool,
    },
    FollowUps {
        id: String,
    },
    Escalations {
        id: Option<String>,
    },
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    crate::out!(
        "{}",
        serde_json::to_string_pretty(value).context("printing JSON")?
    );
    Ok(())
}

/// Prints `items` as a JSON array (each through `to_json`) or as a table of `headers` with one
/// `to_row` per item.
fn print_list<T>(
    items: &[T],
    json: bool,
    to_json: fn(&T) -> serde_json::Value,
    headers: &[&str],
    to_row: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    if json {
        return print_json(&json!(items.iter().map(to_json).collect::<Vec<_>>()));
    }
    crate::out!(
        "{}",
        output::table(headers, items.iter().map(to_row).collect())
    );
    Ok(())
}

/// Prints one `item` as JSON (through `to_json`) or as its readable `text`.
fn print_item<T: ?Sized>(
    item: &T,
    json: bool,
    to_json: fn(&T) -> serde_json::Value,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        return print_json(&to_json(item));
    }
    crate::out!("{}", text(item));
    Ok(())
}

/// A service's answer, or the refusal as an error that says what to do.
fn answer<T>(result: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<T> {
    result.map(tonic::Response::into_inner).map_err(refused)
}

/// Every page of a listing: `fetch` gets one page after a page token (empty for the first)
/// and answers its items and the next token (empty after the last page).
async fn all_pages<T, F, Fut>(mut fetch: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(Vec<T>, String)>>,
{
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let (items, next) = fetch(page_token).await?;
        all.extend(items);
        if next.is_empty() {
            return Ok(all);
        }
        page_token = next;
    }
}

fn print_disclosure(disclosure: &Disclosure, json: bool, what: &str) -> anyhow::Result<()> {
    if json {
        return print_json(&output::disclosure_json(disclosure));
    }
    if !what.is_empty() {
        crate::out!("{what}");
    }
    crate::out!("{}", output::disclosure_text(disclosure));
    Ok(())
}

fn read_draft(
    path: &std::path::Path,
) -> anyhow::Result<tryggdel_proto::disclosure::v1::DraftContent> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the draft file {}", path.display()))?;
    Ok(DraftFile::parse(&text, &path.display().to_string())?.into_content())
}

/// A disclosure client and the version of disclosure `id` as the user sees it now (a change
/// names the version it was made against).
async fn client_at_current_version(
    connection: &Connection,
    id: &str,
) -> anyhow::Result<(crate::client::DisclosureClient, i64)> {
    let mut client = connection.disclosure().await?;
    let seen = answer(
        client
            .get(GetRequest {
                disclosure_id: id.to_owned(),
                reveal_protected: false,
            })
            .await,
    )?;
    Ok((client, seen.version))
}

fn parse_state(state: &str) -> anyhow::Result<i32> {
    let name = format!("DISCLOSURE_STATE_{}", state.to_ascii_uppercase());
    DisclosureState::from_str_name(&name)
        .map(|state| state as i32)
        .with_context(|| {
            format!("--state {state:?}: expected draft, submitted, approved, delivered, acknowledged, rejected, withdrawn or expired")
        })
}

/// Runs a disclosure command.
pub async fn disclosure(session: &Session, action: DisclosureAction) -> anyhow::Result<()> {
    let Session {
        connection,
        endpoints,
        json,
    } = session;
    let (connection, json) = (connection.at(&endpoints.disclosure), *json);
    match action {
        DisclosureAction::Draft { file, request_id } => {
            let content = read_draft(&file)?;
            let request_id =
                request_id.unwrap_or_else(|| format!("cli-{}", uuid::Uuid::new_v4().simple()));
            let request = CreateDraftRequest {
                client_request_id: request_id,
                content: Some(content),
            };
            let draft = answer(connection.disclosure().await?.create_draft(request).await)?;
            if json {
                return print_json(&output::disclosure_json(&draft));
            }
            // The id alone, so that a script can take it: `id=$(tryggdel disclosure draft …)`.
            crate::out!("{}", draft.id);
            Ok(())
        }
        DisclosureAction::Update { id, file } => {
            let content = read_draft(&file)?;
            let (mut client, version) = client_at_current_version(&connection, &id).await?;
            let request = UpdateDraftRequest {
                disclosure_id: id,
                expected_version: version,
                content: Some(content),
            };
            let draft = answer(client.update_draft(request).await)?;
            print_disclosure(&draft, json, "draft updated")
        }
        DisclosureAction::Assess { id, file, as_of } => {
            let target = match (id, file) {
                (Some(id), None) => Target::DisclosureId(id),
                (None, Some(file)) => Target::Content(read_draft(&file)?),
                _ => anyhow::bail!("give either --id or --file"),
            };
            let request = AssessLegalBasisRequest {
                target: Some(target),
                as_of: as_of.unwrap_or_default(),
            };
            let assessment = answer(
                connection
                    .disclosure()
                    .await?
                    .assess_legal_basis(request)
                    .await,
            )?;
            print_item(
                &assessment,
                json,
                output::assessment_json,
                output::assessment_text,
            )
        }
        DisclosureAction::Submit { id } => {
            let (mut client, version) = client_at_current_version(&connection, &id).await?;
            let request = SubmitRequest {
                disclosure_id: id,
                expected_version: version,
            };
            let submitted = answer(client.submit(request).await)?;
            print_disclosure(&submitted, json, "submitted for decision")
        }
        DisclosureAction::Approve {
            id,
            comment,
            close_relative_judgement,
        } => {
            let (mut client, version) = client_at_current_version(&connection, &id).await?;
            let request = ApproveRequest {
                disclosure_id: id,
                expected_version: version,
                comment,
                close_relative_judgement,
            };
            let approved =
                answer(client.approve(request).await).context("the approval was refused")?;
            let what = "approved; it goes to the police region now";
            print_disclosure(&approved, json, what)
        }
        DisclosureAction::Reject { id, reason } => {
            let (mut client, version) = client_at_current_version(&connection, &id).await?;
            let request = RejectRequest {
                disclosure_id: id,
                expected_version: version,
                reason,
            };
            print_disclosure(&answer(client.reject(request).await)?, json, "rejected")
        }
        DisclosureAction::Withdraw { id, reason } => {
            let (mut client, version) = client_at_current_version(&connection, &id).await?;
            let withdrawn = answer(
                client
                    .withdraw(WithdrawRequest {
                        disclosure_id: id,
                        expected_version: version,
                        reason,
                    })
                    .await,
            )?;
            print_disclosure(&withdrawn, json, "withdrawn")
        }
        DisclosureAction::List { state } => {
            let state = match state {
                Some(state) => parse_state(&state)?,
                None => 0,
            };
            let client = connection.disclosure().await?;
            let all = all_pages(|page_token| {
                let mut client = client.clone();
                async move {
                    let request = ListRequest {
                        state,
                        page_size: 200,
                        page_token,
                        ..ListRequest::default()
                    };
                    let page = answer(client.list(request).await)?;
                    Ok((page.disclosures, page.next_page_token))
                }
            })
            .await?;
            print_item(
                all.as_slice(),
                json,
                output::summaries_json,
                output::summaries_text,
            )
        }
        DisclosureAction::Show { id, reveal } => {
            let request = GetRequest {
                disclosure_id: id,
                reveal_protected: reveal,
            };
            let disclosure = answer(connection.disclosure().await?.get(request).await)?;
            print_disclosure(&disclosure, json, "")
        }
        DisclosureAction::FollowUps { id } => {
            let mut client = connection
                .at(&endpoints.notification)
                .notification()
                .await?;
            let request = ListFollowUpsRequest { disclosure_id: id };
            let follow_ups = answer(client.list_follow_ups(request).await)?.follow_ups;
            let headers = ["question id", "asked by", "region", "asked at", "question"];
            print_list(&follow_ups, json, output::follow_up_json, &headers, |f| {
                vec![
                    f.id.clone(),
                    f.asked_by.clone(),
                    f.police_region.clone(),
                    output::time(f.asked_at_unix_ms),
                    f.question.clone(),
                ]
            })?;
            if !json {
                crate::out!(
                    "answer with a new disclosure whose draft names \"answers_follow_up_id\""
                );
            }
            Ok(())
        }
        DisclosureAction::Escalations { id } => {
            let mut client = connection
                .at(&endpoints.notification)
                .notification()
                .await?;
            let request = ListEscalationsRequest {
                disclosure_id: id.unwrap_or_default(),
            };
            let escalations = answer(client.list_escalations(request).await)?.escalations;
            let headers = [
                "disclosure",
                "round",
                "urgent",
                "deadline",
                "raised at",
                "region",
            ];
            print_list(&escalations, json, output::escalation_json, &headers, |e| {
                vec![
                    e.disclosure_id.clone(),
                    e.round.to_string(),
                    e.urgent.to_string(),
                    output::time(e.deadline_unix_ms),
                    output::time(e.raised_at_unix_ms),
                    e.police_region.clone(),
                ]
            })
        }
    }
}

/// What a police command does.
#[derive(Clone, Debug)]
pub enum PoliceAction {
    /// Unacknowledged deliveries; with `follow`, then every new one as it arrives.
    Inbox {
        follow: bool,
        cursor: u64,
    },
    Acknowledge {
        id: String,
        reference: String,
    },
    FollowUp {
        id: String,
        question: String,
    },
    /// Acknowledge the recall of a delivered disclosure its organisation withdrew.
    AcknowledgeRecall {
        id: String,
    },
}

/// Runs a police command.
pub async fn police(session: &Session, action: PoliceAction) -> anyhow::Result<()> {
    let json = session.json;
    let connection = session.connection.at(&session.endpoints.notification);
    let mut client = connection.notification().await?;
    match action {
        PoliceAction::Inbox { follow: false, .. } => {
            let deliveries = all_pages(|page_token| {
                let mut client = client.clone();
                async move {
                    let request = ListPendingRequest {
                        page_size: 200,
                        page_token,
                    };
                    let page = answer(client.list_pending(request).await)?;
                    Ok((page.deliveries, page.next_page_token))
                }
            })
            .await?;
            print_list(
                &deliveries,
                json,
                output::delivery_json,
                &output::DELIVERY_HEADER,
                output::delivery_row,
            )
        }
        PoliceAction::Inbox {
            follow: true,
            cursor,
        } => {
            let mut stream = answer(client.subscribe(SubscribeRequest { cursor }).await)?;
            if !json {
                eprintln!("following your region's deliveries (Ctrl-C to stop)");
            }
            while let Some(delivery) = stream.next().await {
                let delivery = delivery.map_err(refused)?;
                if json {
                    crate::out!(
                        "{}",
                        serde_json::to_string(&output::delivery_json(&delivery))
                            .context("printing JSON")?
                    );
                } else {
                    crate::out!(
                        "#{} {} from {}{} — deadline {}{}",
                        delivery.sequence,
                        delivery.disclosure_id,
                        delivery.organisation,
                        if delivery.urgent { " URGENT" } else { "" },
                        output::time(delivery.deadline_unix_ms),
                        if delivery.overdue { " OVERDUE" } else { "" },
                    );
                    if let Some(recall) = &delivery.recall {
                        crate::out!("  RECALLED by {}: {}", recall.withdrawn_by, recall.reason);
                    }
                }
            }
            Ok(())
        }
        PoliceAction::Acknowledge { id, reference } => {
            let request = AcknowledgeRequest {
                disclosure_id: id,
                police_reference: reference,
            };
            let receipt = answer(client.acknowledge(request).await)?;
            print_item(&receipt, json, output::receipt_json, |receipt| {
                format!(
                    "received {} as {} by {} at {} (receipt signed by key {})",
                    receipt.disclosure_id,
                    receipt.police_reference,
                    receipt.acknowledged_by,
                    output::time(receipt.acknowledged_at_unix_ms),
                    receipt.key_id
                )
            })
        }
        PoliceAction::AcknowledgeRecall { id } => {
            let request = AcknowledgeRecallRequest { disclosure_id: id };
            let recall = answer(client.acknowledge_recall(request).await)?;
            print_item(&recall, json, output::recall_json, |recall| {
                format!(
                    "recall of {} acknowledged by {} at {}",
                    recall.disclosure_id,
                    recall.acknowledged_by,
                    output::time(recall.acknowledged_at_unix_ms)
                )
            })
        }
        PoliceAction::FollowUp { id, question } => {
            let request = AskFollowUpRequest {
                disclosure_id: id,
                question,
            };
            let follow_up = answer(client.ask_follow_up(request).await)?;
            print_item(&follow_up, json, output::follow_up_json, |follow_up| {
                format!(
                    "question {} sent to {}; they answer with a new disclosure",
                    follow_up.id, follow_up.organisation
                )
            })
        }
    }
}

/// `audit query`: entries matching the filters.
pub async fn audit_query(session: &Session, request: QueryRequest) -> anyhow::Result<()> {
    let json = session.json;
    let client = session
        .connection
        .at(&session.endpoints.audit)
        .audit()
        .await?;
    let entries = all_pages(|page_token| {
        let mut client = client.clone();
        let request = QueryRequest {
            page_token,
            ..request.clone()
        };
        async move {
            let page = answer(client.query(request).await)?;
            Ok((page.entries, page.next_page_token))
        }
    })
    .await?;
    let parsed: Vec<(u64, serde_json::Value)> = entries
        .iter()
        .map(|entry| (entry.index, crate::audit::merged_entry(entry)))
        .collect();
    if json {
        return print_json(&json!(
            parsed
                .iter()
                .map(|(index, entry)| json!({"index": index, "entry": entry}))
                .collect::<Vec<_>>()
        ));
    }
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    crate::out!(
        "{}",
        output::table(
            &[
                "index",
                "occurred",
                "action",
                "actor",
                "organisation",
                "legal basis",
                "outcome"
            ],
            parsed
                .iter()
                .map(|(index, entry)| vec![
                    index.to_string(),
                    text(&entry["occurred_at"]),
                    text(&entry["action"]),
                    text(&entry["actor"]["user_id"]),
                    text(&entry["actor"]["organisation"]),
                    text(&entry["purpose"]["legal_basis_id"]),
                    text(&entry["outcome"]),
                ])
                .collect(),
        )
    );
    crate::out!(
        "{} entries; prove one with `tryggdel audit verify --inclusion <index>` on an export",
        parsed.len()
    );
    Ok(())
}
