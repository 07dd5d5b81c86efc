//! `hold …`: place a hold on a disclosure (a legal ground and its last day), extend it, end
//! it, and list a disclosure's holds. Each prints a table, or JSON with `--json`.

use serde_json::{Value, json};
use tryggdel_proto::disclosure::v1::{
    EndHoldRequest, ExtendHoldRequest, Hold, ListHoldsRequest, PlaceHoldRequest,
};

use crate::client::refused;
use crate::commands::Session;
use crate::output;

/// What a hold command does.
#[derive(Clone, Debug)]
pub enum HoldAction {
    /// Places a hold on disclosure `disclosure_id` under `legal_ground` until `until`
    /// (inclusive); `request_id` makes a retry return the same hold (None: a new one).
    Place {
        disclosure_id: String,
        legal_ground: String,
        until: String,
        request_id: Option<String>,
    },
    /// Moves hold `id`'s last day to `until`; `version` is the hold's version last seen.
    Extend {
        id: String,
        version: i64,
        until: String,
    },
    /// Ends hold `id` now.
    End { id: String, version: i64 },
    /// Every hold placed on disclosure `disclosure_id`.
    List { disclosure_id: String },
}

/// Runs a hold command.
pub async fn hold(session: &Session, action: HoldAction) -> anyhow::Result<()> {
    let connection = session.connection.at(&session.endpoints.disclosure);
    let mut client = connection.disclosure().await?;
    let (holds, what) = match action {
        HoldAction::Place {
            disclosure_id,
            legal_ground,
            until,
            request_id,
        } => {
            let request = PlaceHoldRequest {
                client_request_id: request_id
                    .unwrap_or_else(|| format!("hold-{}", uuid::Uuid::now_v7().simple())),
                disclosure_id,
                legal_ground,
                until,
            };
            let placed = client.place_hold(request).await.map_err(refused)?;
            (vec![placed.into_inner()], Some("placed"))
        }
        HoldAction::Extend { id, version, until } => {
            let request = ExtendHoldRequest {
                hold_id: id,
                expected_version: version,
                until,
            };
            let extended = client.extend_hold(request).await.map_err(refused)?;
            (vec![extended.into_inner()], Some("extended"))
        }
        HoldAction::End { id, version } => {
            let request = EndHoldRequest {
                hold_id: id,
                expected_version: version,
            };
            let ended = client.end_hold(request).await.map_err(refused)?;
            (vec![ended.into_inner()], Some("ended"))
        }
        HoldAction::List { disclosure_id } => {
            let listed = client
                .list_holds(ListHoldsRequest { disclosure_id })
                .await
                .map_err(refused)?;
            (listed.into_inner().holds, None)
        }
    };
    if session.json {
        let value = match (what, holds.as_slice()) {
            (Some(_), [hold]) => hold_json(hold),
            _ => json!(holds.iter().map(hold_json).collect::<Vec<_>>()),
        };
        crate::out!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        let table = holds_text(&holds);
        match what {
            Some(what) => crate::out!("{table}\n{what}"),
            None => crate::out!("{table}"),
        }
    }
    Ok(())
}

/// A hold as JSON.
pub fn hold_json(hold: &Hold) -> Value {
    json!({
        "id": hold.id,
        "disclosure_id": hold.disclosure_id,
        "version": hold.version,
        "issuer_organisation": hold.issuer_organisation,
        "placed_by": hold.placed_by,
        "placed_at": output::time(hold.placed_at_unix_ms),
        "legal_ground": hold.legal_ground,
        "until": hold.until,
        "ended_by": hold.ended_by,
        "ended_at": output::time(hold.ended_at_unix_ms),
        "active": hold.active,
    })
}

/// Holds as a table, one row each.
pub fn holds_text(holds: &[Hold]) -> String {
    let rows = holds
        .iter()
        .map(|hold| {
            vec![
                hold.id.clone(),
                hold.version.to_string(),
                hold.issuer_organisation.clone(),
                hold.legal_ground.clone(),
                hold.until.clone(),
                if hold.active {
                    "active".to_owned()
                } else if hold.ended_at_unix_ms > 0 {
                    format!("ended {}", output::time(hold.ended_at_unix_ms))
                } else {
                    "expired".to_owned()
                },
            ]
        })
        .collect();
    output::table(
        &["ID", "VERSION", "ISSUER", "LEGAL GROUND", "UNTIL", "STATE"],
        rows,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_shows_whether_it_holds() {
        let hold = Hold {
            id: "h1".into(),
            disclosure_id: "d1".into(),
            version: 2,
            issuer_organisation: "bollnas-kommun".into(),
            legal_ground: "RB-23-18".into(),
            until: "2027-01-31".into(),
            active: true,
            ..Hold::default()
        };
        let text = holds_text(std::slice::from_ref(&hold));
        assert!(
            text.contains("RB-23-18") && text.contains("active"),
            "{text}"
        );
        let expired = Hold {
            active: false,
            ..hold.clone()
        };
        assert!(holds_text(&[expired]).contains("expired"));
        let json = hold_json(&hold);
        assert_eq!(json["until"], "2027-01-31");
        assert_eq!(json["active"], true);
    }
}
