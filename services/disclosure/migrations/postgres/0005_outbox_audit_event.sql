-- Each outbox event carries the audit event ready to send (an encoded AuditEvent) and the
-- W3C traceparent the relays continue. Rows written before are filled in at start.
ALTER TABLE outbox ADD COLUMN audit_event BYTEA;
ALTER TABLE outbox ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
