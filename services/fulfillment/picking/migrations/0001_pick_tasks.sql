-- Picking: what is known of each order, its allocation rounds, pick tasks and their
-- items, trips (batches and waves), confirmations and completions.
-- The rules that must hold even if code is wrong are constraints here: one task per
-- (order, warehouse, zone, allocation round), one completion per task, never more
-- units picked than allocated, one open trip per warehouse and kind.

-- One row per order this service heard of, whichever event came first. The row is the
-- lock for everything about the order.
CREATE TABLE orders (
    order_id          text PRIMARY KEY,
    confirmed_at      timestamptz,
    cancelled_at      timestamptz,
    reservation_id    text,
    backordered_skus  text[] NOT NULL DEFAULT '{}',
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Allocations arrive in rounds: the reservation (round id = reservation id), then each
-- backorder allocation (round id derived from its content). A round is planned into
-- tasks once, when the order is confirmed and not cancelled.
CREATE TABLE allocation_rounds (
    order_id        text NOT NULL REFERENCES orders (order_id),
    round_id        text NOT NULL,
    reservation_id  text NOT NULL,
    allocations     jsonb NOT NULL,  -- [{line_id, sku, warehouse_id, quantity}]
    received_at     timestamptz NOT NULL DEFAULT now(),
    planned_at      timestamptz,
    PRIMARY KEY (order_id, round_id)
);

CREATE TABLE trips (
    trip_id       text PRIMARY KEY,
    warehouse_id  text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('batch', 'wave')),
    opened_at     timestamptz NOT NULL,
    closes_at     timestamptz NOT NULL,
    order_count   integer NOT NULL DEFAULT 0 CHECK (order_count >= 0),
    released_at   timestamptz
);
CREATE UNIQUE INDEX trips_one_open_per_warehouse ON trips (warehouse_id, kind)
    WHERE released_at IS NULL;
CREATE INDEX trips_due ON trips (closes_at) WHERE released_at IS NULL;

CREATE TABLE tasks (
    task_id         text PRIMARY KEY,
    order_id        text NOT NULL REFERENCES orders (order_id),
    warehouse_id    text NOT NULL,
    zone            text NOT NULL DEFAULT '',  -- '' unless the zone strategy split it
    round_id        text NOT NULL,
    reservation_id  text NOT NULL,
    strategy        text NOT NULL CHECK (strategy IN ('single_order', 'batch', 'zone', 'wave')),
    trip_id         text REFERENCES trips (trip_id),
    status          text NOT NULL
                    CHECK (status IN ('held', 'released', 'picking', 'completed', 'cancelled')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    released_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_one_per_order_warehouse_zone
        UNIQUE (order_id, warehouse_id, zone, round_id),
    CONSTRAINT tasks_released_when_visible
        CHECK (status IN ('held', 'cancelled') OR released_at IS NOT NULL)
);
CREATE INDEX tasks_open_by_warehouse ON tasks (warehouse_id, released_at)
    WHERE status IN ('released', 'picking');
CREATE INDEX tasks_waiting_for_a_picker ON tasks (released_at) WHERE status = 'released';
CREATE INDEX tasks_by_trip ON tasks (trip_id, order_id) WHERE trip_id IS NOT NULL;
CREATE INDEX tasks_by_order ON tasks (order_id);

CREATE TABLE task_items (
    task_id   text NOT NULL REFERENCES tasks (task_id),
    line_id   text NOT NULL,
    sku       text NOT NULL,
    location  text NOT NULL,
    quantity  integer NOT NULL CHECK (quantity > 0),
    picked    integer NOT NULL DEFAULT 0,
    short     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (task_id, line_id),
    CONSTRAINT task_items_picked_within_quantity CHECK (picked >= 0 AND picked <= quantity),
    CONSTRAINT task_items_short_means_missing CHECK (NOT short OR picked < quantity)
);

-- Every confirmation, accepted or rejected, by the id the device chose: a retry gets
-- the stored receipt back instead of picking twice.
CREATE TABLE confirmations (
    confirmation_id  text PRIMARY KEY,
    task_id          text NOT NULL,
    line_id          text,
    sku              text NOT NULL,
    location         text,
    quantity         integer NOT NULL,
    closes_item      boolean NOT NULL,
    picker_id        text NOT NULL,
    source           text NOT NULL CHECK (source IN ('handheld', 'command', 'simulator')),
    accepted         boolean NOT NULL,
    code             text,  -- why it was rejected
    receipt          jsonb NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX confirmations_by_task ON confirmations (task_id);

-- picking.completed is emitted only by the transaction that inserts this row.
CREATE TABLE completions (
    task_id         text PRIMARY KEY REFERENCES tasks (task_id),
    short_line_ids  text[] NOT NULL,
    completed_at    timestamptz NOT NULL DEFAULT now()
);
