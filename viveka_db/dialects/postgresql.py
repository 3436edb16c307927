"""PostgreSQL: errors by SQLSTATE with the server's own fields, upsert as ``ON CONFLICT``.

asyncpg reports the constraint, column and table of a failure as attributes of its
exception (SQLAlchemy's adapted error keeps it as ``__cause__``); psycopg has them on
``.diag``. The ``detail`` line repeats the offending values (``Key (email)=(x)``), so only the
column names before ``=`` are read from it, and only when the metadata does not know the
constraint.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.sql.dml import Insert

from viveka_db.dialects.base import (
    BY_SQLSTATE,
    DialectAdapter,
    Violation,
    columns_from_key_detail,
    schema_violation,
)
from viveka_db.errors import NotNullViolationError

__all__ = ["PostgresqlAdapter"]

_FIELDS = ("constraint_name", "column_name", "table_name", "detail")
_UNDEFINED = ("42P01", "42703")  # undefined_table, undefined_column
_SCHEMA_NAMES = (
    re.compile(r'column "?(?P<column>[\w.]+?)"? of relation "?(?P<table>[\w.]+?)"? does not'),
    re.compile(r'column "?(?P<column>[\w.]+?)"? does not exist'),
    re.compile(r'relation "?(?P<table>[\w.]+?)"? does not exist'),
)


class PostgresqlAdapter(DialectAdapter):
    name = "postgresql"
    version_query = "SHOW server_version"
    bulk_insert = "copy"
    cursor_transaction = ("BEGIN READ ONLY", "COMMIT")
    detects_closed_connections = True
    supports_skip_locked = True
    has_row_level_security = True
    has_notify = True
    stores_time_zones = True
    dollar_quoting = True
    primary_position_query = "SELECT pg_current_wal_lsn()::text"
    # a "replica" that is not in recovery (a promoted one) reports its own write position
    replica_position_query = (
        "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
        "ELSE pg_current_wal_lsn() END)::text"
    )

    def parse_position(self, value: object) -> int | None:
        # an LSN, '16/B374D848': high and low 32 bits in hex
        if not isinstance(value, str) or "/" not in value:
            return None
        high, low = value.split("/", 1)
        return (int(high, 16) << 32) | int(low, 16)

    def product(self, version: str) -> str:
        return "PostgreSQL"

    def listens(self, driver: str) -> bool:
        return driver in ("asyncpg", "psycopg")

    def read_only_connect_args(self, driver: str, connect_args: dict[str, Any]) -> dict[str, Any]:
        if driver in ("psycopg", "psycopg_async"):  # libpq's startup options
            options = str(connect_args.get("options", ""))
            if "default_transaction_read_only" not in options:
                options = f"{options} -c default_transaction_read_only=on".strip()
            return {**connect_args, "options": options}
        if driver != "asyncpg":
            return connect_args
        server_settings = dict(connect_args.get("server_settings", {}))
        server_settings.setdefault("default_transaction_read_only", "on")
        return {**connect_args, "server_settings": server_settings}

    def connect_timeout_args(self, driver: str, timeout: float) -> dict[str, Any]:
        return {"timeout": timeout} if driver == "asyncpg" else {}

    def failover_connect_args(self, driver: str, params: dict[str, Any]) -> dict[str, Any]:
        if driver in ("asyncpg", "psycopg", "psycopg_async"):
            return {"target_session_attrs": "read-write", **params}
        return params

    def ping_to_detect_close(self, driver: str) -> bool:
        # asyncpg reads the socket all the time, so a server-side close marks the connection
        # closed at once; psycopg (libpq) only notices at its next I/O
        return driver != "asyncpg"

    def known_closed(self, driver_connection: Any) -> bool:
        is_closed = getattr(driver_connection, "is_closed", None)  # asyncpg
        if callable(is_closed):
            return bool(is_closed())
        return bool(getattr(driver_connection, "closed", False)) or bool(  # psycopg
            getattr(driver_connection, "broken", False)
        )

    def violation(self, orig: BaseException) -> Violation | None:
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if code in _UNDEFINED:
            return schema_violation(str(orig), _SCHEMA_NAMES, f"SQLSTATE {code}")
        family = BY_SQLSTATE.get(code) if isinstance(code, str) else None
        if family is None:
            return None
        constraint, column, table, detail = _server_fields(orig)
        columns: tuple[str, ...] = (column,) if column else ()
        if not columns and family is not NotNullViolationError:
            columns = columns_from_key_detail(detail)
        return Violation(family, constraint, columns, table, f"SQLSTATE {code}")

    def upsert(
        self,
        model: type[Any],
        table: Table,
        target: Sequence[Column[Any]],
        assignments: Sequence[tuple[Any, bool]],
        *,
        only_where_equal: Column[Any] | None = None,
    ) -> Insert:
        from sqlalchemy.dialects.postgresql import insert  # lazy: dialect modules are heavy

        return on_conflict(insert(model), target, assignments, only_where_equal)


def on_conflict(
    stmt: Any,
    target: Sequence[Column[Any]],
    assignments: Sequence[tuple[Any, bool]],
    only_where_equal: Column[Any] | None = None,
) -> Insert:
    """``ON CONFLICT (target) DO NOTHING / DO UPDATE [WHERE]``: PostgreSQL's and SQLite's
    spelling."""
    if not assignments:
        return stmt.on_conflict_do_nothing(index_elements=list(target))  # type: ignore[no-any-return]
    where = None
    if only_where_equal is not None:
        where = only_where_equal == stmt.excluded[only_where_equal.name]
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=list(target),
        set_={col.name: col + 1 if bump else stmt.excluded[col.name] for col, bump in assignments},
        where=where,
    )


def _server_fields(orig: BaseException) -> tuple[str | None, str | None, str | None, object]:
    """(constraint, column, table, detail) from asyncpg's exception or psycopg's ``diag``."""
    for source in (orig, orig.__cause__, getattr(orig, "diag", None)):
        if source is not None and any(getattr(source, f, None) for f in _FIELDS[:3]):
            values = [getattr(source, f, None) for f in _FIELDS]
            if values[3] is None:
                values[3] = getattr(source, "message_detail", None)  # psycopg's name
            return (_text(values[0]), _text(values[1]), _text(values[2]), values[3])
    return None, None, None, None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
