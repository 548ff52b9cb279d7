-- Short picks: units a picker did not find (picking.short_picked.v1) are written off
-- (allocations and stock go down by them) and allocated again, backordered, or not
-- supplied. One row per (order, task, line) handled: a repeat of the event, even under
-- a new ce_id, finds its row and books nothing. The row also says what was done.
CREATE TABLE short_picks (
    order_id        text NOT NULL,
    task_id         text NOT NULL,
    line_id         text NOT NULL,
    reservation_id  text NOT NULL REFERENCES reservations (reservation_id),
    sku             text NOT NULL,
    warehouse_id    text NOT NULL,
    expected        integer NOT NULL CHECK (expected >= 0),
    picked          integer NOT NULL CHECK (picked >= 0),
    -- missing units the reservation held there (booked off on_hand and reserved)
    written_off     integer NOT NULL DEFAULT 0 CHECK (written_off >= 0),
    -- of those: held again (any warehouse), backordered, not supplied
    reallocated     integer NOT NULL DEFAULT 0 CHECK (reallocated >= 0),
    backordered     integer NOT NULL DEFAULT 0 CHECK (backordered >= 0),
    unfillable      integer NOT NULL DEFAULT 0 CHECK (unfillable >= 0),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, task_id, line_id),
    CHECK (reallocated + backordered + unfillable = written_off)
);
