-- What the picking, packing, shipping and payment services reported about a confirmed
-- order (services/order/domain/progress.py): sets of warehouses and shipments, so a
-- repeated report is a no-op. One document, read and written with the order's row lock.
ALTER TABLE orders ADD COLUMN progress jsonb NOT NULL DEFAULT '{}'::jsonb;
