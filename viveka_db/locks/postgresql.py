"""PostgreSQL: a transaction-scoped advisory lock on a connection of its own.

``pg_advisory_xact_lock(key)`` (``key``: 64 bits of the name's SHA-256) is taken inside a
transaction on a connection checked out for the lock alone, and held by keeping that
transaction open until the block ends; rolling it back releases the lock. Nothing
depends on the server session outliving a transaction, so the lock is safe behind a
transaction-pooling proxy (PgBouncer in ``pool_mode = transaction``): the proxy pins a
server connection to a client for exactly one transaction, which here is exactly the
lock's lifetime, and a client that disappears has its transaction, and so its lock,
ended by the server. (A session-level ``pg_advisory_lock`` would be released, or leaked,
on whichever server connection the proxy hands out next.)

The fencing token comes from the sequence ``viveka_lock_tokens_seq``, read while the lock
is held. ``nextval`` is never rolled back, so a token handed to a holder that later
crashed is never handed out again. The sequence is shared by every name: tokens grow
with each acquisition of a name, by one or more.
"""

from __future__ import annotations

import math

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from viveka_db.dialects.translate import translate_error
from viveka_db.errors import DatabaseError, LockTimeoutError
from viveka_db.locks.base import database_of, digest, discard, timed_out

__all__ = ["PostgresqlLock", "SEQUENCE"]

SEQUENCE = "viveka_lock_tokens_seq"
_ready: set[str] = set()
"""Databases (by masked URL) in which the sequence is known to exist."""


def lock_key(name: str) -> int:
    """The signed 64-bit advisory-lock key of ``name``."""
    return int.from_bytes(digest(name)[:8], "big", signed=True)


async def ensure_sequence(engine: AsyncEngine) -> None:
    """Create the token sequence once (a concurrent creator elsewhere is fine)."""
    if database_of(engine) in _ready:
        return
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}"))
    except DatabaseError:  # created by another process at the same instant
        async with engine.connect() as conn:
            found = await conn.scalar(text("SELECT to_regclass(:name)"), {"name": SEQUENCE})
        if found is None:
            raise
    _ready.add(database_of(engine))


class PostgresqlLock:
    """One acquisition of ``name`` on ``engine``'s database."""

    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.connection: AsyncConnection | None = None

    async def acquire(self, limit: float | None) -> int:
        await ensure_sequence(self.engine)
        conn = await self.engine.connect()
        try:
            # lock_timeout 0 waits for ever (also over a role's own lock_timeout setting)
            wait = "0" if limit is None else f"{max(1, math.ceil(limit * 1000))}ms"
            await conn.execute(text("SELECT set_config('lock_timeout', :t, true)"), {"t": wait})
            try:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(self.name)}
                )
            except DBAPIError as exc:  # mapped by the engine, or not where it saw the
                if isinstance(translate_error(exc), LockTimeoutError):  # connection close
                    raise timed_out(self.name, limit or 0) from exc
                raise
            token = await conn.scalar(text(f"SELECT nextval('{SEQUENCE}')"))
        except BaseException:
            await discard(conn)
            raise
        self.connection = conn
        return int(token)

    async def release(self) -> None:
        conn, self.connection = self.connection, None
        if conn is not None:
            await discard(conn)  # the rollback ends the transaction and so the lock
