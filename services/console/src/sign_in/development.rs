//! Development sign-in: a page listing the development directory's users with their roles;
//! choosing one mints a token with the development identity provider's key, exactly as
//! `tryggdel dev-token` does. Only in development mode (the console refuses to start with it
//! otherwise), and every page says it is development.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use tryggdel_auth::{Role, TokenRequest, TokenSigner};

use super::{limit, signed_in};
use crate::pages::{Failure, bare_page, development_banner};
use crate::session::SignedInUser;
use crate::{Shared, words};

/// How long a development token lasts (the session's absolute timeout ends it sooner).
const TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

/// A user of the development directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevelopmentUser {
    pub user_id: String,
    pub display_name: String,
    pub organisation: String,
    pub unit: Option<String>,
    pub roles: Vec<Role>,
    pub police_region: Option<String>,
}

pub struct DevelopmentSignIn {
    pub(super) signer: TokenSigner,
    pub(super) users: Vec<DevelopmentUser>,
}

/// The development directory's users: one or more per role, in the organisations of
/// `crates/domain/data/organisations.toml` (`beslut-bollnas` holds the Bollnäs delegation and
/// also drafts, so the four-eyes rule can be tried).
pub fn development_users() -> Vec<DevelopmentUser> {
    let user = |id: &str,
                name: &str,
                organisation: &str,
                unit: Option<&str>,
                roles: &[Role],
                region: Option<&str>| {
        DevelopmentUser {
            user_id: id.to_owned(),
            display_name: name.to_owned(),
            organisation: organisation.to_owned(),
            unit: unit.map(str::to_owned),
            roles: roles.to_vec(),
            police_region: region.map(str::to_owned),
        }
    };
    let ifo = Some("Individ- och familjeomsorgen");
    vec![
        user(
            "handlaggare-bollnas",
            "Anna Handläggare",
            "bollnas-kommun",
            ifo,
            &[Role::Caseworker],
            None,
        ),
        user(
            "beslut-bollnas",
            "Bertil Enhetschef",
            "bollnas-kommun",
            ifo,
            &[Role::DecisionMaker, Role::Caseworker],
            None,
        ),
        user(
            "handlaggare-gavleborg",
            "Cecilia Kurator",
            "region-gavleborg",
            Some("Psykiatrin"),
            &[Role::Caseworker],
            None,
        ),
        user(
            "beslut-gavleborg",
            "David Verksamhetschef",
            "region-gavleborg",
            Some("Psykiatrin"),
            &[Role::DecisionMaker],
            None,
        ),
        user(
            "handlaggare-jonkoping",
            "Eva Socialsekreterare",
            "jonkoping-kommun",
            ifo,
            &[Role::Caseworker],
            None,
        ),
        user(
            "polis-mitt-1",
            "Fredrik Inre befäl",
            "polisen",
            Some("Region Mitt, RLC"),
            &[Role::PoliceOfficer],
            Some("mitt"),
        ),
        user(
            "polis-syd-1",
            "Gunilla Inre befäl",
            "polisen",
            Some("Region Syd, RLC"),
            &[Role::PoliceOfficer],
            Some("syd"),
        ),
        user(
            "aklagare-1",
            "Jonna Åklagare",
            "aklagarmyndigheten",
            None,
            &[Role::PoliceOfficer],
            None,
        ),
        user(
            "granskare-bollnas",
            "Helena Dataskyddsombud",
            "bollnas-kommun",
            None,
            &[Role::ComplianceOfficer],
            None,
        ),
        user(
            "granskare-ivo",
            "Ivar Inspektör",
            "ivo",
            None,
            &[Role::ComplianceOfficer],
            None,
        ),
    ]
}

pub fn page(development: &DevelopmentSignIn) -> Markup {
    bare_page(
        "Logga in (utveckling)",
        html! {
            (development_banner())
            h1 { "Logga in som en utvecklingsanvändare" }
            p { "I produktion loggar du in via din organisations inloggningstjänst. Här väljer du en användare ur utvecklingskatalogen." }
            table {
                caption.hint { "Utvecklingskatalogens användare" }
                thead { tr { th scope="col" { "Användare" } th scope="col" { "Roller" } th scope="col" { "Organisation" } th scope="col" { span.skip-label { "Logga in" } } } }
                tbody {
                    @for user in &development.users {
                        tr {
                            td { (user.display_name) br; code { (user.user_id) } }
                            td {
                                (user.roles.iter().map(|role| words::role(*role)).collect::<Vec<_>>().join(", "))
                                @if let Some(region) = &user.police_region { ", " (words::region(region)) }
                            }
                            td { (user.organisation) }
                            td {
                                form method="post" action="/logga-in/utveckling" {
                                    input type="hidden" name="user" value=(user.user_id);
                                    button type="submit" aria-label={"Logga in som " (user.display_name)} { "Logga in" }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[derive(serde::Deserialize)]
pub struct ChosenUser {
    #[serde(default)]
    user: String,
}

/// Mints a token for the chosen user and starts a session. The request must come from the
/// sign-in page (same-origin check) and is rate-limited like any sign-in.
pub async fn sign_in(
    State(console): State<Shared>,
    info: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ChosenUser>,
) -> Result<Response, Failure> {
    let development = console.sign_in.development().ok_or(Failure::NotFound)?;
    limit(&console, &info, &headers)?;
    let user = development
        .users
        .iter()
        .find(|user| user.user_id == form.user)
        .ok_or_else(|| Failure::BadInput("Välj en användare i listan.".to_owned()))?;
    let token = development
        .signer
        .mint(&TokenRequest {
            user_id: user.user_id.clone(),
            organisation: user.organisation.clone(),
            unit: user.unit.clone(),
            roles: user.roles.clone(),
            police_region: user.police_region.clone(),
            display_name: Some(user.display_name.clone()),
            valid_for: TOKEN_LIFETIME,
        })
        .map_err(|error| {
            Failure::Internal(anyhow::Error::new(error).context("minting a development token"))
        })?;
    let principal = tryggdel_auth::Principal {
        user_id: user.user_id.clone(),
        organisation: user.organisation.clone(),
        unit: user.unit.clone(),
        roles: user.roles.clone(),
        police_region: user.police_region.clone(),
        display_name: Some(user.display_name.clone()),
        token_id: String::new(),
    };
    let expires = time::OffsetDateTime::now_utc().unix_timestamp()
        + i64::try_from(TOKEN_LIFETIME.as_secs()).unwrap_or(i64::MAX);
    Ok(signed_in(
        &console,
        &headers,
        SignedInUser {
            principal,
            token,
            token_expires_at: expires,
        },
    ))
}
