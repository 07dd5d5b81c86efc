-- When each recall (a disclosure.recalled event: withdrawn after delivery) reached the
-- notification service (NULL: not yet). The recall relay reads the NULL ones in seq order and
-- sets this once the notification service has recorded the recall.
ALTER TABLE outbox ADD COLUMN recall_relayed_at BIGINT;
CREATE INDEX outbox_awaiting_recall ON outbox (seq)
    WHERE recall_relayed_at IS NULL AND event_type = 'disclosure.recalled';
