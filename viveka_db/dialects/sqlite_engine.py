"""SQLite's connection set-up: the server databases' behaviour on a file (or in memory).

pysqlite's own transaction handling breaks SAVEPOINT, so we take it over (SQLAlchemy's
documented recipe) and decide when the transaction really begins: reads before the first
write run in autocommit, each seeing the latest committed data (READ COMMITTED,
PostgreSQL's default); just before the first write (or ``SELECT ... FOR UPDATE``, or
savepoint) we send ``BEGIN IMMEDIATE``, which waits for the single write lock up to the
busy timeout. So a transaction that has only read never blocks anyone (``REQUIRES_NEW``
inside it works, readers and a writer interleave freely), and read-then-write transactions
running concurrently queue for the lock instead of failing with "database is locked". An
explicit ``Isolation.SERIALIZABLE`` (per transaction, or the ``[database] isolation_level``
of the data source) takes the lock at once. File databases use WAL so readers never block
the writer. SQLite still has one writer: a ``REQUIRES_NEW`` that writes inside a
transaction that has already written waits for a lock its own caller holds, and fails after
the busy timeout.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from viveka_db.compat import requests_row_lock
from viveka_db.dialects.abandoned import interrupt_abandoned_statement
from viveka_db.dialects.base import NOWAIT_OPTION, DialectAdapter, Site
from viveka_db.errors import mapped_errors

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "configure_sqlite", "is_memory_sqlite", "is_plain_select"]

SQLITE_BUSY_TIMEOUT_MS = 30_000
_PENDING_BEGIN = "viveka_pending_begin"


def is_memory_sqlite(url: URL) -> bool:
    """An in-memory SQLite database: it lives in one connection, shared by everyone."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def is_plain_select(context: Any) -> bool:
    """A compiled Core/ORM SELECT: it may run before the transaction's first write (and, for
    read-your-writes, it is no write)."""
    compiled = getattr(context, "compiled", None)
    if compiled is None or context.isinsert or context.isupdate or context.isdelete:
        return False
    statement = compiled.statement
    # SELECT ... FOR UPDATE (rendered as plain SELECT on SQLite) asks for the write lock
    return bool(getattr(statement, "is_select", False)) and not requests_row_lock(statement)


def configure_sqlite(
    adapter: DialectAdapter,
    engine: AsyncEngine,
    url: URL,
    *,
    read_only: bool,
    serializable: bool = False,
) -> None:
    """Pragmas on every new connection, and (write engines) the lazily taken write lock."""
    file_db = not is_memory_sqlite(url)
    event.listen(engine.sync_engine, "invalidate", interrupt_abandoned_statement)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if file_db and not read_only:
            cursor.execute("PRAGMA journal_mode = WAL")
        if read_only:
            cursor.execute("PRAGMA query_only = ON")
        cursor.close()

    if not read_only:
        _begin_lazily(adapter, engine, "BEGIN IMMEDIATE" if file_db else "BEGIN", serializable)


def _begin_lazily(
    adapter: DialectAdapter, engine: AsyncEngine, begin_sql: str, serializable: bool
) -> None:
    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Reads before the first write run in autocommit (READ COMMITTED, PostgreSQL's
        # default); the first write takes the write lock, waiting for it (busy_timeout).
        asked = connection.get_execution_options().get("isolation_level")
        if asked == "SERIALIZABLE" or (serializable and asked is None):
            # an explicit SERIALIZABLE wants every read in the write transaction
            connection.info[_PENDING_BEGIN] = False
            _run_on_driver(adapter, connection, begin_sql)
        else:
            connection.info[_PENDING_BEGIN] = True

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _begin_before_first_write(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        info = conn.info
        if info.get(_PENDING_BEGIN) and not is_plain_select(context):
            info[_PENDING_BEGIN] = False
            # one thread hop on the driver connection; exec_driver_sql costs three
            nowait = context.execution_options.get(NOWAIT_OPTION)
            _run_on_driver(adapter, conn, begin_sql, nowait=nowait)

    @event.listens_for(engine.sync_engine, "commit")
    @event.listens_for(engine.sync_engine, "rollback")
    def _transaction_ended(conn: Any) -> None:
        # after a cancelled statement (or a LockTimeoutError of a NOWAIT begin) the
        # connection is invalidated: it has no info to reset (reading it raises)
        if not conn.invalidated:
            conn.info[_PENDING_BEGIN] = False


def _run_on_driver(
    adapter: DialectAdapter, connection: Any, sql: str, *, nowait: object = False
) -> None:
    """Send ``sql`` straight to the asyncio driver from a sync event handler.

    ``AdaptedConnection.run_async`` is SQLAlchemy's documented way to await a driver
    method inside an event (public since 1.4.30; ``sqlalchemy.util``'s ``await_`` is not).
    A driver error (SQLite's "database is locked" when another process holds the write
    lock) is mapped here: SQLAlchemy 2.0 raises what a ``before_cursor_execute`` handler
    raises as it is, without its ``handle_error`` hook (2.1 wraps and maps it). ``nowait``
    (a ``lock="update_nowait"`` read): no busy wait, a held lock is a LockTimeoutError.
    """

    async def execute(driver: Any) -> None:
        if nowait:
            await driver.execute("PRAGMA busy_timeout = 0")
        try:
            await driver.execute(sql)
        finally:
            if nowait:
                await driver.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")

    dialect = connection.dialect
    site = Site(writes_rows=True, nowait=bool(nowait))
    with mapped_errors(
        lambda error: adapter.map_driver_error(error, dialect, site),
        only=dialect.loaded_dbapi.Error,
    ):
        connection.connection.dbapi_connection.run_async(execute)
