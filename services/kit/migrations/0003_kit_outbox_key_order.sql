-- Relays of several replicas share one outbox: a row is claimed only when no earlier unpublished
-- row of its key is left outside the claim (see outbox/relay.rs), so a key's messages reach the
-- broker in the order they were written. This index answers that question per claimed row.
CREATE INDEX IF NOT EXISTS outbox_unpublished_by_key
    ON outbox (topic, message_key, id) WHERE published_at IS NULL;
