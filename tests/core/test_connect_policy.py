"""``connect_wait`` and ``failover_urls``: new connections wait out a restart and fail over.

"The database" is reached through :class:`RestartingProxy`, which drops every connection and
refuses new ones while it is down, so a restart takes a fraction of a second and the shared
servers are never touched. (A real PostgreSQL restart and a Galera node crash are in
``tests/topology``.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.core.restart_proxy import RestartingProxy
from viveka_db import DatabaseSessionFactory, current_session, transactional
from viveka_db.errors import ConfigurationError

pytestmark = pytest.mark.parametrize("backend", ["postgresql", "mariadb"], indirect=True)

SOURCE = "restarts"


@pytest.fixture
async def proxy(backend_url: str) -> AsyncIterator[RestartingProxy]:
    url = make_url(backend_url)
    proxied = RestartingProxy(url.host or "127.0.0.1", url.port or 0)
    await proxied.up()
    try:
        yield proxied
    finally:
        await proxied.close()


@pytest.fixture
async def through_proxy(
    backend_url: str, proxy: RestartingProxy
) -> AsyncIterator[Callable[..., DatabaseSessionFactory]]:
    """Initialise the ``restarts`` data source on the proxy, with extra ``[database]`` keys."""

    def initialise(**keys: object) -> DatabaseSessionFactory:
        url = make_url(backend_url).set(host="127.0.0.1", port=proxy.port)
        database = {"url": url.render_as_string(hide_password=False), "pool_size": 5, **keys}
        return DatabaseSessionFactory({"database": database}, data_source=SOURCE)

    yield initialise
    if DatabaseSessionFactory.is_initialised(SOURCE):
        await DatabaseSessionFactory.get_instance(SOURCE).dispose()


@transactional(data_source=SOURCE)
async def one_statement() -> float:
    """Work that has sent nothing yet when it starts; returns when its statement answered."""
    started = time.monotonic()
    assert (await current_session(SOURCE).execute(text("SELECT 1"))).scalar() == 1
    return time.monotonic() - started


async def warm_pool(count: int) -> None:
    await asyncio.gather(*(one_statement() for _ in range(count)))


async def test_work_started_while_the_server_is_down_waits_and_succeeds(
    through_proxy: Callable[..., DatabaseSessionFactory], proxy: RestartingProxy
) -> None:
    through_proxy(connect_wait=10)
    await warm_pool(5)  # pooled connections that the restart will close
    await proxy.down()
    tasks = [asyncio.create_task(one_statement()) for _ in range(20)]
    await asyncio.sleep(1.0)
    assert not any(task.done() for task in tasks)  # waiting, not failed
    await proxy.up()
    waited = await asyncio.gather(*tasks)  # every one succeeds
    assert min(waited) > 0.8, sorted(waited)  # each one waited for the restart...
    assert max(waited) < 10, sorted(waited)  # ...and none for its whole connect_wait
    await warm_pool(5)  # and the pool is healthy afterwards


async def test_without_connect_wait_the_same_work_fails_at_once(
    through_proxy: Callable[..., DatabaseSessionFactory], proxy: RestartingProxy
) -> None:
    through_proxy()
    await warm_pool(2)
    await proxy.down()
    started = time.monotonic()
    with pytest.raises((sa_exc.DBAPIError, OSError)):  # asyncpg: ConnectionRefusedError
        await one_statement()
    assert time.monotonic() - started < 5  # no wait (a loaded machine is slow to connect)


async def test_the_wait_is_bounded(
    through_proxy: Callable[..., DatabaseSessionFactory], proxy: RestartingProxy
) -> None:
    through_proxy(connect_wait=1.0)
    await proxy.down()
    started = time.monotonic()
    with pytest.raises((sa_exc.DBAPIError, OSError)):
        await one_statement()
    assert 0.9 < time.monotonic() - started < 6


async def test_a_refused_login_is_not_waited_for(
    through_proxy: Callable[..., DatabaseSessionFactory], backend: str
) -> None:
    through_proxy(connect_wait=30, user="viveka_no_such_role", password="wrong-secret")
    started = time.monotonic()
    with pytest.raises(sa_exc.DBAPIError) as refused:
        await one_statement()
    assert time.monotonic() - started < 5  # not the 30 s wait
    assert "wrong-secret" not in str(refused.value)


async def test_pooled_connections_closed_by_a_restart_are_replaced_before_use(
    through_proxy: Callable[..., DatabaseSessionFactory], proxy: RestartingProxy
) -> None:
    through_proxy(connect_wait=5)
    await warm_pool(5)
    await proxy.down()
    await proxy.up()  # a quick restart between two requests: every pooled connection is dead
    await asyncio.gather(*(one_statement() for _ in range(10)))


async def test_new_connections_fail_over_to_the_next_primary(
    through_proxy: Callable[..., DatabaseSessionFactory],
    proxy: RestartingProxy,
    backend_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    factory = through_proxy(failover_urls=backend_url)
    await warm_pool(2)
    await proxy.down()  # the first primary is gone for good
    with caplog.at_level(logging.WARNING, logger="viveka_db.session"):
        await warm_pool(5)
    moved = [r.getMessage() for r in caplog.records if "new connections go to" in r.getMessage()]
    assert len(moved) == 1, moved  # said once, then the live primary stays preferred
    assert str(make_url(backend_url).port) in moved[0]
    if make_url(backend_url).password:
        assert make_url(backend_url).password not in moved[0]
    assert factory.url.port == proxy.port  # the configured primary is still the first choice


async def test_a_failover_url_of_another_database_kind_is_refused(backend_url: str) -> None:
    other = "sqlite+aiosqlite:///:memory:"
    with pytest.raises(ConfigurationError, match="failover_urls"):
        DatabaseSessionFactory(
            {"database": {"url": backend_url, "failover_urls": other}}, data_source=SOURCE
        )
