-- The personal store of entry format 2 (see the service's `entry` and `store::personal`
-- modules): an entry's leaf commits to its personal data (person references, outcome detail,
-- free-text details) with salted hashes, and the data itself, split into openings, is kept
-- here encrypted under a key per person, per disclosure or per entry. Clearing destroys keys;
-- an opening, and a person's index rows, may be deleted only once the key they belong to is
-- gone. Nothing is ever updated. Entries and checkpoints stay append-only.
CREATE TABLE audit_personal_keys (
    key_id TEXT PRIMARY KEY,
    scope TEXT NOT NULL CHECK (scope IN ('person', 'disclosure', 'entry')),
    scope_ref TEXT NOT NULL,
    key_material TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (scope, scope_ref)
);

CREATE TABLE audit_personal_openings (
    idx BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    sealed TEXT NOT NULL,
    PRIMARY KEY (idx, key_id)
);

CREATE INDEX audit_personal_openings_by_key ON audit_personal_openings (key_id);

CREATE TRIGGER audit_personal_keys_no_update BEFORE UPDATE ON audit_personal_keys
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_personal_openings_no_update BEFORE UPDATE ON audit_personal_openings
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();

CREATE FUNCTION audit_refuse_delete_while_keyed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'audit_personal_openings' THEN
        IF EXISTS (SELECT 1 FROM audit_personal_keys WHERE key_id = OLD.key_id) THEN
            RAISE EXCEPTION 'audit_personal_openings is append-only: DELETE refused while its key exists'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    ELSIF EXISTS (
        SELECT 1 FROM audit_personal_keys WHERE scope = 'person' AND scope_ref = OLD.person_ref
    ) THEN
        RAISE EXCEPTION 'audit_entry_persons is append-only: DELETE refused while the person''s key exists'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END
$$;

CREATE TRIGGER audit_personal_openings_delete_after_key BEFORE DELETE ON audit_personal_openings
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_delete_while_keyed();

-- A person's index rows may go once their key is gone (clearing), never before; UPDATE and
-- TRUNCATE stay refused.
DROP TRIGGER audit_entry_persons_append_only ON audit_entry_persons;
CREATE TRIGGER audit_entry_persons_no_update BEFORE UPDATE ON audit_entry_persons
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_entry_persons_delete_after_key BEFORE DELETE ON audit_entry_persons
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_delete_while_keyed();

REVOKE ALL ON audit_personal_keys, audit_personal_openings FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON audit_personal_keys, audit_personal_openings
    TO tryggdel_audit_writer;
GRANT DELETE ON audit_entry_persons TO tryggdel_audit_writer;
