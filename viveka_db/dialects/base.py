"""The generic dialect adapter, and what every adapter shares.

An adapter holds what differs between databases, so the rest of the package never asks
``if dialect.name == ...``: how a driver error maps to the :mod:`viveka_db.errors` family,
and how an upsert is written. :class:`DialectAdapter` itself is the fallback for databases
without an adapter of their own: it maps errors by SQLSTATE when the driver reports one
(``sqlstate`` or ``pgcode``, as psycopg and asyncpg do) and has no upsert.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Column, Table
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.schema import ColumnCollectionConstraint

from viveka_db.dialects.connection import connection_problem
from viveka_db.dialects.mapped import mapped_error
from viveka_db.errors import (
    CheckViolationError,
    DatabaseError,
    DeadlockError,
    DuplicateKeyError,
    ForeignKeyViolationError,
    LockTimeoutError,
    NotNullViolationError,
    SchemaError,
    SerializationFailureError,
)

__all__ = [
    "BY_SQLSTATE",
    "NOWAIT_OPTION",
    "NO_SITE",
    "DialectAdapter",
    "Site",
    "Violation",
    "columns_from_key_detail",
    "columns_of",
    "constraint_with",
    "describe",
    "schema_violation",
]

BY_SQLSTATE: dict[str, type[DatabaseError]] = {
    "23505": DuplicateKeyError,
    "23503": ForeignKeyViolationError,
    "23502": NotNullViolationError,
    "23514": CheckViolationError,
    "40001": SerializationFailureError,
    "40P01": DeadlockError,
    "55P03": LockTimeoutError,  # lock_not_available: NOWAIT, lock_timeout
}
"""SQLSTATE -> class: PostgreSQL's codes (40001 is also the SQL standard's)."""

NOWAIT_OPTION = "viveka_lock_nowait"
"""Execution option marking a ``SELECT ... FOR UPDATE NOWAIT``: a database that reports a
lock not granted at once with a generic code (MariaDB's 1205, SQLite's busy) then raises
:class:`~viveka_db.errors.LockTimeoutError`."""


@dataclass(frozen=True, slots=True)
class Site:
    """What SQLAlchemy knew about the failed statement: its table, and whether it wrote rows.

    Used to turn a constraint name into its columns (and, on SQLite, columns into a name).
    At commit time there is no statement: both stay empty.
    """

    table: Table | None = None
    writes_rows: bool = False
    nowait: bool = False
    """The statement asked for its row locks without waiting (``lock="update_nowait"``)."""

    @classmethod
    def of(cls, context: Any) -> Site:
        """The site of an ``ExecutionContext`` (``None`` or anything else: no site)."""
        options: object = getattr(context, "execution_options", None)
        nowait = isinstance(options, Mapping) and bool(
            cast("Mapping[str, object]", options).get(NOWAIT_OPTION)
        )
        compiled = getattr(context, "compiled", None)
        table = getattr(getattr(compiled, "statement", None), "table", None)
        if not isinstance(table, Table):
            return NOWAIT_SITE if nowait else NO_SITE
        return cls(cast(Table, table), bool(context.isinsert or context.isupdate), nowait)


NO_SITE = Site()
NOWAIT_SITE = Site(nowait=True)


@dataclass(frozen=True, slots=True)
class Violation:
    """What the database said about a failure; everything optional."""

    family: type[DatabaseError]
    constraint: str | None = None
    columns: tuple[str, ...] = ()
    table: str | None = None
    code: str = ""

    def build(self, source: sa_exc.DBAPIError, site: Site) -> DatabaseError:
        """The mapped error, completing columns/constraint from the site's table metadata."""
        table = (
            site.table if site.table is not None and self.table in (None, site.table.name) else None
        )
        constraint, columns = self.constraint, self.columns
        if table is not None:
            columns = columns_of(table, constraint) or columns
            if constraint is None and self.family is DuplicateKeyError:  # SQLite's case
                constraint = constraint_with(table, columns)
        name = self.table or (table.name if table is not None else written_table(source))
        return mapped_error(
            self.family,
            source,
            describe(self.family, name, columns, constraint, self.code),
            constraint=constraint,
            columns=columns,
            table=name,
        )


_WRITTEN_TABLE = re.compile(
    r"^\s*(?:INSERT\s+(?:IGNORE\s+)?INTO|UPDATE|DELETE\s+FROM)\s+[`\"]?([\w.]+?)[`\"]?[\s(]",
    re.IGNORECASE,
)


def written_table(source: sa_exc.DBAPIError) -> str | None:
    """The table a failed INSERT/UPDATE/DELETE wrote, read from the statement's text.

    The fallback where SQLAlchemy handed no compiled statement to the error hook; the text
    holds placeholders, never the bound values.
    """
    statement = source.statement
    found = _WRITTEN_TABLE.match(statement) if isinstance(statement, str) else None
    return None if found is None else found.group(1).rsplit(".", 1)[-1]


class DialectAdapter:
    """The generic adapter (and the base of the per-dialect ones)."""

    name = "generic"
    """The family: ``postgresql``, ``mysql`` (MySQL and MariaDB), ``sqlite`` or ``generic``."""

    version_query: str | None = None
    """SQL returning the server's version string (``None``: use the dialect's own info)."""

    detects_closed_connections = False
    """The driver notices a server-side close without a round trip (see ``known_closed``)."""

    batch_migrations = False
    """Alembic must rebuild tables to alter them (``render_as_batch``): SQLite."""

    cursor_transaction: tuple[str, str] | None = None
    """The statements that open and end a read-only transaction block around a server-side
    cursor on an autocommit connection, where the database has cursors only inside one
    (PostgreSQL); ``None``: cursors work in autocommit."""

    bulk_insert = "executemany_returning"
    """How ``insert_all`` sends plain rows here (the repository layer maps the name to its
    inserter): ``copy`` (PostgreSQL), ``multi_row_values`` (driver-escaped multi-row
    ``INSERT``, MySQL/MariaDB), ``keys_after_first`` (the first row alone, the others' keys
    follow its key: SQLite), ``executemany_returning`` (SQLAlchemy's executemany, keys by
    ``RETURNING`` in parameter order where the dialect supports it)."""

    def ping_to_detect_close(self, driver: str) -> bool:
        """Whether only a ping at checkout finds a connection the server closed while it sat
        in the pool (``connect_wait``/``failover_urls`` turn ``pool_pre_ping`` on then):
        drivers that do not notice the close without I/O (see ``known_closed``)."""
        return True

    def product(self, version: str) -> str:
        """The product name to show next to ``version`` (``db health``)."""
        return self.name

    def read_only_connect_args(self, driver: str, connect_args: dict[str, Any]) -> dict[str, Any]:
        """``connect_args`` for a connection the database itself keeps read-only."""
        return connect_args

    def server_unavailable(self, error: BaseException) -> bool:
        """Whether a failed connection attempt means "the server is not there right now"
        (refused, reset, starting or stopping): :mod:`viveka_db.dialects.connection`
        decides, for every database; never a refused login or a missing database."""
        problem = connection_problem(error)
        return problem is not None and problem.kind == "unreachable"

    def failover_connect_args(self, driver: str, params: dict[str, Any]) -> dict[str, Any]:
        """Connect parameters for a target among several primaries (only writable ones)."""
        return params

    def known_closed(self, driver_connection: Any) -> bool:
        """Whether the driver already knows (without a round trip) the server closed it."""
        return False

    def violation(self, orig: BaseException) -> Violation | None:
        """What the driver error ``orig`` means, or ``None`` if it is none of ours."""
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        family = BY_SQLSTATE.get(code) if isinstance(code, str) else None
        return None if family is None else Violation(family, code=f"SQLSTATE {code}")

    def map_error(self, error: sa_exc.DBAPIError, site: Site = NO_SITE) -> DatabaseError | None:
        """The mapped replacement of ``error``, or ``None`` to leave it as it is."""
        orig = error.orig
        if orig is None:
            return None
        found = self.violation(orig)
        return None if found is None else found.build(error, site)

    def upsert(
        self,
        model: type[Any],
        table: Table,
        target: Sequence[Column[Any]],
        assignments: Sequence[tuple[Any, bool]],
        *,
        only_where_equal: Column[Any] | None = None,
    ) -> Insert:
        """``INSERT`` of ``model`` that resolves conflicts on ``target``.

        ``assignments`` are the columns an update writes (``True``: the version, which is
        incremented instead of copied); empty means "keep the existing row".
        ``only_where_equal``: update an existing row only where this column already has the
        inserted value (``tenant_id``: never touch another tenant's row).
        """
        raise NotImplementedError(
            f"upsert_all is not supported on the {self.name!r} dialect; "
            "use insert_all, or PostgreSQL, MySQL/MariaDB or SQLite"
        )


def columns_of(table: Table, constraint: str | None) -> tuple[str, ...]:
    """The columns of the constraint or index named ``constraint`` on ``table``."""
    if not constraint:
        return ()
    if constraint == "PRIMARY":  # MySQL's name for every primary key
        return tuple(col.name for col in table.primary_key.columns)
    for name, columns in _column_sets(table):
        if name == constraint:
            return columns
    if constraint in table.c and table.c[constraint].unique:
        return (constraint,)  # MySQL names an unnamed UNIQUE after its column
    return ()


def constraint_with(table: Table, columns: tuple[str, ...]) -> str | None:
    """The name of the unique constraint or index over exactly ``columns`` (SQLite's case)."""
    if not columns:
        return None
    wanted = set(columns)
    for name, have in _column_sets(table):
        if name and set(have) == wanted:
            return name
    return None


def _column_sets(table: Table) -> Iterator[tuple[str | None, tuple[str, ...]]]:
    """(name, columns) of every constraint and index of ``table`` that lists columns."""
    for constraint in table.constraints:
        if isinstance(constraint, ColumnCollectionConstraint):
            name = str(constraint.name) if constraint.name else None
            yield name, tuple(col.name for col in constraint.columns)
    for index in table.indexes:
        name = str(index.name) if index.name else None
        yield name, tuple(col.name for col in index.columns)


_KIND: dict[type[DatabaseError], str] = {
    DuplicateKeyError: "duplicate key",
    ForeignKeyViolationError: "foreign key violation",
    NotNullViolationError: "not-null violation",
    CheckViolationError: "check constraint violation",
    SerializationFailureError: "serialization failure",
    DeadlockError: "deadlock",
    LockTimeoutError: "lock not available",
}
_ADVICE: dict[type[DatabaseError], str] = {
    DuplicateKeyError: "a row with the same value already exists",
    ForeignKeyViolationError: "the referenced row does not exist, or the row is still referenced",
    NotNullViolationError: "a value is required",
    CheckViolationError: "the row does not satisfy the check",
    SerializationFailureError: "the transaction conflicted with a concurrent one or the "
    "database was locked; run the whole transaction again",
    DeadlockError: "the transaction was chosen as a deadlock victim (or its lock wait timed "
    "out); run the whole transaction again",
    LockTimeoutError: "another transaction holds the lock (NOWAIT) or the lock wait timed out",
}


def schema_violation(message: str, patterns: Sequence[re.Pattern[str]], code: str) -> Violation:
    """A :class:`SchemaError` naming what the first matching pattern finds in ``message``.

    Each pattern may have the groups ``table`` and ``column``; a ``column`` written as
    ``table.column`` is split. Only names are read from the message, never values.
    """
    table: str | None = None
    column: str | None = None
    for pattern in patterns:
        found = pattern.search(message)
        if found is None:
            continue
        groups = found.groupdict()
        table, column = groups.get("table"), groups.get("column")
        if column and "." in column and not table:
            table, _, column = column.rpartition(".")
        break
    if table:
        table = table.rpartition(".")[2]  # schema.table / database.table
    return Violation(SchemaError, columns=(column,) if column else (), table=table, code=code)


def describe(
    family: type[DatabaseError],
    table: str | None,
    columns: tuple[str, ...],
    constraint: str | None,
    code: str = "",
) -> str:
    """A message from names only: table, columns, constraint, code (never values)."""
    if family is SchemaError:
        return _describe_schema(table, columns, code)
    where = ""
    if table or columns:
        where = f" on {table or '?'}" + (f"({', '.join(columns)})" if columns else "")
    if constraint:
        where += f", constraint {constraint}"
    if code:
        where += f" [{code}]"
    return f"{_KIND.get(family, 'database error')}{where}: {_ADVICE.get(family, '')}".rstrip(": ")


def _describe_schema(table: str | None, columns: tuple[str, ...], code: str) -> str:
    if columns:
        missing = f"column {table + '.' if table else ''}{columns[0]}"
    else:
        missing = f"table {table}" if table else "a table or column"
    return (
        f"{missing} does not exist in the database{f' [{code}]' if code else ''}: the schema is "
        "behind the entities; apply the migrations with `viveka-db db upgrade` (or, for a "
        "database without migrations, create the tables with `viveka-db db init`)"
    )


_KEY_COLUMNS = re.compile(r"^Key \((.+?)\)=\(")


def columns_from_key_detail(detail: object) -> tuple[str, ...]:
    """PostgreSQL's ``Key (a, b)=(1, 2) already exists.`` -> ``("a", "b")``: names only."""
    if not isinstance(detail, str):
        return ()
    match = _KEY_COLUMNS.match(detail)
    if match is None:
        return ()
    return tuple(part.strip().strip('"') for part in match.group(1).split(","))
