-- Inbox: one row per consumed event id; the primary key makes redelivery a no-op.
CREATE TABLE inbox (
    event_id     text PRIMARY KEY,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    event_type   text,
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- Outbox: events written in the same transaction as the state change; the relay
-- publishes them in id order and keeps sent rows for a retention period (durable log).
CREATE TABLE outbox (
    id             bigserial PRIMARY KEY,
    event_id       text NOT NULL UNIQUE,
    topic          text NOT NULL,
    key            bytea,
    header_names   text[] NOT NULL,
    header_values  bytea[] NOT NULL,
    payload        bytea NOT NULL,
    event_type     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;
