"""Engine instrumentation itself: registered once per engine, never keeping an engine alive."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
from sqlalchemy import event

from viveka_db import DatabaseSessionFactory
from viveka_db.telemetry import providers, statements
from viveka_db.telemetry.statements import instrument_engine


@pytest.fixture
async def fresh() -> None:
    await DatabaseSessionFactory.close_all()


async def test_disposed_engines_are_released(tmp_path: Path, fresh: None) -> None:
    refs = []
    for _ in range(3):
        factory = DatabaseSessionFactory(
            {"database": {"url": f"sqlite+aiosqlite:///{tmp_path}/x.db"}}
        )
        assert factory.read_engine is not factory.engine
        refs.append(weakref.ref(factory.engine.sync_engine))
        refs.append(weakref.ref(factory.read_engine.sync_engine))
        await factory.dispose()
        del factory
    gc.collect()
    assert [ref() for ref in refs] == [None] * len(refs)


async def test_an_engine_is_instrumented_once(tmp_path: Path, fresh: None) -> None:
    factory = DatabaseSessionFactory({"database": {"url": f"sqlite+aiosqlite:///{tmp_path}/x.db"}})
    try:
        listener = statements._listeners[factory.engine.sync_engine]
        instrument_engine(factory.engine, data_source="default", slow_query_ms=None)
        assert statements._listeners[factory.engine.sync_engine] is listener
        assert event.contains(factory.engine.sync_engine, "before_cursor_execute", listener.before)
    finally:
        await factory.dispose()


async def test_no_listeners_without_the_api_and_without_a_threshold(
    tmp_path: Path, fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statements, "OTEL_AVAILABLE", False)
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    plain = DatabaseSessionFactory({"database": {"url": url}})
    try:
        assert plain.engine.sync_engine not in statements._listeners
    finally:
        await plain.dispose()
    slow = DatabaseSessionFactory({"database": {"url": url, "slow_query_ms": 100}})
    try:
        assert slow.engine.sync_engine in statements._listeners  # the slow log needs no API
    finally:
        await slow.dispose()
    assert providers.OTEL_AVAILABLE  # only the statements module was told otherwise
