"""The fixtures of the viveka_db pytest plugin (imported by :mod:`viveka_db.testing.plugin`).

The async fixtures are function-scoped and run on the loop pytest-asyncio gives fixtures
(``asyncio_default_fixture_loop_scope``). Tables are created once per database URL and run
(again when entities appear that were not imported yet).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from viveka_db.dialects import adapter_for

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from viveka_db.cache.memory import MemoryCache
    from viveka_db.session.db_session import DatabaseSessionFactory

__all__ = ["db_session", "memory_cache", "viveka_db_factory", "viveka_db_url"]

ENV_URL = "VIVEKA_TEST_DATABASE_URL"
MEMORY_URL = "sqlite+aiosqlite:///:memory:"
_tables_ready: dict[str, set[str]] = {}
"""Per database URL, the tables this run has already created (or found)."""


@pytest.fixture(scope="session")
def viveka_db_url(pytestconfig: pytest.Config) -> str:
    """The URL of the test database.

    ``--viveka-db-url``, then ``$VIVEKA_TEST_DATABASE_URL``, then the ``viveka_db_url`` ini
    option, else in-memory SQLite. The application's own configuration is deliberately not
    used, so tests never create tables in a development database by accident.
    """
    option = pytestconfig.getoption("viveka_db_url", default=None)
    ini = str(pytestconfig.getini("viveka_db_url") or "")
    return str(option or os.environ.get(ENV_URL) or ini or MEMORY_URL)


@pytest_asyncio.fixture
async def viveka_db_factory(
    viveka_db_url: str, pytestconfig: pytest.Config
) -> AsyncIterator[DatabaseSessionFactory]:
    """The default data source, initialised on the test database (tables created).

    If the test (or a fixture of yours) already initialised the default data source, that
    one is used as it is and left alone afterwards.
    """
    from viveka_db.base.db_base import VivekaDbBase
    from viveka_db.config import DatabaseSettings, VivekaSettings
    from viveka_db.session.db_session import DatabaseSessionFactory

    if DatabaseSessionFactory.is_initialised():
        yield DatabaseSessionFactory.get_instance()
        return
    factory = DatabaseSessionFactory(VivekaSettings(database=DatabaseSettings(url=viveka_db_url)))
    try:
        in_memory = adapter_for(factory.url.get_backend_name()).in_memory(factory.url)
        done: set[str] = set() if in_memory else _tables_ready.setdefault(viveka_db_url, set())
        wanted = set(VivekaDbBase.metadata.tables)
        if pytestconfig.getini("viveka_db_create_tables") and wanted - done:
            await factory.create_all()
            done.update(wanted)
        yield factory
    finally:
        await factory.dispose()


@pytest_asyncio.fixture
async def db_session(viveka_db_factory: DatabaseSessionFactory) -> AsyncIterator[AsyncSession]:
    """A session in a transaction that is rolled back after the test.

    The test holds one connection with an outer transaction open, and for the length of the
    test every session of the data source joins it through a SAVEPOINT: the session bound
    as the current one for every task of the test (so repository calls and
    ``@transactional`` code join the test's transaction), and the sessions of requests
    through ``DbMiddleware`` or the FastAPI dependency, of ``Propagation.REQUIRES_NEW``,
    ``run_concurrently`` and read-only work. Their commits release savepoints, their
    rollbacks undo only their own work, and everything is rolled back after the test.
    ``await db_session.commit()`` releases a savepoint and runs the after-commit hooks
    registered so far, as a real commit would. Boundaries of concurrent tasks take turns
    on the one connection.
    """
    from viveka_db.context.scope import TransactionScope
    from viveka_db.session.engine import VivekaSession
    from viveka_db.session.shared_connection import SharedConnection
    from viveka_db.testing.session import RollbackSession
    from viveka_db.transaction.unit_of_work import UnitOfWork

    factory = viveka_db_factory
    if factory.shared_connection is not None:
        raise RuntimeError(
            f"data source {factory.data_source!r} already shares a test's connection: "
            "use one db_session per test"
        )
    async with factory.engine.connect() as connection:
        outer = await connection.begin()
        session = RollbackSession(
            bind=connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
            sync_session_class=VivekaSession,
        )
        # owner=None: every task of the test (fixtures run in other tasks) may use it
        scope = TransactionScope(None, data_source=factory.data_source, session=session)
        uow = UnitOfWork(scope, name="db_session")
        session.scope = uow.begin()
        factory.shared_connection = SharedConnection(connection)
        try:
            yield session
        finally:
            factory.shared_connection = None
            try:
                await uow.rollback()  # the test's work never commits: after_rollback hooks run
                await uow.release()
            finally:
                if outer.is_active:
                    await outer.rollback()


@pytest.fixture
def memory_cache() -> Iterator[MemoryCache]:
    """A fresh in-process ``MemoryCache``, installed as the cache of ``@cacheable`` for one test.

    Use ``memory_cache.stats()`` to assert hits, misses and evictions. The previously
    installed cache is restored afterwards.
    """
    from viveka_db.cache.current import reset, use_cache
    from viveka_db.cache.memory import MemoryCache

    cache = MemoryCache()
    previous = use_cache(cache)
    try:
        yield cache
    finally:
        if previous is None:
            reset()
        else:
            use_cache(previous)
