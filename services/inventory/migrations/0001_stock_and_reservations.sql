-- Inventory: the catalog, warehouses, stock per SKU and warehouse, reservations.
-- No oversell is enforced here, not only in code: the CHECKs on `stock` refuse any
-- change that would reserve more than is on hand (or dip into safety stock), and every
-- handler row-locks the stock rows it reads before deciding (see docs/inventory.md).

CREATE TABLE warehouses (
    warehouse_id  text PRIMARY KEY,
    name          text NOT NULL,
    -- a country code (GB) or a country subdivision (US-NJ): see domain.Network
    region        text NOT NULL CHECK (region ~ '^[A-Z]{2}(-[A-Z0-9]{1,3})?$')
);

-- "Nearest" beyond the same subdivision/country: per ship-to (subdivision, country or
-- '*'), the warehouse regions in order of preference.
CREATE TABLE region_order (
    ship_to   text NOT NULL,
    position  integer NOT NULL CHECK (position >= 0),
    region    text NOT NULL,
    PRIMARY KEY (ship_to, position)
);

CREATE TABLE skus (
    sku            text PRIMARY KEY,
    name           text NOT NULL DEFAULT '',
    backorderable  boolean NOT NULL DEFAULT false,
    discontinued   boolean NOT NULL DEFAULT false
);

CREATE TABLE stock (
    sku           text NOT NULL REFERENCES skus (sku),
    warehouse_id  text NOT NULL REFERENCES warehouses (warehouse_id),
    on_hand       integer NOT NULL CONSTRAINT stock_on_hand_not_negative CHECK (on_hand >= 0),
    reserved      integer NOT NULL DEFAULT 0
                  CONSTRAINT stock_reserved_not_negative CHECK (reserved >= 0),
    safety_stock  integer NOT NULL DEFAULT 0
                  CONSTRAINT stock_safety_stock_not_negative CHECK (safety_stock >= 0),
    -- per SKU and warehouse, carried by stock.level_changed.v1; +1 on every change
    version       bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sku, warehouse_id),
    -- physically reserved units never exceed what is on hand …
    CONSTRAINT stock_reserved_within_on_hand CHECK (reserved <= on_hand),
    -- … nor eat into the safety stock (a row may sit below its safety level, with
    -- nothing reserved: then nothing is available)
    CONSTRAINT stock_reserved_leaves_safety_stock
        CHECK (reserved = 0 OR reserved + safety_stock <= on_hand)
);

-- Expected receipts (purchase orders) give backordered lines a restock date.
CREATE TABLE incoming_stock (
    reference      text NOT NULL,
    sku            text NOT NULL REFERENCES skus (sku),
    warehouse_id   text NOT NULL REFERENCES warehouses (warehouse_id),
    quantity       integer NOT NULL CHECK (quantity > 0),
    received       integer NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= quantity),
    expected_date  date NOT NULL,
    PRIMARY KEY (reference, sku, warehouse_id)
);
CREATE INDEX incoming_open ON incoming_stock (sku, warehouse_id, expected_date)
    WHERE received < quantity;

-- One reservation per order. The row is the lock for everything about that order:
-- release, commit and backorder allocation lock it before the stock rows.
CREATE TABLE reservations (
    reservation_id  text PRIMARY KEY,
    order_id        text NOT NULL UNIQUE,
    -- held: stock (or a backorder) is held; failed: reservation_failed was emitted;
    -- released / committed: final; cancelled: cancelled before it was ever placed
    status          text NOT NULL
                    CHECK (status IN ('held', 'failed', 'released', 'committed', 'cancelled')),
    ship_country    text,
    ship_region     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE allocations (
    reservation_id  text NOT NULL REFERENCES reservations (reservation_id),
    line_id         text NOT NULL,
    sku             text NOT NULL,
    warehouse_id    text NOT NULL,
    quantity        integer NOT NULL CHECK (quantity > 0),
    committed       integer NOT NULL DEFAULT 0 CHECK (committed >= 0 AND committed <= quantity),
    PRIMARY KEY (reservation_id, line_id, warehouse_id)
);

-- Units of a line waiting for stock, served first come first served (seq) per SKU.
CREATE TABLE backorders (
    reservation_id         text NOT NULL REFERENCES reservations (reservation_id),
    line_id                text NOT NULL,
    sku                    text NOT NULL,
    quantity               integer NOT NULL CHECK (quantity > 0),
    expected_restock_date  date,
    seq                    bigserial NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reservation_id, line_id)
);
CREATE INDEX backorders_queue ON backorders (sku, seq);

-- Goods receipts and restocked returns, by receipt id: a retried command is a no-op.
CREATE TABLE receipts (
    receipt_id    text PRIMARY KEY,
    sku           text NOT NULL,
    warehouse_id  text NOT NULL,
    quantity      integer NOT NULL CHECK (quantity > 0),
    source        text NOT NULL,
    reference     text NOT NULL DEFAULT '',
    received_by   text NOT NULL DEFAULT '',
    order_id      text,
    return_id     text,
    received_at   timestamptz NOT NULL DEFAULT now()
);

-- Dispatched shipments already committed: a repeated dispatch is a no-op.
CREATE TABLE shipments (
    shipment_id     text PRIMARY KEY,
    reservation_id  text,
    order_id        text NOT NULL,
    warehouse_id    text NOT NULL,
    committed_at    timestamptz NOT NULL DEFAULT now()
);
