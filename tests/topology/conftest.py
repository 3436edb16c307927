"""Session fixtures that start each topology once (seconds) and stop it at the end.

Without the server binaries the tests skip with the reason; in CI (``CI=true``) they fail,
so the topology suite can never silently stop running there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text

from tests.conftest import require_service
from tests.topology import servers
from tests.topology.models import Note
from viveka_db import DatabaseSessionFactory


@pytest.fixture(scope="session")
def pg_pair() -> Iterator[servers.PostgresPair]:
    try:
        pair = servers.postgres_pair()
    except servers.TopologyUnavailable as exc:
        require_service("PostgreSQL replica topology", str(exc))
        raise  # unreachable: require_service skips or fails
    try:
        yield pair
    finally:
        pair.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[servers.RedisProcesses]:
    try:
        procs = servers.redis_cluster()
    except servers.TopologyUnavailable as exc:
        require_service("Redis Cluster topology", str(exc))
        raise
    try:
        yield procs
    finally:
        procs.stop()


@pytest.fixture(scope="session")
def redis_sentinels() -> Iterator[servers.RedisProcesses]:
    try:
        procs = servers.redis_sentinels()
    except servers.TopologyUnavailable as exc:
        require_service("Redis Sentinel topology", str(exc))
        raise
    try:
        yield procs
    finally:
        procs.stop()


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
