"""A database outage logs one line per failed reconnect, not a traceback."""

from __future__ import annotations

import logging

import pytest

from shared.runtime.logging import OutageWithoutTraceback


def test_the_pool_warning_keeps_the_error_and_drops_the_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool_log = logging.getLogger("asyncpg.pool.test")
    pool_log.addFilter(OutageWithoutTraceback())
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError:
        with caplog.at_level(logging.WARNING):
            pool_log.warning("Failed to restore the pool connection floor; retrying", exc_info=True)
    [record] = caplog.records
    assert record.exc_info is None
    assert "Traceback" not in caplog.text
    assert record.getMessage() == (
        "Failed to restore the pool connection floor; retrying: "
        "ConnectionRefusedError(111, 'Connection refused')"
    )
