"""The packing service's SQL (asyncpg, schema ``packing_service``).

A run of pick task events locks the run's (order, warehouse) rows with one upsert, which
creates those missing and returns the early completions; then one query reads the
groups (one row per order, warehouse and round) of those orders at those warehouses; at
the end one ``executemany`` writes the groups that changed, and one more the early
completions if they changed. ``ON CONFLICT DO UPDATE`` applies to the latest committed
version of a row and locks it until commit, and every transaction that writes a group
holds its (order, warehouse) row, so the groups read after the lock include every report
committed before — no lost "last task completed" between two transactions — and nothing
else can change them until this transaction ends.

The reservation round is stored as ``backorder_round = ''`` (a key column cannot be
NULL) and is None everywhere else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import asyncpg

from services.fulfillment.packing.domain import Group, OrderAtWarehouse

Pair = tuple[str, str]  # (order id, warehouse id)
RESERVATION = ""  # the reservation round's backorder_round in the table


async def lock(conn: asyncpg.Connection, pairs: Iterable[Pair]) -> dict[Pair, OrderAtWarehouse]:
    """The orders at the warehouses with their groups, each (order, warehouse) row
    created if this is its first report and locked, in key order (two transactions
    locking several cannot deadlock on them)."""
    ordered = sorted(set(pairs))
    orders = [order_id for order_id, _ in ordered]
    warehouses = [warehouse_id for _, warehouse_id in ordered]
    locked = await conn.fetch(
        """INSERT INTO order_warehouses AS w (order_id, warehouse_id)
           SELECT * FROM unnest($1::text[], $2::text[])
           ON CONFLICT (order_id, warehouse_id) DO UPDATE SET updated_at = now()
           RETURNING order_id, warehouse_id, early::text AS early""",
        orders,
        warehouses,
    )
    book = {
        (r["order_id"], r["warehouse_id"]): OrderAtWarehouse(
            r["order_id"], r["warehouse_id"], early=json.loads(r["early"])
        )
        for r in locked
    }
    # a statement of its own, after the lock: it sees every group committed before
    rows = await conn.fetch(
        """SELECT p.order_id, p.warehouse_id, p.backorder_round, p.tasks::text AS tasks,
                  p.status, p.task_ids
             FROM packings p
             JOIN unnest($1::text[], $2::text[]) AS k (order_id, warehouse_id)
                  USING (order_id, warehouse_id)""",
        orders,
        warehouses,
    )
    for r in rows:
        round_ = r["backorder_round"] or None
        book[(r["order_id"], r["warehouse_id"])].groups[round_] = Group(
            order_id=r["order_id"],
            warehouse_id=r["warehouse_id"],
            backorder_round=round_,
            reports=json.loads(r["tasks"]),
            packed=r["status"] == "packed",
            packed_task_ids=tuple(r["task_ids"] or ()),
        )
    return book


async def save(conn: asyncpg.Connection, book: Sequence[OrderAtWarehouse]) -> None:
    """The groups that changed (new ones inserted) with what was packed where this
    transaction packed it, and the early completions that changed; one pipelined round
    trip each."""
    groups = [g for at in book for g in at.changed_groups()]
    if groups:
        await conn.executemany(
            """INSERT INTO packings AS p (order_id, warehouse_id, backorder_round, tasks,
                                          status, packing_id, packed, task_ids, packed_at)
               VALUES ($1, $2, $3, $4::jsonb,
                       CASE WHEN $6::jsonb IS NULL THEN 'waiting' ELSE 'packed' END,
                       $5, $6::jsonb, $7, $8)
               ON CONFLICT (order_id, warehouse_id, backorder_round) DO UPDATE
                  SET tasks = EXCLUDED.tasks, updated_at = now(),
                      status = CASE WHEN EXCLUDED.packed IS NULL THEN p.status
                                    ELSE 'packed' END,
                      packing_id = coalesce(EXCLUDED.packing_id, p.packing_id),
                      packed = coalesce(EXCLUDED.packed, p.packed),
                      task_ids = coalesce(EXCLUDED.task_ids, p.task_ids),
                      packed_at = coalesce(EXCLUDED.packed_at, p.packed_at)""",
            [_group_args(g) for g in groups],
        )
    early = [at for at in book if at.early_changed]
    if early:
        await conn.executemany(
            """UPDATE order_warehouses SET early = $3::jsonb, updated_at = now()
                WHERE order_id = $1 AND warehouse_id = $2""",
            [(at.order_id, at.warehouse_id, json.dumps(at.early)) for at in early],
        )


def _group_args(group: Group) -> tuple[object, ...]:
    packed, packed_at = group.packing or (None, None)
    return (
        group.order_id,
        group.warehouse_id,
        group.backorder_round or RESERVATION,
        json.dumps(group.reports),
        packed.packing_id if packed else None,
        packed.model_dump_json() if packed else None,
        list(group.packed_task_ids) if packed else None,
        packed_at,
    )
