-- Disclosures and their outbox. Personal data lives only in the *_sealed columns
-- (XChaCha20-Poly1305, bound to the row id and field); the clear columns are what queries,
-- authorisation and the lifecycle need.
CREATE TABLE disclosures (
    id TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    police_region TEXT NOT NULL,
    state TEXT NOT NULL,
    version BIGINT NOT NULL,
    urgent BIGINT NOT NULL,
    legal_basis_id TEXT NOT NULL,
    drafted_by TEXT NOT NULL,
    client_request_id TEXT NOT NULL,
    request_fingerprint TEXT NOT NULL,
    content_sealed TEXT NOT NULL,
    protected_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    submitted_by TEXT NOT NULL,
    submitted_at BIGINT NOT NULL,
    decision_outcome TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    decided_at BIGINT NOT NULL,
    decision_reason TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    payload_sealed TEXT NOT NULL,
    registry_version TEXT NOT NULL,
    catalogue_version TEXT NOT NULL,
    assessment BYTEA,
    UNIQUE (organisation, drafted_by, client_request_id)
);

CREATE INDEX disclosures_by_organisation_and_time
    ON disclosures (organisation, created_at, id);

-- Every state change writes one row here in the same transaction; the relay to the audit log
-- and to the police delivery reads it in seq order.
CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    disclosure_id TEXT NOT NULL,
    organisation TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
