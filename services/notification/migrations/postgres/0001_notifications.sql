-- Deliveries to the police, receipts, escalations, follow-up questions and the outbox.
-- Personal data lives only in the *_sealed columns (XChaCha20-Poly1305, bound to the row and
-- field); the clear columns are what routing, queries, authorisation and timers need.

-- One counter per police region. Deliver increments its region's row in the same transaction
-- that inserts the delivery, so sequences are gap-free per region and (because the row stays
-- locked until commit on PostgreSQL, and SQLite has one writer) become visible in order.
CREATE TABLE region_sequences (
    police_region TEXT PRIMARY KEY,
    last_sequence BIGINT NOT NULL
);

CREATE TABLE deliveries (
    disclosure_id TEXT PRIMARY KEY,
    police_region TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    organisation TEXT NOT NULL,
    urgent BIGINT NOT NULL,
    payload_sealed TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    approved_at BIGINT NOT NULL,
    legal_basis_id TEXT NOT NULL,
    registry_version TEXT NOT NULL,
    delivered_by TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    delivered_at BIGINT NOT NULL,
    deadline BIGINT NOT NULL,
    overdue BIGINT NOT NULL,
    escalations BIGINT NOT NULL,
    -- When the next escalation is due; NULL once acknowledged (the timer lives here, not in
    -- memory, so it survives restarts).
    next_escalation_at BIGINT,
    -- The receipt: all NULL until acknowledged, then all set (the statement and signature
    -- exactly as signed).
    acknowledged_at BIGINT,
    acknowledged_by TEXT,
    police_reference TEXT,
    receipt_statement BYTEA,
    receipt_signature BYTEA,
    receipt_key_id TEXT,
    UNIQUE (police_region, sequence)
);

CREATE INDEX deliveries_pending ON deliveries (police_region, sequence)
    WHERE acknowledged_at IS NULL;
CREATE INDEX deliveries_escalation_due ON deliveries (next_escalation_at)
    WHERE next_escalation_at IS NOT NULL;
CREATE INDEX deliveries_by_organisation ON deliveries (organisation, delivered_at);

CREATE TABLE escalations (
    id TEXT PRIMARY KEY,
    disclosure_id TEXT NOT NULL,
    organisation TEXT NOT NULL,
    police_region TEXT NOT NULL,
    urgent BIGINT NOT NULL,
    deadline BIGINT NOT NULL,
    raised_at BIGINT NOT NULL,
    escalation_round BIGINT NOT NULL,
    UNIQUE (disclosure_id, escalation_round)
);

CREATE INDEX escalations_by_organisation ON escalations (organisation, raised_at);

CREATE TABLE follow_ups (
    id TEXT PRIMARY KEY,
    disclosure_id TEXT NOT NULL,
    organisation TEXT NOT NULL,
    police_region TEXT NOT NULL,
    asked_by TEXT NOT NULL,
    question_sealed TEXT NOT NULL,
    asked_at BIGINT NOT NULL
);

CREATE INDEX follow_ups_by_disclosure ON follow_ups (disclosure_id, asked_at);

-- Every change writes one row here in the same transaction. The relay to the audit log reads
-- rows with audit_relayed_at NULL in seq order and sets it once the log holds them durably.
-- disclosure_relayed_at is for the hop of acknowledgements back to the disclosure service
-- (RecordReceipt): the payload of a notification.acknowledged event carries the receipt.
CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    disclosure_id TEXT NOT NULL,
    organisation TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    audit_relayed_at BIGINT,
    disclosure_relayed_at BIGINT
);

CREATE INDEX outbox_awaiting_audit ON outbox (seq) WHERE audit_relayed_at IS NULL;
CREATE INDEX outbox_awaiting_disclosure ON outbox (seq)
    WHERE disclosure_relayed_at IS NULL AND event_type = 'notification.acknowledged';
