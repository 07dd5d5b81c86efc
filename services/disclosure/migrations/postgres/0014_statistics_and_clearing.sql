-- What statistics and clearing need of a disclosure in the clear, filled from its sealed
-- content by the service (at start for rows written before, and before every statistics
-- query or clearing run for rows changed since): the crime category and the recipient
-- authority (no personal data), the Swedish month it was created (YYYY-MM, Europe/Stockholm),
-- and the keyed references (pseudonyms, never the numbers) of its subject and victim, by which
-- clearing finds whether a person still has an uncleared disclosure. clear_version is the
-- version they were filled at: a row whose version moved on is filled again.
ALTER TABLE disclosures ADD COLUMN stat_crime_id TEXT NOT NULL DEFAULT '';
ALTER TABLE disclosures ADD COLUMN stat_recipient TEXT NOT NULL DEFAULT '';
ALTER TABLE disclosures ADD COLUMN stat_month TEXT NOT NULL DEFAULT '';
ALTER TABLE disclosures ADD COLUMN subject_ref TEXT NOT NULL DEFAULT '';
ALTER TABLE disclosures ADD COLUMN victim_ref TEXT NOT NULL DEFAULT '';
ALTER TABLE disclosures ADD COLUMN clear_version BIGINT NOT NULL DEFAULT 0;
-- When the disclosure's personal data was cleared (0: not cleared), and under which clearing
-- decision (its id; '' while not cleared).
ALTER TABLE disclosures ADD COLUMN cleared_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE disclosures ADD COLUMN cleared_by_decision TEXT NOT NULL DEFAULT '';

-- The rows whose clear columns are behind their version.
CREATE INDEX disclosures_clear_columns_behind ON disclosures (id) WHERE clear_version <> version;
-- Whether a person still has an uncleared disclosure.
CREATE INDEX disclosures_by_subject_ref ON disclosures (subject_ref) WHERE cleared_at = 0;
CREATE INDEX disclosures_by_victim_ref ON disclosures (victim_ref) WHERE cleared_at = 0;
