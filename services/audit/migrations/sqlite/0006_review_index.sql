-- What the log review reads (the service's `review::rules`), narrow and by period: a row per
-- entry that is an access to personal data or carries the protected-identity mark, and a row
-- per person of each access. The sequencer writes them with their entries, in the same
-- transaction; they are copies of fields of the entries, so the entries stay the evidence.
-- `prev_at` is when the same user last accessed the same person in the organisation, at or
-- before this access, as far as the log held it when this access was written (NULL: never);
-- an access is a user's first of a person within a window when `prev_at` is before the
-- window's start, so "many persons in a short time" counts rows instead of distinct persons.
-- `access`: 0 none (a marked change), 1 a read or list page, 2 a reveal of protected details,
-- 3 a compliance read of the log. A person's rows go when the person is cleared, as their
-- person index rows do; nothing is ever updated.
CREATE TABLE audit_accesses (
    idx BIGINT PRIMARY KEY,
    organisation TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    actor_user_id TEXT NOT NULL,
    disclosure_id TEXT NOT NULL,
    action TEXT NOT NULL,
    access SMALLINT NOT NULL,
    protected_identity SMALLINT NOT NULL,
    compliance_actor SMALLINT NOT NULL
);

CREATE INDEX audit_accesses_by_period ON audit_accesses (organisation, occurred_at);

CREATE TABLE audit_access_persons (
    organisation TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    actor_user_id TEXT NOT NULL,
    person_ref TEXT NOT NULL,
    idx BIGINT NOT NULL,
    prev_at BIGINT
);

CREATE INDEX audit_access_persons_by_period ON audit_access_persons (organisation, occurred_at);
CREATE INDEX audit_access_persons_by_person ON audit_access_persons
    (person_ref, actor_user_id, organisation, occurred_at);

-- The entries already written, classified as the sequencer classifies new ones.
INSERT INTO audit_accesses (idx, organisation, occurred_at, actor_user_id, disclosure_id,
    action, access, protected_identity, compliance_actor)
SELECT idx, organisation, occurred_at, actor_user_id, disclosure_id, action, access,
    protected_identity, compliance_actor
FROM (
    SELECT idx, organisation, occurred_at, actor_user_id, disclosure_id, action,
        CASE
            WHEN action LIKE 'audit.%' THEN
                CASE WHEN action IN ('audit.review_criteria_set', 'audit.review_outcome',
                    'audit.cleared') THEN 0 ELSE 3 END
            WHEN action LIKE '%.protected_revealed' THEN 2
            WHEN action LIKE '%.read' OR action LIKE '%.listed' THEN 1
            ELSE 0
        END AS access,
        (instr(entry, CAST('"protected_identity":"true"' AS BLOB)) > 0) AS protected_identity,
        (instr(entry, CAST('"compliance_officer"' AS BLOB)) > 0) AS compliance_actor
    FROM audit_entries
)
WHERE access > 0 OR protected_identity = 1;

INSERT INTO audit_access_persons (organisation, occurred_at, actor_user_id, person_ref, idx,
    prev_at)
SELECT a.organisation, a.occurred_at, a.actor_user_id, p.person_ref, a.idx,
    LAG(a.occurred_at) OVER (PARTITION BY a.organisation, a.actor_user_id, p.person_ref
        ORDER BY a.occurred_at, a.idx)
FROM audit_accesses a JOIN audit_entry_persons p ON p.idx = a.idx
WHERE a.access > 0;

CREATE TRIGGER audit_accesses_no_update BEFORE UPDATE ON audit_accesses
BEGIN SELECT RAISE(ABORT, 'audit_accesses is append-only: UPDATE refused'); END;
CREATE TRIGGER audit_accesses_no_delete BEFORE DELETE ON audit_accesses
BEGIN SELECT RAISE(ABORT, 'audit_accesses is append-only: DELETE refused'); END;
CREATE TRIGGER audit_access_persons_no_update BEFORE UPDATE ON audit_access_persons
BEGIN SELECT RAISE(ABORT, 'audit_access_persons: UPDATE refused'); END;
CREATE TRIGGER audit_access_persons_delete_after_key BEFORE DELETE ON audit_access_persons
WHEN EXISTS (
    SELECT 1 FROM audit_personal_keys WHERE scope = 'person' AND scope_ref = OLD.person_ref
)
BEGIN SELECT RAISE(ABORT, 'audit_access_persons: DELETE refused while the person''s key exists'); END;
