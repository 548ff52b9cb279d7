-- Packing per allocation round: an order's units at a warehouse are packed once per
-- (order, warehouse, round), so units a later backorder round allocated at a warehouse
-- that already packed the order get a package set of their own.
--
-- `backorder_round` is '' for the order's reservation round (`packing.packed`'s
-- backorder_round null), else the round's id (BackorderAllocated.round_id). '' rather
-- than NULL: a primary key column cannot be NULL, and with '' every existing row is
-- the reservation round's — it was packed with the ids that round keeps — as it stands.
ALTER TABLE packings ADD COLUMN backorder_round text NOT NULL DEFAULT '';
ALTER TABLE packings DROP CONSTRAINT packings_pkey;
ALTER TABLE packings ADD PRIMARY KEY (order_id, warehouse_id, backorder_round);

-- One row per order and warehouse: the lock every run takes before it reads the groups
-- (a group's row may not exist yet: the lock covers the rounds still to come), and the
-- completions whose task's creation has not arrived, per task id, in the report format
-- of `packings.tasks`. Such a completion's round is unknown until the creation comes:
-- it holds back every group of the order at the warehouse not packed yet.
CREATE TABLE order_warehouses (
    order_id      text NOT NULL,
    warehouse_id  text NOT NULL,
    early         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(early) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, warehouse_id)
);

-- A waiting group's completions that came before their task's creation move to the
-- order's row at the warehouse: their round is not known yet.
INSERT INTO order_warehouses (order_id, warehouse_id, early)
SELECT p.order_id, p.warehouse_id, jsonb_object_agg(t.key, t.value)
  FROM packings p, jsonb_each(p.tasks) t
 WHERE p.status = 'waiting' AND NOT t.value ? 'created_at'
 GROUP BY p.order_id, p.warehouse_id;

UPDATE packings p
   SET tasks = (SELECT coalesce(jsonb_object_agg(t.key, t.value), '{}')
                  FROM jsonb_each(p.tasks) t WHERE t.value ? 'created_at')
 WHERE p.status = 'waiting'
   AND EXISTS (SELECT 1 FROM jsonb_each(p.tasks) t WHERE NOT t.value ? 'created_at');

-- a group is made by a task's creation: one left with none was only early completions
DELETE FROM packings WHERE status = 'waiting' AND tasks = '{}';
