"""Shared fixtures: a ``backend`` parameter over SQLite, PostgreSQL and MariaDB, and ``db``.

``db`` initialises the default data source on the backend, creates every mapped table once
per run, and empties the tables after each test. Test modules name their tables with a
prefix of their area (``core_``, ``cache_``, ``repo_``, ``tool_``) so they never collide.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests import backends
from viveka_db import DatabaseSessionFactory, VivekaDbBase

_status: backends.BackendStatus | None = None
_schema_ready: dict[str, set[str]] = {}


def pytest_configure(config: pytest.Config) -> None:
    global _status
    tmp = Path(tempfile.mkdtemp(prefix="viveka_test_"))
    _status = backends.prepare(str(tmp / "viveka_test.db"))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _status is not None:
        backends.teardown(_status)


def pytest_report_header(config: pytest.Config) -> list[str]:
    assert _status is not None
    lines = [f"viveka_db backends: {', '.join(_status.urls) or 'none'}"]
    for backend, why in _status.unavailable.items():
        lines.append(f"viveka_db: SKIPPING {backend} tests: {why}")
    redis = "available" if _status.redis_available else "NOT available (redis tests skip)"
    lines.append(f"viveka_db redis: {redis}")
    return lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    assert _status is not None
    if _status.unavailable or not _status.redis_available:
        terminalreporter.section("viveka_db: services skipped")
        for backend, why in _status.unavailable.items():
            terminalreporter.write_line(f"{backend}: {why}")
        if not _status.redis_available:
            terminalreporter.write_line(f"redis: not reachable at {backends.REDIS_URL}")


def require_service(name: str, reason: str) -> None:
    """Skip (or, in CI, fail) a test whose service is missing."""
    message = f"{name} unavailable: {reason}"
    if backends.IN_CI:
        pytest.fail(f"{message} (CI=true requires every service)")
    pytest.skip(message)


def _backend_params() -> list[object]:
    marks = {
        "sqlite": pytest.mark.sqlite,
        "postgresql": pytest.mark.postgresql,
        "mariadb": pytest.mark.mariadb,
    }
    return [pytest.param(name, marks=marks[name], id=name) for name in backends.selected_backends()]


@pytest.fixture(params=_backend_params())
def backend(request: pytest.FixtureRequest) -> str:
    """The backend name; tests using it (or ``db``) run once per selected backend."""
    name = str(request.param)
    assert _status is not None
    if name not in backends.selected_backends():  # deselected on purpose: not a missing service
        pytest.skip(f"{name} is not selected by VIVEKA_TEST_BACKENDS")
    if name not in _status.urls:
        require_service(name, _status.unavailable.get(name, "not configured"))
    return name


@pytest.fixture
def backend_url(backend: str) -> str:
    assert _status is not None
    return _status.urls[backend]


@pytest.fixture
def redis_url() -> str:
    """A real Redis (database 15), required in CI."""
    assert _status is not None
    if not _status.redis_available:
        require_service("redis", f"not reachable at {backends.REDIS_URL}")
    return backends.REDIS_URL


async def _ensure_schema(factory: DatabaseSessionFactory, backend: str) -> None:
    created = _schema_ready.setdefault(backend, set())
    missing = [t for name, t in VivekaDbBase.metadata.tables.items() if name not in created]
    if not missing:
        return
    if not created:
        await factory.drop_all()
    async with factory.engine.begin() as conn:
        await conn.run_sync(lambda sync: VivekaDbBase.metadata.create_all(sync, tables=missing))
    created.update(t.name for t in missing)


async def empty_tables(factory: DatabaseSessionFactory, backend: str) -> None:
    """Delete every row of every mapped table (children first)."""
    tables = [
        t
        for t in reversed(VivekaDbBase.metadata.sorted_tables)
        if t.name in _schema_ready.get(backend, ())
    ]
    async with factory.engine.begin() as conn:
        if backend == "mariadb":
            await conn.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
        for table in tables:
            await conn.execute(table.delete())
        if backend == "mariadb":
            await conn.execute(text("SET FOREIGN_KEY_CHECKS = 1"))


@pytest.fixture
async def db(backend: str, backend_url: str) -> AsyncIterator[DatabaseSessionFactory]:
    """The default data source on ``backend``, with every table present and empty."""
    await DatabaseSessionFactory.close_all()
    factory = DatabaseSessionFactory({"database": {"url": backend_url}})
    await _ensure_schema(factory, backend)
    try:
        yield factory
    finally:
        if DatabaseSessionFactory.is_initialised():
            factory = DatabaseSessionFactory.get_instance()
        await empty_tables(factory, backend)
        await DatabaseSessionFactory.close_all()


@pytest.fixture
def restore_cache() -> Iterator[None]:
    """Put back whatever cache was installed before the test (tests install their own)."""
    from viveka_db.cache import current

    saved = (current._current, current._explicit)
    try:
        yield
    finally:
        current._current, current._explicit = saved
