"""Republishing the retained outbox after the broker lost its log.

The outbox keeps sent rows for a retention period: the service's durable event log. When
the broker comes back empty, every retained row must go again, in its original order
(consumers skip what their inbox already holds). That is three steps, each recorded in
``broker_epoch`` so a crash halfway resumes where it stopped:

1. :func:`begin` notes the highest sent row (``republish_through``) in the same
   transaction as the new cluster id;
2. :func:`mark_unsent` marks rows unsent in id order, a chunk per transaction (a day of
   outbox as one UPDATE would hold its locks and WAL for minutes), moving
   ``marked_through`` on; the caller holds the relay's round lock meanwhile, so no newer
   row is published before an older one of the same key;
3. the relay publishes them; :func:`finished` is true once none up to
   ``republish_through`` is left unsent, and clears the marker.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from shared.runtime.logging import get_logger

log = get_logger(__name__)

MARK_CHUNK_ROWS = 10_000


@dataclass(frozen=True)
class Epoch:
    """What ``broker_epoch`` holds: the broker last published to, and a pending republish."""

    cluster_id: str | None
    republish_through: int | None
    marked_through: int | None

    @property
    def marking(self) -> bool:
        return self.republish_through is not None and (
            self.marked_through is None or self.marked_through < self.republish_through
        )


async def read_epoch(conn: asyncpg.Connection) -> Epoch:
    row = await conn.fetchrow(
        "SELECT cluster_id, republish_through, marked_through FROM broker_epoch WHERE id = 1"
    )
    if row is None:
        return Epoch(None, None, None)
    return Epoch(row["cluster_id"], row["republish_through"], row["marked_through"])


async def record_cluster(pool: asyncpg.Pool, cluster_id: str, *, lost: bool) -> bool:
    """Record ``cluster_id``. A republish begins if another id was recorded before, or if
    ``lost`` (the same broker's log went back). Returns whether one began."""
    async with pool.acquire() as conn, conn.transaction():
        before = await conn.fetchrow("SELECT cluster_id FROM broker_epoch WHERE id = 1 FOR UPDATE")
        if before is not None and before["cluster_id"] == cluster_id and not lost:
            return False  # the same broker: nothing to write at each start
        await conn.execute(
            """INSERT INTO broker_epoch (id, cluster_id) VALUES (1, $1)
               ON CONFLICT (id) DO UPDATE SET cluster_id = $1, recorded_at = now()""",
            cluster_id,
        )
        if before is None:
            return False  # the first broker this database has seen: nothing was lost
        await begin(conn)
        return True


async def begin(conn: asyncpg.Connection) -> None:
    """Note which rows go again: every retained row sent so far. A republish already under
    way is widened, never narrowed (its unmarked rows are still sent_at NOT NULL)."""
    first, last = await conn.fetchrow(
        "SELECT min(id), max(id) FROM outbox WHERE sent_at IS NOT NULL"
    )
    if last is None:
        await conn.execute(
            "UPDATE broker_epoch SET republish_through = NULL, marked_through = NULL"
        )
        return
    await conn.execute(
        """UPDATE broker_epoch
              SET republish_through = greatest(republish_through, $2),
                  marked_through = least(coalesce(marked_through, $1), $1)""",
        first - 1,
        last,
    )


async def mark_unsent(pool: asyncpg.Pool) -> int:
    """Mark the noted rows unsent, a chunk per transaction, resuming where a previous
    run stopped. Returns how many rows were marked."""
    marked = 0
    async with pool.acquire() as conn:
        epoch = await read_epoch(conn)
        if not epoch.marking or epoch.republish_through is None:
            return 0
        through = epoch.republish_through
        done = epoch.marked_through if epoch.marked_through is not None else 0
        while done < through:
            upper = min(done + MARK_CHUNK_ROWS, through)
            async with conn.transaction():
                result = await conn.execute(
                    """UPDATE outbox SET sent_at = NULL
                        WHERE id > $1 AND id <= $2 AND sent_at IS NOT NULL""",
                    done,
                    upper,
                )
                await conn.execute("UPDATE broker_epoch SET marked_through = $1", upper)
            marked += int(result.split()[-1])
            done = upper
            log.info("broker.republish_marking", marked_through=done, republish_through=through)
    return marked


async def finished(pool: asyncpg.Pool) -> bool:
    """Whether the relay has published every row the republish marked; if so, clears
    the marker (readiness returns to 200 then, not before)."""
    async with pool.acquire() as conn:
        epoch = await read_epoch(conn)
        if epoch.republish_through is None:
            return True
        if epoch.marking:
            return False
        left = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE sent_at IS NULL AND id <= $1)",
            epoch.republish_through,
        )
        if left:
            return False
        await conn.execute(
            """UPDATE broker_epoch SET republish_through = NULL, marked_through = NULL
                WHERE republish_through = $1""",
            epoch.republish_through,
        )
        log.info("broker.republished", republish_through=epoch.republish_through)
        return True
