"""Building engines and sessions: pool options from settings, per-dialect connection setup.

Two engines per data source:

* the **write engine** for ordinary transactions;
* the **read engine** for ``read_only=True`` transactions on the primary (replicas have
  theirs, see ``viveka_db.replicas``): it runs in autocommit (no ``BEGIN``/``COMMIT``
  round trips, no rollback when the connection returns to the pool) and is read-only at
  the database level where the driver allows it. For an in-memory SQLite database it is
  the write engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.pool import PoolResetState

from viveka_db.compat import requests_row_lock
from viveka_db.config.settings import DatabaseSettings
from viveka_db.dialects import adapter_for
from viveka_db.dialects.base import NOWAIT_OPTION
from viveka_db.dialects.mysql import causal_reads_on_galera
from viveka_db.dialects.translate import driver_errors, install_error_translation
from viveka_db.errors import OptimisticLockError, ReadOnlyTransactionError
from viveka_db.session.abandoned import (
    end_abandoned_block,
    interrupt_abandoned_statement,
    kill_abandoned_statements,
)
from viveka_db.session.optimistic import stale_write_error, versioned_pending
from viveka_db.tenancy.hooks import install_session_hooks
from viveka_db.tenancy.rls import RLS_KEY

__all__ = [
    "READ_ONLY_KEY",
    "VivekaSession",
    "create_read_engine",
    "create_write_engine",
    "is_plain_select",
    "sessionmaker_for",
]

logger = logging.getLogger("viveka_db.session")

READ_ONLY_KEY = "viveka_read_only"
SQLITE_BUSY_TIMEOUT_MS = 30_000


class VivekaSession(Session):
    """The sync session behind every ``AsyncSession`` we create.

    It enforces read-only (events below) and names the entity of a version conflict: every
    flush (explicit, auto, or the one inside COMMIT) raises :class:`OptimisticLockError`
    instead of SQLAlchemy's anonymous ``StaleDataError``.
    """

    pending_versioned: list[object] | tuple[()] = ()
    """The versioned entities the running flush updates or deletes (set by ``before_flush``,
    so a flush with nothing to do costs nothing extra)."""

    def flush(self, objects: Sequence[Any] | None = None) -> None:
        try:
            super().flush(objects)
        except StaleDataError as exc:
            if isinstance(exc, OptimisticLockError):
                raise
            error = stale_write_error(self.pending_versioned, exc)
            if error is None:
                raise
            raise error from exc
        finally:
            self.pending_versioned = ()


@event.listens_for(VivekaSession, "before_flush")
def _refuse_flush_when_read_only(
    session: Session, flush_context: UOWTransaction, instances: Any
) -> None:
    if session.info.get(READ_ONLY_KEY):
        raise ReadOnlyTransactionError(
            "cannot flush changes inside a read_only=True transaction; remove read_only or "
            "run the write in a transaction that allows writes"
        )


@event.listens_for(VivekaSession, "before_flush")
def _note_versioned_writes(session: Session, flush_context: UOWTransaction, instances: Any) -> None:
    if isinstance(session, VivekaSession):
        session.pending_versioned = versioned_pending(session)


@event.listens_for(VivekaSession, "do_orm_execute")
def _refuse_writes_when_read_only(state: ORMExecuteState) -> None:
    if state.session.info.get(READ_ONLY_KEY) and (
        state.is_insert or state.is_update or state.is_delete
    ):
        raise ReadOnlyTransactionError(
            "cannot execute an INSERT/UPDATE/DELETE inside a read_only=True transaction"
        )


install_session_hooks(VivekaSession)  # tenants, actors, soft delete: viveka_db.tenancy


def _is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _pool_options(settings: DatabaseSettings, url: URL) -> dict[str, Any]:
    if _is_memory_sqlite(url):
        return {}  # StaticPool: one shared connection, no sizing
    # connect_wait and failover_urls must notice a server-side close before the first
    # statement: asyncpg knows it without I/O (connect_policy), the other drivers ping
    ping = settings.pool_pre_ping or (
        bool(settings.connect_wait or settings.failover_urls)
        and adapter_for(url.get_backend_name()).ping_to_detect_close(url.get_driver_name())
    )
    options: dict[str, Any] = {"pool_pre_ping": ping}
    for key in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle"):
        value = getattr(settings, key)
        if value is not None:
            options[key] = value
    return options


def create_write_engine(
    settings: DatabaseSettings, url: URL, overrides: dict[str, Any]
) -> AsyncEngine:
    options = {"echo": settings.echo, **_pool_options(settings, url), **overrides}
    if settings.isolation_level is not None:
        options.setdefault("isolation_level", settings.isolation_level.value)
    if "isolation_level" in options:
        _check_isolation(url, options["isolation_level"])
    if not _is_memory_sqlite(url):
        options.setdefault("pool_reset_on_return", None)  # _reset_if_in_transaction instead
    engine = create_async_engine(url, **options)
    if options.get("pool_reset_on_return", "rollback") is None:
        event.listen(engine.sync_engine.pool, "reset", _reset_if_in_transaction)
    serializable = options.get("isolation_level") == "SERIALIZABLE"
    _finish(engine, url, read_only=False, serializable=serializable)
    return engine


def _check_isolation(url: URL, level: object) -> None:
    """Refuse a level the dialect does not have now, not at the first connection."""
    from viveka_db.errors import ConfigurationError

    try:
        dialect: Any = url.get_dialect()()  # the values need no connection on these dialects
        valid = list(dialect.get_isolation_level_values(None))
    except Exception:  # pragma: no cover - a third-party dialect that needs a connection
        return  # it checks the level itself on the first connection
    if level not in valid:
        raise ConfigurationError(
            f"[database] isolation_level {level!r} is not supported by "
            f"{url.get_backend_name()}; valid levels there are: {', '.join(sorted(valid))}"
        )


def _reset_if_in_transaction(dbapi_connection: Any, record: Any, state: PoolResetState) -> None:
    """Roll back a connection returning to the pool only if it is in a transaction.

    After a COMMIT it is not, and the pool's unconditional ROLLBACK costs a round trip on
    MySQL/MariaDB and a thread hop on SQLite (asyncpg's adapter already skips it).
    """
    if state.transaction_was_reset or not state.asyncio_safe:
        return
    if _driver_in_transaction(dbapi_connection.driver_connection):
        dbapi_connection.rollback()


def _driver_in_transaction(driver: Any) -> bool:
    """Known without I/O: aiomysql/asyncmy from the last reply's server status, sqlite3 from
    ``sqlite3_get_autocommit()``; any other driver is assumed to be in one."""
    status = getattr(driver, "get_transaction_status", None)
    if status is not None:
        return bool(status())
    return bool(getattr(driver, "in_transaction", True))  # aiosqlite: sqlite3's flag


def create_read_engine(
    settings: DatabaseSettings,
    url: URL,
    write_engine: AsyncEngine,
    overrides: dict[str, Any],
    *,
    replica: bool = False,
) -> AsyncEngine:
    """The autocommit, database-level read-only engine for ``url`` (the primary or a replica).

    A replica's pooled connections are pinged at checkout, so one that died while idle is
    replaced (by a connection elsewhere) instead of failing the read.
    """
    if not replica and _is_memory_sqlite(url):
        return write_engine
    options: dict[str, Any] = {
        "echo": settings.echo,
        **_pool_options(settings, url),
        **overrides,
        "isolation_level": "AUTOCOMMIT",
        "pool_reset_on_return": None,
        "skip_autocommit_rollback": True,
    }
    if replica:
        options["pool_pre_ping"] = True
    adapter = adapter_for(url.get_backend_name())
    connect_args = adapter.read_only_connect_args(
        url.get_driver_name(), dict(options.pop("connect_args", {}))
    )
    engine = create_async_engine(url, connect_args=connect_args, **options)
    if adapter.cursor_transaction is not None:  # streams open transaction blocks here
        event.listen(engine.sync_engine.pool, "reset", end_abandoned_block)
    _finish(engine, url, read_only=True)
    return engine


def _configure_sqlite(
    engine: AsyncEngine, url: URL, *, read_only: bool, serializable: bool = False
) -> None:
    """Make SQLite behave like the server databases.

    pysqlite's own transaction handling breaks SAVEPOINT, so we take it over (SQLAlchemy's
    documented recipe) and decide when the transaction really begins: reads before the
    first write run in autocommit, each seeing the latest committed data (READ COMMITTED,
    PostgreSQL's default); just before the first write (or ``SELECT ... FOR UPDATE``, or
    savepoint) we send ``BEGIN IMMEDIATE``, which waits for the single write lock up to the
    busy timeout. So a transaction that has only read never blocks anyone (``REQUIRES_NEW``
    inside it works, readers and a writer interleave freely), and read-then-write
    transactions running concurrently queue for the lock instead of failing with
    "database is locked". An explicit ``Isolation.SERIALIZABLE`` (per transaction, or the
    ``[database] isolation_level`` of the data source) takes the lock at once.
    File databases use WAL so readers never block the writer. SQLite still has one writer:
    a ``REQUIRES_NEW`` that writes inside a transaction that has already written waits for
    a lock its own caller holds, and fails after the busy timeout.
    """
    file_db = not _is_memory_sqlite(url)
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
        begin_sql = "BEGIN IMMEDIATE" if file_db else "BEGIN"

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            # Reads before the first write run in autocommit (READ COMMITTED, PostgreSQL's
            # default); the first write takes the write lock, waiting for it (busy_timeout).
            asked = connection.get_execution_options().get("isolation_level")
            if asked == "SERIALIZABLE" or (serializable and asked is None):
                # an explicit SERIALIZABLE wants every read in the write transaction
                connection.info[_PENDING_BEGIN] = False
                _run_on_driver(connection, begin_sql)
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
                _run_on_driver(conn, begin_sql, nowait=context.execution_options.get(NOWAIT_OPTION))

        @event.listens_for(engine.sync_engine, "commit")
        @event.listens_for(engine.sync_engine, "rollback")
        def _transaction_ended(conn: Any) -> None:
            # after a cancelled statement (or a LockTimeoutError of a NOWAIT begin) the
            # connection is invalidated: it has no info to reset (reading it raises)
            if not conn.invalidated:
                conn.info[_PENDING_BEGIN] = False


_PENDING_BEGIN = "viveka_pending_begin"


def _run_on_driver(connection: Any, sql: str, *, nowait: object = False) -> None:
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
    with driver_errors(dialect, nowait=bool(nowait), only=dialect.loaded_dbapi.Error):
        connection.connection.dbapi_connection.run_async(execute)


def is_plain_select(context: Any) -> bool:
    """A compiled Core/ORM SELECT: it may run before the transaction's first write."""
    compiled = getattr(context, "compiled", None)
    if compiled is None or context.isinsert or context.isupdate or context.isdelete:
        return False
    statement = compiled.statement
    # SELECT ... FOR UPDATE (rendered as plain SELECT on SQLite) asks for the write lock
    return bool(getattr(statement, "is_select", False)) and not requests_row_lock(statement)


def _finish(engine: AsyncEngine, url: URL, *, read_only: bool, serializable: bool = False) -> None:
    """What every engine gets: mapped errors, and its dialect family's connection set-up.

    ``serializable``: the data source's default isolation is SERIALIZABLE (SQLite then
    takes its write lock at BEGIN).
    """
    install_error_translation(engine)
    setup = _ENGINE_SETUP.get(adapter_for(url.get_backend_name()).name)
    if setup is not None:
        setup(engine, url, read_only, serializable)


def _configure_mysql(engine: AsyncEngine, url: URL, read_only: bool) -> None:
    kill_abandoned_statements(engine, read_only)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        causal_reads_on_galera(dbapi_connection)


_ENGINE_SETUP: dict[str, Callable[[AsyncEngine, URL, bool, bool], None]] = {
    "sqlite": lambda engine, url, read_only, serializable: _configure_sqlite(
        engine, url, read_only=read_only, serializable=serializable
    ),
    "mysql": lambda engine, url, read_only, _: _configure_mysql(engine, url, read_only),
}
"""Per dialect family (see :func:`viveka_db.dialects.adapter_for`): connection set-up."""


def sessionmaker_for(
    engine: AsyncEngine, *, read_only: bool, tenant_rls: bool = False
) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        engine,
        expire_on_commit=False,
        autoflush=not read_only,
        sync_session_class=VivekaSession,
        info={READ_ONLY_KEY: read_only, RLS_KEY: tenant_rls},  # RLS: viveka_db.tenancy.rls
    )
