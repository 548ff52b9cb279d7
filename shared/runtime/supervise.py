"""How `conveyor up` supervises the stack: supervisord (the `supervisor` package) does it.

``config_text`` writes the stack as a supervisord configuration; ``run`` runs supervisord
in the foreground until a stop is asked for; ``listen`` is its event listener, which
says loudly in the terminal when a program exits unexpectedly, fails to start or is
given up on. What supervisord does with that configuration, as documented and as read in
its source (``supervisord.py``, ``process.py``):

- every program runs in a process group of its own, so a terminal's Ctrl+C reaches only
  ``conveyor up`` (which asks supervisord to stop), never a service directly;
- a program that exits is started again (``autorestart``). One that exits within its
  ``startsecs`` counts as a failed start and waits 1 s, 2 s, 3 s … before the next one;
  after ``startretries`` failed starts in a row it is given up on (FATAL);
- on stop, groups go in descending ``priority``: each is sent SIGTERM and waited for
  (SIGKILL to its whole process group after ``stopwaitsecs``) before the next is stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import secrets
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# supervisord starts in ascending priority and stops in descending priority
SERVICES = 300  # every service but the order service, stopped together
# the order service, stopped after them and right before the broker: until then it goes
# on reading what storefronts publish, because a memory-only broker that stops forgets
# every record no one read (its own events and the others' are republished from the
# outboxes at the next start; a storefront's records exist only in the broker)
INTAKE = 250
BROKER = 200
POSTGRES = 100  # stopped last: services and relays write to it until they are gone
ALERTS = 10  # the event listener, up before anything can fail
START_RETRIES = 100  # failed starts in a row before giving up: waits add up to ~84 min


@dataclass(frozen=True)
class Program:
    name: str
    argv: Sequence[str]
    priority: int
    group: str = ""  # programs of one group share its priority and stop together
    env: Mapping[str, str] = field(default_factory=dict)
    start_s: int = 10  # an exit sooner than this is a failed start (back-off)
    stop_wait_s: int = 30  # SIGTERM, then SIGKILL after this long


def _value(text: str) -> str:
    return text.replace("%", "%%")  # supervisord expands %(...)s in values


def _command(argv: Sequence[str]) -> str:
    import shlex

    return _value(shlex.join(argv))


def control_socket() -> Path:
    """A short path (a Unix socket's must fit in 107 bytes), one per `conveyor up`."""
    return Path(tempfile.gettempdir()) / f"conveyor-supervisor-{os.getpid()}.sock"


def ctl_command(conf: Path) -> str:
    """How an operator reaches the running supervisord."""
    ctl = Path(sys.executable).parent / "supervisorctl"
    return f"{_relative(ctl)} -c {_relative(conf)}"


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def config_text(
    programs: Sequence[Program],
    *,
    state_dir: Path,
    workdir: Path,
    start_retries: int = START_RETRIES,
    color: bool = False,
) -> str:
    state = state_dir.resolve()
    conf = state / "supervisord.conf"
    socket = control_socket()
    password = secrets.token_urlsafe(16)  # the socket is 0700 too; without one, a CRIT line
    sections = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={_value(str(state / 'supervisord.log'))}",
        "logfile_maxbytes=10MB",
        "logfile_backups=2",
        f"pidfile={_value(str(state / 'supervisord.pid'))}",
        f"childlogdir={_value(str(state))}",
        *(["user=root"] if os.geteuid() == 0 else []),  # says so, instead of a CRIT line
        "",
        "[unix_http_server]",
        f"file={_value(str(socket))}",
        "chmod=0700",
        "username=conveyor",
        f"password={password}",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_value(str(socket))}",
        "username=conveyor",
        f"password={password}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[eventlistener:alerts]",
        "command="
        + _command(
            [
                sys.executable,
                "-m",
                "shared.runtime.supervise",
                ctl_command(conf),
                str(start_retries),
                *(["--color"] if color else []),
            ]
        ),
        "events=PROCESS_STATE_EXITED,PROCESS_STATE_BACKOFF,PROCESS_STATE_FATAL,"
        "SUPERVISOR_STATE_CHANGE_STOPPING",
        f"priority={ALERTS}",
        f"directory={_value(str(workdir))}",
        "autorestart=true",
        "stderr_logfile=/dev/stdout",  # stdout is its channel to supervisord
        "stderr_logfile_maxbytes=0",
        "",
    ]
    groups: dict[str, list[Program]] = {}
    for program in programs:
        if program.group:
            groups.setdefault(program.group, []).append(program)
        sections += _program_section(program, workdir, start_retries)
    for group, members in groups.items():
        sections += [
            f"[group:{group}]",
            "programs=" + ",".join(p.name for p in members),
            f"priority={members[0].priority}",
            "",
        ]
    return "\n".join(sections)


def _program_section(program: Program, workdir: Path, start_retries: int) -> list[str]:
    env = ",".join(f'{key}="{_value(value)}"' for key, value in program.env.items())
    return [
        f"[program:{program.name}]",
        f"command={_command(program.argv)}",
        f"priority={program.priority}",
        f"directory={_value(str(workdir))}",
        *([f"environment={env}"] if env else []),
        "autorestart=true",
        f"startsecs={program.start_s}",
        f"startretries={start_retries}",
        f"stopwaitsecs={program.stop_wait_s}",
        "killasgroup=true",  # a SIGKILL also reaches what it started (Tansu, postgres)
        "stdout_logfile=/dev/stdout",  # the terminal, as supervisord's own lines
        "stdout_logfile_maxbytes=0",
        "redirect_stderr=true",
        "",
    ]


def write_config(text: str, state_dir: Path) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    conf = state_dir.resolve() / "supervisord.conf"
    conf.touch(mode=0o600)
    conf.chmod(0o600)  # it holds the control socket's password
    conf.write_text(text)
    return conf


def _stop_with_parent() -> None:
    """Runs in the child before supervisord: if `conveyor up` dies without a word
    (SIGKILL), the kernel sends supervisord SIGTERM, the same ordered stop as Ctrl+C."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _append_to_files() -> None:
    """supervisord and every program write to this process's stdout, each through a file
    description of its own: redirected to a file (``> run.log``), they would overwrite one
    another's lines unless every write goes to the end."""
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.fstat(fd).st_mode):
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)


def run(conf: Path, env: Mapping[str, str], on_stop: str = "") -> tuple[int, bool]:
    """Run supervisord until it exits: its exit code, and whether a stop was asked for.

    supervisord gets a session of its own, so a terminal's signals reach only this
    process: SIGINT, SIGTERM and SIGHUP (terminal closed) each ask it for the ordered
    stop, and ``on_stop`` is printed once.
    """
    asked = False
    proc: subprocess.Popen[bytes] | None = None

    def stop(*_: object) -> None:
        nonlocal asked
        if not asked and on_stop:
            os.write(sys.stderr.fileno(), on_stop.encode())
        asked = True
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):  # not send_signal: wait() locks
                os.kill(proc.pid, signal.SIGTERM)

    _append_to_files()
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, stop) for sig in handled}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "--nodaemon", "-c", str(conf)],
            env=dict(env),
            start_new_session=True,
            preexec_fn=_stop_with_parent,
        )
        if asked:
            stop()
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code, asked


def _alert(headers: dict[str, str], payload: str, ctl: str, retries: int) -> str | None:
    fields = dict(part.split(":", 1) for part in payload.split())
    name = fields.get("processname", "?")
    group = fields.get("groupname", name)
    full = name if group == name else f"{group}:{name}"
    event = headers.get("eventname", "")
    if event == "PROCESS_STATE_EXITED":
        return f"!! {name} exited unexpectedly (pid {fields.get('pid', '?')}): restarting it"
    if event == "PROCESS_STATE_BACKOFF":
        tries = fields.get("tries", "0")
        if int(tries) > retries:
            return None  # no next try: the FATAL alert follows
        return (
            f"!! {name} exited during start-up ({tries} in a row, of {retries + 1} allowed): "
            f"next try in {tries} s; its output is above"
        )
    if event == "PROCESS_STATE_FATAL":
        return (
            f"!! {name} gave up after {retries + 1} failed starts in a row: the stack runs "
            f"WITHOUT it. Fix the cause, then `{ctl} start {full}` (or restart the stack)."
        )
    return None


def listen(ctl: str, retries: int, color: bool) -> None:
    """supervisord's event listener: events arrive on stdin, alerts go to stderr."""
    from supervisor import childutils

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    stopping = False
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        if headers.get("eventname") == "SUPERVISOR_STATE_CHANGE_STOPPING":
            stopping = True  # from here on every exit is asked for
        message = None if stopping else _alert(headers, payload, ctl, retries)
        if message:
            print(f"\x1b[1;31m{message}\x1b[0m" if color else message, file=sys.stderr)
        childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    listen(sys.argv[1], int(sys.argv[2]), color="--color" in sys.argv[3:])
