"""Benchmark: what a crash of the memory-only embedded broker costs.

    .venv/bin/python -m bench.recovery [--rate 20] [--seconds 60] [--fill 200000]

Starts its own embedded broker and durable PostgreSQL and every service as `make run` does
(bench.lifecycle's settings), then:

1. **loss window** (bench.loss_window): storefront orders at ``--rate`` orders/s for
   ``--seconds``; how long and how many acknowledged records wait on ``order.commands``
   before the order service has committed them — what a broker crash loses;
2. **republish** (bench.republish): the order service's outbox filled with ``--fill``
   synthetic sent rows shaped like its real ones; the broker is killed and started again
   empty; how long until the service has republished them all and the broker holds them,
   how long readiness answers 503, and when the consumers of ``order.events`` caught up.
   From that rate, the time to republish a day's traffic at ``--rate``, extrapolated;
3. **broker growth** (bench.broker_growth; ``--growth 0`` skips it): the embedded broker
   alone, its CPU per record and memory as one partition grows with readers following it.

Prints a table and writes ``bench/results/recovery-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.broker_growth import broker_cost_by_length
from bench.lifecycle import AS_MAKE_RUN
from bench.loss_window import (
    LagSampler,
    committed_at,
    delays_ms,
    exposed_at_each_ack,
    first_event_out,
    percentiles,
    publish_timed,
)
from bench.report import save
from bench.republish import Republish, fill_outbox, kill_and_time, outbox_shape
from shared.runtime.infra.embedded import EmbeddedBroker
from shared.runtime.infra.stack import infrastructure
from tests.e2e.lifecycle import TERMINAL, ample_seed, orders, start_pipeline
from tests.integration.harness import Stack

# records produced per order, all topics (bench/README.md, second round: 31.2)
RECORDS_PER_ORDER = 31.2
console = Console()


@dataclass
class Report:
    rate: float = 0.0  # orders/s asked
    achieved_rate: float = 0.0  # acks/s
    orders: int = 0
    not_committed: int = 0  # acknowledged but never in the inbox within the wait
    ack_to_inbox_ms: dict[str, float] = field(default_factory=dict)
    ack_to_event_out_ms: dict[str, float] = field(default_factory=dict)
    exposed_records: dict[str, float] = field(default_factory=dict)  # at each ack
    lag_gauge_records: dict[str, float] = field(default_factory=dict)  # sampled
    lag_gauge_samples: int = 0
    republish: Republish = field(default_factory=Republish)
    day_orders: float = 0.0
    day_rows: float = 0.0  # all services' outboxes, at RECORDS_PER_ORDER
    day_republish_s: float = 0.0  # day_rows ÷ the measured rate (extrapolated)
    day_broker_gib: float = 0.0  # the broker's memory for a day's records (extrapolated)
    broker_growth: list[dict[str, float]] = field(default_factory=list)
    load_average: list[float] = field(default_factory=list)  # 1 min, at start and end: shared


async def settled(stack: Stack, timeout_s: float = 300) -> bool:
    """Every order final and every outbox sent: nothing of the window still moving."""
    deadline = time.monotonic() + timeout_s
    found = await stack.query(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'"
    )
    schemas = [r["table_schema"] for r in found]
    while time.monotonic() < deadline:
        open_orders = await stack.query(
            "SELECT count(*) AS n FROM order_service.orders WHERE status <> ALL($1::text[])",
            sorted(TERMINAL),
        )
        unsent = 0
        for schema in schemas:
            sql = f"SELECT count(*) AS n FROM {schema}.outbox WHERE sent_at IS NULL"
            unsent += (await stack.query(sql))[0]["n"]
        if open_orders[0]["n"] == 0 and unsent == 0:
            return True
        await asyncio.sleep(1)
    return False


async def loss_window(stack: Stack, order: Any, report: Report, args: argparse.Namespace) -> None:
    count = int(args.rate * args.seconds)
    console.print(f"loss window: {count} orders at {args.rate:g}/s …")
    sampler = LagSampler(order)
    sampler.start()
    published = await publish_timed(stack.bootstrap, orders(count, "window", seed=7), args.rate)
    committed = await committed_at(stack, list(published.acked))
    samples = await sampler.stop()
    out = await first_event_out(stack, set(published.acked))
    report.orders, report.achieved_rate = count, round(published.rate, 1)
    report.not_committed = count - len(committed)
    report.ack_to_inbox_ms = delays_ms(published.acked, committed)
    report.ack_to_event_out_ms = delays_ms(published.acked, out)
    report.exposed_records = percentiles(exposed_at_each_ack(published.acked, committed))
    report.lag_gauge_records = percentiles(samples)
    report.lag_gauge_samples = len(samples)


def extrapolate(report: Report) -> None:
    rep = report.republish
    report.day_orders = report.rate * 86_400
    report.day_rows = report.day_orders * RECORDS_PER_ORDER
    report.day_republish_s = round(report.day_rows / rep.rows_per_s) if rep.rows_per_s else 0
    grown = rep.broker_rss_mib_after - rep.broker_rss_mib_empty
    per_record_mib = grown / rep.broker_records_after if rep.broker_records_after else 0.0
    report.day_broker_gib = round(report.day_rows * per_record_mib / 1024, 1)


async def measure(args: argparse.Namespace, workdir: Path) -> Report:
    report = Report(rate=args.rate, load_average=[os.getloadavg()[0]])
    with infrastructure(workdir / "infra", durable=True) as infra:
        broker = EmbeddedBroker(workdir / "broker")  # its own: killed and started again
        broker.start()
        stack = Stack(broker.bootstrap, infra.database_url("bench"), workdir)
        try:
            console.print("starting every service …")
            pipeline = await start_pipeline(stack, ample_seed(workdir, 10_000_000), AS_MAKE_RUN)
            console.print("warming up …")
            await publish_timed(stack.bootstrap, orders(100, "warm", seed=3), args.rate)
            if not await settled(stack):
                console.print("[yellow]warm-up orders still open after 5 minutes[/]")
            await loss_window(stack, pipeline["order"], report, args)
            if not await settled(stack):
                console.print("[yellow]orders still open 5 minutes after the window[/]")
            console.print(f"republish: {args.fill:,} rows in the order service's outbox …")
            await fill_outbox(stack, args.fill)
            await outbox_shape(stack, report.republish)
            pg_data = (workdir / "infra" / "postgres" / "data").resolve()
            await kill_and_time(
                stack, broker, pipeline, report.republish, pg_data, args.catch_up_timeout
            )
            extrapolate(report)
        finally:
            stack.stop_all()
            broker.stop()
    if args.growth:
        console.print(f"broker growth: {args.growth:,} records, 3 readers following …")
        report.broker_growth = await broker_cost_by_length(workdir / "growth", args.growth)
    report.load_average.append(os.getloadavg()[0])
    return report


def show(report: Report) -> None:
    rep = report.republish
    table = Table(title="Conveyor: a crash of the embedded broker")
    for name, justify in (("measure", "left"), ("value", "right"), ("context", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    fmt = lambda d, unit: " / ".join(f"{k} {v:,.0f}" for k, v in d.items()) + unit  # noqa: E731
    caught = ", ".join(
        f"{g} {'-' if s is None else f'{s:.0f} s'}" for g, s in rep.consumers_caught_up_s.items()
    )
    rows = [
        ("ack → order service's inbox", fmt(report.ack_to_inbox_ms, " ms"),
         f"at {report.achieved_rate:g} orders/s, {report.orders} orders"),
        ("ack → its first event out", fmt(report.ack_to_event_out_ms, " ms"),
         "upper bound of the commit (the relay sends after it)"),
        ("records exposed at each ack", fmt(report.exposed_records, ""),
         "acknowledged, not yet in the inbox: lost if the broker dies then"),
        ("conveyor_consumer_lag, sampled", fmt(report.lag_gauge_records, ""),
         f"{report.lag_gauge_samples} samples every 0.2 s"),
        ("outbox republished", f"{rep.rows:,} rows, {rep.bytes_per_row:,.0f} B each",
         ", ".join(f"{t} {n:,}" for t, n in sorted(rep.rows_by_topic.items()))),
        ("noticed (rows marked unsent)", f"{rep.detected_s:.1f} s", "after the kill"),
        ("readiness 503", f"{rep.readiness_503_s:.1f} s", "after the kill"),
        ("all rows on the broker", f"{rep.on_broker_s:.1f} s",
         f"after the kill; none unsent at {rep.republished_s:.1f} s"),
        ("republish rate", f"{rep.rows_per_s:,.0f} rows/s",
         f"{rep.cpu_ms_per_row * 1000:,.0f} µs CPU per row (stack); {rep.cores_used:.2f} cores"),
        ("  by fifth of the rows", " → ".join(f"{r:,.0f}" for r in rep.rows_per_s_by_fifth),
         "rows/s, first fifth to last"),
        ("order.events consumers caught up", caught, "after the kill (-: not in time)"),
        ("broker memory",
         f"{rep.broker_rss_mib_empty:,.0f} → {rep.broker_rss_mib_after:,.0f} MiB",
         f"empty → holding {rep.broker_records_after:,} records"),
        ("a day at this rate (extrapolated)", f"{report.day_rows / 1e6:,.1f} M rows",
         f"{report.day_orders:,.0f} orders, {RECORDS_PER_ORDER} records each"),
        ("  its republish (extrapolated)", f"{report.day_republish_s / 3600:,.1f} h",
         "at the measured rate: a lower bound (see the growth below)"),
        ("  its broker memory (extrapolated)", f"{report.day_broker_gib:,.1f} GiB",
         "at the measured memory per record"),
    ]  # fmt: skip
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if report.broker_growth:
        console.print("the broker alone, as one partition grows (3 readers following it):")
        for step in report.broker_growth:
            console.print(
                f"  {step['records']:>9,} records: {step['records_per_s']:>7,.0f}/s, "
                f"broker {step['broker_us_per_record']:>5,.0f} µs CPU per record, "
                f"{step['broker_rss_mib']:,.0f} MiB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="orders/s the stack sustains")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the window run")
    parser.add_argument("--fill", type=int, default=200_000, help="synthetic outbox rows")
    parser.add_argument(
        "--catch-up-timeout", type=float, default=60.0,
        help="seconds to wait, once republished, for the consumers of order.events",
    )  # fmt: skip
    parser.add_argument(
        "--growth", type=int, default=200_000, help="records in the broker-growth probe (0: skip)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        report = asyncio.run(measure(args, Path(tmp)))
    show(report)
    save("recovery", {"args": vars(args), **asdict(report)}, console)


if __name__ == "__main__":
    main()
