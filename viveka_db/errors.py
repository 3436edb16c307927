"""The exceptions viveka_db raises, all under one base class.

Hierarchy::

    VivekaDbError
    ├── ConfigurationError          bad or missing configuration (also a ValueError)
    ├── NotInitializedError         a data source used before DatabaseSessionFactory(...) ran
    ├── NoSessionError              no session bound to the current task
    ├── EntityDefinitionError       misuse of @entity / @table (also a TypeError)
    ├── UnknownFieldError           a field name the entity does not map (also a ValueError)
    ├── OptimisticLockError         a stale versioned update or delete
    │                               (also SQLAlchemy's StaleDataError)
    ├── EntityNotFoundError         get_or_raise() found no row (also a LookupError)
    ├── LazyLoadError               an unloaded relationship touched where it cannot load
    ├── NoTenantError               tenant-scoped work with no current tenant
    ├── TenantMismatchError         a write of a row that belongs to another tenant
    ├── DatabaseError               a mapped driver error (also the SQLAlchemy class it replaces)
    │   ├── LockTimeoutError                a row or advisory lock not granted in time
    │   │                                   (also a TimeoutError; PostgreSQL 55P03, MySQL 3572)
    │   ├── ConstraintViolationError        .constraint, .columns, .table
    │   │   ├── DuplicateKeyError           unique / primary key
    │   │   ├── ForeignKeyViolationError
    │   │   ├── NotNullViolationError
    │   │   └── CheckViolationError
    │   ├── RetryableTransactionError       re-running the whole transaction may succeed
    │   │   ├── SerializationFailureError   PostgreSQL 40001, SQLite busy/locked
    │   │   └── DeadlockError               PostgreSQL 40P01, MySQL 1213 (1205 lock wait)
    │   └── SchemaError                     a table or column the database does not have
    ├── PaginationError             a bad page number, page size or sort (also a ValueError)
    │   └── InvalidCursorError      a keyset cursor that was altered or issued for another query
    ├── DerivedQueryError           a derived query method name that cannot be implemented
    │                               (also an EntityDefinitionError, so a TypeError)
    └── TransactionError
        ├── TransactionRequiredError      MANDATORY with no transaction
        ├── IllegalTransactionStateError  NEVER inside a transaction
        ├── UnexpectedRollbackError       commit asked for, but the transaction was rollback-only
        ├── ReadOnlyTransactionError      a flush inside a read-only transaction
        ├── NoTransactionError            work that needs a transaction ran outside one
        └── TransactionTimeoutError       the work ran past ``timeout`` (also a TimeoutError)

Messages say what was wrong, what is valid and how to fix it; they never contain
passwords (URLs are masked before they are formatted into a message).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Literal, NoReturn

from sqlalchemy.orm.exc import StaleDataError

__all__ = [
    "CheckViolationError",
    "ConfigurationError",
    "ConstraintViolationError",
    "DatabaseError",
    "DeadlockError",
    "DuplicateKeyError",
    "EntityNotFoundError",
    "ForeignKeyViolationError",
    "LazyLoadError",
    "LockTimeoutError",
    "NoTenantError",
    "NoTransactionError",
    "SchemaError",
    "TenantMismatchError",
    "NotNullViolationError",
    "RetryableTransactionError",
    "SerializationFailureError",
    "DerivedQueryError",
    "EntityDefinitionError",
    "IllegalTransactionStateError",
    "InvalidCursorError",
    "NoSessionError",
    "NotInitializedError",
    "OptimisticLockError",
    "PaginationError",
    "ReadOnlyTransactionError",
    "TransactionError",
    "TransactionRequiredError",
    "TransactionTimeoutError",
    "UnexpectedRollbackError",
    "UnknownFieldError",
    "VivekaDbError",
    "mapped_errors",
]


class VivekaDbError(Exception):
    """Base class of every error raised by viveka_db."""


class ConfigurationError(VivekaDbError, ValueError):
    """The configuration is missing a value or holds one that cannot work."""


class NotInitializedError(VivekaDbError, RuntimeError):
    """A data source was used before ``DatabaseSessionFactory(...)`` initialised it."""


class NoSessionError(VivekaDbError, RuntimeError):
    """Code asked for the current session where the current task has none."""


class EntityDefinitionError(VivekaDbError, TypeError):
    """An entity class was declared or decorated in a way that cannot be mapped."""


class UnknownFieldError(VivekaDbError, ValueError):
    """A field name that the entity does not map; the message lists the valid ones."""

    def __init__(
        self, entity: type, field: object, valid: Iterable[str], *, message: str | None = None
    ) -> None:
        self.entity = entity
        self.field = field
        self.valid = sorted(valid)
        super().__init__(
            message
            or f"{entity.__name__} has no mapped field {field!r}; "
            f"valid fields are: {', '.join(self.valid)}"
        )


class OptimisticLockError(VivekaDbError, StaleDataError):
    """Someone else changed or deleted the row since this entity was loaded.

    Raised instead of SQLAlchemy's ``StaleDataError`` (which it still is, so existing
    handlers keep working) because that one names neither the entity nor the row.
    Reload the entity and apply the change again, or report a conflict to the user.
    """

    def __init__(self, entity: type, ident: Any, detail: str = "") -> None:
        self.entity = entity
        self.ident = ident
        message = (
            f"{entity.__name__} with id {ident!r} was changed or deleted by another "
            "transaction since it was loaded (optimistic lock on its version); reload it "
            "and retry"
        )
        super().__init__(f"{message}: {detail}" if detail else message)


class PaginationError(VivekaDbError, ValueError):
    """A page number, page size or sort specification that cannot be used."""


class InvalidCursorError(PaginationError):
    """A keyset cursor that is malformed, was altered, or belongs to another sort or entity."""


class DerivedQueryError(EntityDefinitionError):
    """A repository method whose name looks like a derived query but cannot be implemented.

    Raised when the repository class is created, so a typo fails at import time.
    """


class TransactionError(VivekaDbError):
    """Base class of transaction-demarcation errors."""


class TransactionRequiredError(TransactionError):
    """``Propagation.MANDATORY`` was used where no transaction is active."""


class IllegalTransactionStateError(TransactionError):
    """``Propagation.NEVER`` was used inside an active transaction."""


class UnexpectedRollbackError(TransactionError):
    """The outermost boundary was asked to commit a transaction marked rollback-only.

    An exception escaped a joined inner ``@transactional`` call, so the work was rolled back
    even though the caller swallowed that exception.
    """


class ReadOnlyTransactionError(TransactionError):
    """A flush (a write) was attempted inside a ``read_only=True`` transaction."""


class TransactionTimeoutError(TransactionError, TimeoutError):
    """The transactional work ran longer than its ``timeout`` and was rolled back."""


class NoTransactionError(TransactionError):
    """Work that must run inside a transaction ran outside every boundary.

    Raised by ``publish`` outside a transaction, and by a write outside any boundary when
    ``[database] implicit_transactions = forbid``.
    """


class NoTenantError(VivekaDbError, LookupError):
    """Work on a tenant-scoped entity ran with no current tenant.

    Use ``with tenant(tid):``, a ``DbMiddleware(tenant_resolver=...)``, or, for jobs that
    must see every tenant, ``with all_tenants():``.
    """


class TenantMismatchError(VivekaDbError, PermissionError):
    """A write of a row whose tenant is not the current tenant."""


class EntityNotFoundError(VivekaDbError, LookupError):
    """``get_or_raise`` (or a caller) found no row for an identifier.

    A ``LookupError`` so generic "not found" handlers catch it; web integrations map it to 404.
    """

    def __init__(self, entity: type, ident: Any) -> None:
        self.entity = entity
        self.ident = ident
        super().__init__(f"{entity.__name__} with id {ident!r} does not exist")


class LazyLoadError(VivekaDbError, RuntimeError):
    """An unloaded relationship was touched where it cannot be loaded implicitly.

    Raised instead of SQLAlchemy's ``MissingGreenlet`` / ``DetachedInstanceError``; the
    message names the entity, the attribute and the ``load=`` argument that fixes it.
    """

    def __init__(self, entity: type, attribute: str, detail: str = "") -> None:
        self.entity = entity
        self.attribute = attribute
        message = (
            f"{entity.__name__}.{attribute} was not loaded and cannot be loaded here; "
            f"load it with the query, e.g. load=[{entity.__name__}.{attribute}]"
        )
        super().__init__(f"{message} ({detail})" if detail else message)


class DatabaseError(VivekaDbError):
    """A driver error mapped to a meaningful class.

    Every concrete instance is *also* an instance of the SQLAlchemy exception it replaces
    (``IntegrityError``, ``OperationalError``, ...), so existing ``except`` clauses keep
    working; the driver's own exception stays reachable as ``.orig`` and ``__cause__``.
    The message is built from what the database said about *which* constraint or
    condition failed, never from bound parameter values.
    """

    orig: BaseException | None = None
    """The driver's exception (``None`` on an instance raised by application code)."""
    statement: str | None = None

    def __init__(self, message: str, *, table: str | None = None) -> None:
        self.message = message
        self.table = table
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class LockTimeoutError(DatabaseError, TimeoutError):
    """A row or advisory lock was not granted within its timeout.

    Raised at once by ``lock="update_nowait"`` when another transaction holds the row
    (PostgreSQL 55P03, MySQL 3572, MariaDB 1205 on a ``NOWAIT`` read, SQLite's write lock
    held by another connection), and by ``advisory_lock(name, timeout=...)`` when the
    timeout passes. A database error, so a mapped one is also SQLAlchemy's
    ``OperationalError``; one raised for an advisory lock has no ``orig``.
    """


class ConstraintViolationError(DatabaseError):
    """A write broke an integrity constraint.

    ``constraint`` is the constraint's name where the database reports it (else ``None``);
    ``columns`` the columns involved where known (possibly empty).
    """

    def __init__(
        self,
        message: str,
        *,
        constraint: str | None = None,
        columns: tuple[str, ...] = (),
        table: str | None = None,
    ) -> None:
        self.constraint = constraint
        self.columns = tuple(columns)
        super().__init__(message, table=table)


class DuplicateKeyError(ConstraintViolationError):
    """A unique or primary-key constraint already holds the value."""


class ForeignKeyViolationError(ConstraintViolationError):
    """A referenced row does not exist, or a row is still referenced."""


class NotNullViolationError(ConstraintViolationError):
    """A NOT NULL column was given no value."""


class CheckViolationError(ConstraintViolationError):
    """A CHECK constraint rejected the row."""


class RetryableTransactionError(DatabaseError):
    """The database aborted the transaction; running the whole transaction again may succeed.

    ``@transactional(retry=N)`` re-runs the call on these, where it started the transaction.
    """


class SerializationFailureError(RetryableTransactionError):
    """A serialization failure (PostgreSQL 40001) or a busy/locked database (SQLite)."""


class DeadlockError(RetryableTransactionError):
    """The database chose this transaction as a deadlock victim (or a lock wait timed out)."""


class SchemaError(DatabaseError):
    """The database lacks a table or column the entities map (migrations not applied).

    ``table`` and ``column`` name the missing object where the database says them (either
    may be ``None``); the message says how to create it (``viveka-db db upgrade``). Like
    every mapped error it is also the SQLAlchemy class it replaces (``OperationalError`` on
    SQLite, for one), and always a ``ProgrammingError``.
    """

    def __init__(
        self, message: str, *, table: str | None = None, column: str | None = None
    ) -> None:
        self.column = column
        super().__init__(message, table=table)


class mapped_errors:
    """Map an error escaping the ``with`` block, and raise the mapped error in its place.

    ``mapper`` returns the mapped error or the error itself (the dialect layer's
    ``translate_error``, or its driver-error form); ``only`` restricts the mapping to those
    classes (a driver's own ``Error``). An error with nothing to map escapes unchanged; a
    mapped one is raised ``from`` the cause the mapper gave it (the driver error), so its
    class, chain and message (never bound values) are the mapper's wherever it surfaces.
    Callers then decide rollback, rollback-only or retry on the mapped error.

    It lives in the lowest layer, taking the mapper as an argument, so any module can use
    it without importing the adapters that build the mapper. A class rather than a
    generator-based context manager: it costs two method calls on success.
    """

    __slots__ = ("_mapper", "_only")

    def __init__(
        self,
        mapper: Callable[[BaseException], BaseException],
        *,
        only: type[BaseException] | tuple[type[BaseException], ...] = BaseException,
    ) -> None:
        self._mapper = mapper
        self._only = only

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if exc is None or not isinstance(exc, self._only):
            return False
        mapped = self._mapper(exc)
        if mapped is exc:
            return False  # the original propagates as it is, traceback untouched
        raise mapped from mapped.__cause__

    def raise_mapped(self, exc: BaseException) -> NoReturn:
        """Raise what ``exc`` maps to, or ``exc`` itself: the ``with`` block's rule, for an
        ``except`` clause on a path too hot for a ``with`` per call (a joined call: entering
        and leaving the block costs about five times a ``try`` that does not fail)."""
        if isinstance(exc, self._only):
            mapped = self._mapper(exc)
            if mapped is not exc:
                raise mapped from mapped.__cause__
        raise exc
