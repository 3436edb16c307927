"""Building a mapped error that is both a viveka_db class and the SQLAlchemy class it replaces.

A driver error reaches us as, say, ``sqlalchemy.exc.IntegrityError`` (or ``OperationalError``
on MariaDB, or a bare ``DBAPIError`` from asyncpg). The mapped error must still be caught by
``except IntegrityError`` written before the mapping existed, so its class derives from both
the family class (``DuplicateKeyError``) and the SQLAlchemy class it replaces. Those pairs are
not fixed (the same duplicate key is an ``IntegrityError`` on one driver and an
``OperationalError`` on another), so the class is made once per pair and cached.

Extra bases make the family uniform across drivers: a constraint violation is always an
``IntegrityError``, a retryable failure or a lock not granted always an ``OperationalError``
and a missing table or column always a ``ProgrammingError`` (PEP 249's classes for them),
whatever the driver chose.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import exc as sa_exc

from viveka_db.errors import (
    CheckViolationError,
    ConstraintViolationError,
    DatabaseError,
    DeadlockError,
    DuplicateKeyError,
    ForeignKeyViolationError,
    LockTimeoutError,
    NotNullViolationError,
    RetryableTransactionError,
    SchemaError,
    SerializationFailureError,
)

__all__ = ["describe", "mapped_class", "mapped_error"]


_classes: dict[tuple[type[DatabaseError], type[sa_exc.DBAPIError]], type[DatabaseError]] = {}


def mapped_class(
    family: type[DatabaseError], replaced: type[sa_exc.DBAPIError]
) -> type[DatabaseError]:
    """The cached class deriving from ``family`` and ``replaced`` (plus the family's canon)."""
    cls = _classes.get((family, replaced))
    if cls is None:
        cls = _classes[family, replaced] = _make_class(family, replaced)
    return cls


def _make_class(
    family: type[DatabaseError], replaced: type[sa_exc.DBAPIError]
) -> type[DatabaseError]:
    canonical: type[sa_exc.DBAPIError] | None = None
    if issubclass(family, ConstraintViolationError):
        canonical = sa_exc.IntegrityError
    elif issubclass(family, RetryableTransactionError | LockTimeoutError):
        canonical = sa_exc.OperationalError
    elif issubclass(family, SchemaError):
        canonical = sa_exc.ProgrammingError
    bases: tuple[type, ...]
    if canonical is None or issubclass(replaced, canonical):
        bases = (family, replaced)
    elif issubclass(canonical, replaced):
        bases = (family, canonical)
    else:
        bases = (family, replaced, canonical)
    namespace = {
        "__module__": family.__module__,
        "__qualname__": family.__qualname__,
        "__doc__": family.__doc__,
        "__str__": DatabaseError.__str__,
        "__reduce__": _reduce,
    }
    return cast("type[DatabaseError]", type(family.__name__, bases, namespace))


def mapped_error(
    family: type[DatabaseError],
    source: sa_exc.DBAPIError,
    message: str,
    *,
    constraint: str | None = None,
    columns: tuple[str, ...] = (),
    table: str | None = None,
) -> DatabaseError:
    """A ``family`` error replacing ``source``; ``message`` never holds bound values.

    The SQLAlchemy side keeps ``statement``, ``orig`` and ``connection_invalidated``, but not
    ``params``: the mapped error carries no bound value anywhere a logger might print it.
    """
    cls = mapped_class(family, type(source))
    error: Any = cls.__new__(cls, message)
    # the SQLAlchemy side, as DBAPIError.__init__ leaves it (its message would hold values)
    sa_exc.DBAPIError.__init__(
        error,
        source.statement,
        None,
        cast(BaseException, source.orig),  # callers map only errors with a driver error
        hide_parameters=True,
        connection_invalidated=source.connection_invalidated,
        code=source.code,
        ismulti=source.ismulti,
    )
    error.args = (message,)
    error.message = message
    error.table = table
    if isinstance(error, ConstraintViolationError):
        error.constraint = constraint
        error.columns = tuple(columns)
    elif isinstance(error, SchemaError):
        error.column = columns[0] if columns else None
    return cast(DatabaseError, error)


def _reduce(self: Any) -> tuple[Any, ...]:
    """Pickle as the family class with the same fields (the driver error is left behind)."""
    family = next(k for k in type(self).__mro__[1:] if issubclass(k, DatabaseError))
    fields = {"table": self.table}
    if isinstance(self, ConstraintViolationError):
        fields.update(constraint=self.constraint, columns=self.columns)
    elif isinstance(self, SchemaError):
        fields["column"] = self.column
    return (_restore, (family, self.message, fields))


def _restore(family: type[DatabaseError], message: str, fields: dict[str, Any]) -> DatabaseError:
    return family(message, **fields)


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
