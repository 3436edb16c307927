"""``[database] slow_query_ms``: slow statements logged on ``viveka_db.sql.slow``, never values."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import text

from tests.telemetry.models import Gadget, GadgetRepo
from viveka_db import DatabaseSessionFactory, current_session, transactional

SECRET = "pw-like-Value-913"
repo = GadgetRepo()
SLEEP = {"postgresql": "SELECT pg_sleep(0.3)", "mariadb": "SELECT SLEEP(0.3)"}


@transactional
async def work() -> None:
    await repo.insert_all([Gadget(name=SECRET, qty=5)])
    await repo.find_by_field("name", SECRET)
    await current_session().execute(text(f"SELECT id FROM tel_gadgets WHERE name = '{SECRET}'"))


@pytest.fixture
async def reinit(
    db: DatabaseSessionFactory, backend_url: str
) -> AsyncIterator[Callable[[int], DatabaseSessionFactory]]:
    """Initialise the default data source again with a ``slow_query_ms`` threshold."""

    def make(threshold: int) -> DatabaseSessionFactory:
        config = {"database": {"url": backend_url, "slow_query_ms": threshold}}
        return DatabaseSessionFactory(config)

    await DatabaseSessionFactory.close_all()
    yield make


def slow_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "viveka_db.sql.slow"]


async def test_every_statement_over_the_threshold_is_logged_without_values(
    reinit: Callable[[int], DatabaseSessionFactory], caplog: pytest.LogCaptureFixture
) -> None:
    reinit(0)
    with caplog.at_level(logging.WARNING, logger="viveka_db.sql.slow"):
        await work()
    records = slow_records(caplog)
    messages = [r.getMessage() for r in records]
    assert len(records) >= 3, messages
    assert all(r.levelno == logging.WARNING for r in records)
    assert any("INSERT INTO" in m and "tel_gadgets" in m for m in messages)
    assert any("WHERE name = ?" in m for m in messages)  # the literal, replaced
    for message in messages:
        assert SECRET not in message
        assert "slow statement:" in message and " ms " in message
        assert "'default'" in message


async def test_fast_statements_are_not_logged(
    reinit: Callable[[int], DatabaseSessionFactory], caplog: pytest.LogCaptureFixture
) -> None:
    reinit(60_000)
    with caplog.at_level(logging.DEBUG, logger="viveka_db.sql.slow"):
        await work()
    assert slow_records(caplog) == []


async def test_a_really_slow_statement_is_logged_with_its_duration(
    reinit: Callable[[int], DatabaseSessionFactory],
    backend: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if backend not in SLEEP:
        pytest.skip("SQLite has no sleep function")
    reinit(150)

    @transactional
    async def slow_then_fast() -> None:
        await current_session().execute(text(SLEEP[backend]))
        await current_session().execute(text("SELECT 1"))

    with caplog.at_level(logging.WARNING, logger="viveka_db.sql.slow"):
        await slow_then_fast()
    (record,) = slow_records(caplog)
    message = record.getMessage()
    duration = float(message.split("slow statement: ", 1)[1].split(" ms", 1)[0])
    assert 300 <= duration < 5000
    assert "slow_query_ms = 150" in message
    assert message.endswith(SLEEP[backend].replace("0.3", "?"))
