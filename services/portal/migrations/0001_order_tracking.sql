-- Order-tracking projection: one row per order plus its timeline. `version` is the
-- order's version of the last applied event; older or repeated events are ignored.
CREATE TABLE orders (
    order_id              text PRIMARY KEY,
    version               integer NOT NULL,
    status                text NOT NULL,
    customer_id           text,
    storefront_id         text,
    storefront_reference  text,
    currency              text,
    total_minor           bigint,
    lines                 jsonb NOT NULL DEFAULT '[]',
    reasons               jsonb NOT NULL DEFAULT '[]',
    updated_at            timestamptz NOT NULL
);
CREATE INDEX orders_by_customer ON orders (customer_id, updated_at DESC);

CREATE TABLE order_timeline (
    order_id     text NOT NULL REFERENCES orders (order_id),
    version      integer NOT NULL,
    event_type   text NOT NULL,
    status       text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    reasons      jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (order_id, version)
);
