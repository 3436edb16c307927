"""``check_health(timeout=t)`` answers within ``t`` plus ``CANCEL_GRACE`` when a server goes silent.

Two silent servers on loopback (ports below 32768): one that accepts connections and never
says a word, and a proxy to the real database that stops forwarding after the pool holds a
connection (cancelling a statement on it made asyncpg wait about two seconds more).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url

from viveka_db import DatabaseSessionFactory, check_health
from viveka_db.session.probe import CANCEL_GRACE

SILENT_PORT = 20998
PROXY_PORT = 20997
TIMEOUT = 0.5
SLACK = 0.25  # scheduling noise on a busy two-core machine


class SilentProxy:
    """Forwards TCP to the database while :attr:`flowing` is set; holds every byte otherwise."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: list[asyncio.StreamWriter] = []

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        self.writers += [writer, upstream_writer]
        for pipe in (self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)):
            task = asyncio.create_task(pipe)
            self.tasks.add(task)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in self.writers:
            writer.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def fresh() -> AsyncIterator[None]:
    await DatabaseSessionFactory.close_all()
    yield
    await DatabaseSessionFactory.close_all()


async def _timed_check() -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    report = await check_health(timeout=TIMEOUT)
    elapsed = time.perf_counter() - started
    (database,) = [c for c in report.components if c.kind == "database"]
    return elapsed, database.as_dict()


async def test_a_server_that_never_answers(backend: str, backend_url: str, fresh: None) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has no server")
    accepted: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # and never reply

    server = await asyncio.start_server(accept, "127.0.0.1", SILENT_PORT)
    try:
        url = make_url(backend_url).set(port=SILENT_PORT)
        DatabaseSessionFactory({"database": {"url": url.render_as_string(False)}})
        elapsed, database = await _timed_check()
    finally:
        server.close()
        for writer in accepted:
            writer.close()
    assert database["status"] == "down"
    assert database["error"] == f"timed out after {TIMEOUT:g}s"
    assert elapsed < TIMEOUT + CANCEL_GRACE + SLACK, elapsed


async def test_a_server_that_stops_answering_mid_connection(
    backend: str, backend_url: str, fresh: None
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has no server")
    target = make_url(backend_url)
    proxy = SilentProxy(target.port or 0)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", PROXY_PORT)
    try:
        url = target.set(port=PROXY_PORT).render_as_string(False)
        DatabaseSessionFactory({"database": {"url": url}})
        _, healthy = await _timed_check()
        assert healthy["status"] == "up"  # the pool now holds a connection through the proxy
        proxy.flowing.clear()
        elapsed, database = await _timed_check()
        assert database["status"] == "down"
        assert elapsed < TIMEOUT + CANCEL_GRACE + SLACK, elapsed
    finally:
        proxy.flowing.set()
        server.close()
        await proxy.close()
