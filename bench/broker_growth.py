"""The embedded broker alone: does its cost per record hold as a partition grows?

A fresh embedded broker, one topic of one partition, ``readers`` consumers following its
end (as the services follow their topics), and one producer appending records shaped like
outbox rows (300 B value, ten 18 B headers) in rounds of 1,000 with acks=all, as the relay
does. Per step of ``step`` records: records/s, the broker's CPU per record, its memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.runtime.infra.embedded import EmbeddedBroker

MIB = 1024 * 1024
VALUE = b"x" * 300
HEADERS = [(f"h{i}", b"y" * 18) for i in range(10)]


async def _follow(bootstrap: str, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, fetch_max_wait_ms=20, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition("growth", 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        while not stop.is_set():
            await consumer.getmany(timeout_ms=100)
    finally:
        await consumer.stop()


async def broker_cost_by_length(
    state_dir: Path, records: int = 200_000, readers: int = 3, step: int = 25_000
) -> list[dict[str, float]]:
    broker = EmbeddedBroker(state_dir)
    broker.start()
    assert broker.proc is not None
    proc = psutil.Process(broker.proc.pid)
    stop = asyncio.Event()
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic("growth", 1, 1)])
        await admin.close()
        followers = [asyncio.create_task(_follow(broker.bootstrap, stop)) for _ in range(readers)]
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        steps: list[dict[str, float]] = []
        started, cpu = time.monotonic(), sum(proc.cpu_times()[:2])
        for first in range(0, records, 1000):
            sends = [await producer.send("growth", value=VALUE, key=b"k%d" % n, headers=HEADERS)
                     for n in range(first, first + 1000)]  # fmt: skip
            await asyncio.gather(*sends)
            if (first + 1000) % step == 0:
                now, cpu_now = time.monotonic(), sum(proc.cpu_times()[:2])
                steps.append({
                    "records": first + 1000,
                    "records_per_s": round(step / (now - started)),
                    "broker_us_per_record": round(1e6 * (cpu_now - cpu) / step, 1),
                    "broker_rss_mib": round(proc.memory_info().rss / MIB, 1),
                })  # fmt: skip
                started, cpu = now, cpu_now
        await producer.stop()
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.gather(*followers)
        return steps
    finally:
        broker.stop()
