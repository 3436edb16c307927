"""Public helpers for code that needs to know about the current transaction."""

from __future__ import annotations

from viveka_db.context.db_context import DEFAULT, active_scope
from viveka_db.errors import TransactionRequiredError
from viveka_db.transaction.scope import AfterCommitCallback, TransactionScope

__all__ = ["after_commit", "current_transaction", "in_transaction"]


def current_transaction(data_source: str = DEFAULT) -> TransactionScope | None:
    """The transaction scope the current task is in, or ``None``."""
    return active_scope(data_source)


def in_transaction(data_source: str = DEFAULT) -> bool:
    """Whether the current task is inside a transaction (request or ``@transactional``)."""
    return active_scope(data_source) is not None


def after_commit(callback: AfterCommitCallback, *, data_source: str = DEFAULT) -> None:
    """Run ``callback`` (sync or async) after the outermost transaction commits.

    It is discarded if the transaction rolls back (or the savepoint it was registered in
    does). Raises :class:`TransactionRequiredError` when no transaction is active, since
    there would be no commit to wait for.
    """
    scope = active_scope(data_source)
    if scope is None:
        raise TransactionRequiredError(
            "after_commit() needs an active transaction; call it inside a @transactional "
            "method or a request handled by DbMiddleware"
        )
    scope.after_commit(callback)
