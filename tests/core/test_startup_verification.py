"""Start-up verification: every data source answers, with these credentials, or start-up fails.

``viveka_lifespan`` runs it (unless ``[database] verify_on_startup = false``); plain
Starlette apps and workers call ``verify_data_sources()``. The error names the data source
and the cause, never the password.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from viveka_db import (
    ConfigurationError,
    DatabaseSessionFactory,
    NotInitializedError,
    verify_data_sources,
)
from viveka_db.integrations.fastapi import viveka_lifespan

CLOSED_PORT = 20999  # below 32768 (not an ephemeral port), nothing listens there
PASSWORD = "s3cr3t-Passw0rd"


@pytest.fixture(autouse=True)
async def _clean() -> AsyncIterator[None]:
    await DatabaseSessionFactory.close_all()
    yield
    await DatabaseSessionFactory.close_all()
    # aiosqlite stops the thread of a connection that failed to open by posting to the
    # event loop; give it that moment before the test's loop closes
    await asyncio.sleep(0.1)


def _server_url(backend_url: str, **parts: object) -> str:
    return make_url(backend_url).set(**parts).render_as_string(hide_password=False)


def _config(url: str, **database: object) -> dict[str, dict[str, object]]:
    return {"database": {"url": url, **database}}


async def _verify_fails(config: dict[str, dict[str, object]]) -> str:
    DatabaseSessionFactory(config, data_source="orders")
    with pytest.raises(ConfigurationError) as caught:
        await verify_data_sources()
    message = str(caught.value)
    assert "'orders'" in message and "primary" in message
    assert PASSWORD not in message
    return message


async def test_every_backend_passes_when_configured_right(db: DatabaseSessionFactory) -> None:
    await verify_data_sources()
    await db.verify()
    await verify_data_sources(["default"], timeout=5)


async def test_an_unreachable_port_fails_naming_the_cause(backend: str, backend_url: str) -> None:
    if backend == "sqlite":
        url = "sqlite+aiosqlite:////nonexistent-dir-viveka/app.db"  # cannot be opened
    else:
        url = _server_url(backend_url, port=CLOSED_PORT, password=PASSWORD)
    message = await _verify_fails(_config(url))
    assert "cannot be reached" in message
    assert "verify_on_startup = false" in message  # how to skip the check, named


@pytest.mark.parametrize("wrong", ["role", "password"])
async def test_a_refused_login_fails_naming_the_cause(
    backend: str, backend_url: str, wrong: str
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has no login")
    if backend == "postgresql" and wrong == "password":
        pytest.skip("the test server trusts loopback: a password is never checked")
    if wrong == "role":
        url = _server_url(backend_url, username="viveka_no_such_role", password=PASSWORD)
    else:
        url = _server_url(backend_url, password=PASSWORD)
    message = await _verify_fails(_config(url))
    assert "refused the login" in message
    assert "user and password" in message


async def test_a_missing_database_fails_naming_the_cause(backend: str, backend_url: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite creates a missing database file")
    url = _server_url(backend_url, database="viveka_no_such_database")
    message = await _verify_fails(_config(url))
    assert "database does not exist" in message
    assert "viveka_no_such_database" in message  # in the masked URL


async def test_a_password_override_is_never_shown(backend: str, backend_url: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has no login")
    url = _server_url(backend_url, port=CLOSED_PORT)
    message = await _verify_fails(_config(url, password=PASSWORD))
    assert "***" in message


async def test_a_failing_replica_is_named(backend: str, backend_url: str) -> None:
    if backend == "sqlite":
        pytest.skip("replicas need a server")
    replica = _server_url(backend_url, port=CLOSED_PORT, password=PASSWORD)
    DatabaseSessionFactory(_config(backend_url, read_urls=replica), data_source="orders")
    with pytest.raises(ConfigurationError) as caught:
        await verify_data_sources()
    message = str(caught.value)
    assert "replica 1" in message and "primary" not in message
    assert PASSWORD not in message


async def test_verify_on_startup_false_skips_the_check(backend: str, backend_url: str) -> None:
    url = (
        "sqlite+aiosqlite:////nonexistent-dir-viveka/app.db"
        if backend == "sqlite"
        else _server_url(backend_url, port=CLOSED_PORT)
    )
    DatabaseSessionFactory(_config(url, verify_on_startup="false"), data_source="orders")
    await verify_data_sources()  # skipped for this data source
    with pytest.raises(ConfigurationError):
        await DatabaseSessionFactory.get_instance("orders").verify()  # explicit: always runs


async def test_an_unknown_data_source_is_not_initialised() -> None:
    with pytest.raises(NotInitializedError):
        await verify_data_sources(["nowhere"])


async def test_lifespan_fails_at_start_up(backend: str, backend_url: str) -> None:
    url = (
        "sqlite+aiosqlite:////nonexistent-dir-viveka/app.db"
        if backend == "sqlite"
        else _server_url(backend_url, port=CLOSED_PORT, password=PASSWORD)
    )
    app = FastAPI(lifespan=viveka_lifespan(_config(url)))
    with pytest.raises(ConfigurationError) as caught:
        async with LifespanManager(app):
            pass
    assert "cannot be reached" in str(caught.value)
    assert not DatabaseSessionFactory.is_initialised()  # disposed again


async def test_lifespan_starts_when_the_database_answers(backend_url: str) -> None:
    app = FastAPI(lifespan=viveka_lifespan(_config(backend_url)))
    async with LifespanManager(app):
        assert DatabaseSessionFactory.is_initialised()


async def test_lifespan_can_skip_the_check(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/missing-dir/app.db"
    app = FastAPI(lifespan=viveka_lifespan(_config(url, verify_on_startup=False)))
    async with LifespanManager(app):
        assert DatabaseSessionFactory.is_initialised()
