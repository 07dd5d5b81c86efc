-- When each outbox event reached the audit log (NULL: not yet). The relay reads the NULL ones
-- in seq order and sets this only after the audit service has made them durable.
ALTER TABLE outbox ADD COLUMN audit_relayed_at BIGINT;
CREATE INDEX outbox_awaiting_audit ON outbox (seq) WHERE audit_relayed_at IS NULL;
