-- A disclosure's own events, oldest first: what the delivery relay reads to continue the
-- approval's trace, and the disclosure's history. Without it every read scans the outbox.
CREATE INDEX outbox_by_disclosure ON outbox (disclosure_id, seq);
