-- The audit log. Entries, the person index and checkpoints are append-only: triggers make the
-- database itself refuse UPDATE, DELETE and TRUNCATE, and the grants give the service role
-- (tryggdel_audit_writer) SELECT and INSERT only. `entry` holds the exact bytes the leaf hash
-- covers; the other columns of audit_entries are copies of fields inside it, for queries.
CREATE TABLE audit_entries (
    idx BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    entry BYTEA NOT NULL,
    leaf_hash BYTEA NOT NULL,
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
    root_hash BYTEA NOT NULL,
    note TEXT NOT NULL,
    signed_at BIGINT NOT NULL
);

CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_entry_persons_append_only BEFORE UPDATE OR DELETE ON audit_entry_persons
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_entry_persons_no_truncate BEFORE TRUNCATE ON audit_entry_persons
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- Grants: nobody but the owner may change rows; the service's role may read and insert.
REVOKE ALL ON audit_entries, audit_entry_persons, audit_checkpoints FROM PUBLIC;
DO $$
BEGIN
    CREATE ROLE tryggdel_audit_writer NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO tryggdel_audit_writer', current_schema());
END
$$;
GRANT SELECT, INSERT ON audit_entries, audit_entry_persons, audit_checkpoints
    TO tryggdel_audit_writer;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_entries, audit_entry_persons, audit_checkpoints
    FROM tryggdel_audit_writer;
