//! An admin's `delegation …` commands: grant a delegation (a user, legal bases, from a date,
//! optionally to one), revoke one (set the last day it holds), and list them (all, or those
//! valid on a date). Each prints a table, or JSON with `--json`.

use serde_json::{Value, json};
use tryggdel_proto::disclosure::v1::{
    Delegation, GrantDelegationRequest, ListDelegationsRequest, RevokeDelegationRequest,
};

use crate::client::refused;
use crate::commands::Session;
use crate::output;

/// What a delegation command does.
#[derive(Clone, Debug)]
pub enum DelegationAction {
    /// Grants `user` the delegation to decide under `legal_bases` from `from` (None: today)
    /// to `to` (inclusive; None: no end).
    Grant {
        user: String,
        legal_bases: Vec<String>,
        from: Option<String>,
        to: Option<String>,
    },
    /// Ends delegation `id` on `to` (inclusive; None: today).
    Revoke { id: String, to: Option<String> },
    /// The organisation's delegations, only those valid on `as_of` when given.
    List { as_of: Option<String> },
}

/// Runs a delegation command.
pub async fn delegation(session: &Session, action: DelegationAction) -> anyhow::Result<()> {
    let connection = session.connection.at(&session.endpoints.disclosure);
    let mut client = connection.disclosure().await?;
    let answer = match action {
        DelegationAction::Grant {
            user,
            legal_bases,
            from,
            to,
        } => {
            let request = GrantDelegationRequest {
                user,
                legal_bases,
                valid_from: from.unwrap_or_default(),
                valid_to: to.unwrap_or_default(),
            };
            let granted = client.grant_delegation(request).await.map_err(refused)?;
            Answer::One(granted.into_inner(), "granted")
        }
        DelegationAction::Revoke { id, to } => {
            let request = RevokeDelegationRequest {
                delegation_id: id,
                valid_to: to.unwrap_or_default(),
            };
            let revoked = client.revoke_delegation(request).await.map_err(refused)?;
            Answer::One(revoked.into_inner(), "revoked")
        }
        DelegationAction::List { as_of } => {
            let request = ListDelegationsRequest {
                organisation: String::new(),
                as_of: as_of.unwrap_or_default(),
            };
            let listed = client.list_delegations(request).await.map_err(refused)?;
            Answer::List(listed.into_inner().delegations)
        }
    };
    let (value, text) = match answer {
        Answer::One(delegation, what) => (
            delegation_json(&delegation),
            format!(
                "{}\n{what}",
                delegations_text(std::slice::from_ref(&delegation))
            ),
        ),
        Answer::List(delegations) => (
            json!(delegations.iter().map(delegation_json).collect::<Vec<_>>()),
            delegations_text(&delegations),
        ),
    };
    if session.json {
        crate::out!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        crate::out!("{text}");
    }
    Ok(())
}

/// What a command answers: one delegation it changed (and what it did), or a list.
enum Answer {
    One(Delegation, &'static str),
    List(Vec<Delegation>),
}

/// A delegation as JSON.
pub fn delegation_json(delegation: &Delegation) -> Value {
    json!({
        "id": delegation.id,
        "organisation": delegation.organisation,
        "user": delegation.user,
        "legal_bases": delegation.legal_bases,
        "valid_from": delegation.valid_from,
        "valid_to": delegation.valid_to,
        "granted_by": delegation.granted_by,
        "granted_at": output::time(delegation.granted_at_unix_ms),
    })
}

/// Delegations as a table, one row each.
pub fn delegations_text(delegations: &[Delegation]) -> String {
    let rows = delegations
        .iter()
        .map(|delegation| {
            vec![
                delegation.id.clone(),
                delegation.user.clone(),
                delegation.legal_bases.join(","),
                delegation.valid_from.clone(),
                if delegation.valid_to.is_empty() {
                    "-".to_owned()
                } else {
                    delegation.valid_to.clone()
                },
                delegation.granted_by.clone(),
            ]
        })
        .collect();
    output::table(
        &["ID", "USER", "LEGAL BASES", "FROM", "TO", "GRANTED BY"],
        rows,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_delegation_without_an_end_shows_a_dash() {
        let delegation = Delegation {
            id: "d1".into(),
            organisation: "bollnas-kommun".into(),
            user: "beslut-anna".into(),
            legal_bases: vec!["OSL-10-18c".into(), "OSL-10-21".into()],
            valid_from: "2026-12-01".into(),
            valid_to: String::new(),
            granted_by: "admin".into(),
            granted_at_unix_ms: 0,
        };
        let text = delegations_text(std::slice::from_ref(&delegation));
        assert!(text.contains("OSL-10-18c,OSL-10-21"), "{text}");
        assert!(text.contains("2026-12-01"), "{text}");
        let json = delegation_json(&delegation);
        assert_eq!(json["valid_to"], "");
        assert_eq!(json["user"], "beslut-anna");
    }
}
