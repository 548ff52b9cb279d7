"""``conveyor``: the operator's command line (Typer + rich)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel

from shared.runtime import supervise
from shared.runtime.infra.embedded import (
    EmbeddedBroker,
    EmbeddedPostgres,
    InfraError,
    create_database,
    ensure_port_free,
)
from shared.runtime.topics import ensure_topics

app = typer.Typer(help="Conveyor: run, inspect and operate the order-management stack.")
infra = typer.Typer(help="Run one piece of the embedded infrastructure in the foreground.")
app.add_typer(infra, name="infra")
dlq = typer.Typer(help="Inspect a service's dead letters and send them back once fixed.")
app.add_typer(dlq, name="dlq")
console = Console(stderr=True)

# HTTP ports follow this order from --http-port: order 8001, portal 8002, then the rest
SERVICES = {
    "order": "services.order",
    "portal": "services.portal",
    "payment": "services.payment",
    "inventory": "services.inventory",
    "risk": "services.risk",  # a faust-streaming worker; same env, health and port scheme
    "picking": "services.fulfillment.picking",
    "packing": "services.fulfillment.packing",
    "shipping": "services.fulfillment.shipping",
}
DATABASE = "conveyor"
StateDir = Annotated[Path, typer.Option(help="project-local state (logs, PostgreSQL data)")]


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(2)


@app.command()
def up(
    state_dir: StateDir = Path(".conveyor"),
    broker_port: int = typer.Option(19092, help="embedded broker port on 127.0.0.1"),
    postgres_port: int = typer.Option(15432, help="embedded PostgreSQL port on 127.0.0.1"),
    http_port: int = typer.Option(8001, help="first service HTTP port; each next service +1"),
) -> None:
    """Start broker, database and every service under supervisord: a process that exits
    is restarted; Ctrl+C stops the services, then the intake, broker, PostgreSQL."""
    env = dict(os.environ)
    programs: list[supervise.Program] = []
    me = [sys.executable, "-m", "shared.runtime.cli"]
    where = ["--state-dir", str(state_dir.resolve())]
    try:
        if not env.get("KAFKA_BOOTSTRAP_SERVERS"):
            ensure_port_free("127.0.0.1", broker_port, "the embedded broker")
            argv = [*me, "infra", "broker", "--port", str(broker_port), *where]
            programs.append(supervise.Program("broker", argv, supervise.BROKER, start_s=3))
            env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{broker_port}"
            # one instance of each service: one partition per topic is all it can use
            env.setdefault("CONVEYOR_TOPIC_PARTITIONS", "1")
        if not env.get("DATABASE_URL"):
            ensure_port_free("127.0.0.1", postgres_port, "the embedded PostgreSQL")
            argv = [*me, "infra", "postgres", "--port", str(postgres_port), *where]
            programs.append(
                supervise.Program("postgres", argv, supervise.POSTGRES, start_s=3, stop_wait_s=20)
            )
            embedded = EmbeddedPostgres(state_dir / "postgres" / "data", port=postgres_port)
            env["DATABASE_URL"] = embedded.url(DATABASE)
        ports = {name: http_port + i for i, name in enumerate(SERVICES)}
        for name, port in ports.items():
            ensure_port_free("127.0.0.1", port, f"the {name} service")
    except InfraError as exc:
        raise _fail(str(exc)) from exc
    # the risk worker's faust data directory: this stack's, wherever --state-dir puts it
    env.setdefault("CONVEYOR_RISK_DATADIR", str(state_dir.resolve() / "risk"))
    for name, module in SERVICES.items():
        intake = name == "order"  # stopped last of the services, right before the broker
        programs.append(
            supervise.Program(
                name,
                [sys.executable, "-m", module],
                supervise.INTAKE if intake else supervise.SERVICES,
                group="" if intake else "services",
                env={"CONVEYOR_HTTP_PORT": str(ports[name]), "CONVEYOR_INSTANCE_ID": "dev"},
            )
        )
    text = supervise.config_text(
        programs, state_dir=state_dir, workdir=Path.cwd(), color=sys.stdout.isatty()
    )
    conf = supervise.write_config(text, state_dir)
    console.print(
        Panel.fit(
            f"broker   {env['KAFKA_BOOTSTRAP_SERVERS']}\n"
            f"database {env['DATABASE_URL']}\n"
            f"orders   POST http://127.0.0.1:{ports['order']}/orders   (API docs: /docs)\n"
            f"portal   GET  http://127.0.0.1:{ports['portal']}/orders/{{id}}\n"
            f"metrics  http://127.0.0.1:{ports['order']}/metrics, health /health/ready\n"
            f"logs     here, and {state_dir}/*.log\n"
            f"status   {supervise.ctl_command(conf)} status\n"
            "A process that exits is restarted. Ctrl+C stops the services, then the\n"
            "order service (it reads the storefronts' orders to the end), the broker\n"
            "and PostgreSQL.",
            title="Conveyor is starting",
        )
    )
    code, asked = supervise.run(
        conf,
        env,
        on_stop="\nStopping: the services (each up to 30 s to finish its work), then the "
        "order service, the broker, PostgreSQL.\n",
    )
    if code == 0:
        console.print(
            "Conveyor stopped." if asked else "Conveyor stopped (supervisord was told to)."
        )
        raise typer.Exit(0)
    console.print(
        f"[bold red]Conveyor stopped:[/] supervisord exited with {code}; its log is "
        f"{state_dir / 'supervisord.log'}."
    )
    raise typer.Exit(code)


class _StopRequested(Exception):
    """SIGTERM or SIGINT arrived while waiting for the child."""


def _run_foreground(
    start: Callable[[], None], proc_wait: Callable[[], int], stop: Callable[[], None]
) -> int | None:
    """Start the child, then block until it exits: its exit code; None when it was
    stopped on request (SIGTERM or SIGINT, also during start-up).

    A signal only interrupts; ``stop`` then runs in the main flow. (Run inside the signal
    handler, its own wait for the child deadlocked on the lock the interrupted wait still
    held, and only the supervisor's SIGKILL ended the process.)
    """

    def interrupt(*_: object) -> None:
        raise _StopRequested

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, interrupt)
    try:
        start()
        return int(proc_wait())
    except _StopRequested:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl+C must not cut the stop short
        stop()
        return None


@infra.command("broker")
def infra_broker(port: int = 19092, state_dir: StateDir = Path(".conveyor")) -> None:
    """Run the embedded Tansu broker (memory only) until stopped."""
    broker = EmbeddedBroker(state_dir / "broker", port=port)

    def start() -> None:
        bootstrap = broker.start()
        # at once, before any service: Tansu acknowledges records for a topic that does
        # not exist yet, and creating the topic afterwards starts an empty log (records a
        # storefront published in between were lost)
        partitions = os.environ.get("CONVEYOR_TOPIC_PARTITIONS")
        asyncio.run(ensure_topics(bootstrap, int(partitions) if partitions else None))
        console.print(f"broker ready on {bootstrap} (log: {broker.log_path})")

    try:
        code = _run_foreground(start, lambda: broker.proc.wait() if broker.proc else 0, broker.stop)
    except InfraError as exc:
        raise _fail(str(exc)) from exc
    if code is None:
        console.print("broker stopped")
        raise typer.Exit(0)
    console.print(f"[bold red]broker exited ({code})[/]: every topic and offset is gone.")
    raise typer.Exit(code or 1)


@infra.command("postgres")
def infra_postgres(port: int = 15432, state_dir: StateDir = Path(".conveyor")) -> None:
    """Run the embedded PostgreSQL (data kept in STATE_DIR/postgres) until stopped."""
    postgres = EmbeddedPostgres(state_dir / "postgres" / "data", port=port)

    def start() -> None:
        postgres.start()
        create_database(postgres.url(), DATABASE)
        console.print(
            f"postgres ready: {postgres.url(DATABASE)}, or over TCP "
            f"{postgres.tcp_url(DATABASE)} (log: {postgres.log_path})"
        )

    try:
        code = _run_foreground(
            start, lambda: postgres.proc.wait() if postgres.proc else 0, postgres.stop
        )
    except InfraError as exc:
        raise _fail(str(exc)) from exc
    if code is None:
        console.print("postgres stopped")
        raise typer.Exit(0)
    console.print(f"[bold red]postgres exited ({code})[/]")
    raise typer.Exit(code or 1)


@app.command()
def send(
    file: Annotated[Path, typer.Argument(help="JSON file with an order.submit.v1 body")],
    bootstrap: str = typer.Option("127.0.0.1:19092", envvar="KAFKA_BOOTSTRAP_SERVERS"),
) -> None:
    """Publish a storefront order to order.commands, as any Kafka producer would."""
    from shared.runtime.client import publish_submission

    try:
        body = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise _fail(f"cannot read {file}: {exc}") from exc
    event_id = asyncio.run(publish_submission(bootstrap, body))
    console.print(
        f"sent order.submit.v1 {event_id} for reference {body.get('storefront_reference')}"
    )


@app.command()
def simulate(
    count: int = typer.Option(100, min=1, help="how many orders to publish"),
    rate: float = typer.Option(20.0, min=0, help="orders per second (0 = as fast as possible)"),
    decline_share: float = typer.Option(0.0, min=0, max=1, help="share of declined cards"),
    seed: int = typer.Option(1, help="same seed, same orders"),
    storefront: str = typer.Option("sim-store", help="storefront_id of the orders"),
    run_id: str = typer.Option("", help="reference prefix (default: a new one per run)"),
    bootstrap: str = typer.Option("127.0.0.1:19092", envvar="KAFKA_BOOTSTRAP_SERVERS"),
) -> None:
    """Publish simulated storefront orders to order.commands at a steady rate."""
    import random
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from shared.runtime.storefront import order_body, publish_orders

    run = run_id or f"sim-{int(time.time())}"
    rng = random.Random(seed)
    bodies = [
        order_body(n, rng, storefront_id=storefront, run_id=run, decline_share=decline_share)
        for n in range(count)
    ]
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        "[progress.percentage]{task.percentage:>3.0f}%",
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"publishing {run}", total=count)
        asyncio.run(
            publish_orders(bootstrap, bodies, rate=rate, on_sent=lambda *_: progress.advance(task))
        )
    console.print(
        f"published {count} orders ({storefront}, references {run}-0000000…); "
        f"follow one: GET /orders/{{id}} on the portal, or /customers/{{id}}/orders"
    )


def _dlq_service(service: str) -> str:
    from shared.schemas.topics import CONSUMING_SERVICES

    if service not in CONSUMING_SERVICES:
        raise _fail(f"no dead-letter topic for {service!r}; one of {sorted(CONSUMING_SERVICES)}")
    return service


def _show_letters(service: str, letters: list[Any]) -> None:
    from collections import Counter

    from rich.table import Table

    by_cause = Counter((letter.reason, letter.original_topic) for letter in letters)
    summary = Table(title=f"{len(letters)} dead letters of {service} not re-driven yet")
    for column in ("reason", "from topic", "records"):
        summary.add_column(column)
    for (reason, topic), n in by_cause.most_common():
        summary.add_row(reason, topic, str(n))
    console.print(summary)
    if cut := sum(1 for letter in letters if letter.cut):
        console.print(
            f"{cut} of them were too large to keep whole (dlq_truncated): a re-drive sets "
            "them aside, as only part of the original record is left"
        )
    recent = Table(title="most recent (up to 10)")
    for column in ("failed at", "type", "key", "detail"):
        recent.add_column(column, overflow="fold")
    for letter in letters[-10:]:
        key = (letter.record.key or b"").decode(errors="replace")
        recent.add_row(letter.failed_at, letter.event_type, key, letter.detail[:160])
    console.print(recent)


@dlq.command("show")
def dlq_show(
    service: Annotated[str, typer.Argument(help="the service, e.g. shipping")],
    bootstrap: str = typer.Option("127.0.0.1:19092", envvar="KAFKA_BOOTSTRAP_SERVERS"),
) -> None:
    """List the dead letters not re-driven yet: why, from where, the latest ones."""
    from shared.runtime.redrive import RedriveError, pending

    try:
        letters = asyncio.run(pending(bootstrap, _dlq_service(service)))
    except RedriveError as exc:
        raise _fail(str(exc)) from exc
    if not letters:
        console.print(f"{service}.dlq: nothing waiting")
        return
    _show_letters(service, letters)


@dlq.command("redrive")
def dlq_redrive(
    service: Annotated[str, typer.Argument(help="the service, e.g. shipping")],
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    bootstrap: str = typer.Option("127.0.0.1:19092", envvar="KAFKA_BOOTSTRAP_SERVERS"),
) -> None:
    """Publish every waiting dead letter again, unchanged, to the topic it came from.

    Do it once the cause is fixed: a record that fails again is dead-lettered again.
    Consumers that already applied a record skip it (same ce_id, their inbox).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    from shared.runtime.redrive import RedriveError, last_offsets, pending, redrive

    service = _dlq_service(service)
    try:
        letters = asyncio.run(pending(bootstrap, service))
        if not letters:
            console.print(f"{service}.dlq: nothing waiting")
            return
        _show_letters(service, letters)
        if not yes and not typer.confirm(f"re-drive these {len(letters)} records?"):
            raise typer.Exit(1)
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
        ) as progress:
            whole = sum(1 for letter in letters if not letter.cut)
            task = progress.add_task(f"re-driving {service}.dlq", total=whole)
            sent = asyncio.run(
                redrive(
                    bootstrap,
                    service,
                    up_to=last_offsets(letters),  # what was shown; later ones stay
                    on_sent=lambda _: progress.advance(task),
                )
            )
    except RedriveError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"re-drove {len(sent)} records; follow them in the service's logs and metrics")
    if set_aside := len(letters) - len(sent):
        console.print(f"set aside {set_aside} records cut to fit (dlq_truncated), not re-driven")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
