-- The decision queue: an organisation's submitted disclosures, urgent first, then the longest
-- waiting first, read a page at a time.
CREATE INDEX disclosures_decision_queue
    ON disclosures (organisation, state, urgent DESC, submitted_at, id);
