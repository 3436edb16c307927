"""Connections that cancelled or abandoned work left behind, ended on the server side too.

A cancellation (a ``timeout``, a cancelled request) or an iterator nobody closes can leave a
connection's server-side work running, with its locks: each database family needs its own
way to end it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolResetState

__all__ = [
    "OPEN_BLOCK_KEY",
    "end_abandoned_block",
    "interrupt_abandoned_statement",
    "kill_abandoned_statements",
]

logger = logging.getLogger("viveka_db.session")

OPEN_BLOCK_KEY = "viveka_open_block"
"""Set in a read-engine connection's ``info`` while a stream's transaction block is open."""


def end_abandoned_block(dbapi_connection: Any, record: Any, state: PoolResetState) -> None:
    """Roll back a stream's transaction block on a read-engine connection returning to the pool.

    The read engine runs in autocommit and skips the reset on return (no round trip), so a
    block that a stream opened and its consumer never closed (an exception or cancellation
    in the loop body leaves the iterator suspended) would otherwise be handed, with its
    locks, to the next reader.
    """
    if not record.info.pop(OPEN_BLOCK_KEY, False):
        return
    if not state.asyncio_safe:  # garbage collection: no I/O possible, drop the connection
        record.invalidate()
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("ROLLBACK")
    finally:
        cursor.close()


def interrupt_abandoned_statement(
    dbapi_connection: Any, record: Any, exception: BaseException | None
) -> None:
    """Stop the statement of a SQLite connection dropped by a cancellation or timeout.

    aiosqlite runs statements in a thread the cancellation cannot reach: the statement runs
    on, and the close that would end the connection's transaction queues behind it. Even
    then, closing a connection whose statement is still referenced (by the traceback of
    the cancellation) only marks it for closing, and its transaction, with the write lock,
    lives on until garbage collection. So: ``sqlite3``'s ``interrupt()`` (safe from any
    thread) makes the running statement fail at once, and an explicit ROLLBACK then ends
    the transaction and releases the lock before the connection is discarded.
    """
    if exception is None or isinstance(exception, Exception):
        return  # a closed pool or a dropped file, not an abandoned statement
    run_async = getattr(dbapi_connection, "run_async", None)
    if run_async is None:  # pragma: no cover - not an asyncio driver
        return
    try:
        run_async(_interrupt)
        run_async(_rollback)
    except BaseException as exc:  # closed already, or not in a greenlet (garbage collection)
        logger.debug("could not end an abandoned SQLite statement: %r", exc)


def _interrupt(driver: Any) -> Awaitable[None]:
    return cast("Awaitable[None]", driver.interrupt())


def _rollback(driver: Any) -> Awaitable[None]:
    return cast("Awaitable[None]", driver.rollback())


_kill_tasks: set[asyncio.Task[None]] = set()


def kill_abandoned_statements(engine: AsyncEngine, read_only: bool) -> None:
    """End the server side of a MySQL/MariaDB connection dropped by a cancellation.

    A ``timeout`` or a cancelled request cancels the awaiting task; asyncpg then cancels the
    running statement, but aiomysql can only drop the connection, and the server keeps running
    the statement (holding its locks) until it ends on its own. ``KILL`` from another
    connection ends it and rolls its transaction back now. (Write engine only.)
    """
    if read_only:
        return

    @event.listens_for(engine.sync_engine, "invalidate")
    def _on_invalidate(dbapi_connection: Any, record: Any, exception: BaseException | None) -> None:
        if not isinstance(exception, asyncio.CancelledError):
            return
        driver: Any = getattr(dbapi_connection, "driver_connection", None)
        try:
            loop = asyncio.get_running_loop()
            server_id = int(driver.thread_id())  # aiomysql / asyncmy: the server's id
        except (AttributeError, RuntimeError, TypeError, ValueError):
            return
        if server_id:
            task = loop.create_task(_kill(engine, server_id))
            _kill_tasks.add(task)
            task.add_done_callback(_kill_tasks.discard)


async def _kill(engine: AsyncEngine, server_id: int) -> None:
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f"KILL {server_id:d}")
    except Exception as exc:  # already gone, or no privilege: the server ends it eventually
        logger.debug("could not KILL abandoned MySQL connection %d: %s", server_id, exc)
