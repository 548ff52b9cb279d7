-- The broker this service last published to, by cluster id. A memory-only broker that
-- restarted comes back empty with a new id: the service then republishes its retained
-- outbox (shared/runtime/watch.py).
CREATE TABLE broker_epoch (
    id           smallint PRIMARY KEY CHECK (id = 1),
    cluster_id   text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
