//! Which entries the review reads, classified once, when the sequencer writes them: an access
//! to personal data (a read, a list page, a reveal of protected details, a compliance read of
//! the log) or an entry carrying the protected-identity mark gets a narrow row in
//! `audit_accesses`, and each person of an access a row in `audit_access_persons` (migration
//! 0006, which classifies the entries written before it the same way). The review's rules read
//! those rows by organisation and period instead of the entries' bytes.

use crate::entry::EntryBody;

/// What kind of access an entry is; the number is the stored `access` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    /// Not an access: a change that carries the protected-identity mark.
    None = 0,
    /// A read or a list page of personal data.
    Read = 1,
    /// A reveal of protected details.
    ProtectedRevealed = 2,
    /// A compliance officer's read of the log.
    ComplianceRead = 3,
}

impl AccessKind {
    /// The stored `access` column.
    pub fn code(self) -> i16 {
        self as i16
    }
}

/// The actions of the audit service that record its own work on the log, not a read of it.
const AUDIT_WRITES: [&str; 3] = [
    "audit.review_criteria_set",
    "audit.review_outcome",
    "audit.cleared",
];

/// The detail the disclosure service puts in every event of a disclosure with protected details.
pub const PROTECTED_IDENTITY_DETAIL: &str = "protected_identity";

/// A compliance officer's role, as an actor's roles name it.
pub const COMPLIANCE_OFFICER_ROLE: &str = "compliance_officer";

/// The kind of access `action` is.
pub fn kind_of(action: &str) -> AccessKind {
    if action.starts_with("audit.") {
        if AUDIT_WRITES.contains(&action) {
            AccessKind::None
        } else {
            AccessKind::ComplianceRead
        }
    } else if action.ends_with(".protected_revealed") {
        AccessKind::ProtectedRevealed
    } else if action.ends_with(".read") || action.ends_with(".listed") {
        AccessKind::Read
    } else {
        AccessKind::None
    }
}

/// An entry's row in `audit_accesses`, without the columns the entry's own row has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessRow {
    pub kind: AccessKind,
    pub protected_identity: bool,
    pub compliance_actor: bool,
}

impl AccessRow {
    /// The row of `body`, if the review reads it: an access, or an entry with the mark.
    pub fn of(body: &EntryBody) -> Option<AccessRow> {
        let kind = kind_of(&body.action);
        let protected_identity = body
            .details
            .get(PROTECTED_IDENTITY_DETAIL)
            .is_some_and(|value| value == "true");
        if kind == AccessKind::None && !protected_identity {
            return None;
        }
        Some(AccessRow {
            kind,
            protected_identity,
            compliance_actor: body
                .actor
                .roles
                .iter()
                .any(|role| role == COMPLIANCE_OFFICER_ROLE),
        })
    }

    /// Whether the entry's persons get rows in `audit_access_persons`.
    pub fn is_access(&self) -> bool {
        self.kind != AccessKind::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_classified_as_the_migration_classifies_them() {
        assert_eq!(kind_of("disclosure.read"), AccessKind::Read);
        assert_eq!(kind_of("disclosure.listed"), AccessKind::Read);
        assert_eq!(kind_of("notification.read"), AccessKind::Read);
        assert_eq!(kind_of("information_request.listed"), AccessKind::Read);
        assert_eq!(
            kind_of("disclosure.protected_revealed"),
            AccessKind::ProtectedRevealed
        );
        assert_eq!(kind_of("audit.query"), AccessKind::ComplianceRead);
        assert_eq!(kind_of("audit.review_run"), AccessKind::ComplianceRead);
        assert_eq!(kind_of("audit.review_outcome"), AccessKind::None);
        assert_eq!(kind_of("audit.cleared"), AccessKind::None);
        assert_eq!(kind_of("disclosure.approved"), AccessKind::None);
        assert_eq!(kind_of("disclosure.readiness"), AccessKind::None);
    }
}
