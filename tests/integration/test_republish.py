"""The bookkeeping of a republish, on a real PostgreSQL: which rows go again, marking in
chunks that a crash can resume, and readiness held until the relay sent every one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared.runtime import republish
from shared.runtime.db import create_pool, migrate
from shared.runtime.infra.stack import Infrastructure

SCHEMA = "republish_test"


@pytest.fixture
async def pool(infra: Infrastructure, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    url = infra.database_url(f"republish_{tmp_path.name[-20:].lower().replace('-', '_')}")
    (tmp_path / "none").mkdir()
    await migrate(url, SCHEMA, tmp_path / "none")
    found = await create_pool(url, SCHEMA)
    try:
        yield found
    finally:
        await found.close()


async def write(pool: asyncpg.Pool, count: int, *, sent: bool) -> None:
    await pool.executemany(
        f"""INSERT INTO outbox (event_id, topic, header_names, header_values, payload, sent_at)
            VALUES ($1, 't', '{{}}', '{{}}', '\\x00', {"now()" if sent else "NULL"})""",
        [(f"{'s' if sent else 'u'}-{n}-{id(pool)}",) for n in range(count)],
    )


async def unsent(pool: asyncpg.Pool) -> list[int]:
    return [r["id"] for r in await pool.fetch("SELECT id FROM outbox WHERE sent_at IS NULL")]


async def send_all(pool: asyncpg.Pool) -> None:
    """What the relay does: publish, then mark sent."""
    await pool.execute("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL")


async def test_the_first_broker_is_recorded_and_the_same_one_changes_nothing(
    pool: asyncpg.Pool,
) -> None:
    await write(pool, 5, sent=True)
    assert not await republish.record_cluster(pool, "first", lost=False)
    assert not await republish.record_cluster(pool, "first", lost=False)
    assert await republish.mark_unsent(pool) == 0
    assert await unsent(pool) == []
    assert await republish.finished(pool)


async def test_a_new_broker_gets_every_sent_row_again_in_chunks(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(republish, "MARK_CHUNK_ROWS", 3)
    await write(pool, 10, sent=True)
    await republish.record_cluster(pool, "first", lost=False)
    assert await republish.record_cluster(pool, "second", lost=False)
    await write(pool, 2, sent=False)  # written after the loss: already on their way

    assert await republish.mark_unsent(pool) == 10
    assert len(await unsent(pool)) == 12
    assert not await republish.finished(pool), "not ready while rows wait"
    await send_all(pool)
    assert await republish.finished(pool)
    async with pool.acquire() as conn:
        epoch = await republish.read_epoch(conn)
    assert (epoch.cluster_id, epoch.republish_through) == ("second", None)


async def test_a_crash_halfway_through_marking_resumes_where_it_stopped(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(republish, "MARK_CHUNK_ROWS", 4)
    await write(pool, 10, sent=True)
    ids = sorted(r["id"] for r in await pool.fetch("SELECT id FROM outbox"))
    await republish.record_cluster(pool, "first", lost=False)
    await republish.record_cluster(pool, "second", lost=False)

    real_execute = asyncpg.Connection.execute
    chunks = 0

    async def crash_after_first_chunk(self: asyncpg.Connection, sql: str, *args: object) -> str:
        nonlocal chunks
        if sql.startswith("UPDATE broker_epoch SET marked_through"):
            chunks += 1
            if chunks == 2:
                raise ConnectionResetError("the process died here")
        return await real_execute(self, sql, *args)

    monkeypatch.setattr(asyncpg.Connection, "execute", crash_after_first_chunk)
    with pytest.raises(ConnectionResetError):
        await republish.mark_unsent(pool)
    monkeypatch.setattr(asyncpg.Connection, "execute", real_execute)
    assert sorted(await unsent(pool)) == ids[:4], "the first chunk only, committed"
    assert not await republish.finished(pool), "marking unfinished: not ready"

    # the next start: the cluster id is the one recorded, the marking goes on
    assert not await republish.record_cluster(pool, "second", lost=False)
    assert await republish.mark_unsent(pool) == 6
    assert sorted(await unsent(pool)) == ids


async def test_a_second_loss_during_a_republish_starts_it_again_from_the_first_row(
    pool: asyncpg.Pool,
) -> None:
    await write(pool, 6, sent=True)
    await republish.record_cluster(pool, "first", lost=False)
    await republish.record_cluster(pool, "second", lost=False)
    await republish.mark_unsent(pool)
    await pool.execute("UPDATE outbox SET sent_at = now() WHERE id IN (SELECT min(id) FROM outbox)")

    # the same broker's offsets went back (the relay saw it): everything goes once more
    assert await republish.record_cluster(pool, "second", lost=True)
    assert await republish.mark_unsent(pool) == 1
    assert len(await unsent(pool)) == 6
