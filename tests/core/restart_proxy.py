"""A loopback TCP proxy in front of a real database that can "restart".

``down()`` closes the listener and every proxied connection (as a server that stops does:
its clients see the sockets close) and refuses new ones until ``up()`` listens again on the
same port. It lets the connect-policy tests restart "the database" in well under a second,
without touching the shared servers.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.topology import ports


class RestartingProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        (self.port,) = ports.reserve(1)
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def down(self) -> None:
        """Stop listening and drop every open connection (both directions)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._links):
            writer.close()
        self._links.clear()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.sleep(0.05)  # let the clients' transports see the close

    async def close(self) -> None:
        await self.down()
        ports.release([self.port])

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self._links.update((client_w, server_w))
        for source, sink in ((client_r, server_w), (server_r, client_w)):
            pump = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.close()
