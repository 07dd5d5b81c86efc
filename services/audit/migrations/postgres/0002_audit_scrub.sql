-- The integrity scrub (see the service's `scrub` module): where it stands, and the entries it
-- found changed. The service's role may insert quarantine marks but not remove them: an
-- operator who has investigated an entry does. The progress row is the one row it updates.
CREATE TABLE audit_scrub_progress (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_index BIGINT NOT NULL,
    pass_end BIGINT NOT NULL,
    passes BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE audit_quarantine (
    idx BIGINT PRIMARY KEY,
    found_at BIGINT NOT NULL,
    finding TEXT NOT NULL
);

REVOKE ALL ON audit_scrub_progress, audit_quarantine FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON audit_scrub_progress TO tryggdel_audit_writer;
GRANT SELECT, INSERT ON audit_quarantine TO tryggdel_audit_writer;
