-- Hand-over to the police. The delivery relay reads approvals not yet handed over (in seq
-- order) and sets delivery_relayed_at once the notification service has taken the disclosure
-- (or has refused it for good, which is recorded as an event).
ALTER TABLE outbox ADD COLUMN delivery_relayed_at BIGINT;
CREATE INDEX outbox_awaiting_delivery ON outbox (seq)
    WHERE delivery_relayed_at IS NULL AND event_type = 'disclosure.approved';

-- One row per delivered disclosure; the receipt columns are filled once the police
-- acknowledge (the statement and signature exactly as the notification service signed them).
CREATE TABLE deliveries (
    disclosure_id TEXT PRIMARY KEY,
    police_region TEXT NOT NULL,
    delivered_at BIGINT NOT NULL,
    police_reference TEXT NOT NULL,
    acknowledged_by TEXT NOT NULL,
    acknowledged_at BIGINT NOT NULL,
    receipt_statement BLOB,
    receipt_signature BLOB,
    receipt_key_id TEXT NOT NULL
);
