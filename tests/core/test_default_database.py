"""``DatabaseSessionFactory()`` with no configuration says where its SQLite file is."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from viveka_db import DatabaseSessionFactory


@pytest.fixture
async def empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Path]:
    """A working directory without config.ini, and no VIVEKA_* variable in the environment."""
    for name in list(os.environ):
        if name.startswith("VIVEKA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    await DatabaseSessionFactory.close_all()
    yield tmp_path
    await DatabaseSessionFactory.close_all()


def _announcements(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "viveka_db.session" and "embedded SQLite" in r.getMessage()
    ]


async def test_the_embedded_default_logs_its_absolute_path_once(
    empty_directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="viveka_db.session")
    DatabaseSessionFactory()
    DatabaseSessionFactory()  # the same instance: nothing new to say
    (line,) = _announcements(caplog)
    assert str(empty_directory / "viveka.db") in line
    (record,) = [r for r in caplog.records if r.getMessage() == line]
    assert record.levelno == logging.WARNING


async def test_a_configured_database_is_not_announced(
    empty_directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="viveka_db.session")
    DatabaseSessionFactory({"database": {"url": f"sqlite+aiosqlite:///{empty_directory}/a.db"}})
    assert _announcements(caplog) == []
