"""Real processes, a real broker, a real database: the pieces integration tests drive."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.runtime.infra.embedded import create_database, free_port
from shared.runtime.topics import at_end
from shared.schemas import Envelope, Message, to_headers

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]


async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout_s: float = 30.0, what: str = "condition"
) -> T:
    """Await ``check()`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last value: {last!r}")


@dataclass
class ServiceProcess:
    name: str
    env: dict[str, str]
    log_path: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.name}"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    async def ready(self, timeout_s: float = 60.0) -> ServiceProcess:
        async with httpx.AsyncClient(base_url=self.url) as http:

            async def is_ready() -> bool:
                if self.proc is not None and self.proc.poll() is not None:
                    raise AssertionError(
                        f"{self.name} exited with {self.proc.returncode}:\n{self.log()}"
                    )
                try:
                    return (await http.get("/health/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(is_ready, timeout_s=timeout_s, what=f"{self.name} ready")
        return self

    async def exited(self, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        proc = self.proc

        async def gone() -> bool:
            return proc.poll() is not None

        await eventually(gone, timeout_s=timeout_s, what=f"{self.name} to exit")
        return int(proc.returncode)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    async def metric(self, name: str, **labels: str) -> float:
        """Sum of a Prometheus sample over series matching ``labels``."""
        async with httpx.AsyncClient(base_url=self.url) as http:
            text = (await http.get("/metrics")).text
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{"):
                continue
            series, value = line.rsplit(" ", 1)
            if all(f'{k}="{v}"' in series for k, v in labels.items()):
                total += float(value)
        return total


@dataclass
class Stack:
    """One test's world: its own broker and database, and the services it starts."""

    bootstrap: str
    database_url: str
    workdir: Path
    services: list[ServiceProcess] = field(default_factory=list)

    def service(self, name: str, **settings: str) -> ServiceProcess:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.database_url,
            "CONVEYOR_INSTANCE_ID": "test",
            "CONVEYOR_LOG_LEVEL": "INFO",
            "CONVEYOR_RETRY_INITIAL_S": "0.05",
            "CONVEYOR_RETRY_MAX_S": "0.2",
            # the risk worker's faust state: this test's, never the checkout's .conveyor/
            "CONVEYOR_RISK_DATADIR": str(self.workdir / "risk-data"),
        }
        env.update({f"CONVEYOR_{k.upper()}": v for k, v in settings.items()})
        port = free_port()
        env["CONVEYOR_HTTP_PORT"] = str(port)
        process = ServiceProcess(name, env, self.workdir / f"{name}-{len(self.services)}.log", port)
        self.services.append(process)
        return process

    async def start(self, name: str, **settings: str) -> ServiceProcess:
        return await self.service(name, **settings).start().ready()

    async def start_with_one_by_one_twin(
        self, name: str, twin_database: str, **settings: str
    ) -> tuple[ServiceProcess, ServiceProcess]:
        """The service as it runs, and a twin on its own database and consumer group that is
        handed one record per poll: what a Batched handler's runs must leave too."""
        batched = self.service(name, **settings)
        twin = self.service(
            name,
            **settings,
            consumer_group=f"{name.rsplit('.', 1)[-1]}-one-by-one",
            instance_id="one-by-one",
            max_poll_records="1",
        )
        twin.env["DATABASE_URL"] = twin_database
        for process in (batched, twin):
            process.start()
        return await batched.ready(), await twin.ready()

    def sibling_database(self, suffix: str) -> str:
        """A second, empty database on the same server (e.g. to rebuild a projection)."""
        parts = urlsplit(self.database_url)
        sibling = f"{parts.path.removeprefix('/')}_{suffix}"
        create_database(urlunsplit(parts._replace(path="/postgres")), sibling)
        return urlunsplit(parts._replace(path=f"/{sibling}"))

    async def db(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.database_url)

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await self.db()
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def publish(
        self,
        topic: str,
        records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]],
    ) -> None:
        """Publish raw (key, value, headers) records in order, like any producer."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            pending = [
                await producer.send(topic, value=value, key=key, headers=headers)
                for key, value, headers in records
            ]
            await asyncio.gather(*pending)
        finally:
            await producer.stop()

    async def publish_messages(
        self, topic: str, messages: list[Message], **envelope: Any
    ) -> list[str]:
        envelopes = [
            Envelope(
                type=m.TYPE,
                source="test/storefront",
                data=m.to_json(),
                subject=m.subject,
                **envelope,
            )
            for m in messages
        ]
        await self.publish(
            topic,
            [
                (m.subject.encode(), e.data, to_headers(e))
                for m, e in zip(messages, envelopes, strict=True)
            ],
        )
        return [e.id for e in envelopes]

    async def read_topic(self, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
        """Every record now in ``topic``, read up to each partition's fetch high-watermark."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20
        )
        await consumer.start()
        try:
            partitions = await eventually(
                lambda: _partitions(consumer, topic), timeout_s=10, what=f"metadata of {topic}"
            )
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            records: list[ConsumerRecord[bytes, bytes]] = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=100)
                for part in batch.values():
                    records.extend(part)
                if await at_end(consumer, tps):
                    return records
            raise AssertionError(f"could not read {topic} to its end")
        finally:
            await consumer.stop()

    async def wait_for_records(
        self, topic: str, count: int, timeout_s: float = 60.0
    ) -> list[ConsumerRecord[bytes, bytes]]:
        async def enough() -> list[ConsumerRecord[bytes, bytes]] | None:
            records = await self.read_topic(topic)
            return records if len(records) >= count else None

        return await eventually(enough, timeout_s=timeout_s, what=f"{count} records in {topic}")

    async def settled(self, service: ServiceProcess, consumed: int) -> None:
        """Until ``service`` consumed ``consumed`` records and published every event they
        caused (its outbox has nothing unsent)."""
        schema = f"{service.name.rsplit('.', 1)[-1]}_service"

        async def done() -> bool:
            if await service.metric("conveyor_events_consumed_total") < consumed:
                return False
            return not await self.query(f"SELECT 1 FROM {schema}.outbox WHERE sent_at IS NULL")

        await eventually(done, what=f"{consumed} records consumed and their events published")

    def stop_all(self) -> None:
        for service in self.services:
            service.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int] | None:
    await consumer._client.force_metadata_update()  # no public call; topics exist already
    return consumer.partitions_for_topic(topic)


async def conveyor(bootstrap: str, *args: str) -> str:
    """Run the ``conveyor`` CLI against ``bootstrap``; its output (it must succeed)."""
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shared.runtime.cli", *args,
        cwd=ROOT,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "COLUMNS": "160"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await cli.communicate()
    assert cli.returncode == 0, output.decode()
    return output.decode()


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return value.decode()
    return None


def data(record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    assert record.value is not None
    return dict(json.loads(record.value))
