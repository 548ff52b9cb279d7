"""The dependency watch: is the database there, is the broker there, and is it still the
broker this service published to?

A memory-only broker (the embedded Tansu) that restarts comes back empty: every topic,
record and committed offset is gone, and it still acknowledges new records. It comes back
with a new cluster id (the embedded broker gets a fresh one at each start), so each service
compares the broker's cluster id with the one recorded in its own database. When they
differ — or the relay saw the broker hand out offsets a second time — the service:

1. turns not ready (readiness 503) until it is done;
2. creates the registry's topics with their partition counts;
3. marks every retained outbox row unsent again (while holding the relay's round lock,
   so no round marks them sent behind its back) and records the new cluster id, in one
   transaction: the relay republishes them in their original order, and consumers skip
   what their inbox already holds;
4. restarts its consumer from the beginning of every partition: the offsets it held
   belonged to the old log.

The first start against a database only records the cluster id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from shared.runtime.db import UNREACHABLE
from shared.runtime.logging import get_logger
from shared.runtime.metrics import BROKER_RECOVERIES, REPUBLISHED
from shared.runtime.relay import OutboxRelay
from shared.runtime.settings import Settings
from shared.runtime.topics import ensure_topics

log = get_logger(__name__)

CHECK_TIMEOUT_S = 5.0


async def record_cluster(pool: asyncpg.Pool, cluster_id: str) -> tuple[bool, int]:
    """Record ``cluster_id``; if another was recorded before, mark the retained outbox
    unsent. Returns whether the recorded id changed, and how many rows go again."""
    async with pool.acquire() as conn, conn.transaction():
        before = await conn.fetchrow("SELECT cluster_id FROM broker_epoch WHERE id = 1 FOR UPDATE")
        if before is not None and before["cluster_id"] == cluster_id:
            return False, 0
        await conn.execute(
            """INSERT INTO broker_epoch (id, cluster_id) VALUES (1, $1)
               ON CONFLICT (id) DO UPDATE SET cluster_id = $1, recorded_at = now()""",
            cluster_id,
        )
        if before is None:
            return True, 0  # the first broker this database has seen: nothing was lost
        return True, await mark_retained_unsent(conn)


async def mark_retained_unsent(conn: asyncpg.Connection) -> int:
    result = await conn.execute("UPDATE outbox SET sent_at = NULL WHERE sent_at IS NOT NULL")
    return int(result.split()[-1])


class DependencyWatch:
    """Runs beside the consumer and relay; the service's readiness reads its flags."""

    def __init__(
        self,
        *,
        settings: Settings,
        pool: asyncpg.Pool,
        relay: OutboxRelay,
        restart_consumer: Callable[[], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.relay = relay
        self.restart_consumer = restart_consumer
        self.database_ok = False
        self.broker_ok = False
        self.recovering = False
        self.stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._lost: str | None = None  # why the relay thinks the broker lost its log
        self._known: str | None = None  # the cluster id recorded, once read
        self._admin: AIOKafkaAdminClient | None = None

    def broker_lost(self, reason: str) -> None:
        """The relay's report: check now, and recover even if the cluster id is the same."""
        self._lost = reason
        self._wake.set()

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()

    async def check(self) -> None:
        """One look at both dependencies; recovers the broker's log if it was lost."""
        self.database_ok = await self._database_answers()
        cluster_id = await self._cluster_id()
        self.broker_ok = cluster_id is not None
        if cluster_id is not None and self.database_ok:
            await self._compare(cluster_id)

    async def run(self) -> None:
        try:
            while not self.stopping.is_set():
                await self.check()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.broker_check_interval_s)
                self._wake.clear()
        finally:
            self.database_ok = self.broker_ok = False
            await self._close_admin()

    async def _close_admin(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()

    async def _database_answers(self) -> bool:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S), self.pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
            return True
        except (*UNREACHABLE, asyncpg.PostgresError):
            return False

    async def _cluster_id(self) -> str | None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                if self._admin is None:
                    admin = AIOKafkaAdminClient(
                        bootstrap_servers=self.settings.kafka_bootstrap_servers,
                        client_id=f"{self.settings.group_instance_id}-watch",
                        request_timeout_ms=int(CHECK_TIMEOUT_S * 1000),
                    )
                    await admin.start()
                    self._admin = admin
                found = await self._admin.describe_cluster()
        except (KafkaError, OSError, TimeoutError) as exc:
            if self.broker_ok:
                log.warning("broker.unreachable", error=repr(exc))
            await self._close_admin()  # a client that failed starts afresh next time
            return None
        return str(found["cluster_id"])

    async def _compare(self, cluster_id: str) -> None:
        lost, self._lost = self._lost, None
        if cluster_id == self._known and lost is None:
            return
        self.recovering = True
        try:
            await self._recover(cluster_id, lost)
        except (*UNREACHABLE, KafkaError) as exc:
            self._lost = lost  # try again at the next check
            log.warning("broker.recovery_retry", error=repr(exc))
        else:
            self.recovering = False

    async def _recover(self, cluster_id: str, lost: str | None) -> None:
        await ensure_topics(self.settings.kafka_bootstrap_servers, self.settings.topic_partitions)
        async with self.relay.round_lock:
            changed, republish = await record_cluster(self.pool, cluster_id)
            if lost is not None and not changed:  # same cluster, but its log went back
                async with self.pool.acquire() as conn:
                    republish = await mark_retained_unsent(conn)
            self.relay.forget_offsets()
        first_sight = self._known is None and lost is None
        self._known = cluster_id
        if first_sight and not republish:
            log.info("broker.recorded", cluster_id=cluster_id, changed=changed)
            return
        BROKER_RECOVERIES.inc()
        REPUBLISHED.inc(republish)
        log.error(
            "broker.came_back_empty",
            cluster_id=cluster_id,
            reason=lost or "new cluster id",
            republishing=republish,
        )
        self.relay.wake()
        await self.restart_consumer()
