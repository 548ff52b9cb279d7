-- Order tracking gains payment and stock status, reservations per warehouse and a
-- timeline of every stage's events (keyed by ce_id); stock levels per warehouse.
ALTER TABLE orders
    ADD COLUMN placed_at           timestamptz,
    ADD COLUMN payment_status      text NOT NULL DEFAULT 'pending',
    ADD COLUMN stock_status        text NOT NULL DEFAULT 'pending',
    ADD COLUMN reservations        jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN backordered         jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN expected_ship_date  date;
UPDATE orders SET placed_at = updated_at;
CREATE INDEX orders_by_customer_placed ON orders (customer_id, placed_at DESC, order_id DESC);

ALTER TABLE order_timeline ADD COLUMN event_id text, ADD COLUMN detail jsonb NOT NULL DEFAULT '{}';
UPDATE order_timeline SET event_id = 'order-version-' || version;
ALTER TABLE order_timeline
    DROP CONSTRAINT order_timeline_pkey,
    DROP CONSTRAINT order_timeline_order_id_fkey,
    ALTER COLUMN event_id SET NOT NULL,
    ALTER COLUMN version DROP NOT NULL,
    ALTER COLUMN status DROP NOT NULL,
    ADD PRIMARY KEY (order_id, event_id);

CREATE TABLE stock_levels (
    sku                text NOT NULL,
    warehouse_id       text NOT NULL,
    on_hand            integer NOT NULL,
    reserved           integer NOT NULL,
    safety_stock       integer NOT NULL,
    available          integer NOT NULL,
    backorderable      boolean NOT NULL,
    next_restock_date  date,
    version            integer NOT NULL,
    updated_at         timestamptz NOT NULL,
    PRIMARY KEY (sku, warehouse_id)
);
CREATE INDEX stock_levels_by_warehouse ON stock_levels (warehouse_id, sku);
