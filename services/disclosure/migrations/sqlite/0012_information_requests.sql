-- Requests for information from law-enforcement authorities (begäran om uppgifter), addressed
-- to an organisation. What may be personal data (the person asked about, what is sought, why,
-- the refusal's reason and weighing) lives only in the *_sealed columns, bound to the row id
-- and field; the clear columns are what routing, queues, deadlines and authorisation need.
-- state: open, answered or refused. Times are Unix milliseconds; 0 when not (yet) set.
CREATE TABLE information_requests (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    state TEXT NOT NULL,
    organisation TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requester_organisation TEXT NOT NULL,
    requester_authority TEXT NOT NULL,
    requester_inbox TEXT NOT NULL,
    client_request_id TEXT NOT NULL,
    request_fingerprint TEXT NOT NULL,
    subject_ref TEXT NOT NULL,
    content_sealed TEXT NOT NULL,
    urgent BIGINT NOT NULL,
    reply_by BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    answered_by_disclosure_id TEXT NOT NULL,
    answered_at BIGINT NOT NULL,
    refused_by TEXT NOT NULL,
    refused_at BIGINT NOT NULL,
    refusal_sealed TEXT NOT NULL,
    escalations BIGINT NOT NULL,
    last_escalated_at BIGINT NOT NULL,
    next_escalation_at BIGINT NOT NULL,
    UNIQUE (requester_organisation, requested_by, client_request_id)
);

-- An organisation's queue: urgent first, then the nearest deadline.
CREATE INDEX information_requests_queue
    ON information_requests (organisation, urgent DESC, reply_by, id);

-- What an authority (an inbox) asked, in the same order.
CREATE INDEX information_requests_by_requester
    ON information_requests (requester_organisation, requester_inbox, urgent DESC, reply_by, id);

-- Deadline escalation: open requests by when they are next due.
CREATE INDEX information_requests_due
    ON information_requests (state, next_escalation_at);
