"""asyncpg pool per service schema, and schema migrations with yoyo."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential
from yoyo import get_backend, read_migrations

RUNTIME_MIGRATIONS = Path(__file__).parent / "migrations"

# The database cannot be reached right now: not the fault of whatever we were doing.
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    # the server is shutting down or restarting after a crash: it will be back
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    # a connection left mid-operation when the server vanished ("cannot switch to
    # state ..."): the pool replaces it, the work goes again
    asyncpg.InternalClientError,
)

# InvalidCatalogName: `make run` starts the services while the database is being created
CONNECT_ERRORS = (
    OSError,
    asyncpg.CannotConnectNowError,
    asyncpg.PostgresConnectionError,
    asyncpg.InvalidCatalogNameError,
)


async def wait_for_database(url: str, timeout_s: float = 60.0) -> None:
    """Wait until PostgreSQL accepts connections (the stack starts all processes at once)."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(CONNECT_ERRORS),
        wait=wait_exponential(multiplier=0.05, max=1.0),
        stop=stop_after_delay(timeout_s),
        reraise=True,
    ):
        with attempt:
            conn = await asyncpg.connect(url)
            await conn.close()


async def create_pool(
    url: str, schema: str, *, min_size: int = 1, max_size: int = 5
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": schema, "application_name": f"conveyor-{schema}"},
        reset=keep_session,
    )
    assert pool is not None
    return pool


async def keep_session(conn: asyncpg.Connection) -> None:
    """Released connections skip asyncpg's server-side reset (``RESET ALL``, ``UNLISTEN
    *``, advisory unlocks): one round trip saved per unit of work. The pool still rolls
    back an open transaction and drops the client's listeners. Code that takes session
    state undoes it before release: listeners ``remove_listener`` (it sends
    ``UNLISTEN``), and the relay, the one holder of a session advisory lock, calls
    :func:`reset_session`."""


async def reset_session(conn: asyncpg.Connection) -> None:
    """Before releasing a connection that took session state: asyncpg's full reset, or
    a broken connection is closed rather than returned."""
    try:
        await conn.reset(timeout=5)
    except (Exception, asyncio.CancelledError):
        conn.terminate()
        raise


def _yoyo_url(url: str, schema: str) -> str:
    parts = urlsplit(url)
    scheme = "postgresql+psycopg"
    # keep the URL's own parameters (a Unix socket's host, its port)
    query = urlencode({**dict(parse_qsl(parts.query)), "schema": schema})
    return urlunsplit((scheme, parts.netloc, parts.path, query, ""))


def _apply(url: str, schema: str, folders: list[Path]) -> list[str]:
    backend = get_backend(_yoyo_url(url, schema))
    applied: list[str] = []
    with backend.lock():
        for folder in folders:
            pending = backend.to_apply(read_migrations(str(folder)))
            backend.apply_migrations(pending)
            applied.extend(m.id for m in pending)
    return applied


async def migrate(url: str, schema: str, service_migrations: Path) -> list[str]:
    """Create the service's schema, then apply the runtime's and the service's migrations.

    Runtime tables (inbox, outbox) come first; both sets are tracked by yoyo inside the
    service's own schema, so services never see each other's history.
    """
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        await conn.close()
    return await asyncio.to_thread(_apply, url, schema, [RUNTIME_MIGRATIONS, service_migrations])
