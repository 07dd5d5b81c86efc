-- The integrity scrub (see the service's `scrub` module): where it stands, and the entries it
-- found changed. The service inserts quarantine marks and never removes one: an operator who
-- has investigated an entry does. The progress row is the one row the service updates.
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
