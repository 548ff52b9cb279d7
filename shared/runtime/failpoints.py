"""Crash points for fault tests: ``CONVEYOR_FAILPOINTS=consumer.after_db_commit`` makes
the process SIGKILL itself the first time it reaches that point — the only honest way
to test "killed between the database commit and the offset commit"."""

from __future__ import annotations

import os
import signal

KNOWN = frozenset(
    {
        "consumer.after_db_commit",  # batch committed to Postgres, offsets not yet committed
        "relay.before_publish",  # outbox rows read, nothing sent to Kafka yet
        "relay.after_publish",  # sent and acked, rows not yet marked sent
    }
)


def _armed() -> frozenset[str]:
    names = frozenset(n.strip() for n in os.environ.get("CONVEYOR_FAILPOINTS", "").split(",") if n)
    unknown = names - KNOWN
    if unknown:
        raise ValueError(f"unknown failpoints {sorted(unknown)}; known: {sorted(KNOWN)}")
    return names


ARMED = _armed()


def failpoint(name: str) -> None:
    if name in ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
