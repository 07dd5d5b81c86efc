-- Holds on disclosures: while a hold holds, the disclosure and every log entry about it are
-- kept out of subject reports and out of clearing. A hold holds on a day when it is not ended
-- and the day is not after `until_date` (the last day it holds, a Swedish calendar date
-- YYYY-MM-DD, inclusive); it ends on that date by itself. Holds are never deleted: an extension
-- moves until_date later, an end sets ended_at. `version` counts the changes, for updates under
-- the version read. (issuer_organisation, placed_by, client_request_id) makes a retried
-- placement return the same hold.
CREATE TABLE disclosure_holds (
    id TEXT PRIMARY KEY,
    disclosure_id TEXT NOT NULL,
    issuer_organisation TEXT NOT NULL,
    placed_by TEXT NOT NULL,
    client_request_id TEXT NOT NULL,
    legal_ground TEXT NOT NULL,
    until_date TEXT NOT NULL,
    placed_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    ended_by TEXT NOT NULL,
    ended_at BIGINT NOT NULL
);

CREATE UNIQUE INDEX disclosure_holds_by_client_request
    ON disclosure_holds (issuer_organisation, placed_by, client_request_id);
CREATE INDEX disclosure_holds_by_disclosure ON disclosure_holds (disclosure_id);
