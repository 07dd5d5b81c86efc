-- The log review's "no relation to the case" rule looks up, for each access of a case, whether
-- the accessing user drafted, submitted or decided it: from this index alone, without reading
-- the entries.
CREATE INDEX audit_entries_by_relation ON audit_entries (disclosure_id, actor_user_id, action);
