"""Fixtures for integration and e2e tests: one PostgreSQL for the session; per test a
fresh broker and a fresh database, so tests never see each other's topics, offsets or rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.runtime.infra.stack import Infrastructure, infrastructure
from tests.integration.harness import Stack


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infrastructure]:
    with infrastructure(tmp_path_factory.mktemp("infra"), durable=False) as found:
        yield found


@pytest.fixture
async def stack(infra: Infrastructure, tmp_path: Path) -> AsyncIterator[Stack]:
    if infra.new_broker is None:
        pytest.skip("per-test brokers need the embedded or docker infrastructure")
    bootstrap, stop_broker = infra.new_broker()
    database_url = infra.database_url(f"test_{uuid.uuid4().hex[:12]}")
    world = Stack(bootstrap, database_url, tmp_path)
    try:
        yield world
    finally:
        world.stop_all()
        stop_broker()
