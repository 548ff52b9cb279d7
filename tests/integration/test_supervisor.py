"""`conveyor up` under supervisord: a killed service comes back while the others run on,
and Ctrl+C stops the intake, then the services, the broker and PostgreSQL last."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from shared.runtime import supervise
from shared.runtime.cli import SERVICES
from shared.runtime.infra.embedded import free_port
from tests.integration.harness import ROOT, eventually

START_BOUND_S = 120  # eight services, a broker and PostgreSQL on a shared 2-core machine
STOP_BOUND_S = 90  # each service may take 30 s to drain; in practice the stop takes ~3 s


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive free ports (the services' HTTP ports)."""
    for _ in range(50):
        first = free_port("127.0.0.1")
        if first + count < 65000 and all(_bindable(first + i) for i in range(count)):
            return first
    raise AssertionError(f"no {count} consecutive free ports")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def spawn(argv: list[str], out: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Output to a plain file opened for writing, as `make run > run.log` gives: not
    appending, so every process's lines survive only if `conveyor up` sees to it."""
    with out.open("wb") as sink:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)


def ctl_status(conf: Path) -> str:
    ctl = Path(sys.executable).parent / "supervisorctl"
    return subprocess.run(
        [ctl, "-c", conf, "status"], capture_output=True, text=True, check=False
    ).stdout


def text_of(out: Path) -> str:
    return out.read_text(errors="replace")


def programs_of(up: subprocess.Popen[bytes]) -> dict[str, psutil.Process]:
    """supervisord's children by program name (services by module, broker, postgres)."""
    found: dict[str, psutil.Process] = {}
    modules = {module: name for name, module in SERVICES.items()}
    for supervisord in psutil.Process(up.pid).children():
        for child in supervisord.children():
            try:
                argv = child.cmdline()
            except psutil.NoSuchProcess:
                continue
            if "infra" in argv:
                found[argv[argv.index("infra") + 1]] = child
            elif "-m" in argv and argv[argv.index("-m") + 1] in modules:
                found[modules[argv[argv.index("-m") + 1]]] = child
    return found


async def all_ready(ports: dict[str, int], up: subprocess.Popen[bytes], out: Path) -> bool:
    if up.poll() is not None:
        raise AssertionError(f"conveyor up exited with {up.returncode}:\n{text_of(out)}")
    async with httpx.AsyncClient(timeout=2) as http:
        for port in ports.values():
            try:
                if (await http.get(f"http://127.0.0.1:{port}/health/ready")).status_code != 200:
                    return False
            except httpx.TransportError:
                return False
    return True


async def test_a_killed_service_is_restarted_and_ctrl_c_stops_in_order(tmp_path: Path) -> None:
    first = free_port_run(len(SERVICES))
    ports = {name: first + i for i, name in enumerate(SERVICES)}
    state = tmp_path / "state"
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    out = tmp_path / "up.out"
    up = spawn(
        [sys.executable, "-m", "shared.runtime.cli", "up", "--state-dir", str(state),
         "--broker-port", str(free_port()), "--postgres-port", str(free_port()),
         "--http-port", str(first)],
        out, env,
    )  # fmt: skip
    try:
        await eventually(
            lambda: all_ready(ports, up, out), timeout_s=START_BOUND_S, what="every service ready"
        )
        before = programs_of(up)
        assert set(before) == {*SERVICES, "broker", "postgres"}, before

        status = ctl_status(state / "supervisord.conf")
        assert status.count("RUNNING") == len(before) + 1, status  # and the alerts listener

        # one service dies: it alone comes back, under a new pid, and says so
        before["packing"].send_signal(signal.SIGKILL)

        async def packing_back() -> bool:
            now = programs_of(up)
            return "packing" in now and now["packing"].pid != before["packing"].pid

        await eventually(packing_back, timeout_s=30, what="packing restarted")
        await eventually(
            lambda: all_ready(ports, up, out), timeout_s=START_BOUND_S, what="packing ready again"
        )
        after = programs_of(up)
        for name, process in before.items():
            if name != "packing":
                assert after[name].pid == process.pid, f"{name} was restarted too"
        assert f"!! packing exited unexpectedly (pid {before['packing'].pid})" in text_of(out)

        # Ctrl+C: the services, the intake (order), the broker, PostgreSQL last; all drained
        up.send_signal(signal.SIGINT)

        async def stopping() -> bool:
            return "received SIGTERM indicating exit request" in text_of(out)

        await eventually(stopping, timeout_s=10, what="supervisord to begin the stop")
        up.send_signal(signal.SIGINT)  # impatient: a second Ctrl+C must not cut it short
        assert up.wait(STOP_BOUND_S) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    text = text_of(out)
    assert "Traceback" not in text, text[-6000:]
    assert text.rstrip().endswith("Conveyor stopped."), text[-3000:]
    stopped = re.findall(r"INFO stopped: (\w+) \(exit status 0\)", text)
    others = set(SERVICES) - {"order"}
    assert set(stopped[: len(others)]) == others, stopped
    assert stopped[len(others) :] == ["order", "broker", "postgres", "alerts"], stopped
    assert not any(p.is_running() for p in after.values()), "every program has exited"


def _supervised(
    tmp_path: Path, argv: list[str], start_retries: int = 3, *more: supervise.Program
) -> Path:
    program = supervise.Program("flaky", argv, supervise.SERVICES, start_s=5, stop_wait_s=5)
    text = supervise.config_text(
        [program, *more], state_dir=tmp_path, workdir=ROOT, start_retries=start_retries
    )
    return supervise.write_config(text, tmp_path)


RUNNER = """
import os, sys
from pathlib import Path
from shared.runtime import supervise
code, asked = supervise.run(Path(sys.argv[1]), os.environ, on_stop="stopping\\n")
print("supervisord exited", code, "asked" if asked else "by itself", flush=True)
"""


async def test_a_program_that_keeps_failing_to_start_is_named_until_given_up(
    tmp_path: Path,
) -> None:
    conf = _supervised(tmp_path, [sys.executable, "-c", "raise SystemExit(3)"], start_retries=2)
    out = tmp_path / "out"
    runner = spawn([sys.executable, "-c", RUNNER, str(conf)], out)
    try:

        async def gave_up() -> bool:
            return "gave up" in text_of(out)

        await eventually(gave_up, timeout_s=30, what="supervisord to give up on the program")
        assert "FATAL" in ctl_status(conf)
        runner.terminate()
        assert runner.wait(30) == 0
    finally:
        if runner.poll() is None:
            runner.kill()
    text = text_of(out)
    assert "!! flaky exited during start-up (1 in a row, of 3 allowed): next try in 1 s" in text
    assert "!! flaky exited during start-up (2 in a row, of 3 allowed): next try in 2 s" in text
    assert "3 in a row" not in text, "no next try is promised after the last"
    assert "!! flaky gave up after 3 failed starts in a row: the stack runs WITHOUT it" in text
    assert f"supervisorctl -c {conf} start flaky" in text


SLOW_TO_STOP = (  # one line: supervisord's command is one
    "import signal, sys, time; "
    "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(2), sys.exit(0))); time.sleep(600)"
)


async def test_a_stop_during_back_off_raises_no_alarm(tmp_path: Path) -> None:
    """On a stop supervisord gives up on a program waiting to be tried again: that is no
    failure, and no `!!` line may say so."""
    # stopped after it, slowly, as PostgreSQL is after the services: the listener still runs
    slow = supervise.Program("slow", [sys.executable, "-c", SLOW_TO_STOP], supervise.POSTGRES)
    failing = [sys.executable, "-c", "raise SystemExit(3)"]
    conf = _supervised(tmp_path, failing, 50, slow)
    out = tmp_path / "out"
    runner = spawn([sys.executable, "-c", RUNNER, str(conf)], out)
    try:

        async def backing_off() -> bool:  # the third failure: 3 s before the next try
            return text_of(out).count("exited: flaky (exit status 3; not expected)") == 3

        await eventually(backing_off, timeout_s=30, what="the program to back off")
        runner.terminate()
        assert runner.wait(30) == 0
    finally:
        if runner.poll() is None:
            runner.kill()
    text = text_of(out)
    assert "!! flaky gave up" not in text, text


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
async def test_a_signal_to_the_runner_stops_supervisord_and_its_programs(
    tmp_path: Path, sig: int
) -> None:
    """SIGINT is the full-stack test's; SIGHUP is a closed terminal; after a SIGKILL the
    kernel tells supervisord that its parent died, so nothing is left running either."""
    conf = _supervised(tmp_path, ["sleep", "600"])
    out = tmp_path / "out"
    runner = spawn([sys.executable, "-c", RUNNER, str(conf)], out)

    async def sleeping() -> list[psutil.Process]:
        children = psutil.Process(runner.pid).children(recursive=True)
        return [p for p in children if p.name() == "sleep"]

    try:
        [program] = await eventually(sleeping, timeout_s=30, what="the program to start")
        [supervisord] = psutil.Process(runner.pid).children()
        runner.send_signal(sig)
        runner.wait(30)
        _, alive = psutil.wait_procs([supervisord, program], timeout=30)
        assert not alive, f"left running: {alive}"
    finally:
        if runner.poll() is None:
            runner.kill()
    text = text_of(out)
    if sig != signal.SIGKILL:
        assert runner.returncode == 0
        assert "stopping" in text and "supervisord exited 0 asked" in text, text
    assert "Traceback" not in text, text
