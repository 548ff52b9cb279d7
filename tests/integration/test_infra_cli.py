"""`conveyor infra postgres|broker` (what `make run` supervises): ready, reachable, and
stopped cleanly by SIGTERM or Ctrl+C — not left for the supervisor's SIGKILL."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import asyncpg
import pytest

from shared.runtime.infra.embedded import EmbeddedPostgres, free_port
from tests.integration.harness import ROOT

STOP_BOUND_S = 30  # a hang fails here, long before pytest's own timeout


async def start(*args: str) -> tuple[asyncio.subprocess.Process, list[str]]:
    """Run ``conveyor infra ...`` until it says it is ready; returns it and its output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shared.runtime.cli", "infra", *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []

    async def until_ready() -> None:
        while line := (await proc.stdout.readline()).decode():  # type: ignore[union-attr]
            lines.append(line)
            if " ready" in line:
                return
        raise AssertionError("exited before it was ready:\n" + "".join(lines))

    await asyncio.wait_for(until_ready(), 60)
    return proc, lines


async def stopped(proc: asyncio.subprocess.Process, sig: int) -> int:
    proc.send_signal(sig)
    assert proc.stdout is not None
    await asyncio.wait_for(proc.stdout.read(), STOP_BOUND_S)
    return await asyncio.wait_for(proc.wait(), STOP_BOUND_S)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_postgres_serves_its_socket_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    port = free_port("127.0.0.1")
    proc, _ = await start("postgres", "--port", str(port), "--state-dir", str(tmp_path))
    embedded = EmbeddedPostgres(tmp_path / "postgres" / "data", port=port)
    for url in (embedded.url("conveyor"), embedded.tcp_url("conveyor")):
        conn = await asyncpg.connect(url)
        assert await conn.fetchval("SELECT current_database()") == "conveyor"
        await conn.close()

    assert await stopped(proc, sig) == 0
    assert not embedded.socket_dir.exists(), "the socket directory is removed on stop"
    log = (tmp_path / "postgres" / "postgres.log").read_text()
    assert "database system is shut down" in log


async def test_broker_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    proc, lines = await start("broker", "--port", str(port), "--state-dir", str(tmp_path))
    assert f"127.0.0.1:{port}" in "".join(lines)
    assert await stopped(proc, signal.SIGTERM) == 0
