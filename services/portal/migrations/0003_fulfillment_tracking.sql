-- Order tracking follows the order to the door: pick tasks, packages, shipments with
-- their carrier scans, and the estimated delivery date derived from the shipments.
ALTER TABLE orders
    ADD COLUMN picking             jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN packages            jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN shipments           jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN estimated_delivery  date;
