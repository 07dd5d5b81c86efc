-- When the author of a draft or submitted disclosure was last warned that it will expire
-- untouched (0: never). A warning counts only if it is not older than the last change
-- (updated_at), so any change needs a new warning before the disclosure can expire.
ALTER TABLE disclosures ADD COLUMN expiry_warned_at BIGINT NOT NULL DEFAULT 0;

-- The expiry check: drafts and submitted disclosures by how long they have been untouched.
CREATE INDEX disclosures_untouched ON disclosures (state, updated_at);
