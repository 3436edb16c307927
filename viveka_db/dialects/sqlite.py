"""SQLite: errors by (extended) result code and message, upsert as ``ON CONFLICT``.

SQLite names the table and columns of a failed UNIQUE or NOT NULL constraint in the message
(``UNIQUE constraint failed: users.email``) but not the constraint, and says nothing about a
failed foreign key; both are completed from the statement's table metadata where that is
unambiguous. ``database is locked`` (SQLITE_BUSY / SQLITE_LOCKED) means another connection
held the write lock past the busy timeout: running the transaction again may succeed; for
a read asking not to wait (``lock="update_nowait"``) it means the lock was not available.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, ForeignKeyConstraint, Table
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import Insert

from viveka_db.dialects.base import NO_SITE, DialectAdapter, Site, Violation, schema_violation
from viveka_db.dialects.postgresql import on_conflict
from viveka_db.dialects.sqlite_engine import configure_sqlite, is_memory_sqlite
from viveka_db.errors import (
    CheckViolationError,
    DatabaseError,
    DuplicateKeyError,
    ForeignKeyViolationError,
    LockTimeoutError,
    NotNullViolationError,
    SerializationFailureError,
)

__all__ = ["SqliteAdapter"]

_BY_PREFIX: tuple[tuple[str, type[DatabaseError]], ...] = (
    ("UNIQUE constraint failed:", DuplicateKeyError),
    ("FOREIGN KEY constraint failed", ForeignKeyViolationError),
    ("NOT NULL constraint failed:", NotNullViolationError),
    ("CHECK constraint failed:", CheckViolationError),
)
_SCHEMA_NAMES = (
    re.compile(r"^no such table: (?P<table>[\w.]+)"),
    re.compile(r"^no such column: (?P<column>[\w.]+)"),
    re.compile(r"^table (?P<table>[\w.]+) has no column named (?P<column>\w+)"),
)
_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (extended codes keep them in the low byte)


class SqliteAdapter(DialectAdapter):
    name = "sqlite"
    version_query = "SELECT sqlite_version()"
    bulk_insert = "keys_after_first"
    batch_migrations = True
    single_writer = True
    all_integers_64_bit = True
    double_quotes_are_strings = True
    driver_commits_before_ddl = True

    def product(self, version: str) -> str:
        return "SQLite"

    def ping_to_detect_close(self, driver: str) -> bool:
        return False  # a file: there is no server to restart

    def in_memory(self, url: URL) -> bool:
        return is_memory_sqlite(url)

    def configure_engine(
        self, engine: AsyncEngine, url: URL, *, read_only: bool, serializable: bool
    ) -> None:
        configure_sqlite(self, engine, url, read_only=read_only, serializable=serializable)

    def violation(self, orig: BaseException) -> Violation | None:
        message = str(orig)
        code = getattr(orig, "sqlite_errorcode", None)
        label = str(getattr(orig, "sqlite_errorname", "") or "")
        if (
            isinstance(code, int) and code & 0xFF in _BUSY_CODES
        ) or "database is locked" in message:
            return Violation(SerializationFailureError, code=label or "database is locked")
        for prefix, family in _BY_PREFIX:
            if message.startswith(prefix):
                return _violation(family, message[len(prefix) :].strip(), label)
        if (
            message.startswith(("no such table:", "no such column:"))
            or " has no column named " in message
        ):
            return schema_violation(message, _SCHEMA_NAMES, label)
        return None

    def map_error(self, error: sa_exc.DBAPIError, site: Site = NO_SITE) -> DatabaseError | None:
        orig = error.orig
        found = None if orig is None else self.violation(orig)
        if found is None:
            return None
        if site.nowait and found.family is SerializationFailureError:  # busy, not waiting
            found = Violation(LockTimeoutError, code=found.code)
        if found.family is ForeignKeyViolationError and found.constraint is None:
            found = _only_foreign_key(found, site)
        return found.build(error, site)

    def upsert(
        self,
        model: type[Any],
        table: Table,
        target: Sequence[Column[Any]],
        assignments: Sequence[tuple[Any, bool]],
        *,
        only_where_equal: Column[Any] | None = None,
    ) -> Insert:
        from sqlalchemy.dialects.sqlite import insert  # lazy: dialect modules are heavy

        return on_conflict(insert(model), target, assignments, only_where_equal)


def _violation(family: type[DatabaseError], names: str, code: str) -> Violation:
    """``t.a, t.b`` (UNIQUE, NOT NULL) or a constraint name / expression (CHECK)."""
    if family is CheckViolationError:
        return Violation(family, names or None, code=code)
    if family is ForeignKeyViolationError:
        return Violation(family, code=code)
    pairs = [part.strip().rpartition(".") for part in names.split(",") if part.strip()]
    table = pairs[0][0] if pairs and pairs[0][0] else None
    return Violation(family, columns=tuple(p[2] for p in pairs), table=table, code=code)


def _only_foreign_key(found: Violation, site: Site) -> Violation:
    """An INSERT/UPDATE on a table with one foreign key can only have broken that one."""
    table = site.table
    if table is None or not site.writes_rows:
        return found
    keys = [c for c in table.constraints if isinstance(c, ForeignKeyConstraint)]
    if len(keys) != 1:
        return found
    key = keys[0]
    columns = tuple(col.name for col in key.columns)
    name = str(key.name) if key.name else None
    return Violation(found.family, name, columns, table.name, found.code)
