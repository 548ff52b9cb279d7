"""Choose the broker and database: what the environment names, else containers where a
Docker engine answers, else the embedded ones. Tests and ``make run`` both come here."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from shared.runtime.infra.embedded import EmbeddedBroker, EmbeddedPostgres, create_database


@dataclass(frozen=True)
class Infrastructure:
    kind: str  # "external" | "docker" | "embedded"
    bootstrap: str
    admin_url: str
    new_broker: Callable[[], tuple[str, Callable[[], None]]] | None = None

    def database_url(self, name: str) -> str:
        """URL of database ``name`` on this server, created if missing."""
        create_database(self.admin_url, name)
        parts = urlsplit(self.admin_url)
        return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def docker_reachable() -> bool:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return True  # a remote engine was named on purpose
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(0.5)
            s.connect(host.removeprefix("unix://"))
        return True
    except OSError:
        return False


def choose_kind(requested: str = "auto") -> str:
    if requested != "auto":
        return requested
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("DATABASE_URL"):
        return "external"
    if docker_reachable():
        try:
            import testcontainers  # noqa: F401
        except ImportError:
            return "embedded"
        return "docker"
    return "embedded"


@contextmanager
def infrastructure(
    state_dir: Path, *, kind: str = "auto", durable: bool = True
) -> Iterator[Infrastructure]:
    kind = choose_kind(os.environ.get("CONVEYOR_INFRA", kind))
    with ExitStack() as stack:
        if kind == "external":
            yield Infrastructure(
                kind, os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["DATABASE_URL"]
            )
        elif kind == "docker":
            from shared.runtime.infra.containers import start_containers, start_kafka

            bootstrap, admin_url = stack.enter_context(start_containers())

            def new_container_broker() -> tuple[str, Callable[[], None]]:
                inner = ExitStack()
                return inner.enter_context(start_kafka()), inner.close

            yield Infrastructure(kind, bootstrap, admin_url, new_container_broker)
        elif kind == "embedded":
            postgres = EmbeddedPostgres(state_dir / "postgres" / "data", durable=durable)
            postgres.start()
            stack.callback(postgres.stop)
            broker = EmbeddedBroker(state_dir / "broker")
            broker.start()
            stack.callback(broker.stop)

            def new_broker() -> tuple[str, Callable[[], None]]:
                extra = EmbeddedBroker(state_dir / "broker")
                return extra.start(), extra.stop

            yield Infrastructure(kind, broker.bootstrap, postgres.url(), new_broker)
        else:
            raise ValueError(
                f"unknown infrastructure kind {kind!r} (auto|embedded|docker|external)"
            )
