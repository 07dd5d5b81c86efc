-- Systematic log review (the service's `review` module): an organisation's written criteria
-- for unauthorised access (versioned, never changed once written), review runs with the seed,
-- rules and criteria version they used, and their findings with the reviewer's outcome.
CREATE TABLE review_criteria (
    organisation TEXT NOT NULL,
    version BIGINT NOT NULL,
    text TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at BIGINT NOT NULL,
    PRIMARY KEY (organisation, version)
);

CREATE TABLE review_runs (
    run_id TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    period_from TEXT NOT NULL,
    period_until TEXT NOT NULL,
    from_ms BIGINT NOT NULL,
    until_ms BIGINT NOT NULL,
    seed TEXT NOT NULL,
    sample_size BIGINT NOT NULL,
    sample_algorithm TEXT NOT NULL,
    criteria_version BIGINT NOT NULL,
    rules TEXT NOT NULL,
    rule_counts TEXT NOT NULL,
    started_by TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    access_entries BIGINT NOT NULL
);

CREATE INDEX review_runs_by_organisation ON review_runs (organisation, started_at);

CREATE TABLE review_findings (
    run_id TEXT NOT NULL REFERENCES review_runs (run_id),
    number BIGINT NOT NULL,
    rule TEXT NOT NULL,
    entry_index BIGINT NOT NULL,
    actor_user_id TEXT NOT NULL,
    disclosure_id TEXT NOT NULL,
    action TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    explanation TEXT NOT NULL,
    explanation_sv TEXT NOT NULL,
    outcome TEXT NOT NULL,
    note TEXT NOT NULL,
    outcome_by TEXT NOT NULL,
    outcome_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, number)
);

-- What the review's set-based rules look entries up by: an organisation's entries of a period,
-- and the persons of an entry.
CREATE INDEX audit_entries_by_organisation_time ON audit_entries (organisation, occurred_at);
CREATE INDEX audit_entry_persons_by_entry ON audit_entry_persons (idx, person_ref);
