-- Carrier webhooks are signed as Standard Webhooks (webhook-id, webhook-timestamp,
-- webhook-signature). A receipt now also records the message's webhook-id (a replay of
-- the same message queues nothing) and the timestamp it was signed with, and is purged
-- once that timestamp is past the tolerance window: a replay that old is refused by its
-- timestamp anyway. Scans already recorded stay deduplicated by tracking_scans.

-- Receipts of the old scheme have no webhook-id and guard nothing that tracking_scans
-- does not (the webhook also looks there before it queues a scan).
DELETE FROM webhook_receipts;

ALTER TABLE webhook_receipts
    ADD COLUMN webhook_id text NOT NULL,
    ADD COLUMN signed_at  timestamptz NOT NULL,
    ADD CONSTRAINT webhook_receipts_one_per_message UNIQUE (carrier, webhook_id);

CREATE INDEX webhook_receipts_signed_at ON webhook_receipts (signed_at);
