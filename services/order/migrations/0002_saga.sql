-- The confirmation saga's verdicts per order (see services/order/domain/saga.py).
ALTER TABLE orders
    ADD COLUMN payment             text NOT NULL DEFAULT 'pending',
    ADD COLUMN stock               text NOT NULL DEFAULT 'pending',
    ADD COLUMN risk                text NOT NULL DEFAULT 'pending',
    ADD COLUMN authorization_id    text,
    ADD COLUMN reservation_id      text,
    ADD COLUMN backordered_skus    text[] NOT NULL DEFAULT '{}',
    ADD COLUMN expected_ship_date  date;

-- Requests the order's state did not allow (cancel after picking, review of an order
-- not in review …): kept for support, with the reason given.
CREATE TABLE refused_requests (
    event_id    text PRIMARY KEY,
    order_id    text NOT NULL,
    type        text NOT NULL,
    code        text NOT NULL,
    message     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
