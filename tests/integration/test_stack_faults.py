"""The whole stack as `make run` starts it (`conveyor up`), under storefront traffic
published from outside, through three faults:

(a) Ctrl+C (SIGINT) to `conveyor up` mid-flight, then `conveyor up` again on the same
    state directory: every order the broker acknowledged reaches a final state;
(b) SIGKILL to the broker program alone: supervisord restarts it, empty (memory only);
    the services notice the new cluster id, republish and re-read (shared/runtime/watch.py);
(c) SIGKILL to every process of the stack at once, then `conveyor up` again.

A memory-only broker loses what it acknowledged and no service had read yet when it dies:
(b) and (c) measure that loss (acknowledged, never in order_service.orders), print it and
bound it; (a) allows none. In every case every order the order service has is final in
the end, with no duplicated effect: one capture per captured order at the gateway, one
label per shipment at the carrier, nothing left reserved. (a) still loses what a
storefront publishes in the stop's last second: see ORDERED_STOP_LOSES; its xfail marker
names only that failure (``AcknowledgedLost``), so any other failure still fails it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.inventory.seed import seed_database
from shared.runtime.cli import DATABASE, SERVICES
from shared.runtime.client import Outgoing
from shared.runtime.infra.embedded import (
    EmbeddedPostgres,
    InfraError,
    ensure_port_free,
    free_port,
)
from shared.runtime.storefront import SUBMIT
from shared.schemas import model_for
from tests.e2e.lifecycle import TERMINAL, ample_seed, orders
from tests.integration.harness import eventually
from tests.integration.test_supervisor import (
    START_BOUND_S,
    STOP_BOUND_S,
    all_ready,
    free_port_run,
    programs_of,
    spawn,
    text_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

COUNT = 150  # orders per case
RATE = 15.0  # orders/s: 10 s of publishing
MID_FLIGHT = 30  # orders placed before the fault strikes
LOSS_WINDOW_S = 3.0  # (b), (c): what a memory-only broker may lose, in seconds of traffic
FINAL_BOUND_S = 300
# the simulated warehouse floors and carrier at full speed: the test times the pipeline
AT_FULL_SPEED = {
    "CONVEYOR_PICKING_SIMULATED_PICK_S": "0",
    "CONVEYOR_PICKING_BATCH_MAX_WAIT_S": "0",
    "CONVEYOR_PICKING_WAVE_WINDOW_S": "0.05",
    "CONVEYOR_SHIPPING_SIMULATOR_STEP_SECONDS": "0",
}


class Storefront:
    """Publishes order.submit.v1 at a steady rate, as `publish_orders` does (acks=all,
    keyed by reference), and keeps which references the broker acknowledged: an ack
    future that failed or was cancelled does not count."""

    def __init__(self, bootstrap: str, bodies: list[dict[str, Any]], rate: float) -> None:
        self.bootstrap = bootstrap
        self.bodies = bodies
        self.rate = rate
        self.acked: dict[str, float] = {}  # reference → when acknowledged (monotonic)
        self.failed: set[str] = set()
        self.halt = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> Storefront:
        self.task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        model = model_for(SUBMIT)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", linger_ms=2, request_timeout_ms=10_000
        )
        await producer.start()
        pending: list[asyncio.Future[Any]] = []
        quiet = logging.getLogger("aiokafka")
        level = quiet.level  # a retry is logged each time while the broker is away
        quiet.setLevel(logging.CRITICAL)
        try:
            start = time.monotonic()
            for i, body in enumerate(self.bodies):
                if (delay := start + i / self.rate - time.monotonic()) > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.halt.wait(), delay)
                reference = body["storefront_reference"]
                if self.halt.is_set():
                    self.failed.add(reference)
                    continue
                outgoing = Outgoing.of(model.model_validate(body), source="storefront/faults")
                try:
                    ack = await asyncio.wait_for(outgoing.send(producer), 15)
                except (KafkaError, TimeoutError):
                    self.failed.add(reference)
                    continue
                ack.add_done_callback(partial(self._done, reference))
                pending.append(ack)
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 30)
            quiet.setLevel(level)

    def _done(self, reference: str, ack: asyncio.Future[Any]) -> None:
        if ack.cancelled() or ack.exception() is not None:
            self.failed.add(reference)
        else:
            self.acked[reference] = time.monotonic()

    async def finished(self) -> None:
        assert self.task is not None
        await asyncio.wait_for(self.task, 120)


@dataclass
class Conveyor:
    """`conveyor up` on fixed ports and one state directory, started as often as asked;
    every process it ever had is remembered, so the teardown can kill what is left."""

    workdir: Path
    state: Path = field(init=False)
    broker_port: int = field(default_factory=free_port)
    postgres_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=lambda: free_port_run(len(SERVICES)))
    up: subprocess.Popen[bytes] | None = None
    out: Path = field(init=False)
    runs: int = 0
    seen: dict[int, psutil.Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = self.workdir / "state"
        self.out = self.workdir / "up-0.out"

    @property
    def ports(self) -> dict[str, int]:
        return {name: self.http_port + i for i, name in enumerate(SERVICES)}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    @property
    def database_url(self) -> str:
        embedded = EmbeddedPostgres(self.state / "postgres" / "data", port=self.postgres_port)
        return embedded.tcp_url(DATABASE)

    def start(self) -> None:
        self.runs += 1
        self.out = self.workdir / f"up-{self.runs}.out"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
        }
        env.update(AT_FULL_SPEED)
        self.up = spawn(
            [sys.executable, "-m", "shared.runtime.cli", "up", "--state-dir", str(self.state),
             "--broker-port", str(self.broker_port), "--postgres-port", str(self.postgres_port),
             "--http-port", str(self.http_port)],
            self.out, env,
        )  # fmt: skip
        self.remember()

    async def ready(self) -> None:
        assert self.up is not None
        up = self.up
        await eventually(
            lambda: all_ready(self.ports, up, self.out),
            timeout_s=START_BOUND_S,
            what="every service ready",
        )
        self.remember()

    def remember(self) -> list[psutil.Process]:
        """Every process of the running stack now (and kept for the teardown)."""
        if self.up is None:
            return []
        try:
            root = psutil.Process(self.up.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for process in tree:
            self.seen.setdefault(process.pid, process)
        return tree

    def kill_everything(self) -> None:
        """SIGSTOP to every process, again until no new one appears (a process stopped
        forks no more: a PostgreSQL backend forked after a first look would be left
        running), then SIGKILL to them all: all die at one instant, none sees another
        go first (no PDEATHSIG, no supervisord restart, no postmaster's own clean-up)."""
        stopped: dict[int, psutil.Process] = {}
        while new := [p for p in [*self.remember(), *self.seen.values()] if p.pid not in stopped]:
            for process in new:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.send_signal(signal.SIGSTOP)
                stopped[process.pid] = process
        for process in stopped.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        psutil.wait_procs(list(stopped.values()), timeout=30)
        if self.up is not None:
            self.up.wait(30)

    def log(self) -> str:
        parts = [f"--- {path.name}\n{text_of(path)[-4000:]}" for path in self.outs()]
        return "\n".join(parts)

    def outs(self) -> list[Path]:
        return sorted(self.workdir.glob("up-*.out"))


@pytest.fixture
async def conveyor(tmp_path: Path) -> Any:
    stack = Conveyor(tmp_path)
    try:
        yield stack
    finally:
        stack.remember()
        stack.kill_everything()


async def placed(stack: Conveyor, run: str) -> dict[str, str]:
    """reference → status of this run's orders in order_service.orders."""
    conn = await asyncpg.connect(stack.database_url, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT storefront_reference, status FROM order_service.orders "
            "WHERE storefront_reference LIKE $1",
            f"{run}-%",
        )
    finally:
        await conn.close()
    return {r["storefront_reference"]: r["status"] for r in rows}


async def at_least_placed(stack: Conveyor, run: str, count: int) -> bool:
    try:
        return len(await placed(stack, run)) >= count
    except (OSError, asyncpg.PostgresError):
        return False


async def start_and_seed(stack: Conveyor, tmp_path: Path) -> None:
    stack.start()
    await stack.ready()
    # plenty of every simulated product everywhere, as an operator loads a catalog
    # (`python -m services.inventory.seed`): the run tests the pipeline, not stock-outs
    await seed_database(stack.database_url, ample_seed(tmp_path, 2000))


async def all_final(stack: Conveyor, run: str) -> dict[str, str]:
    async def final() -> dict[str, str]:  # empty (falsy) until every order is final
        try:
            found = await placed(stack, run)
        except (OSError, asyncpg.PostgresError):
            return {}
        return found if all(s in TERMINAL for s in found.values()) else {}

    try:
        return await eventually(final, timeout_s=FINAL_BOUND_S, what="every order final")
    except AssertionError:
        counts: dict[str, int] = {}
        for status in (await placed(stack, run)).values():
            counts[status] = counts.get(status, 0) + 1
        raise AssertionError(f"orders not all final: {counts}\n{stack.log()}") from None


async def no_duplicated_effects(stack: Conveyor, final: dict[str, str]) -> None:
    conn = await asyncpg.connect(stack.database_url, timeout=5)
    try:
        captures = await conn.fetchval("SELECT count(*) FROM payment_service.captures")
        at_gateway = await conn.fetchval(
            "SELECT count(*) FROM payment_service.sandbox_gateway_ledger "
            "WHERE operation = 'capture'"
        )
        labels = await conn.fetchval("SELECT count(*) FROM shipping_service.labels")
        at_carrier = await conn.fetchval(
            "SELECT count(*) FROM shipping_service.simulated_carrier_labels"
        )
        shipped = await conn.fetchval(
            "SELECT count(*) FROM shipping_service.shipments "
            "WHERE status NOT IN ('awaiting_order', 'cancelled')"
        )
        reserved = await conn.fetchval(
            "SELECT coalesce(sum(reserved), 0) FROM inventory_service.stock"
        )
    finally:
        await conn.close()
    completed = sum(1 for s in final.values() if s == "completed")
    assert completed > 0, final
    assert at_gateway == captures, (
        f"{at_gateway} captures at the gateway, {captures} orders captured"
    )
    assert captures >= completed, f"{completed} completed, {captures} captured"
    assert at_carrier == labels, f"{at_carrier} labels bought, {labels} shipments labelled"
    assert labels == shipped, f"{labels} labels, {shipped} shipments sent"
    assert reserved == 0, f"{reserved} units left reserved"


class AcknowledgedLost(AssertionError):
    """More acknowledged orders lost than the case allows (the xfail markers name it, so
    that any other failure of a case still fails it)."""


def report(
    capsys: pytest.CaptureFixture[str],
    case: str,
    storefront: Storefront,
    final: dict[str, str],
    began: float,
    fault: float,
) -> int:
    """Print the case's figures to the terminal, captured or not; the lost count."""
    lost = sorted(set(storefront.acked) - set(final))
    before = sum(1 for at in storefront.acked.values() if at < fault)
    lost_before = sum(1 for ref in lost if storefront.acked[ref] < fault)
    statuses: dict[str, int] = {}
    for status in final.values():
        statuses[status] = statuses.get(status, 0) + 1
    with capsys.disabled():
        print(
            f"\n[{case}] ACKNOWLEDGED BUT LOST: {len(lost)} of {len(storefront.acked)} "
            f"acknowledged ({lost_before} of the {before} acknowledged before the fault, "
            f"{len(lost) - lost_before} of the {len(storefront.acked) - before} after); "
            f"{len(storefront.failed)} not acknowledged; in order_service.orders "
            f"{len(final)}, final {statuses}; first lost {lost[:3]}; "
            f"the case took {time.monotonic() - began:.0f} s",
            flush=True,
        )
    return len(lost)


async def every_order_final_within(
    conveyor: Conveyor,
    capsys: pytest.CaptureFixture[str],
    case: str,
    run: str,
    storefront: Storefront,
    began: float,
    fault: float,
    allowed_lost: float,
) -> None:
    """Every order the order service has ends final with no duplicated effect; the case
    is reported, and fails with AcknowledgedLost past ``allowed_lost``."""
    final = await all_final(conveyor, run)
    lost = report(capsys, case, storefront, final, began, fault)
    await no_duplicated_effects(conveyor, final)
    if lost > allowed_lost:
        raise AcknowledgedLost(f"[{case}] {lost} acknowledged orders lost, {allowed_lost} allowed")


async def storefront_mid_flight(stack: Conveyor, run: str) -> Storefront:
    """Orders published from outside, once ``MID_FLIGHT`` of them are placed."""
    storefront = Storefront(stack.bootstrap, orders(COUNT, run), RATE).start()
    await eventually(
        lambda: at_least_placed(stack, run, MID_FLIGHT), timeout_s=60, what="orders placed"
    )
    return storefront


ORDERED_STOP_LOSES = (
    "limit of the memory-only broker: on Ctrl+C the order service reads order.commands to "
    "its end and stops last of the services, and the broker is killed right after it; a "
    "storefront that goes on publishing through the stop still gets a few records "
    "acknowledged in that last second (4 of 27 here at 15/s, 95 before the order service "
    "stopped last) by a broker about to forget them. Only a durable broker closes it: the "
    "Tansu 0.6 shipped has no durable engine (bench/broker_storage.py)"
)


@pytest.mark.xfail(raises=AcknowledgedLost, strict=True, reason=ORDERED_STOP_LOSES)
async def test_ctrl_c_mid_flight_then_up_again_loses_no_acknowledged_order(
    conveyor: Conveyor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    began = time.monotonic()
    await start_and_seed(conveyor, tmp_path)
    run = "sigint"
    storefront = await storefront_mid_flight(conveyor, run)
    assert conveyor.up is not None
    up = conveyor.up
    fault = time.monotonic()
    up.send_signal(signal.SIGINT)  # the storefront goes on publishing while the stack stops

    async def exited() -> bool:
        return up.poll() is not None

    await eventually(exited, timeout_s=STOP_BOUND_S, what="conveyor up to stop")
    assert up.returncode == 0, conveyor.log()
    assert text_of(conveyor.out).rstrip().endswith("Conveyor stopped."), conveyor.log()
    storefront.halt.set()  # it would retry into the stack started again: not this case
    await storefront.finished()

    conveyor.start()
    await conveyor.ready()
    await every_order_final_within(conveyor, capsys, "SIGINT", run, storefront, began, fault, 0)


async def test_a_broker_killed_under_running_services_loses_a_bounded_window(
    conveyor: Conveyor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    began = time.monotonic()
    await start_and_seed(conveyor, tmp_path)
    run = "brokerkill"
    storefront = await storefront_mid_flight(conveyor, run)
    assert conveyor.up is not None
    broker = programs_of(conveyor.up)["broker"]
    tansu = broker.children()
    fault = time.monotonic()
    os.killpg(os.getpgid(broker.pid), signal.SIGKILL)  # the program: its wrapper and Tansu
    psutil.wait_procs([broker, *tansu], timeout=10)

    async def broker_back() -> bool:
        assert conveyor.up is not None
        now = programs_of(conveyor.up).get("broker")
        return now is not None and now.pid != broker.pid

    await eventually(broker_back, timeout_s=60, what="the broker restarted")
    conveyor.remember()
    await storefront.finished()
    await conveyor.ready()
    await every_order_final_within(
        conveyor, capsys, "broker SIGKILL", run, storefront, began, fault, RATE * LOSS_WINDOW_S
    )


async def test_every_process_killed_at_once_then_up_again_loses_a_bounded_window(
    conveyor: Conveyor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    began = time.monotonic()
    await start_and_seed(conveyor, tmp_path)
    run = "killall"
    storefront = await storefront_mid_flight(conveyor, run)
    everything = conveyor.remember()
    assert len(everything) > len(SERVICES) + 4, everything  # + supervisord, broker, postgres
    fault = time.monotonic()
    conveyor.kill_everything()
    assert not any(p.is_running() for p in everything)

    conveyor.start()  # same state directory, same ports: stale pid files, sockets, WAL
    await conveyor.ready()
    assert "exited during start-up" not in text_of(conveyor.out), conveyor.log()
    await storefront.finished()
    await every_order_final_within(
        conveyor, capsys, "SIGKILL all", run, storefront, began, fault, RATE * LOSS_WINDOW_S
    )


def gone(process: psutil.Process) -> bool:
    """Ended: no longer running, or a zombie nobody reaped yet."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# -- what a restart after SIGKILLs must cope with (shared/runtime/infra/embedded.py) --------


@pytest.mark.parametrize("program", ["broker", "postgres"])
async def test_a_killed_infra_wrapper_takes_its_server_along(tmp_path: Path, program: str) -> None:
    """`conveyor infra broker|postgres` SIGKILLed alone (supervisord's program is the
    wrapper): its server must not run on orphaned, holding the port that the wrapper
    supervisord starts again needs, and PostgreSQL's data directory."""
    port = free_port()
    wrapper = spawn(
        [sys.executable, "-m", "shared.runtime.cli", "infra", program, "--port", str(port),
         "--state-dir", str(tmp_path)],
        tmp_path / f"{program}.out",
    )  # fmt: skip
    servers: list[psutil.Process] = []
    try:

        async def ready() -> bool:
            assert wrapper.poll() is None, text_of(tmp_path / f"{program}.out")
            return "ready" in text_of(tmp_path / f"{program}.out")

        await eventually(ready, timeout_s=60, what=f"{program} ready")
        servers = psutil.Process(wrapper.pid).children(recursive=True)
        assert servers
        wrapper.kill()
        wrapper.wait()
        _, alive = await asyncio.to_thread(psutil.wait_procs, servers, 15)
        assert not alive, f"left running: {alive}"

        async def port_free() -> bool:
            try:
                ensure_port_free("127.0.0.1", port, program)
            except InfraError:
                return False
            return True

        await eventually(port_free, timeout_s=10, what="the port free again")
    finally:
        for process in [psutil.Process(wrapper.pid)] if wrapper.poll() is None else []:
            process.kill()
        for process in servers:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


async def test_postgres_starts_again_beside_a_backend_its_killed_server_left(
    tmp_path: Path,
) -> None:
    """A backend waiting on a lock when its postmaster is SIGKILLed waits forever (seen
    in the kill-everything case: a backend forked a moment before the kill, blocked on a
    lock of a dead one), holding the old shared memory: PostgreSQL refused every start
    ("pre-existing shared memory block ... is still in use"). A stopped backend stands
    for it here: it cannot notice either."""
    postgres = EmbeddedPostgres(tmp_path / "postgres" / "data")  # durable, as `conveyor up`
    postgres.start()
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (1)")
    waiting = psycopg.connect(postgres.url())
    backend = psutil.Process(waiting.info.backend_pid)
    again = EmbeddedPostgres(postgres.data_dir, port=postgres.port)
    try:
        backend.suspend()
        assert postgres.proc is not None
        postgres.proc.kill()  # the postmaster alone
        postgres.proc.wait()
        await asyncio.to_thread(again.start)
        with psycopg.connect(again.url()) as conn:
            assert conn.execute("SELECT n FROM kept").fetchall() == [(1,)]
        assert gone(backend), "the orphaned backend was ended"
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            backend.kill()
        with contextlib.suppress(Exception):
            waiting.close()
        again.stop()
