"""This machine's own limits, measured in the same run as the pipeline: how fast the broker
moves records end to end and how fast PostgreSQL commits, so a pipeline figure can be
read as a fraction of what the parts underneath allow."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.resources import cpu_seconds


@dataclass(frozen=True)
class RoundTrip:
    records_per_s: float
    # CPU of the client and the broker per record produced and consumed back: what moving
    # one record costs this machine, whatever else runs beside it
    cpu_ms_per_record: float


async def broker_round_trip(bootstrap: str, records: int = 50_000, size: int = 400) -> RoundTrip:
    """Records/s from the first send (acks=all) until a consumer has read the last one,
    and the CPU it took (this process and the broker; nothing else runs yet)."""
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=20)
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        payload = b"x" * size

        async def read_all() -> None:
            seen = 0
            while seen < records:
                batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
                seen += sum(len(part) for part in batch.values())

        cpu_before, client_before = cpu_seconds([]), time.process_time()
        started = time.perf_counter()
        reader = asyncio.create_task(read_all())
        acks = [
            await producer.send(topic, payload, key=str(i % 64).encode()) for i in range(records)
        ]
        await asyncio.gather(*acks)
        await reader
        wall = time.perf_counter() - started
        broker_cpu = cpu_seconds([]).get("broker", 0.0) - cpu_before.get("broker", 0.0)
        cpu = broker_cpu + time.process_time() - client_before
        return RoundTrip(records / wall, cpu * 1000 / records)
    finally:
        await producer.stop()
        await consumer.stop()


async def postgres_commits(database_url: str, commits: int = 2_000) -> tuple[float, float]:
    """(single-row commits/s, rows/s when 100k rows go in one transaction)."""
    conn = await asyncpg.connect(database_url)
    try:
        # a logged table: a temp table's commits would not touch the WAL
        await conn.execute("DROP TABLE IF EXISTS bench_rows")
        await conn.execute("CREATE TABLE bench_rows (id bigint, body text)")
        started = time.perf_counter()
        for i in range(commits):
            await conn.execute("INSERT INTO bench_rows VALUES ($1, 'x')", i)
        single = commits / (time.perf_counter() - started)
        rows = [(i, "x" * 100) for i in range(100_000)]
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("bench_rows", records=rows)
        batched = len(rows) / (time.perf_counter() - started)
        await conn.execute("DROP TABLE bench_rows")
        return single, batched
    finally:
        await conn.close()
