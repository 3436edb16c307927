"""What every database's advisory lock shares: the holder interface, key derivation, cleanup."""

from __future__ import annotations

import hashlib
import logging
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from viveka_db.config.urls import mask_url
from viveka_db.context.scope import run_uncancellable
from viveka_db.errors import LockTimeoutError

__all__ = ["Holder", "database_of", "digest", "discard", "timed_out"]

logger = logging.getLogger("viveka_db.locks")


class Holder(Protocol):
    """One acquisition of one named lock on one database."""

    async def acquire(self, limit: float | None) -> int:
        """Wait for the lock (at most ``limit`` seconds); the new fencing token."""
        ...

    async def release(self) -> None:
        """Give the lock up (runs to completion; never raises for a lost connection)."""
        ...


def database_of(engine: AsyncEngine) -> str:
    """The database ``engine`` connects to (its URL, password masked): a cache key."""
    return mask_url(engine.url)


def digest(name: str) -> bytes:
    """A stable 32-byte digest of a lock name (the same in every process and version)."""
    return hashlib.sha256(b"viveka_db advisory lock\0" + name.encode()).digest()


def timed_out(name: str, timeout: float) -> LockTimeoutError:
    return LockTimeoutError(f"advisory lock {name!r} was not granted within {timeout:g}s")


async def discard(connection: AsyncConnection) -> None:
    """Close ``connection`` after a failure; invalidate it if it cannot be reset.

    An invalidated connection is closed rather than returned to the pool, so a lock it
    may still hold on the server ends with it.
    """

    async def close() -> None:
        try:
            await connection.rollback()
        except Exception:
            logger.debug("advisory lock connection could not roll back", exc_info=True)
            await connection.invalidate()
        await connection.close()

    await run_uncancellable(close())
