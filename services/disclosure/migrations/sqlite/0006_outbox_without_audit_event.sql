-- Start-up looks for outbox events written before they carried their audit event: an index of
-- just those keeps that look cheap however long the outbox grows.
CREATE INDEX outbox_without_audit_event ON outbox (seq) WHERE audit_event IS NULL;
