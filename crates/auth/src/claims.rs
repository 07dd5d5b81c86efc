//! What a token says: the roles, the claim set on the wire, and the verified [`Principal`].

use serde::{Deserialize, Serialize};

use crate::AuthError;

/// Longest accepted `sub` (user id), in characters.
pub const MAX_SUBJECT_CHARS: usize = 128;
/// Longest accepted `org`, `unit`, `region` and `jti`, in characters.
pub const MAX_IDENTIFIER_CHARS: usize = 128;
/// Longest accepted `name` (display name), in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 256;
/// Most roles one token may carry.
pub const MAX_ROLES: usize = 8;

/// A role a user holds in their organisation. On the wire: snake_case strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Drafts disclosures at a social services office.
    Caseworker,
    /// Approves or rejects drafted disclosures.
    DecisionMaker,
    /// Receives disclosures for a police region.
    PoliceOfficer,
    /// Reads policies and audit trails.
    ComplianceOfficer,
    /// Administers the system.
    Admin,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 5] = [
        Role::Caseworker,
        Role::DecisionMaker,
        Role::PoliceOfficer,
        Role::ComplianceOfficer,
        Role::Admin,
    ];

    /// The wire name, e.g. `"decision_maker"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Caseworker => "caseworker",
            Role::DecisionMaker => "decision_maker",
            Role::PoliceOfficer => "police_officer",
            Role::ComplianceOfficer => "compliance_officer",
            Role::Admin => "admin",
        }
    }

    /// Parses a wire name exactly (case-sensitive); `None` for anything else.
    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == value)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claim set as it travels in the token. Used for minting; verification reads
/// the payload field by field so that each problem gets its own error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience (a single string).
    pub aud: String,
    /// User id.
    pub sub: String,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// Not before, unix seconds.
    pub nbf: i64,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Token id.
    pub jti: String,
    /// Organisation.
    pub org: String,
    /// Unit within the organisation.
    #[serde(default)]
    pub unit: Option<String>,
    /// Roles held.
    pub roles: Vec<Role>,
    /// Police region, for police users.
    #[serde(default)]
    pub region: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A verified caller. Only [`crate::TokenVerifier::verify`] builds one from a token,
/// so holding a `Principal` means the checks in that function passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The `sub` claim: non-empty, at most [`MAX_SUBJECT_CHARS`] characters.
    pub user_id: String,
    /// The `org` claim: non-empty.
    pub organisation: String,
    /// The `unit` claim, if any (never an empty string).
    pub unit: Option<String>,
    /// The `roles` claim: 1 to [`MAX_ROLES`] distinct roles.
    pub roles: Vec<Role>,
    /// The `region` claim, if any (never an empty string).
    pub police_region: Option<String>,
    /// The `name` claim, if any (never an empty string).
    pub display_name: Option<String>,
    /// The `jti` claim.
    pub token_id: String,
}

impl Principal {
    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Checks the identity fields every token must satisfy, on both the minting and
/// the verifying side, so that the signer never mints a token the verifier refuses.
pub(crate) fn check_identity(
    user_id: &str,
    organisation: &str,
    unit: Option<&str>,
    roles: &[Role],
    police_region: Option<&str>,
    display_name: Option<&str>,
) -> Result<(), AuthError> {
    check_text("sub", user_id, MAX_SUBJECT_CHARS)?;
    check_text("org", organisation, MAX_IDENTIFIER_CHARS)?;
    if let Some(unit) = unit {
        check_text("unit", unit, MAX_IDENTIFIER_CHARS)?;
    }
    if let Some(region) = police_region {
        check_text("region", region, MAX_IDENTIFIER_CHARS)?;
    }
    if let Some(name) = display_name {
        check_text("name", name, MAX_DISPLAY_NAME_CHARS)?;
    }
    check_roles(roles)
}

/// The issuer and audience a signer writes and a verifier requires: neither may be blank.
pub(crate) fn check_issuer_and_audience(issuer: &str, audience: &str) -> Result<(), AuthError> {
    if issuer.trim().is_empty() {
        return Err(AuthError::InvalidConfig {
            reason: "issuer must not be empty",
        });
    }
    if audience.trim().is_empty() {
        return Err(AuthError::InvalidConfig {
            reason: "audience must not be empty",
        });
    }
    Ok(())
}

/// Non-empty, not longer than `max_chars`, no control characters.
pub(crate) fn check_text(
    name: &'static str,
    value: &str,
    max_chars: usize,
) -> Result<(), AuthError> {
    if value.is_empty() {
        return Err(AuthError::InvalidClaim {
            name,
            reason: "must not be empty",
        });
    }
    if value.chars().count() > max_chars {
        return Err(AuthError::InvalidClaim {
            name,
            reason: "too long",
        });
    }
    if value.chars().any(char::is_control) {
        return Err(AuthError::InvalidClaim {
            name,
            reason: "contains control characters",
        });
    }
    Ok(())
}

fn check_roles(roles: &[Role]) -> Result<(), AuthError> {
    if roles.is_empty() {
        return Err(AuthError::InvalidClaim {
            name: "roles",
            reason: "must not be empty",
        });
    }
    if roles.len() > MAX_ROLES {
        return Err(AuthError::InvalidClaim {
            name: "roles",
            reason: "too many roles",
        });
    }
    for (index, role) in roles.iter().enumerate() {
        if roles[..index].contains(role) {
            return Err(AuthError::InvalidClaim {
                name: "roles",
                reason: "duplicate role",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn role_wire_names_match_serde_and_parse_round_trips() {
        for role in Role::ALL {
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(Role::parse(role.as_str()), Some(role));
            let back: Role = serde_json::from_str(&json).unwrap();
            assert_eq!(back, role);
        }
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::parse("superuser"), None);
        assert_eq!(Role::parse(""), None);
    }

    #[test]
    fn identity_checks_refuse_each_bad_field() {
        let ok = check_identity("u1", "org", None, &[Role::Caseworker], None, None);
        assert_eq!(ok, Ok(()));
        let long_sub = "a".repeat(MAX_SUBJECT_CHARS + 1);
        let cases = [
            (
                check_identity("", "org", None, &[Role::Admin], None, None),
                "sub",
            ),
            (
                check_identity(&long_sub, "org", None, &[Role::Admin], None, None),
                "sub",
            ),
            (
                check_identity("u", "", None, &[Role::Admin], None, None),
                "org",
            ),
            (
                check_identity("u", "org", Some(""), &[Role::Admin], None, None),
                "unit",
            ),
            (check_identity("u", "org", None, &[], None, None), "roles"),
            (
                check_identity("u", "org", None, &[Role::Admin, Role::Admin], None, None),
                "roles",
            ),
            (
                check_identity("u", "org", None, &[Role::Admin], Some("a\nb"), None),
                "region",
            ),
        ];
        for (result, expected) in cases {
            match result {
                Err(AuthError::InvalidClaim { name, .. }) => assert_eq!(name, expected),
                other => panic!("expected invalid {expected}, got {other:?}"),
            }
        }
        let exactly_max = "a".repeat(MAX_SUBJECT_CHARS);
        assert_eq!(
            check_identity(&exactly_max, "org", None, &[Role::Admin], None, None),
            Ok(())
        );
    }

    #[test]
    fn more_than_max_roles_is_refused() {
        // Only five distinct roles exist, so the limit is checked before duplicates.
        let roles = vec![Role::Caseworker; MAX_ROLES + 1];
        assert_eq!(
            check_roles(&roles),
            Err(AuthError::InvalidClaim {
                name: "roles",
                reason: "too many roles"
            })
        );
    }
}
