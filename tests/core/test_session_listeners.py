"""The session layer's start-up hook: how the cache (a higher layer) configures itself.

``DatabaseSessionFactory`` never imports the cache; the cache registers a listener with
``viveka_db.session.listeners`` instead. These tests pin that the registration is in place
however the factory is imported, and that listeners see each new data source once.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from viveka_db.config.settings import VivekaSettings
from viveka_db.session import listeners
from viveka_db.session.db_session import DatabaseSessionFactory


@pytest.fixture
def recorded() -> Iterator[list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []

    def listener(data_source: str, settings: VivekaSettings) -> None:
        seen.append((data_source, settings.cache.namespace))

    listeners.on_data_source_started(listener)
    listeners.on_data_source_started(listener)  # registering twice keeps one
    try:
        yield seen
    finally:
        listeners._listeners.remove(listener)  # pyright: ignore[reportPrivateUsage]


@pytest.mark.sqlite
async def test_listeners_hear_each_new_data_source_once(
    recorded: list[tuple[str, str]], tmp_path: Path
) -> None:
    await DatabaseSessionFactory.close_all()
    config = {
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"},
        "cache": {"namespace": "listeners"},
    }
    try:
        DatabaseSessionFactory(config, data_source="reports")
        DatabaseSessionFactory(config, data_source="reports")  # the existing instance
        DatabaseSessionFactory(config)
    finally:
        await DatabaseSessionFactory.close_all()
    assert recorded == [("reports", "listeners"), ("default", "listeners")]


@pytest.mark.sqlite
def test_the_cache_hook_is_registered_without_importing_the_cache(tmp_path: Path) -> None:
    """Importing only the documented session path still installs the ``[cache]`` backend."""
    code = (
        "import asyncio\n"
        "from viveka_db.session.db_session import DatabaseSessionFactory\n"
        f"f = DatabaseSessionFactory({{'database': {{'url': 'sqlite+aiosqlite:///{tmp_path}/b.db'}},"
        " 'cache': {'enabled': False}})\n"
        "from viveka_db.cache.current import get_cache\n"
        "print(type(get_cache()).__name__)\n"
        "asyncio.run(DatabaseSessionFactory.close_all())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "NullCache"
