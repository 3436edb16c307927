"""Waking the relay on PostgreSQL: ``LISTEN viveka_outbox`` on a dedicated connection.

A publishing transaction sends ``NOTIFY viveka_outbox`` as it commits; the relay listens on
one connection of the data source's pool that it keeps for itself: with asyncpg through
``add_listener``, with psycopg 3 in autocommit mode through ``notifies()``. Other databases
have no such channel, so the relay polls there; it also polls on PostgreSQL (a notification
can be missed while the listening connection is being replaced), so a missed one costs at
most one poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from viveka_db.dialects import adapter_for

__all__ = ["Listener"]

logger = logging.getLogger("viveka_db.outbox")


class Listener:
    """Sets ``wake`` whenever a notification arrives on ``channel``."""

    __slots__ = ("_channel", "_connection", "_driver", "_engine", "_pump", "_wake")

    def __init__(self, engine: AsyncEngine, channel: str, wake: asyncio.Event) -> None:
        self._engine = engine
        self._channel = channel
        self._wake = wake
        self._connection: AsyncConnection | None = None
        self._driver: Any = None
        self._pump: asyncio.Task[None] | None = None
        """psycopg: the task reading the connection's notifications."""

    @staticmethod
    def supported(engine: AsyncEngine) -> bool:
        return adapter_for(engine.dialect).listens(engine.dialect.driver)

    @property
    def listening(self) -> bool:
        driver, pump = self._driver, self._pump
        if driver is None:
            return False
        if pump is not None:
            return not pump.done()
        return not driver.is_closed()

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def ensure(self) -> None:
        """Listen, or listen again after the connection was lost (failures are logged)."""
        if self.listening:
            return
        await self.close()
        try:
            self._connection = connection = await self._engine.connect()
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            self._driver = driver
            if hasattr(driver, "add_listener"):  # asyncpg
                await driver.add_listener(self._channel, self._notified)
            else:  # psycopg 3: LISTEN outside a transaction, then read notifications
                await driver.set_autocommit(True)
                await driver.execute(f'LISTEN "{self._channel}"')
                self._pump = asyncio.create_task(self._read(driver), name="viveka_db outbox listen")
        except Exception as exc:
            logger.warning("outbox relay cannot LISTEN (polling instead): %s", type(exc).__name__)
            await self.close()
            return
        self._wake.set()  # events may have been published while nobody listened

    async def _read(self, driver: Any) -> None:
        try:
            async for _ in driver.notifies():
                self._wake.set()
        except Exception as exc:  # the connection was lost: ensure() listens again
            logger.debug("outbox relay: notifications stopped: %s", type(exc).__name__)

    async def close(self) -> None:
        connection, driver, pump = self._connection, self._driver, self._pump
        self._connection = self._driver = self._pump = None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
        if driver is not None:
            try:
                await self._unlisten(driver)
            except Exception:  # the connection is going away anyway
                logger.debug("outbox relay: UNLISTEN failed", exc_info=True)
        if connection is not None:
            try:
                await connection.close()
            except Exception:
                logger.debug("outbox relay: closing the listening connection failed", exc_info=True)

    async def _unlisten(self, driver: Any) -> None:
        if hasattr(driver, "remove_listener"):  # asyncpg
            if not driver.is_closed():
                await driver.remove_listener(self._channel, self._notified)
        elif not driver.closed and driver.autocommit:  # psycopg: back to transactions
            await driver.execute(f'UNLISTEN "{self._channel}"')
            await driver.set_autocommit(False)
