"""MySQL and MariaDB: ``GET_LOCK`` on a connection of its own.

``GET_LOCK(key, timeout)`` belongs to the server session, so the connection is checked
out for the lock alone and kept until the block ends, when ``RELEASE_LOCK`` gives it
back; a connection that cannot say so is closed (invalidated), which also releases it.
``key`` is ``viveka_db:`` and 48 hex digits of the name's SHA-256: lock names there are
at most 64 characters and compared without regard to case, while ``name`` may be any
string and is exact. Behind ProxySQL, a ``GET_LOCK`` turns multiplexing off for that
client connection, so the lock stays on one server connection.

The fencing token is a counter row per key in ``viveka_lock_tokens``, incremented and
committed while the lock is held: a token handed to a holder that later crashed is
never handed out again.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from viveka_db.context.scope import run_uncancellable
from viveka_db.locks.base import database_of, digest, discard, timed_out

__all__ = ["TABLE", "MysqlLock"]

TABLE = "viveka_lock_tokens"
_FOREVER = 31_536_000
"""A year in seconds: ``GET_LOCK`` has no "no timeout" (a negative one is refused)."""
_ready: set[str] = set()
"""Databases (by masked URL) in which the table is known to exist."""


def lock_key(name: str) -> str:
    return "viveka_db:" + digest(name).hex()[:48]


async def ensure_table(engine: AsyncEngine) -> None:
    if database_of(engine) in _ready:
        return
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (name VARCHAR(64) NOT NULL PRIMARY KEY, "
                "token BIGINT NOT NULL) ENGINE=InnoDB"
            )
        )
    _ready.add(database_of(engine))


class MysqlLock:
    """One acquisition of ``name`` on ``engine``'s database."""

    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.key = lock_key(name)
        self.connection: AsyncConnection | None = None

    async def acquire(self, limit: float | None) -> int:
        await ensure_table(self.engine)
        conn = await self.engine.connect()
        got: object = None
        try:
            wait = _FOREVER if limit is None else limit
            got = await conn.scalar(
                text("SELECT GET_LOCK(:key, :wait)"), {"key": self.key, "wait": wait}
            )
            if got != 1:
                raise timed_out(self.name, wait)
            await conn.execute(
                text(
                    f"INSERT INTO {TABLE} (name, token) VALUES (:key, 1) "
                    "ON DUPLICATE KEY UPDATE token = token + 1"
                ),
                {"key": self.key},
            )
            token = await conn.scalar(
                text(f"SELECT token FROM {TABLE} WHERE name = :key"), {"key": self.key}
            )
            await conn.commit()
        except BaseException:
            if got == 1:  # a pooled connection must not keep the lock: close it for good
                await run_uncancellable(conn.invalidate())
            await discard(conn)
            raise
        self.connection = conn
        return int(token)

    async def release(self) -> None:
        conn, self.connection = self.connection, None
        if conn is None:
            return
        try:
            await conn.scalar(text("SELECT RELEASE_LOCK(:key)"), {"key": self.key})
        except Exception:
            await conn.invalidate()  # closing the server session releases the lock
        await discard(conn)
