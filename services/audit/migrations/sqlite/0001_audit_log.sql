-- The audit log. Entries, the person index and checkpoints are append-only: the triggers below
-- make the database itself refuse UPDATE and DELETE, so not even the service can change what
-- it wrote. `entry` holds the exact bytes the leaf hash covers; the other columns of
-- audit_entries are copies of fields inside it, for queries.
CREATE TABLE audit_entries (
    idx BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    entry BLOB NOT NULL,
    leaf_hash BLOB NOT NULL,
    recorded_at BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL,
    organisation TEXT NOT NULL,
    actor_organisation TEXT NOT NULL,
    actor_user_id TEXT NOT NULL,
    action TEXT NOT NULL,
    legal_basis_id TEXT NOT NULL,
    disclosure_id TEXT NOT NULL
);

CREATE INDEX audit_entries_by_occurrence ON audit_entries (occurred_at, idx);
CREATE INDEX audit_entries_by_disclosure ON audit_entries (disclosure_id, idx);
CREATE INDEX audit_entries_by_actor ON audit_entries (actor_user_id, idx);
CREATE INDEX audit_entries_by_organisation ON audit_entries (organisation, idx);
CREATE INDEX audit_entries_by_actor_organisation ON audit_entries (actor_organisation, idx);

-- Keyed hashes (HMAC) of the identity numbers an entry concerns; never the numbers.
CREATE TABLE audit_entry_persons (
    person_ref TEXT NOT NULL,
    idx BIGINT NOT NULL,
    PRIMARY KEY (person_ref, idx)
);

-- Every signed checkpoint, so that consistency with any earlier one can be proved.
CREATE TABLE audit_checkpoints (
    tree_size BIGINT PRIMARY KEY,
    root_hash BLOB NOT NULL,
    note TEXT NOT NULL,
    signed_at BIGINT NOT NULL
);

CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only: UPDATE refused'); END;
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only: DELETE refused'); END;
CREATE TRIGGER audit_entry_persons_no_update BEFORE UPDATE ON audit_entry_persons
BEGIN SELECT RAISE(ABORT, 'audit_entry_persons is append-only: UPDATE refused'); END;
CREATE TRIGGER audit_entry_persons_no_delete BEFORE DELETE ON audit_entry_persons
BEGIN SELECT RAISE(ABORT, 'audit_entry_persons is append-only: DELETE refused'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused'); END;
