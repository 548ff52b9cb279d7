-- Packing: one row per order and warehouse, holding what picking reported about its pick
-- tasks until every one of them completed, then what was packed.
--
-- "Packed once per (order, warehouse)" is the primary key plus the status change
-- `waiting` → `packed`, which only one transaction can make. Every handler upserts the
-- row in one statement (ON CONFLICT works on the latest committed version and locks it
-- until commit), so two transactions can never both miss the other's task.

CREATE TABLE packings (
    order_id      text NOT NULL,
    warehouse_id  text NOT NULL,
    -- per task id, what picking reported, in whichever order it arrived:
    --   {"created_at": …}                                   picking.task_created.v1
    --   {"completed_at": …, "picked": [{line_id, sku, quantity}], "short_line_ids": […]}
    --                                                       picking.completed.v1
    -- a repeated report keeps the first one's values
    tasks         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(tasks) = 'object'),
    status        text NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'packed')),
    -- once packed: uuid5 of order and warehouse (a redelivery finds the same id), the
    -- packing.packed.v1 data as emitted, and the tasks whose picks it holds
    packing_id    text UNIQUE,
    packed        jsonb,
    task_ids      text[],
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    packed_at     timestamptz,
    PRIMARY KEY (order_id, warehouse_id),
    CONSTRAINT packings_packed_is_complete CHECK (
        (status = 'packed') = (packing_id IS NOT NULL AND packed IS NOT NULL
                               AND task_ids IS NOT NULL AND packed_at IS NOT NULL))
);
-- what operators look for: groups still waiting for a task, oldest first
CREATE INDEX packings_waiting ON packings (created_at) WHERE status = 'waiting';
