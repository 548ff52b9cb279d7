"""Recovering a broker that came back empty: how fast a service republishes its retained
outbox (shared/runtime/watch.py), timed on a synthetic outbox of N sent rows.

The rows are copies of the order service's own outbox rows (same topics, keys, headers and
payloads, so the same sizes and the same ``ce_id`` as events the consumers already hold:
they skip them by inbox, as they skip every republished row in a real recovery); only the
outbox's own ``event_id`` is new. The broker is then killed (SIGKILL) and started again on
the same port, empty, with a new cluster id, while every service runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.runtime.infra.embedded import EmbeddedBroker
from shared.schemas.topics import TOPICS
from tests.integration.harness import ServiceProcess, Stack

MIB = 1024 * 1024


@dataclass
class Republish:
    rows: int = 0  # every retained row of the order service: the fill and the real ones
    bytes_per_row: float = 0.0  # payload + header values, on average
    rows_by_topic: dict[str, int] = field(default_factory=dict)
    readiness_503_s: float = 0.0  # from the kill until /health/ready answered 200 again
    detected_s: float = 0.0  # from the kill until the rows were marked unsent
    republished_s: float = 0.0  # from the kill until no row was unsent
    on_broker_s: float = 0.0  # from the kill until the broker's topics held every row
    rows_per_s: float = 0.0  # rows / (on broker - detected)
    rows_per_s_by_fifth: list[float] = field(default_factory=list)  # first fifth of rows …
    cpu_ms_per_row: float = 0.0  # whole stack, from the kill until on broker
    cores_used: float = 0.0
    cores_by_process: dict[str, float] = field(default_factory=dict)
    consumers_caught_up_s: dict[str, float | None] = field(default_factory=dict)
    consumers_position: dict[str, int] = field(default_factory=dict)  # at the end
    broker_rss_mib_empty: float = 0.0
    broker_rss_mib_after: float = 0.0
    broker_records_after: int = 0  # all topics, every service's republished rows
    order_events_on_broker: int = 0  # what the consumers of order.events have to read


async def fill_outbox(stack: Stack, count: int) -> None:
    """``count`` sent rows cycled from the order service's real ones, in one statement."""
    conn = await stack.db()
    try:
        await conn.execute(
            """WITH t AS (SELECT row_number() OVER (ORDER BY id) - 1 AS n, topic, key,
                                 header_names, header_values, payload, event_type
                          FROM order_service.outbox),
                    k AS (SELECT count(*) AS k FROM t)
               INSERT INTO order_service.outbox (event_id, topic, key, header_names,
                                                 header_values, payload, event_type, sent_at)
               SELECT 'bench-fill-' || g, t.topic, t.key, t.header_names, t.header_values,
                      t.payload, t.event_type, now()
               FROM generate_series(0, $1 - 1) AS g CROSS JOIN k JOIN t ON t.n = g % k.k""",
            count,
        )
        await conn.execute("ANALYZE order_service.outbox")
    finally:
        await conn.close()


async def outbox_shape(stack: Stack, report: Republish) -> None:
    rows = await stack.query(
        """SELECT topic, count(*) AS n,
                  avg(octet_length(payload) + (SELECT coalesce(sum(octet_length(v)), 0)
                                               FROM unnest(header_values) v)) AS size
           FROM order_service.outbox GROUP BY topic"""
    )
    report.rows_by_topic = {r["topic"]: r["n"] for r in rows}
    report.rows = sum(report.rows_by_topic.values())
    report.bytes_per_row = round(sum(r["n"] * float(r["size"]) for r in rows) / report.rows, 1)


async def high_watermarks(bootstrap: str) -> dict[str, int]:
    """Records per registry topic now on the broker, from fetch high-watermarks; a topic
    without one yet counts 0 (bench.traffic's version waits for all of them)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, fetch_max_wait_ms=20, max_partition_fetch_bytes=1024
    )
    await consumer.start()
    try:
        existing = await consumer.topics()
        tps = [TopicPartition(t, p) for t in TOPICS if t in existing
               for p in sorted(consumer.partitions_for_topic(t) or ())]  # fmt: skip
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        for _ in range(10):
            await consumer.getmany(timeout_ms=50)
            if all(consumer.highwater(tp) is not None for tp in tps):
                break
        counts: dict[str, int] = {}
        for tp in tps:
            counts[tp.topic] = counts.get(tp.topic, 0) + (consumer.highwater(tp) or 0)
        return counts
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group: str, topic: str) -> int:
    """The group's committed offsets on ``topic``, summed (-1 per partition without)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer.topics()
            parts = consumer.partitions_for_topic(topic) or set()
        found = [await consumer.committed(TopicPartition(topic, p)) for p in sorted(parts)]
        return sum(-1 if f is None else f for f in found) if found else -1
    finally:
        await consumer.stop()


class Readiness:
    """Polls a service's /health/ready every 50 ms: when it was last not 200."""

    def __init__(self, service: ServiceProcess) -> None:
        self.service = service
        self.last_not_ready = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.service.url, timeout=2) as http:
            while True:
                try:
                    status = (await http.get("/health/ready")).status_code
                except httpx.HTTPError:
                    status = 0
                if status != 200:
                    self.last_not_ready = time.monotonic()
                await asyncio.sleep(0.05)


def by_fifth(progress: list[tuple[float, int]], rows: int) -> list[float]:
    """Rows/s over each fifth of the rows: does the rate hold as the topic grows?"""
    rates, last = [], progress[0]
    for k in range(1, 6):
        crossed = next((p for p in progress if p[1] >= rows * k / 5), progress[-1])
        if crossed[0] > last[0]:
            rates.append(round((crossed[1] - last[1]) / (crossed[0] - last[0]), 1))
        last = crossed
    return rates


def own_cpu(pids: dict[str, int], pg_data: Path) -> dict[str, float]:
    """CPU seconds so far per process of this stack only (other stacks on the machine
    run their own brokers and PostgreSQL): ``pids`` by label, and the PostgreSQL whose
    data directory is ``pg_data`` with its backends."""
    procs = {label: [psutil.Process(pid)] for label, pid in pids.items()}
    for proc in psutil.process_iter(["cmdline"]):
        if str(pg_data) in (proc.info["cmdline"] or []):
            procs["postgres"] = [proc, *proc.children(recursive=True)]
    usage = {}
    for label, found in procs.items():
        usage[label] = 0.0
        for proc in found:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                usage[label] += times.user + times.system
    return usage


def rss_mib(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss / MIB)


async def wait(check: object, timeout_s: float, every_s: float = 0.25) -> float | None:
    """When the ``check()`` that first held started (monotonic), or None."""
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while (started := time.monotonic()) < deadline:
        if await check():
            return started
        await asyncio.sleep(every_s)
    return None


async def kill_and_time(
    stack: Stack,
    broker: EmbeddedBroker,
    pipeline: dict[str, ServiceProcess],
    report: Republish,
    pg_data: Path,
    catch_up_timeout_s: float,
) -> None:
    """SIGKILL the broker, start it again empty, time the order service's republish."""
    pids = {name: s.proc.pid for name, s in pipeline.items() if s.proc}
    readiness = Readiness(pipeline["order"])
    readiness.start()
    assert broker.proc is not None
    cpu_before = own_cpu(pids, pg_data)
    killed = time.monotonic()
    broker.proc.kill()
    broker.proc.wait()
    broker.start()
    assert broker.proc is not None
    pids["broker"] = broker.proc.pid  # a new process, from 0
    report.broker_rss_mib_empty = round(rss_mib(broker.proc.pid), 1)
    unsent = "SELECT count(*) AS n FROM order_service.outbox WHERE sent_at IS NULL"

    async def marked() -> bool:
        return (await stack.query(unsent))[0]["n"] > 0

    progress: list[tuple[float, int]] = []  # (monotonic, rows sent again)

    async def none_unsent() -> bool:
        left = int((await stack.query(unsent))[0]["n"])
        progress.append((time.monotonic(), report.rows - left))
        return left == 0

    async def on_broker() -> bool:
        counts = await high_watermarks(stack.bootstrap)
        # order.events has one writer, the order service; other topics may have more
        return all(counts.get(t, 0) >= n for t, n in report.rows_by_topic.items())

    detected = await wait(marked, 60, every_s=0.05)
    if detected is None:
        raise SystemExit("the order service did not mark its outbox unsent within 60 s")
    done = await wait(none_unsent, 600)
    placed = await wait(on_broker, 120)
    if done is None or placed is None:
        raise SystemExit("the order service did not republish its outbox within 10 minutes")
    cpu_after, wall = own_cpu(pids, pg_data), time.monotonic() - killed
    report.detected_s = round(detected - killed, 2)
    report.republished_s = round(done - killed, 2)
    report.on_broker_s = round(placed - killed, 2)
    report.rows_per_s = round(report.rows / (placed - detected), 1)
    report.rows_per_s_by_fifth = by_fifth([(detected, 0), *progress], report.rows)
    cpu = sum(cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after)
    report.cpu_ms_per_row = round(1000 * cpu / report.rows, 3)
    report.cores_used = round(cpu / wall, 2)
    report.cores_by_process = {
        k: round((v - cpu_before.get(k, 0.0)) / wall, 2) for k, v in sorted(cpu_after.items())
    }
    report.broker_rss_mib_after = round(rss_mib(broker.proc.pid), 1)
    on_broker_now = await high_watermarks(stack.bootstrap)
    report.broker_records_after = sum(on_broker_now.values())
    report.order_events_on_broker = on_broker_now.get("order.events", 0)
    await readiness.stop()
    report.readiness_503_s = round(max(readiness.last_not_ready - killed, 0.0), 2)
    await consumers_caught_up(stack, killed, report, catch_up_timeout_s)


async def consumers_caught_up(
    stack: Stack, killed: float, report: Republish, timeout_s: float
) -> None:
    """Each running consumer of order.events: when its group's committed offset reached
    the topic's records (it read, and skipped, everything republished)."""
    total = report.order_events_on_broker
    groups = ("inventory", "payment", "picking", "portal", "risk", "shipping")
    deadline = time.monotonic() + timeout_s
    pending = set(groups)
    report.consumers_caught_up_s = dict.fromkeys(groups)
    while pending and time.monotonic() < deadline:
        for group in sorted(pending):
            if await committed_offsets(stack.bootstrap, group, "order.events") >= total:
                report.consumers_caught_up_s[group] = round(time.monotonic() - killed, 1)
                pending.discard(group)
        await asyncio.sleep(1)
    for group in groups:
        position = await committed_offsets(stack.bootstrap, group, "order.events")
        report.consumers_position[group] = position
