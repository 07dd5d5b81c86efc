-- A delivered disclosure its organisation withdrew: the recall (who withdrew it, when, and the
-- reason sealed like the payload), and the police's acknowledgement of it. All NULL until the
-- disclosure service recalls the delivery; the acknowledgement columns until an officer
-- acknowledges the recall.
ALTER TABLE deliveries ADD COLUMN recalled_at BIGINT;
ALTER TABLE deliveries ADD COLUMN recall_withdrawn_by TEXT;
ALTER TABLE deliveries ADD COLUMN recall_withdrawn_at BIGINT;
ALTER TABLE deliveries ADD COLUMN recall_reason_sealed TEXT;
ALTER TABLE deliveries ADD COLUMN recall_acknowledged_at BIGINT;
ALTER TABLE deliveries ADD COLUMN recall_acknowledged_by TEXT;
-- ListPending and a subscription's replay read a region's unacknowledged recalls.
CREATE INDEX deliveries_recall_pending ON deliveries (police_region, sequence)
    WHERE recalled_at IS NOT NULL AND recall_acknowledged_at IS NULL;
