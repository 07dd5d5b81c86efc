-- Who may decide under which legal bases in an organisation, and when: granted and revoked by
-- an administrator, never deleted (a revocation sets valid_to), so a past decision can still
-- name the delegation it relied on. Dates are Swedish calendar dates, YYYY-MM-DD, both
-- inclusive; valid_to is '' while the delegation has no end. legal_bases is comma-separated.
CREATE TABLE delegations (
    id TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    user_id TEXT NOT NULL,
    legal_bases TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    revoked_by TEXT NOT NULL,
    revoked_at BIGINT NOT NULL
);

CREATE INDEX delegations_by_organisation_and_user ON delegations (organisation, user_id);

-- The delegation an approval or rejection relied on ('' for decisions made before delegations
-- were stored, and for a withdrawal by the drafter).
ALTER TABLE disclosures ADD COLUMN decision_delegation_id TEXT NOT NULL DEFAULT '';
