//! The `request …` commands, for both sides of a request for information: an officer of a
//! law-enforcement authority sends one and reads the answer or the refusal; the organisation's
//! staff list their queue, read a request and refuse it with its reason and weighing. A
//! request is answered with a disclosure whose draft file names it
//! (`answers_information_request_id`), approved like any other. Each prints a table or the
//! request, or JSON with `--json`.

use serde_json::{Value, json};
use tryggdel_proto::disclosure::v1::{
    GetInformationRequestRequest, InformationRequest, InformationRequestState,
    ListInformationRequestsRequest, RefuseInformationRequestRequest, RequestInformationRequest,
};

use crate::client::refused;
use crate::commands::Session;
use crate::output;

/// What a request command does.
#[derive(Clone, Debug)]
pub enum RequestAction {
    /// An officer asks `organisation` for information.
    Send(NewRequest),
    /// The caller's requests (the organisation's queue, or what the officer's authority asked),
    /// only those in `state` when given.
    List { state: Option<String> },
    /// One request, with its answer or refusal.
    Show { id: String },
    /// The organisation refuses request `id`.
    Refuse {
        id: String,
        reason: String,
        weighing: String,
    },
}

/// A request for information as the officer gives it on the command line.
#[derive(Clone, Debug)]
pub struct NewRequest {
    /// Makes a retry safe; a fresh one when not given.
    pub request_id: Option<String>,
    pub organisation: String,
    pub subject_identity_number: Option<String>,
    pub subject_name: Option<String>,
    pub information_sought: String,
    pub purpose: String,
    pub legal_ground: String,
    pub urgent: bool,
    pub reply_by: String,
}

/// Runs a request command.
pub async fn request(session: &Session, action: RequestAction) -> anyhow::Result<()> {
    let connection = session.connection.at(&session.endpoints.disclosure);
    let mut client = connection.disclosure().await?;
    let (requests, what) = match action {
        RequestAction::Send(new) => {
            let request = RequestInformationRequest {
                client_request_id: new
                    .request_id
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                organisation: new.organisation,
                subject_identity_number: new.subject_identity_number.unwrap_or_default(),
                subject_name: new.subject_name.unwrap_or_default(),
                information_sought: new.information_sought,
                purpose: new.purpose,
                legal_ground: new.legal_ground,
                urgent: new.urgent,
                reply_by: new.reply_by,
            };
            let sent = client.request_information(request).await.map_err(refused)?;
            (vec![sent.into_inner()], Some("sent"))
        }
        RequestAction::List { state } => {
            let state = match state.as_deref() {
                None => InformationRequestState::Unspecified,
                Some(text) => parse_state(text)?,
            };
            let mut requests = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_information_requests(ListInformationRequestsRequest {
                        state: state as i32,
                        page_size: 200,
                        page_token,
                    })
                    .await
                    .map_err(refused)?
                    .into_inner();
                requests.extend(page.requests);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            (requests, None)
        }
        RequestAction::Show { id } => {
            let found = client
                .get_information_request(GetInformationRequestRequest {
                    information_request_id: id,
                })
                .await
                .map_err(refused)?;
            (vec![found.into_inner()], Some(""))
        }
        RequestAction::Refuse {
            id,
            reason,
            weighing,
        } => {
            let current = client
                .get_information_request(GetInformationRequestRequest {
                    information_request_id: id.clone(),
                })
                .await
                .map_err(refused)?
                .into_inner();
            let refusal = RefuseInformationRequestRequest {
                information_request_id: id,
                expected_version: current.version,
                reason,
                weighing,
            };
            let done = client
                .refuse_information_request(refusal)
                .await
                .map_err(refused)?;
            (vec![done.into_inner()], Some("refused"))
        }
    };
    match (session.json, what) {
        (true, None) => crate::out!(
            "{}",
            serde_json::to_string_pretty(&json!(
                requests.iter().map(request_json).collect::<Vec<_>>()
            ))?
        ),
        (true, Some(_)) => {
            for request in &requests {
                crate::out!("{}", serde_json::to_string_pretty(&request_json(request))?);
            }
        }
        (false, None) => crate::out!("{}", requests_text(&requests)),
        (false, Some(what)) => {
            for request in &requests {
                crate::out!("{}", request_text(request));
            }
            if !what.is_empty() {
                crate::out!("{what}");
            }
        }
    }
    Ok(())
}

/// `open`, `answered` or `refused`.
fn parse_state(text: &str) -> anyhow::Result<InformationRequestState> {
    match text {
        "open" => Ok(InformationRequestState::Open),
        "answered" => Ok(InformationRequestState::Answered),
        "refused" => Ok(InformationRequestState::Refused),
        other => anyhow::bail!("unknown state {other:?}: expected open, answered or refused"),
    }
}

/// The state as a word.
fn state_name(request: &InformationRequest) -> &'static str {
    match request.state() {
        InformationRequestState::Open => "open",
        InformationRequestState::Answered => "answered",
        InformationRequestState::Refused => "refused",
        InformationRequestState::Unspecified => "unknown",
    }
}

/// A request as JSON.
pub fn request_json(request: &InformationRequest) -> Value {
    let subject = request.subject.as_ref();
    json!({
        "id": request.id,
        "version": request.version,
        "state": state_name(request),
        "organisation": request.organisation,
        "requested_by": request.requested_by,
        "requester_organisation": request.requester_organisation,
        "requester_authority": request.requester_authority,
        "requester_inbox": request.requester_inbox,
        "subject_identity_number": subject.map(|person| person.identity_number.clone()).unwrap_or_default(),
        "subject_name": subject.map(|person| person.name.clone()).unwrap_or_default(),
        "information_sought": request.information_sought,
        "purpose": request.purpose,
        "legal_ground": request.legal_ground,
        "urgent": request.urgent,
        "reply_by": output::time(request.reply_by_unix_ms),
        "created_at": output::time(request.created_at_unix_ms),
        "answered_by_disclosure_id": request.answered_by_disclosure_id,
        "answered_at": optional_time(request.answered_at_unix_ms),
        "refused_by": request.refused_by,
        "refused_at": optional_time(request.refused_at_unix_ms),
        "refusal_reason": request.refusal_reason,
        "refusal_weighing": request.refusal_weighing,
        "escalations": request.escalations,
    })
}

fn optional_time(unix_ms: i64) -> String {
    if unix_ms > 0 {
        output::time(unix_ms)
    } else {
        String::new()
    }
}

/// Requests as a table, one row each.
pub fn requests_text(requests: &[InformationRequest]) -> String {
    let rows = requests
        .iter()
        .map(|request| {
            vec![
                request.id.clone(),
                state_name(request).to_owned(),
                if request.urgent { "yes" } else { "no" }.to_owned(),
                output::time(request.reply_by_unix_ms),
                request.organisation.clone(),
                request.requester_inbox.clone(),
                request.escalations.to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "STATE",
            "URGENT",
            "REPLY BY",
            "ASKED",
            "ASKED BY",
            "ESCALATIONS",
        ],
        rows,
    )
}

/// One request, field by field.
pub fn request_text(request: &InformationRequest) -> String {
    let mut lines = vec![
        format!("id:               {}", request.id),
        format!("state:            {}", state_name(request)),
        format!("asked:            {}", request.organisation),
        format!(
            "asked by:         {} ({}, inbox {})",
            request.requested_by, request.requester_authority, request.requester_inbox
        ),
        format!(
            "urgent:           {}",
            if request.urgent { "yes" } else { "no" }
        ),
        format!(
            "reply by:         {}",
            output::time(request.reply_by_unix_ms)
        ),
    ];
    if let Some(subject) = &request.subject {
        lines.push(format!(
            "about:            {} {}",
            subject.identity_number, subject.name
        ));
    }
    lines.push(format!("information:      {}", request.information_sought));
    lines.push(format!("purpose:          {}", request.purpose));
    lines.push(format!("legal ground:     {}", request.legal_ground));
    if request.escalations > 0 {
        lines.push(format!(
            "overdue:          escalated {} times, last {}",
            request.escalations,
            output::time(request.last_escalated_at_unix_ms)
        ));
    }
    if !request.answered_by_disclosure_id.is_empty() {
        lines.push(format!(
            "answered by:      disclosure {} at {}",
            request.answered_by_disclosure_id,
            output::time(request.answered_at_unix_ms)
        ));
    }
    if !request.refused_by.is_empty() {
        lines.push(format!(
            "refused by:       {} at {}",
            request.refused_by,
            output::time(request.refused_at_unix_ms)
        ));
        lines.push(format!("reason:           {}", request.refusal_reason));
        lines.push(format!("weighing:         {}", request.refusal_weighing));
    }
    lines.join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_request_shows_its_reason_and_weighing() {
        let request = InformationRequest {
            id: "r1".into(),
            state: InformationRequestState::Refused as i32,
            organisation: "bollnas-kommun".into(),
            requester_inbox: "syd".into(),
            refused_by: "handlaggare-bollnas".into(),
            refused_at_unix_ms: 1,
            refusal_reason: "Sekretess".into(),
            refusal_weighing: "Avvägning".into(),
            ..InformationRequest::default()
        };
        let text = request_text(&request);
        assert!(text.contains("state:            refused"), "{text}");
        assert!(text.contains("weighing:         Avvägning"), "{text}");
        let json = request_json(&request);
        assert_eq!(json["state"], "refused");
        assert_eq!(json["answered_at"], "");
        assert!(requests_text(&[request]).contains("syd"));
    }

    #[test]
    fn a_state_is_one_of_three() {
        assert_eq!(parse_state("open").unwrap(), InformationRequestState::Open);
        let error = parse_state("closed").unwrap_err().to_string();
        assert!(error.contains("open, answered or refused"), "{error}");
    }
}
