"""A TCP forwarder between the services and the broker, so a test can cut the network.

Stopping the memory-only broker would also wipe its topics, and a client that publishes
in the instant before the test recreates them is acked into a topic that then vanishes —
an artefact no real cluster has. Cutting the connections instead is a real outage: the
broker keeps its state, the clients see refused connections until it is restored.
The forwarder runs its own event loop in a thread, so the test's loop cannot stall it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from shared.runtime.infra.embedded import free_port


class NetworkProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.upstream_port = upstream_port
        self.port = free_port(host)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._streams: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> NetworkProxy:
        self._thread.start()
        self.restore()
        return self

    def restore(self) -> None:
        """Accept and forward connections (again)."""
        self._call(self._listen())

    def cut(self) -> None:
        """Refuse new connections and drop every open one, as a network partition does."""
        self._call(self._cut())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._forward, self.host, self.port)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._streams):
            writer.transport.abort()
        self._streams.clear()

    async def _forward(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        try:
            upstream_r, upstream_w = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            client_w.transport.abort()
            return
        self._streams.update((client_w, upstream_w))
        await asyncio.gather(_pipe(client_r, upstream_w), _pipe(upstream_r, client_w))
        self._streams.difference_update((client_w, upstream_w))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
