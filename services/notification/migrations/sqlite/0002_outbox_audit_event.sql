-- Each outbox event carries the audit event ready to send and the trace it continues.
ALTER TABLE outbox ADD COLUMN audit_event BLOB;
ALTER TABLE outbox ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
