"""Session fixtures that start each topology once (seconds) and stop it at the end.

Without the server binaries the tests skip with the reason; in CI (``CI=true``) they fail,
so the topology suite can never silently stop running there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Protocol, TypeVar

import pytest
from sqlalchemy import text

from tests.conftest import require_service
from tests.topology import servers
from tests.topology.models import Note
from viveka_db import DatabaseSessionFactory

S = TypeVar("S", bound="Stoppable")


class Stoppable(Protocol):
    def stop(self) -> None: ...


def started(start: Callable[[], S], what: str) -> Iterator[S]:
    """Start a topology for a fixture, stop it afterwards; a missing binary skips (or, in CI,
    fails) with the reason."""
    try:
        handle = start()
    except servers.TopologyUnavailable as exc:
        require_service(what, str(exc))
        raise  # unreachable: require_service skips or fails
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def pg_pair() -> Iterator[servers.PostgresPair]:
    yield from started(servers.postgres_pair, "PostgreSQL replica topology")


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[servers.RedisProcesses]:
    yield from started(servers.redis_cluster, "Redis Cluster topology")


@pytest.fixture(scope="session")
def redis_sentinels() -> Iterator[servers.RedisProcesses]:
    yield from started(servers.redis_sentinels, "Redis Sentinel topology")


@pytest.fixture
async def replicated(pg_pair: servers.PostgresPair) -> AsyncIterator[DatabaseSessionFactory]:
    """The default data source on the pair: writes on the primary, reads on the replica."""
    await DatabaseSessionFactory.close_all()
    factory = DatabaseSessionFactory(
        {
            "database": {
                "url": pg_pair.primary_url,
                "read_urls": pg_pair.replica_url,
                "replica_probe_interval": 0.05,
                "replica_retry_after": 0.3,
                "replica_connect_timeout": 1.0,
                "read_your_writes_secret": "topology-tests",
            }
        }
    )
    await asyncio.create_task(factory.create_all([Note]))  # its write floor stays there
    try:
        yield factory
    finally:
        with contextlib.suppress(RuntimeError):
            pg_pair.psql(pg_pair.replica_port, "select pg_wal_replay_resume()")
        async with factory.engine.begin() as conn:
            await conn.execute(text(f"DELETE FROM {Note.__tablename__}"))
        await DatabaseSessionFactory.close_all()
