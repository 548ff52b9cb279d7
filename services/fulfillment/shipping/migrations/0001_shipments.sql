-- The shipping service's own tables. The rules in domain/ are enforced here too, so no
-- code path (or hand-written SQL) can break them: one shipment per packing (that is, per
-- order and warehouse), at most one label per shipment, one dispatched and one delivered
-- per shipment, one scan per carrier event id.

-- What a label needs from order.placed, and whether the order was cancelled. A row may
-- exist before order.placed arrives (a packing or a cancellation came first).
CREATE TABLE orders (
    order_id       text PRIMARY KEY,
    placed_at      timestamptz,  -- the order's occurred_at: the service level counts from it
    service_level  text,
    ship_to        jsonb,
    customer       jsonb,
    cancelled_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((placed_at IS NULL) = (ship_to IS NULL)
           AND (placed_at IS NULL) = (service_level IS NULL))
);

CREATE TABLE shipments (
    shipment_id         text PRIMARY KEY,            -- UUID v5 of the packing id
    packing_id          text NOT NULL UNIQUE,        -- one shipment per packing
    order_id            text NOT NULL REFERENCES orders (order_id),
    warehouse_id        text NOT NULL,
    packages            jsonb NOT NULL,              -- as packed: dims, weight, items
    packed_event_id     text NOT NULL,
    status              text NOT NULL CHECK (status IN (
                            'awaiting_order', 'cancelled', 'dispatched', 'in_transit',
                            'out_for_delivery', 'delivered', 'delivery_exception', 'delayed',
                            'returned_to_sender')),
    carrier             text,
    service             text,
    tracking_number     text UNIQUE,
    estimated_delivery  date,
    promised_by         date,                        -- what the service level promised
    meets_promise       boolean,                     -- false: fastest, still too late
    last_scan_at        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (status IN ('awaiting_order', 'cancelled')
           OR (carrier IS NOT NULL AND tracking_number IS NOT NULL)),
    -- packing ids derive from (order, warehouse): one packing, one shipment per warehouse
    UNIQUE (order_id, warehouse_id)
);

-- At most one label per shipment (the primary key), bought under one idempotency key.
CREATE TABLE labels (
    shipment_id         text PRIMARY KEY REFERENCES shipments (shipment_id),
    idempotency_key     text NOT NULL UNIQUE,
    carrier             text NOT NULL,
    service             text NOT NULL,
    tracking_number     text NOT NULL UNIQUE,
    label_url           text NOT NULL,
    cost_minor          bigint NOT NULL CHECK (cost_minor >= 0),
    currency            text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    estimated_delivery  date NOT NULL,
    purchased_at        timestamptz NOT NULL DEFAULT now()
);

-- Every number a carrier may report a scan under: the master (package_id NULL) and one
-- per package.
CREATE TABLE tracking_numbers (
    tracking_number  text PRIMARY KEY,
    shipment_id      text NOT NULL REFERENCES shipments (shipment_id),
    carrier          text NOT NULL,
    package_id       text,
    UNIQUE (shipment_id, package_id)
);
CREATE UNIQUE INDEX tracking_numbers_one_master ON tracking_numbers (shipment_id)
    WHERE package_id IS NULL;

-- The events a shipment has at most once: a milestone is inserted in the transaction that
-- emits its event, and the primary key refuses a second one.
CREATE TABLE shipment_milestones (
    shipment_id  text NOT NULL REFERENCES shipments (shipment_id),
    milestone    text NOT NULL CHECK (milestone IN ('label_purchased', 'dispatched', 'delivered')),
    event_id     text NOT NULL,  -- the ce_id of the event emitted for it
    reached_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shipment_id, milestone)
);

-- Every carrier scan, once per carrier event id (webhook retries, simulator re-runs).
CREATE TABLE tracking_scans (
    carrier             text NOT NULL,
    carrier_event_id    text NOT NULL,
    shipment_id         text NOT NULL REFERENCES shipments (shipment_id),
    tracking_number     text NOT NULL,
    status              text NOT NULL CHECK (status IN (
                            'in_transit', 'out_for_delivery', 'delivered', 'delivery_exception',
                            'delayed', 'returned_to_sender')),
    location            text,
    description         text NOT NULL DEFAULT '',
    estimated_delivery  date,
    occurred_at         timestamptz NOT NULL,
    command_id          text NOT NULL,  -- the shipping.carrier_update command's ce_id
    received_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (carrier, carrier_event_id)
);
CREATE INDEX tracking_scans_shipment ON tracking_scans (shipment_id, occurred_at);

-- Webhook calls accepted: a carrier retrying a delivery gets 200 and queues nothing.
CREATE TABLE webhook_receipts (
    carrier           text NOT NULL,
    carrier_event_id  text NOT NULL,
    tracking_number   text NOT NULL,
    body_sha256       text NOT NULL,
    request_id        text NOT NULL,  -- causation_id of the carrier_update it queued
    received_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (carrier, carrier_event_id)
);

-- Every carrier call and its result, one row per attempt, in the handler's transaction.
CREATE TABLE carrier_calls (
    id               bigserial PRIMARY KEY,
    order_id         text NOT NULL,
    shipment_id      text NOT NULL,
    operation        text NOT NULL CHECK (operation IN ('rates', 'buy_label')),
    idempotency_key  text,  -- purchases only
    attempt          integer NOT NULL CHECK (attempt >= 1),
    event_id         text NOT NULL,  -- the message that caused the call
    request          jsonb NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('answered', 'error')),
    response         jsonb,
    error            text,
    duration_ms      double precision NOT NULL,
    called_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX carrier_calls_shipment ON carrier_calls (shipment_id, id);

-- The simulated carrier's memory of sold labels (the carrier's side, not ours): written on
-- its own connection, so it survives our rollbacks and crashes like a real carrier's, and
-- a key asked again gets the first label.
CREATE TABLE simulated_carrier_labels (
    idempotency_key  text PRIMARY KEY,
    request          jsonb NOT NULL,
    label            jsonb NOT NULL,
    tracking_number  text NOT NULL UNIQUE,
    calls            integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_called_at   timestamptz NOT NULL DEFAULT now()
);

-- The simulated carrier's parcels on the road: the scans it will report and when the next
-- one is due (NULL when delivered). Written in the dispatch's transaction.
CREATE TABLE simulated_tracking (
    shipment_id         text PRIMARY KEY REFERENCES shipments (shipment_id),
    order_id            text NOT NULL,
    carrier             text NOT NULL,
    tracking_number     text NOT NULL,
    origin              text NOT NULL,
    destination         text NOT NULL,
    estimated_delivery  date NOT NULL,
    plan                jsonb NOT NULL,
    next_step           integer NOT NULL DEFAULT 0,
    due_at              timestamptz,
    dispatch_event_id   text NOT NULL,  -- scans continue the dispatch's trace
    correlation_id      text,
    traceparent         text
);
CREATE INDEX simulated_tracking_due ON simulated_tracking (due_at) WHERE due_at IS NOT NULL;

-- Wakes the simulator at commit when parcels are enrolled (once per statement; NOTIFY
-- folds repeats within a transaction), so it need not poll.
CREATE FUNCTION simulated_tracking_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('simulated_carrier_' || TG_TABLE_SCHEMA, '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER simulated_tracking_wake AFTER INSERT ON simulated_tracking
    FOR EACH STATEMENT EXECUTE FUNCTION simulated_tracking_wake();
