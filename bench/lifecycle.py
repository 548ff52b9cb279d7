"""Benchmark: orders through the whole lifecycle, on this machine, beside its own limits.

    .venv/bin/python -m bench.lifecycle [--orders 2000] [--latency-rate R] [--profile]

Starts its own embedded broker and PostgreSQL (durable, as `make run`), every service as
a process with the simulated picker and carrier at zero delay, then measures:
- sustained orders/s: ``--orders`` published as fast as the producer goes, divided by
  the time from the first publish until the last of them reached a final state;
- latency at ``--latency-rate`` orders/s (default: half the sustained rate just
  measured): publish → the portal's projection has the order (LISTEN on its change
  channel) and publish → ``order.confirmed`` on the broker;
- the broker's raw round-trip rate and PostgreSQL's commit rates in the same run;
- peak resident memory (PSS, so shared pages count once) of services + broker + database;
- with ``--profile``, a py-spy profile of the busiest service;
- with ``--backlog N`` (default 2000; 0 skips it), the same pipeline fed one backlog:
  N orders are published while the order service is paused (SIGSTOP, shorter than its
  session timeout), then it resumes. Every poll is then as full as it can be, so the CPU
  per order there is what batching alone can bring it down to.
Prints a table and writes ``bench/results/lifecycle-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.table import Table

from bench.baseline import broker_round_trip, postgres_commits
from bench.report import RESULTS, save
from bench.resources import MemorySampler, cpu_seconds, cpu_share, profile_busiest
from bench.traffic import records_per_topic, traffic
from services.order.domain import order_id_for
from shared.runtime.infra.stack import infrastructure
from shared.runtime.storefront import publish_orders
from tests.e2e.lifecycle import SERVICES, TERMINAL, ample_seed, orders, start_pipeline
from tests.integration.harness import ServiceProcess, Stack, header

WARM_UP_ORDERS = 200
# every simulated stage at zero delay, the warehouses' trip and wave windows included:
# the bench times the pipeline, not the clocks of the demo's warehouse floors
ZERO_DELAY = {
    "fulfillment.picking": {"picking_batch_max_wait_s": "0", "picking_wave_window_s": "0.05"},
}
# as `conveyor up` runs on its embedded broker: one instance per service, one partition
AS_MAKE_RUN = {name: {"topic_partitions": "1", **ZERO_DELAY.get(name, {})} for name in SERVICES}
console = Console()


@dataclass
class Report:
    machine_cores: int = 0
    machine_broker_records_per_s: float = 0.0
    machine_broker_cpu_ms_per_record: float = 0.0  # client + broker, produce + consume
    machine_pg_single_commits_per_s: float = 0.0
    machine_pg_batched_rows_per_s: float = 0.0
    orders: int = 0
    sustained_orders_per_s: float = 0.0
    cpu_ms_per_order: float = 0.0  # whole stack, throughput phase
    latency_rate: float = 0.0
    latency_orders: int = 0
    achieved_rate: float = 0.0
    visible_ms: dict[str, float] = field(default_factory=dict)
    confirmed_ms: dict[str, float] = field(default_factory=dict)
    # the visible latency in its two hops: publish → order.placed produced by the order
    # service's relay (record timestamp), and from there → the portal has it
    order_hop_ms: dict[str, float] = field(default_factory=dict)
    portal_hop_ms: dict[str, float] = field(default_factory=dict)
    peak_pss_mib: float = 0.0
    peak_pss_by_process_mib: dict[str, float] = field(default_factory=dict)
    cores_by_process: dict[str, float] = field(default_factory=dict)  # throughput phase
    records_produced_per_order: float = 0.0
    records_consumed_per_order: float = 0.0
    broker_only_ceiling_orders_per_s: float = 0.0
    records_per_order_by_topic: dict[str, float] = field(default_factory=dict)
    # consumed records per poll (one transaction each) in the throughput phase: every
    # poll pays the same round trips, so the larger, the cheaper a record
    records_per_poll: dict[str, float] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    # the backlog phase (see the module's docstring)
    backlog_orders: int = 0
    backlog_orders_per_s: float = 0.0
    backlog_cpu_ms_per_order: float = 0.0
    backlog_cores_by_process: dict[str, float] = field(default_factory=dict)
    backlog_records_per_poll: dict[str, float] = field(default_factory=dict)


class Watcher:
    """When each order first appears in the portal, and when it is confirmed / finished."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.visible: dict[str, float] = {}
        self.confirmed: dict[str, float] = {}
        self.placed: dict[str, float] = {}  # order.placed's record timestamp, monotonic
        self.finished: dict[str, float] = {}
        self._wall_minus_monotonic = time.time() - time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self.stack.database_url)
        await self._conn.add_listener("portal_order_changed", self._on_change)
        self._consumer = AIOKafkaConsumer(
            "order.events", bootstrap_servers=self.stack.bootstrap, fetch_max_wait_ms=5,
            auto_offset_reset="latest", group_id=f"bench-{uuid.uuid4().hex[:6]}",
        )  # fmt: skip
        await self._consumer.start()
        self._tasks.append(asyncio.create_task(self._read()))

    def _on_change(self, _conn: object, _pid: int, _channel: str, order_id: str) -> None:
        self.visible.setdefault(order_id, time.monotonic())

    async def _read(self) -> None:
        async for record in self._consumer:
            now = time.monotonic()
            type_ = header(record, "ce_type") or ""
            order_id = (record.key or b"").decode()
            if type_ == "order.confirmed.v1":
                self.confirmed.setdefault(order_id, now)
            elif type_ == "order.placed.v1":
                produced = record.timestamp / 1000 - self._wall_minus_monotonic
                self.placed.setdefault(order_id, produced)
            status = type_.removeprefix("order.").removesuffix(".v1")
            if status in TERMINAL:
                self.finished.setdefault(order_id, now)

    async def portal_caught_up(self) -> None:
        """The portal has consumed everything now on its topics (its lag metric is 0)."""
        portal = next(s for s in self.stack.services if s.name == "portal")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if await portal.metric("conveyor_consumer_lag") <= 0:
                return
            await asyncio.sleep(0.2)
        raise SystemExit("the portal did not catch up within 5 minutes")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self._consumer.stop()
        await self._conn.close()


async def publish(stack: Stack, bodies: list[dict[str, Any]], rate: float) -> dict[str, float]:
    """Publish at ``rate`` (0: as fast as it goes); the publish time per order id."""
    sent: dict[str, float] = {}

    def on_sent(body: dict[str, Any], at: float) -> None:
        sent[order_id_for(body["storefront_id"], body["storefront_reference"])] = at

    await publish_orders(stack.bootstrap, bodies, rate=rate, on_sent=on_sent)
    return sent


async def until_final(watcher: Watcher, sent: dict[str, float]) -> float:
    """Wait until each order is final; the time the last one became final."""
    deadline = time.monotonic() + 900
    # finished (a final order event) and drained: the portal has projected them too, so
    # the next phase does not start behind a backlog
    while not (set(sent) <= set(watcher.finished) and set(sent) <= set(watcher.visible)):
        if time.monotonic() > deadline:
            missing = len(set(sent) - set(watcher.finished))
            raise SystemExit(f"{missing} orders did not finish within 15 minutes")
        await asyncio.sleep(0.2)
    await watcher.portal_caught_up()
    return max(watcher.finished[o] for o in sent)


async def run_orders(
    stack: Stack, watcher: Watcher, bodies: list[dict[str, Any]], rate: float
) -> tuple[dict[str, float], float]:
    """Publish, wait until each order is final; (publish time per order id, end time)."""
    sent = await publish(stack, bodies, rate)
    return sent, await until_final(watcher, sent)


async def polls(pipeline: dict[str, ServiceProcess]) -> dict[str, tuple[float, float]]:
    """(records consumed, polls applied) so far, per service with the batch consumer."""
    counts = {}
    for name, process in pipeline.items():
        records = await process.metric("conveyor_batch_size_sum")
        applied = await process.metric("conveyor_handler_seconds_count")
        if applied:
            counts[name] = (records, applied)
    return counts


def per_poll(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> dict[str, float]:
    return {
        name: round((records - before[name][0]) / max(applied - before[name][1], 1), 1)
        for name, (records, applied) in after.items()
        if name in before
    }


def cpu_ms_per_order(before: dict[str, float], after: dict[str, float], orders: int) -> float:
    return round(1000 * sum(after[k] - before.get(k, 0.0) for k in after) / orders, 1)


async def backlog(
    report: Report,
    stack: Stack,
    watcher: Watcher,
    pipeline: dict[str, ServiceProcess],
    count: int,
) -> None:
    """``count`` orders waiting at once: published while the order service is paused,
    then consumed in polls as full as they get, every stage after it likewise."""
    console.print(f"backlog: {count} orders published while the order service is paused …")
    intake = pipeline["order"].proc
    assert intake is not None
    bodies = orders(count, "backlog", seed=6)
    pids = [s.proc.pid for s in pipeline.values() if s.proc]
    # the stack is idle now (the last phase drained): the broker taking the orders in
    # counts, as it does in the throughput phase
    polls_before, cpu_before = await polls(pipeline), cpu_seconds(pids)
    intake.send_signal(signal.SIGSTOP)
    try:
        # paused for less than the session timeout: the group does not rebalance
        sent = await publish(stack, bodies, rate=0)
    finally:
        started = time.monotonic()
        intake.send_signal(signal.SIGCONT)
    end = await until_final(watcher, sent)
    cpu_after, wall = cpu_seconds(pids), time.monotonic() - started
    report.backlog_orders = count
    report.backlog_orders_per_s = count / (end - started)
    report.backlog_cpu_ms_per_order = cpu_ms_per_order(cpu_before, cpu_after, count)
    report.backlog_cores_by_process = cpu_share(cpu_before, cpu_after, wall)
    report.backlog_records_per_poll = per_poll(polls_before, await polls(pipeline))


def percentiles(sent: dict[str, float], seen: dict[str, float]) -> dict[str, float]:
    lat = sorted((seen[o] - t) * 1000 for o, t in sent.items() if o in seen)
    if not lat:
        return {}
    pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1)  # noqa: E731
    return {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "max": round(lat[-1], 1)}


async def measure(args: argparse.Namespace, workdir: Path) -> Report:
    report = Report(orders=args.orders, latency_rate=args.latency_rate)
    with infrastructure(workdir / "infra", durable=True) as infra:
        assert infra.new_broker is not None
        bootstrap, stop_broker = infra.new_broker()
        stack = Stack(bootstrap, infra.database_url("bench"), workdir)
        try:
            console.print("measuring the broker and PostgreSQL on their own …")
            round_trip = await broker_round_trip(bootstrap)
            report.machine_cores = os.cpu_count() or 1
            report.machine_broker_records_per_s = round_trip.records_per_s
            report.machine_broker_cpu_ms_per_record = round_trip.cpu_ms_per_record
            single, batched = await postgres_commits(stack.database_url)
            report.machine_pg_single_commits_per_s = single
            report.machine_pg_batched_rows_per_s = batched
            console.print("starting every service …")
            pipeline = await start_pipeline(stack, ample_seed(workdir, 10_000_000), AS_MAKE_RUN)
            watcher = Watcher(stack)
            await watcher.start()
            memory = MemorySampler([s.proc.pid for s in pipeline.values() if s.proc])
            memory.start()
            console.print("warming up …")
            await run_orders(stack, watcher, orders(WARM_UP_ORDERS, "warm", seed=3), rate=200)

            console.print(f"throughput: {args.orders} orders as fast as they go …")
            bodies = orders(args.orders, "tput", seed=4)
            profiling = (
                asyncio.create_task(profile_busiest(pipeline, seconds=15, out=RESULTS))
                if args.profile
                else None
            )
            pids = [s.proc.pid for s in pipeline.values() if s.proc]
            polls_before = await polls(pipeline)
            cpu_before, started = cpu_seconds(pids), time.monotonic()
            sent, end = await run_orders(stack, watcher, bodies, rate=0)
            report.sustained_orders_per_s = len(sent) / (end - min(sent.values()))
            cpu_after = cpu_seconds(pids)
            report.cores_by_process = cpu_share(cpu_before, cpu_after, time.monotonic() - started)
            report.cpu_ms_per_order = cpu_ms_per_order(cpu_before, cpu_after, len(sent))
            if profiling is not None:
                report.profile = await profiling
            report.records_per_poll = per_poll(polls_before, await polls(pipeline))
            counts = await records_per_topic(stack.bootstrap)
            finished = WARM_UP_ORDERS + args.orders
            moved = traffic(
                counts, running={name.rsplit(".", 1)[-1] for name in pipeline}, orders=finished
            )
            report.records_per_order_by_topic = {
                topic: round(n / finished, 2) for topic, n in sorted(counts.items()) if n
            }
            report.records_produced_per_order = round(moved.produced_per_order, 1)
            report.records_consumed_per_order = round(moved.consumed_per_order, 1)
            report.broker_only_ceiling_orders_per_s = moved.ceiling(
                round_trip.cpu_ms_per_record, report.machine_cores
            )

            rate = args.latency_rate or max(report.sustained_orders_per_s / 2, 1.0)
            report.latency_rate = rate
            count = int(rate * args.latency_seconds)
            console.print(f"latency: {count} orders at {rate:.1f}/s …")
            bodies = orders(count, "lat", seed=5)
            sent, _ = await run_orders(stack, watcher, bodies, rate=rate)
            report.latency_orders = count
            report.achieved_rate = count / (max(sent.values()) - min(sent.values()))
            report.visible_ms = percentiles(sent, watcher.visible)
            report.confirmed_ms = percentiles(sent, watcher.confirmed)
            report.order_hop_ms = percentiles(sent, watcher.placed)
            placed = {o: watcher.placed[o] for o in sent if o in watcher.placed}
            report.portal_hop_ms = percentiles(placed, watcher.visible)
            if args.backlog:
                await backlog(report, stack, watcher, pipeline, args.backlog)
            await memory.stop()
            report.peak_pss_mib, report.peak_pss_by_process_mib = memory.peak()
            await watcher.stop()
        finally:
            stack.stop_all()
            stop_broker()
    return report


def show(report: Report) -> None:
    table = Table(title="Conveyor lifecycle benchmark", show_lines=False)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target / context")
    table.add_row("broker round trip", f"{report.machine_broker_records_per_s:,.0f} rec/s",
                  f"raw produce → consume; {report.machine_broker_cpu_ms_per_record * 1000:,.0f}"
                  " µs CPU per record (client + broker)")  # fmt: skip
    table.add_row(
        "PostgreSQL single-row commits", f"{report.machine_pg_single_commits_per_s:,.0f}/s", ""
    )
    table.add_row("PostgreSQL batched rows", f"{report.machine_pg_batched_rows_per_s:,.0f}/s", "")
    table.add_row("sustained lifecycle", f"{report.sustained_orders_per_s:,.1f} orders/s", "≥ 500")
    table.add_row(
        "CPU per order (whole stack)",
        f"{report.cpu_ms_per_order:,.1f} ms",
        f"{1000 * report.machine_cores / 500:.0f} ms would allow 500 orders/s",
    )
    if report.backlog_orders:
        table.add_row(
            "fed one backlog (full polls)",
            f"{report.backlog_orders_per_s:,.1f} orders/s; "
            f"{report.backlog_cpu_ms_per_order:,.1f} ms CPU per order",
            f"{report.backlog_orders} orders waiting at once",
        )
    table.add_row(
        "broker traffic per order",
        f"{report.records_produced_per_order:.1f} produced, "
        f"{report.records_consumed_per_order:.1f} consumed",
        "records, all topics, by the running services",
    )
    table.add_row(
        "broker-only ceiling",
        f"{report.broker_only_ceiling_orders_per_s:,.0f} orders/s",
        f"{report.machine_cores} cores doing nothing but that traffic",
    )
    for name, lat in (("publish → visible in portal", report.visible_ms),
                      ("  of which publish → order.placed", report.order_hop_ms),
                      ("  and order.placed → visible", report.portal_hop_ms),
                      ("publish → confirmed", report.confirmed_ms)):  # fmt: skip
        table.add_row(
            name, " / ".join(f"{k} {v:,.0f}" for k, v in lat.items()) + " ms",
            f"at {report.achieved_rate:,.0f} orders/s; p99 visible ≤ 100 ms",
        )  # fmt: skip
    table.add_row("peak memory (PSS)", f"{report.peak_pss_mib:,.0f} MiB", "< 2048 MiB")
    busiest = sorted(report.cores_by_process.items(), key=lambda kv: -kv[1])
    table.add_row(
        "cores used (throughput phase)",
        ", ".join(f"{name} {cores:.2f}" for name, cores in busiest),
        "of 2 cores",
    )
    console.print(table)
    console.print(
        "records per poll: "
        + ", ".join(f"{name} {n:g}" for name, n in sorted(report.records_per_poll.items()))
    )
    if report.backlog_records_per_poll:
        console.print(
            "records per poll, backlog: "
            + ", ".join(
                f"{name} {n:g}" for name, n in sorted(report.backlog_records_per_poll.items())
            )
        )
    if report.profile:
        console.print(f"profile of {report.profile['service']}: {report.profile['file']}")
        for frame, share in report.profile["top"][:12]:
            console.print(f"  {share:5.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument(
        "--latency-rate", type=float, default=0.0, help="orders/s (default: half the sustained)"
    )
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--backlog", type=int, default=2000, help="orders fed as one backlog (0: skip)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        report = asyncio.run(measure(args, Path(tmp)))
    show(report)
    save("lifecycle", {"args": vars(args), **asdict(report)}, console)


if __name__ == "__main__":
    main()
