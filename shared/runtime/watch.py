"""The dependency watch: is the database there, is the broker there, and is it still the
broker this service published to?

A memory-only broker (the embedded Tansu) that restarts comes back empty: every topic,
record and committed offset is gone, and it still acknowledges new records. It comes back
with a new cluster id (the embedded broker gets a fresh one at each start), so each service
compares the broker's cluster id with the one recorded in its own database. When they
differ — or the relay saw the broker hand out offsets a second time — the service:

1. turns not ready (readiness 503) until it is done;
2. creates the registry's topics with their partition counts;
3. records the new cluster id and marks every retained outbox row unsent again, in
   chunks, while holding the relay's round lock (no round marks them sent behind its
   back, and no newer row overtakes an older one): the relay republishes them in their
   original order, and consumers skip what their inbox already holds
   (:mod:`shared.runtime.republish`);
4. restarts its consumer from the beginning of every partition: the offsets it held
   belonged to the old log;
5. stays not ready until the relay has published every row marked.

The first start against a database only records the cluster id. Until the watch has
compared the broker with the recorded one, the relay publishes nothing: at start, a
broker that came back empty must not get new rows before the old ones.
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
from shared.runtime.republish import finished, mark_unsent, record_cluster
from shared.runtime.settings import Settings
from shared.runtime.topics import ensure_topics

log = get_logger(__name__)

CHECK_TIMEOUT_S = 5.0


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
        self.recovering = False  # the broker lost its log: topics and marking under way
        self.republishing = False  # rows marked unsent are not all published yet
        self.stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._lost: str | None = None  # why the relay thinks the broker lost its log
        self._known: str | None = None  # the cluster id recorded, once read
        self._admin: AIOKafkaAdminClient | None = None

    def broker_lost(self, reason: str) -> None:
        """The relay's report: check now, and recover even if the cluster id is the same."""
        self._lost = reason
        self._wake.set()

    @property
    def log_whole(self) -> bool:
        """The broker holds everything the outbox retains (readiness)."""
        return not (self.recovering or self.republishing)

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
                interval = self.settings.broker_check_interval_s
                if self.republishing:  # readiness follows the republish closely
                    interval = min(interval, 0.25)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), interval)
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
            if self.republishing:
                with contextlib.suppress(*UNREACHABLE):
                    self.republishing = not await finished(self.pool)
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
            began = await record_cluster(self.pool, cluster_id, lost=lost is not None)
            marked = await mark_unsent(self.pool)  # also what a crash left half marked
            self.relay.forget_offsets()
        self._known = cluster_id
        self.republishing = not await finished(self.pool)
        self.relay.publish_allowed.set()
        self.relay.wake()
        if not began:
            if marked:
                REPUBLISHED.inc(marked)
                log.warning("broker.republish_resumed", cluster_id=cluster_id, marked=marked)
            else:
                log.info("broker.recorded", cluster_id=cluster_id)
            return
        BROKER_RECOVERIES.inc()
        REPUBLISHED.inc(marked)
        log.error(
            "broker.came_back_empty",
            cluster_id=cluster_id,
            reason=lost or "new cluster id",
            republishing=marked,
        )
        await self.restart_consumer()
