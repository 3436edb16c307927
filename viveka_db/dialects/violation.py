"""What a driver error says, in the package's terms: the family, the names, the site.

Shared by every adapter: a :class:`Violation` is what an adapter reads from a driver error
(names only, never values), completed from the failed statement's :class:`Site` (its table
metadata) into the mapped :mod:`viveka_db.errors` exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql.schema import ColumnCollectionConstraint

from viveka_db.dialects.mapped import describe, mapped_error
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
    "NOWAIT_SITE",
    "NO_SITE",
    "Site",
    "Violation",
    "columns_from_key_detail",
    "columns_of",
    "constraint_with",
    "schema_violation",
    "written_table",
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


_KEY_COLUMNS = re.compile(r"^Key \((.+?)\)=\(")


def columns_from_key_detail(detail: object) -> tuple[str, ...]:
    """PostgreSQL's ``Key (a, b)=(1, 2) already exists.`` -> ``("a", "b")``: names only."""
    if not isinstance(detail, str):
        return ()
    match = _KEY_COLUMNS.match(detail)
    if match is None:
        return ()
    return tuple(part.strip().strip('"') for part in match.group(1).split(","))
