"""Waking the relay on PostgreSQL: ``LISTEN viveka_outbox`` on a dedicated connection.

A publishing transaction sends ``NOTIFY viveka_outbox`` as it commits; the relay listens
through asyncpg's ``add_listener`` on one connection of the data source's pool that it keeps
for itself. Other databases and drivers have no such channel, so the relay polls there;
it also polls on PostgreSQL (a notification can be missed while the listening connection
is being replaced), so a missed one costs at most one poll interval.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["Listener"]

logger = logging.getLogger("viveka_db.outbox")


class Listener:
    """Sets ``wake`` whenever a notification arrives on ``channel``."""

    __slots__ = ("_channel", "_connection", "_driver", "_engine", "_wake")

    def __init__(self, engine: AsyncEngine, channel: str, wake: asyncio.Event) -> None:
        self._engine = engine
        self._channel = channel
        self._wake = wake
        self._connection: AsyncConnection | None = None
        self._driver: Any = None

    @staticmethod
    def supported(engine: AsyncEngine) -> bool:
        return engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"

    @property
    def listening(self) -> bool:
        driver = self._driver
        return driver is not None and not driver.is_closed()

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def ensure(self) -> None:
        """Listen, or listen again after the connection was lost (failures are logged)."""
        if self.listening:
            return
        await self.close()
        try:
            connection = await self._engine.connect()
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            await driver.add_listener(self._channel, self._notified)
        except Exception as exc:
            logger.warning("outbox relay cannot LISTEN (polling instead): %s", type(exc).__name__)
            await self.close()
            return
        self._connection, self._driver = connection, driver
        self._wake.set()  # events may have been published while nobody listened

    async def close(self) -> None:
        connection, driver = self._connection, self._driver
        self._connection = self._driver = None
        if connection is None:
            return
        try:
            if driver is not None and not driver.is_closed():
                await driver.remove_listener(self._channel, self._notified)
        except Exception:  # the connection is going away anyway
            logger.debug("outbox relay: UNLISTEN failed", exc_info=True)
        try:
            await connection.close()
        except Exception:
            logger.debug("outbox relay: closing the listening connection failed", exc_info=True)
