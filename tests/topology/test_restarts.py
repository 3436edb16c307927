"""A real PostgreSQL restart with ``[database] connect_wait``: work that starts while the
server is down waits for it and succeeds; without the setting it fails at once.

The server is a primary of its own (``servers.postgres_pair``), restarted with ``pg_ctl``
(fast shutdown: every session is ended, as in a deploy or a crash-restart).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text

from tests.topology import servers
from tests.topology.conftest import started
from viveka_db import DatabaseSessionFactory, current_session, transactional

pytestmark = [pytest.mark.topology, pytest.mark.postgresql]

SOURCE = "restarting"


@pytest.fixture(scope="module")
def server() -> Iterator[servers.PostgresPair]:
    """A primary of its own (restarting the shared pair's would disturb the replica tests)."""
    yield from started(servers.postgres_pair, "PostgreSQL restart topology")


@pytest.fixture
async def restarting(server: servers.PostgresPair) -> AsyncIterator[DatabaseSessionFactory]:
    factory = DatabaseSessionFactory(
        {"database": {"url": server.primary_url, "connect_wait": 30, "pool_size": 5}},
        data_source=SOURCE,
    )
    yield factory
    await factory.dispose()


@transactional(data_source=SOURCE)
async def work() -> float:
    started = time.monotonic()
    await current_session(SOURCE).execute(text("SELECT 1"))
    return time.monotonic() - started


async def test_twenty_tasks_started_during_a_restart_all_succeed(
    restarting: DatabaseSessionFactory, server: servers.PostgresPair
) -> None:
    await asyncio.gather(*(work() for _ in range(5)))  # a warm pool, which the stop ends
    await asyncio.to_thread(server.stop_primary)
    down_at = time.monotonic()
    tasks = [asyncio.create_task(work()) for _ in range(20)]
    await asyncio.sleep(0.5)
    restart = threading.Thread(target=server.start_primary)
    restart.start()
    try:
        waited = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await asyncio.to_thread(restart.join)
    failed = [w for w in waited if isinstance(w, BaseException)]
    longest = max((w for w in waited if isinstance(w, float)), default=0.0)
    print(
        f"postgresql restart: {len(waited) - len(failed)}/20 ok, longest wait {longest:.2f}s, "
        f"server down {time.monotonic() - down_at:.2f}s"
    )
    assert failed == []
    await asyncio.gather(*(work() for _ in range(10)))  # the pool is healthy afterwards
