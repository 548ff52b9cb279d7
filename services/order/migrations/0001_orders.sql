-- The order aggregate, owned by this service only. order_id is derived from the
-- storefront reference, so a resubmission finds the same row.
CREATE TABLE orders (
    order_id              text PRIMARY KEY,
    storefront_id         text NOT NULL,
    storefront_reference  text NOT NULL,
    customer_id           text,
    status                text NOT NULL,
    version               integer NOT NULL CHECK (version >= 1),
    currency              text,
    total_minor           bigint,
    submission            jsonb NOT NULL,
    reasons               jsonb NOT NULL DEFAULT '[]',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (storefront_id, storefront_reference)
);

-- HTTP Idempotency-Key: the same key with the same body returns the same order;
-- the same key with another body is refused.
CREATE TABLE idempotency_keys (
    key           text PRIMARY KEY,
    request_hash  text NOT NULL,
    order_id      text NOT NULL REFERENCES orders (order_id),
    created_at    timestamptz NOT NULL DEFAULT now()
);
