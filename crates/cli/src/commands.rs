//! The role commands: a caseworker's and decision maker's `disclosure …`, a police officer's
//! `police …`, a compliance officer's `audit query`. Each prints a readable table, or JSON
//! with `--json`, and returns errors that say what to do.

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
    AcknowledgeRequest, AskFollowUpRequest, ListEscalationsRequest, ListFollowUpsRequest,
    ListPendingRequest, SubscribeRequest,
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

async fn current(connection: &Connection, id: &str) -> anyhow::Result<Disclosure> {
    connection
        .disclosure()
        .await?
        .get(GetRequest {
            disclosure_id: id.to_owned(),
            reveal_protected: false,
        })
        .await
        .map_err(refused)
        .map(tonic::Response::into_inner)
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
pub async fn disclosure(
    connection: &Connection,
    endpoints: &Endpoints,
    action: DisclosureAction,
    json: bool,
) -> anyhow::Result<()> {
    let connection = connection.at(&endpoints.disclosure);
    match action {
        DisclosureAction::Draft { file, request_id } => {
            let content = read_draft(&file)?;
            let request_id =
                request_id.unwrap_or_else(|| format!("cli-{}", uuid::Uuid::new_v4().simple()));
            let draft = connection
                .disclosure()
                .await?
                .create_draft(CreateDraftRequest {
                    client_request_id: request_id,
                    content: Some(content),
                })
                .await
                .map_err(refused)?
                .into_inner();
            print_disclosure(&draft, json, "draft created")
        }
        DisclosureAction::Update { id, file } => {
            let content = read_draft(&file)?;
            let seen = current(&connection, &id).await?;
            let draft = connection
                .disclosure()
                .await?
                .update_draft(UpdateDraftRequest {
                    disclosure_id: id,
                    expected_version: seen.version,
                    content: Some(content),
                })
                .await
                .map_err(refused)?
                .into_inner();
            print_disclosure(&draft, json, "draft updated")
        }
        DisclosureAction::Assess { id, file, as_of } => {
            let target = match (id, file) {
                (Some(id), None) => Target::DisclosureId(id),
                (None, Some(file)) => Target::Content(read_draft(&file)?),
                _ => anyhow::bail!("give either --id or --file"),
            };
            let assessment = connection
                .disclosure()
                .await?
                .assess_legal_basis(AssessLegalBasisRequest {
                    target: Some(target),
                    as_of: as_of.unwrap_or_default(),
                })
                .await
                .map_err(refused)?
                .into_inner();
            if json {
                print_json(&output::assessment_json(&assessment))
            } else {
                crate::out!("{}", output::assessment_text(&assessment));
                Ok(())
            }
        }
        DisclosureAction::Submit { id } => {
            let seen = current(&connection, &id).await?;
            let submitted = connection
                .disclosure()
                .await?
                .submit(SubmitRequest {
                    disclosure_id: id,
                    expected_version: seen.version,
                })
                .await
                .map_err(refused)?
                .into_inner();
            print_disclosure(&submitted, json, "submitted for decision")
        }
        DisclosureAction::Approve { id, comment } => {
            let seen = current(&connection, &id).await?;
            let approved = connection
                .disclosure()
                .await?
                .approve(ApproveRequest {
                    disclosure_id: id,
                    expected_version: seen.version,
                    comment,
                })
                .await
                .map_err(refused)
                .context("the approval was refused")?
                .into_inner();
            print_disclosure(
                &approved,
                json,
                "approved; it goes to the police region now",
            )
        }
        DisclosureAction::Reject { id, reason } => {
            let seen = current(&connection, &id).await?;
            let rejected = connection
                .disclosure()
                .await?
                .reject(RejectRequest {
                    disclosure_id: id,
                    expected_version: seen.version,
                    reason,
                })
                .await
                .map_err(refused)?
                .into_inner();
            print_disclosure(&rejected, json, "rejected")
        }
        DisclosureAction::Withdraw { id, reason } => {
            let seen = current(&connection, &id).await?;
            let withdrawn = connection
                .disclosure()
                .await?
                .withdraw(WithdrawRequest {
                    disclosure_id: id,
                    expected_version: seen.version,
                    reason,
                })
                .await
                .map_err(refused)?
                .into_inner();
            print_disclosure(&withdrawn, json, "withdrawn")
        }
        DisclosureAction::List { state } => {
            let state = match state {
                Some(state) => parse_state(&state)?,
                None => 0,
            };
            let mut client = connection.disclosure().await?;
            let mut all = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list(ListRequest {
                        state,
                        page_size: 200,
                        page_token: page_token.clone(),
                        ..ListRequest::default()
                    })
                    .await
                    .map_err(refused)?
                    .into_inner();
                all.extend(page.disclosures);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            if json {
                print_json(&output::summaries_json(&all))
            } else {
                crate::out!("{}", output::summaries_text(&all));
                Ok(())
            }
        }
        DisclosureAction::Show { id, reveal } => {
            let disclosure = connection
                .disclosure()
                .await?
                .get(GetRequest {
                    disclosure_id: id,
                    reveal_protected: reveal,
                })
                .await
                .map_err(refused)?
                .into_inner();
            print_disclosure(&disclosure, json, "")
        }
        DisclosureAction::FollowUps { id } => {
            let follow_ups = connection
                .at(&endpoints.notification)
                .notification()
                .await?
                .list_follow_ups(ListFollowUpsRequest { disclosure_id: id })
                .await
                .map_err(refused)?
                .into_inner()
                .follow_ups;
            if json {
                return print_json(&json!(
                    follow_ups
                        .iter()
                        .map(output::follow_up_json)
                        .collect::<Vec<_>>()
                ));
            }
            crate::out!(
                "{}",
                output::table(
                    &["question id", "asked by", "region", "asked at", "question"],
                    follow_ups
                        .iter()
                        .map(|follow_up| vec![
                            follow_up.id.clone(),
                            follow_up.asked_by.clone(),
                            follow_up.police_region.clone(),
                            output::time(follow_up.asked_at_unix_ms),
                            follow_up.question.clone(),
                        ])
                        .collect(),
                )
            );
            crate::out!("answer with a new disclosure whose draft names \"answers_follow_up_id\"");
            Ok(())
        }
        DisclosureAction::Escalations { id } => {
            let escalations = connection
                .at(&endpoints.notification)
                .notification()
                .await?
                .list_escalations(ListEscalationsRequest {
                    disclosure_id: id.unwrap_or_default(),
                })
                .await
                .map_err(refused)?
                .into_inner()
                .escalations;
            if json {
                return print_json(&json!(
                    escalations
                        .iter()
                        .map(output::escalation_json)
                        .collect::<Vec<_>>()
                ));
            }
            crate::out!(
                "{}",
                output::table(
                    &[
                        "disclosure",
                        "round",
                        "urgent",
                        "deadline",
                        "raised at",
                        "region"
                    ],
                    escalations
                        .iter()
                        .map(|escalation| vec![
                            escalation.disclosure_id.clone(),
                            escalation.round.to_string(),
                            escalation.urgent.to_string(),
                            output::time(escalation.deadline_unix_ms),
                            output::time(escalation.raised_at_unix_ms),
                            escalation.police_region.clone(),
                        ])
                        .collect(),
                )
            );
            Ok(())
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
}

/// Runs a police command.
pub async fn police(
    connection: &Connection,
    endpoints: &Endpoints,
    action: PoliceAction,
    json: bool,
) -> anyhow::Result<()> {
    let connection = connection.at(&endpoints.notification);
    let mut client = connection.notification().await?;
    match action {
        PoliceAction::Inbox { follow: false, .. } => {
            let mut deliveries = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_pending(ListPendingRequest {
                        page_size: 200,
                        page_token: page_token.clone(),
                    })
                    .await
                    .map_err(refused)?
                    .into_inner();
                deliveries.extend(page.deliveries);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            if json {
                return print_json(&json!(
                    deliveries
                        .iter()
                        .map(output::delivery_json)
                        .collect::<Vec<_>>()
                ));
            }
            crate::out!(
                "{}",
                output::table(
                    &output::DELIVERY_HEADER,
                    deliveries.iter().map(output::delivery_row).collect()
                )
            );
            Ok(())
        }
        PoliceAction::Inbox {
            follow: true,
            cursor,
        } => {
            let mut stream = client
                .subscribe(SubscribeRequest { cursor })
                .await
                .map_err(refused)?
                .into_inner();
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
                }
            }
            Ok(())
        }
        PoliceAction::Acknowledge { id, reference } => {
            let receipt = client
                .acknowledge(AcknowledgeRequest {
                    disclosure_id: id,
                    police_reference: reference,
                })
                .await
                .map_err(refused)?
                .into_inner();
            if json {
                return print_json(&output::receipt_json(&receipt));
            }
            crate::out!(
                "received {} as {} by {} at {} (receipt signed by key {})",
                receipt.disclosure_id,
                receipt.police_reference,
                receipt.acknowledged_by,
                output::time(receipt.acknowledged_at_unix_ms),
                receipt.key_id
            );
            Ok(())
        }
        PoliceAction::FollowUp { id, question } => {
            let follow_up = client
                .ask_follow_up(AskFollowUpRequest {
                    disclosure_id: id,
                    question,
                })
                .await
                .map_err(refused)?
                .into_inner();
            if json {
                return print_json(&output::follow_up_json(&follow_up));
            }
            crate::out!(
                "question {} sent to {}; they answer with a new disclosure",
                follow_up.id,
                follow_up.organisation
            );
            Ok(())
        }
    }
}

/// `audit query`: entries matching the filters.
pub async fn audit_query(
    connection: &Connection,
    endpoints: &Endpoints,
    request: QueryRequest,
    json: bool,
) -> anyhow::Result<()> {
    let mut client = connection.at(&endpoints.audit).audit().await?;
    let mut entries = Vec::new();
    let mut request = request;
    loop {
        let page = client
            .query(request.clone())
            .await
            .map_err(refused)?
            .into_inner();
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    let parsed: Vec<(u64, serde_json::Value)> = entries
        .iter()
        .map(|entry| {
            (
                entry.index,
                serde_json::from_slice(&entry.entry).unwrap_or(serde_json::Value::Null),
            )
        })
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
