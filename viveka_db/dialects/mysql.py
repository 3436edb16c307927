"""MySQL and MariaDB (aiomysql and asyncmy): errors by error number, upsert as
``ON DUPLICATE KEY UPDATE``.

Both drivers raise ``(errno, message)`` errors. The messages are parsed for names only:
``Duplicate entry 'x' for key 'uq_users_email'`` holds the value, so nothing but the key
name is taken from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Column, Table, case, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import Insert

from viveka_db.dialects.abandoned import kill_abandoned_statements
from viveka_db.dialects.base import NO_SITE, DialectAdapter, Site, Violation, schema_violation
from viveka_db.errors import (
    CheckViolationError,
    DatabaseError,
    DeadlockError,
    DuplicateKeyError,
    ForeignKeyViolationError,
    LockTimeoutError,
    NotNullViolationError,
    SerializationFailureError,
)

__all__ = ["MysqlAdapter", "causal_reads_on_galera"]


_DUPLICATE_KEY = re.compile(r"for key '([^']*)'\s*$")
_FOREIGN_KEY = re.compile(r"\(`[^`]*`\.`([^`]*)`, CONSTRAINT `([^`]*)` FOREIGN KEY \(([^)]*)\)")
_QUOTED = re.compile(r"['`]([^'`]+)['`]")
_CHECK_TABLE = re.compile(r"failed for `[^`]*`\.`([^`]*)`")


def _duplicate(message: str) -> Violation:
    match = _DUPLICATE_KEY.search(message)
    key = match.group(1).rpartition(".")[2] if match else None  # MySQL 8: 'table.key'
    return Violation(DuplicateKeyError, key, code="1062")  # the primary key is 'PRIMARY'


def _foreign_key(message: str) -> Violation:
    match = _FOREIGN_KEY.search(message)
    if match is None:
        return Violation(ForeignKeyViolationError)
    table, constraint, columns = match.groups()
    names = tuple(name.strip().strip("`") for name in columns.split(","))
    return Violation(ForeignKeyViolationError, constraint, names, table)


def _not_null(message: str) -> Violation:
    match = _QUOTED.search(message)  # Column 'x' cannot be null / Field 'x' doesn't have ...
    return Violation(NotNullViolationError, columns=(match.group(1),) if match else ())


def _check(message: str) -> Violation:
    match = _QUOTED.search(message)  # Check constraint 'x' is violated / CONSTRAINT `x` failed
    table = _CHECK_TABLE.search(message)
    return Violation(
        CheckViolationError,
        match.group(1) if match else None,
        table=table.group(1) if table else None,
    )


_SCHEMA_NAMES = (
    re.compile(r"Table '(?P<table>[^']+)' doesn't exist"),
    re.compile(r"Unknown column '(?P<column>[^']+)'"),
)


def _schema(message: str) -> Violation:
    return schema_violation(message, _SCHEMA_NAMES, "")


def _plain(family: type[DatabaseError]) -> Callable[[str], Violation]:
    return lambda message: Violation(family)


_BY_ERRNO: dict[int, Callable[[str], Violation]] = {
    1062: _duplicate,
    1451: _foreign_key,  # a parent row still referenced
    1452: _foreign_key,  # no such parent row
    1048: _not_null,  # Column 'x' cannot be null
    1364: _not_null,  # Field 'x' doesn't have a default value (strict mode)
    3819: _check,  # MySQL
    4025: _check,  # MariaDB
    1020: _plain(SerializationFailureError),  # MariaDB snapshot isolation: row changed
    1146: _schema,  # Table 'db.t' doesn't exist
    1054: _schema,  # Unknown column 'c' in 'field list'
    1213: _plain(DeadlockError),
    1205: _plain(DeadlockError),  # lock wait timeout: the same remedy, run it again
    3572: _plain(LockTimeoutError),  # MySQL 8: NOWAIT found the row locked
}
_LOCK_WAIT_TIMEOUT = 1205
"""MariaDB answers a ``NOWAIT`` read of a locked row with this too: on such a read it is a
:class:`LockTimeoutError` (the lock was not available), elsewhere a retryable timeout."""


def _asks_nowait(statement: object) -> bool:
    """Whether the SQL text is a ``... FOR UPDATE NOWAIT`` (where no site says so)."""
    return isinstance(statement, str) and statement.rstrip().upper().endswith(" NOWAIT")


class MysqlAdapter(DialectAdapter):
    name = "mysql"
    version_query = "SELECT VERSION()"
    supports_skip_locked = True
    cursor_blocks_connection = True
    double_quotes_are_strings = True
    backslash_escapes = True
    bulk_insert = "multi_row_values"

    def product(self, version: str) -> str:
        return "MariaDB" if "mariadb" in version.lower() else "MySQL"

    def system_name(self, dialect: Any) -> str:
        return "mariadb" if getattr(dialect, "is_mariadb", False) else "mysql"

    def utc_datetime_type(self) -> Any:
        from sqlalchemy.dialects.mysql import DATETIME  # lazy: dialect modules are heavy

        return DATETIME(fsp=6)  # microseconds, as the other databases keep them

    def configure_engine(
        self, engine: AsyncEngine, url: URL, *, read_only: bool, serializable: bool
    ) -> None:
        super().configure_engine(engine, url, read_only=read_only, serializable=serializable)
        kill_abandoned_statements(engine, read_only)
        event.listen(engine.sync_engine, "connect", _on_connect)

    def connect_timeout_args(self, driver: str, timeout: float) -> dict[str, Any]:
        if driver not in ("aiomysql", "asyncmy"):
            return {}
        return {"connect_timeout": max(1, int(timeout))}  # whole seconds only

    def read_only_connect_args(self, driver: str, connect_args: dict[str, Any]) -> dict[str, Any]:
        if driver not in ("aiomysql", "asyncmy"):
            return connect_args
        return {"init_command": "SET SESSION TRANSACTION READ ONLY", **connect_args}

    def violation(self, orig: BaseException) -> Violation | None:
        args = orig.args
        if len(args) < 2 or not isinstance(args[0], int):
            return None
        parse = _BY_ERRNO.get(args[0])
        if parse is None:
            return None
        found = parse(str(args[1]))
        code = f"errno {args[0]}"
        return Violation(found.family, found.constraint, found.columns, found.table, code)

    def map_error(self, error: sa_exc.DBAPIError, site: Site = NO_SITE) -> DatabaseError | None:
        orig = error.orig
        nowait = site.nowait or _asks_nowait(error.statement)
        if nowait and orig is not None and orig.args[:1] == (_LOCK_WAIT_TIMEOUT,):
            return Violation(LockTimeoutError, code=f"errno {_LOCK_WAIT_TIMEOUT}").build(
                error, site
            )
        return super().map_error(error, site)

    def upsert(
        self,
        model: type[Any],
        table: Table,
        target: Sequence[Column[Any]],
        assignments: Sequence[tuple[Any, bool]],
        *,
        only_where_equal: Column[Any] | None = None,
    ) -> Insert:
        from sqlalchemy.dialects.mysql import insert  # lazy: dialect modules are heavy

        stmt = insert(model)
        if not assignments:  # no DO NOTHING for one key: assign a key column to itself
            pk = target[0]
            return stmt.on_duplicate_key_update({pk.name: table.c[pk.name]})
        values: dict[str, Any] = {
            col.name: col + 1 if bump else stmt.inserted[col.name] for col, bump in assignments
        }
        if only_where_equal is not None:  # no WHERE here: keep each column's old value
            same = only_where_equal == stmt.inserted[only_where_equal.name]
            values = {
                name: case((same, value), else_=table.c[name]) for name, value in values.items()
            }
        return stmt.on_duplicate_key_update(values)


def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    causal_reads_on_galera(dbapi_connection)


def causal_reads_on_galera(dbapi_connection: Any) -> None:
    """On a MariaDB Galera node, make this connection's reads causal (``wsrep_sync_wait``).

    Galera certifies a commit on every node before it returns, but applies it on the others a
    moment later: without this, a read on another node (after a failover, or a replica URL
    that is a Galera node) could miss a write this client has just committed. With
    ``wsrep_sync_wait = 1`` each read first waits until the node has applied everything the
    cluster committed before it. Asked once per new connection (one round trip; two on
    Galera); a server that is not a Galera node (``wsrep_on`` absent or OFF) is left alone.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SHOW VARIABLES LIKE 'wsrep_on'")
        row = cursor.fetchone()
        if row is not None and str(row[1]).upper() == "ON":
            cursor.execute("SET SESSION wsrep_sync_wait = 1")
    finally:
        cursor.close()
