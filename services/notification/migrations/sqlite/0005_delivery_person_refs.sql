-- The persons a delivered disclosure concerns, as keyed references (comma-separated
-- `hmac-sha256:<hex>`, never an identity number; '' for deliveries stored before they were
-- kept), so that every officer's read of a delivery is logged with them.
ALTER TABLE deliveries ADD COLUMN person_refs TEXT NOT NULL DEFAULT '';
