"""A per-process cache in a multi-process server is reported once at start-up."""

from __future__ import annotations

import logging

import pytest

from viveka_db.cache import workers
from viveka_db.cache.setup import install_from_settings
from viveka_db.config.settings import CacheSettings

pytestmark = pytest.mark.usefixtures("installed")


@pytest.mark.parametrize(
    ("environ", "argv", "expected"),
    [
        ({}, ["uvicorn", "app:app"], 1),
        ({"WEB_CONCURRENCY": "4"}, ["app"], 4),
        ({}, ["uvicorn", "app:app", "--workers", "3"], 3),
        ({}, ["gunicorn", "-w", "5", "app:app"], 5),
        ({}, ["gunicorn", "--workers=6", "app:app"], 6),
        ({"GUNICORN_CMD_ARGS": "--bind 0.0.0.0 --workers 2"}, ["gunicorn"], 2),
        ({"WEB_CONCURRENCY": "lots"}, ["app"], 1),
    ],
)
def test_worker_count_reads_the_server_settings(
    environ: dict[str, str], argv: list[str], expected: int
) -> None:
    assert workers.worker_count(environ, argv) == expected


@pytest.mark.parametrize("url", [None, "memory://"])
def test_memory_cache_with_several_workers_warns_once(
    url: str | None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    monkeypatch.setattr(workers, "_warned", False)
    settings = CacheSettings(url=url)
    with caplog.at_level(logging.WARNING, "viveka_db.cache"):
        install_from_settings(settings)
        install_from_settings(settings)
    warned = [r for r in caplog.records if "4 worker processes" in r.getMessage()]
    assert len(warned) == 1
    assert "redis://" in warned[0].getMessage()


def test_a_single_worker_or_a_shared_cache_does_not_warn(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(workers, "_warned", False)
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    monkeypatch.setattr("sys.argv", ["app"])
    with caplog.at_level(logging.WARNING, "viveka_db.cache"):
        install_from_settings(CacheSettings(url="memory://"))
        monkeypatch.setenv("WEB_CONCURRENCY", "4")
        install_from_settings(CacheSettings(enabled=False))
    assert not [r for r in caplog.records if "worker processes" in r.getMessage()]
