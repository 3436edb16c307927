"""The exceptions viveka_db raises, all under one base class.

Hierarchy::

    VivekaDbError
    ├── ConfigurationError          bad or missing configuration (also a ValueError)
    ├── NotInitializedError         a data source used before DatabaseSessionFactory(...) ran
    ├── NoSessionError              no session bound to the current task
    ├── EntityDefinitionError       misuse of @entity / @table (also a TypeError)
    ├── UnknownFieldError           a field name the entity does not map (also a ValueError)
    └── TransactionError
        ├── TransactionRequiredError      MANDATORY with no transaction
        ├── IllegalTransactionStateError  NEVER inside a transaction
        ├── UnexpectedRollbackError       commit asked for, but the transaction was rollback-only
        ├── ReadOnlyTransactionError      a flush inside a read-only transaction
        └── TransactionTimeoutError       the work ran past ``timeout`` (also a TimeoutError)

Messages say what was wrong, what is valid and how to fix it; they never contain
passwords (URLs are masked before they are formatted into a message).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ConfigurationError",
    "EntityDefinitionError",
    "IllegalTransactionStateError",
    "NoSessionError",
    "NotInitializedError",
    "ReadOnlyTransactionError",
    "TransactionError",
    "TransactionRequiredError",
    "TransactionTimeoutError",
    "UnexpectedRollbackError",
    "UnknownFieldError",
    "VivekaDbError",
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

    def __init__(self, entity: type, field: object, valid: Iterable[str]) -> None:
        self.entity = entity
        self.field = field
        self.valid = sorted(valid)
        super().__init__(
            f"{entity.__name__} has no mapped field {field!r}; "
            f"valid fields are: {', '.join(self.valid)}"
        )


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
