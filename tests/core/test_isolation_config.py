"""``[database] isolation_level``: validated, and what the connections really run at."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import literal, select, text

from viveka_db import ConfigurationError, DatabaseSessionFactory, Isolation, load_settings

# A level other than each database's default, so the test sees the setting take effect.
LEVELS = {
    "postgresql": ("REPEATABLE READ", "SHOW transaction_isolation", "repeatable read"),
    "mariadb": ("READ COMMITTED", "SELECT @@tx_isolation", "READ-COMMITTED"),
    "sqlite": ("READ UNCOMMITTED", "PRAGMA read_uncommitted", 1),
}


@pytest.fixture
async def isolated(backend: str, backend_url: str) -> AsyncIterator[DatabaseSessionFactory]:
    await DatabaseSessionFactory.close_all()
    level = LEVELS[backend][0]
    factory = DatabaseSessionFactory({"database": {"url": backend_url, "isolation_level": level}})
    try:
        yield factory
    finally:
        await DatabaseSessionFactory.close_all()


async def test_connections_run_at_the_configured_level(
    isolated: DatabaseSessionFactory, backend: str
) -> None:
    _, query, expected = LEVELS[backend]
    async with isolated.new_session() as session, session.begin():
        assert (await session.execute(text(query))).scalar_one() == expected
    # a second checkout of the pooled connection keeps it
    async with isolated.engine.connect() as conn:
        assert (await conn.execute(text(query))).scalar_one() == expected


async def test_the_default_is_the_database_default(backend: str, backend_url: str) -> None:
    await DatabaseSessionFactory.close_all()
    factory = DatabaseSessionFactory({"database": {"url": backend_url}})
    try:
        _, query, configured = LEVELS[backend]
        async with factory.engine.connect() as conn:
            assert (await conn.execute(text(query))).scalar_one() != configured
    finally:
        await DatabaseSessionFactory.close_all()


@pytest.mark.parametrize("value", ["read committed", "READ_COMMITTED", "Read-Committed"])
def test_spellings_are_accepted(value: str) -> None:
    settings = load_settings({"database": {"isolation_level": value}})
    assert settings.database.isolation_level is Isolation.READ_COMMITTED


def test_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIVEKA_DATABASE__ISOLATION_LEVEL", "serializable")
    assert load_settings({}).database.isolation_level is Isolation.SERIALIZABLE


def test_a_bad_value_is_refused_with_the_valid_ones_listed() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings({"database": {"isolation_level": "read commited"}})
    message = str(info.value)
    assert "isolation_level" in message and "'read commited'" in message
    for level in ("READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"):
        assert level in message


async def test_a_level_the_database_lacks_is_refused_at_start_up() -> None:
    await DatabaseSessionFactory.close_all()
    with pytest.raises(ConfigurationError) as info:
        DatabaseSessionFactory(
            {"database": {"url": "sqlite+aiosqlite://", "isolation_level": "REPEATABLE READ"}}
        )
    assert "not supported by sqlite" in str(info.value)
    assert "READ UNCOMMITTED, SERIALIZABLE" in str(info.value)
    await DatabaseSessionFactory.close_all()


@pytest.mark.parametrize(("level", "locked"), [("SERIALIZABLE", True), (None, False)])
async def test_sqlite_serializable_takes_the_write_lock_at_begin(
    tmp_path: Path, level: str | None, locked: bool
) -> None:
    """SERIALIZABLE on SQLite: BEGIN IMMEDIATE at once, so reads are in the transaction too."""
    await DatabaseSessionFactory.close_all()
    section = {"url": f"sqlite+aiosqlite:///{tmp_path / 'iso.db'}"}
    if level is not None:
        section["isolation_level"] = level
    factory = DatabaseSessionFactory({"database": section})
    try:
        async with factory.new_session() as session, session.begin():
            await session.execute(select(literal(1)))
            connection = await session.connection()
            raw = await connection.get_raw_connection()
            sqlite_connection = raw.driver_connection._conn  # type: ignore[union-attr]
            assert sqlite_connection.in_transaction is locked
    finally:
        await DatabaseSessionFactory.close_all()
