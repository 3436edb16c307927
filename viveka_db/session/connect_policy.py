"""How a data source's new connections are made: wait out a restart, fail over to a peer.

Two settings, both about *new* connections, so both live on the engine's ``do_connect`` hook
and cost nothing on a pooled checkout:

* ``[database] connect_wait`` (seconds): a connection attempt that finds the server down
  (refused, unreachable, starting up or shutting down) is retried with a growing pause until
  that many seconds have passed. Work that has not sent a statement yet therefore waits for a
  restart instead of failing. A refused login or a missing database is not retried: no wait
  fixes those.
* ``[database] failover_urls``: other primaries (a PostgreSQL standby promoted by an
  operator, the other nodes of a MariaDB Galera cluster). When the current target cannot be
  reached, the next reachable one is used, and stays preferred until it fails in turn.
  PostgreSQL targets are asked for ``target_session_attrs=read-write`` so a standby that is
  still read-only is passed over.

A connection that the server closed while it sat in the pool (a restart or failover ends
every session) is replaced at checkout by a new one, which then goes through the rules
above: asyncpg knows of the close without a round trip (its socket reported it); the other
drivers are pinged at checkout while either setting is on. The decision is written down
in ``docs/how-to/restarts.md``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from viveka_db.compat import sleep_in_greenlet
from viveka_db.config.settings import DatabaseSettings
from viveka_db.config.urls import check_async_url, mask_url
from viveka_db.dialects import adapter_for

__all__ = [
    "ConnectTargets",
    "failover_targets",
    "install_connect_policy",
    "replace_closed_on_checkout",
]

logger = logging.getLogger("viveka_db.session")

_FIRST_PAUSE = 0.05
_LONGEST_PAUSE = 1.0


def failover_targets(settings: DatabaseSettings, primary: URL) -> list[URL]:
    """``primary`` and then each of ``failover_urls``, with the same credential overrides.

    A failover URL without a user or password takes the primary's (``[database] user`` /
    ``password`` override every target alike, so secrets stay in one place).
    """
    targets = [primary]
    for raw in settings.failover_urls:
        url = make_url(raw)
        if url.username is None and primary.username is not None:
            url = url.set(username=primary.username)
        if url.password is None and primary.password is not None:
            url = url.set(password=str(primary.password))
        check_async_url(url)
        if url.get_backend_name() != primary.get_backend_name():
            from viveka_db.errors import ConfigurationError

            raise ConfigurationError(
                f"[database] failover_urls: {mask_url(url)!r} is not a "
                f"{primary.get_backend_name()} URL like the primary"
            )
        targets.append(url)
    return targets


class ConnectTargets:
    """The places new connections may go, which one answered last, and how long to wait."""

    def __init__(self, dialect: Dialect, targets: Sequence[URL], wait: float) -> None:
        self.urls = list(targets)
        self.wait = wait
        self.preferred = 0
        self._adapter = adapter_for(dialect)
        self._several = len(self.urls) > 1
        self._by_url = [dialect.create_connect_args(url) for url in self.urls]

    def _params(
        self, index: int, given: tuple[list[Any], dict[str, Any]]
    ) -> tuple[list[Any], dict[str, Any]]:
        """What to connect to target ``index`` with: SQLAlchemy's parameters for the primary
        (``connect_args`` and the read-only settings included), its address and credentials
        replaced by the target's."""
        cargs, params = given
        if index:
            target_args, target_params = self._by_url[index]
            cargs, params = list(target_args), {**params, **target_params}
        if self._several:
            driver = self.urls[index].get_driver_name()
            params = self._adapter.failover_connect_args(driver, params)
        return cargs, params

    def order(self) -> list[int]:
        """The preferred target first, then the others in configured order."""
        return [self.preferred] + [i for i in range(len(self.urls)) if i != self.preferred]

    def connect(self, dialect: Dialect, given: tuple[list[Any], dict[str, Any]]) -> Any:
        """A new driver connection, or the last connection error once the wait is over.

        ``given`` is what SQLAlchemy would have used for the primary (its ``connect_args``
        and other ``do_connect`` handlers included); it is used as it is for the primary.
        """
        deadline = time.monotonic() + self.wait
        pause = _FIRST_PAUSE
        while True:
            last: BaseException | None = None
            for index in self.order():
                cargs, cparams = self._params(index, given)
                try:
                    connection = dialect.connect(*cargs, **cparams)
                except Exception as exc:
                    if not self._adapter.server_unavailable(exc):
                        raise  # a refused login or a missing database: no wait helps
                    last = exc
                    continue
                if index != self.preferred:
                    logger.warning(
                        "new connections go to %s now (%s did not answer)",
                        mask_url(self.urls[index]),
                        mask_url(self.urls[self.preferred]),
                    )
                    self.preferred = index
                return connection
            assert last is not None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise last
            sleep_in_greenlet(min(pause, remaining))
            pause = min(pause * 2, _LONGEST_PAUSE)


def install_connect_policy(
    engine: AsyncEngine, settings: DatabaseSettings, url: URL
) -> ConnectTargets | None:
    """Put ``connect_wait`` and ``failover_urls`` on ``engine`` (``None``: neither is set).

    Every engine of the primary gets one (the write engine and the read-only one); the
    ``preferred`` target is per engine, each finding the live primary on its own.
    """
    targets = failover_targets(settings, url)
    wait = settings.connect_wait
    if len(targets) == 1 and not wait:
        return None
    policy = ConnectTargets(engine.dialect, targets, wait)

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Dialect, record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        return policy.connect(dialect, (cargs, cparams))

    return policy


def replace_closed_on_checkout(engine: AsyncEngine) -> None:
    """A pooled connection the server has closed is replaced at checkout, not used.

    Known without a round trip only where the driver tracks it; elsewhere the first statement
    finds out (and SQLAlchemy invalidates the pool), as ``pool_pre_ping`` would at a price.
    """
    adapter = adapter_for(engine.dialect)
    if not adapter.detects_closed_connections:
        return

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and adapter.known_closed(driver):
            raise sa_exc.DisconnectionError("the server closed this pooled connection")
