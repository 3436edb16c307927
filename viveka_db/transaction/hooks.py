"""Public helpers for code that needs to know about the current transaction.

The completion hooks follow Spring's ``TransactionSynchronization`` phases. They run once
the outermost transaction's outcome is final, in registration order: ``after_commit``
hooks then ``after_completion("committed")`` hooks, or ``after_rollback`` hooks then
``after_completion("rolled_back")`` hooks. A savepoint (``Propagation.NESTED``) that rolls
back discards the ``after_commit`` hooks registered inside it; a hook that raises is logged
and neither undoes the commit nor keeps the other hooks from running. An attempt that
``@transactional(retry=...)`` is going to run again runs none of its hooks.
"""

from __future__ import annotations

from viveka_db.context.db_context import DEFAULT, active_scope
from viveka_db.context.scope import (
    AfterCommitCallback,
    AfterCompletionCallback,
    CompletionStatus,
    TransactionScope,
)
from viveka_db.errors import TransactionRequiredError

__all__ = [
    "CompletionStatus",
    "after_commit",
    "after_completion",
    "after_rollback",
    "current_transaction",
    "in_transaction",
]


def current_transaction(data_source: str = DEFAULT) -> TransactionScope | None:
    """The transaction scope the current task is in, or ``None``."""
    return active_scope(data_source)


def in_transaction(data_source: str = DEFAULT) -> bool:
    """Whether the current task is inside a transaction (request or ``@transactional``)."""
    return active_scope(data_source) is not None


def _required(hook: str, data_source: str) -> TransactionScope:
    scope = active_scope(data_source)
    if scope is None:
        raise TransactionRequiredError(
            f"{hook}() needs an active transaction; call it inside a @transactional "
            "method or a request handled by DbMiddleware"
        )
    return scope


def after_commit(callback: AfterCommitCallback, *, data_source: str = DEFAULT) -> None:
    """Run ``callback()`` (sync or async) after the outermost transaction commits.

    It is discarded if the transaction rolls back (or the savepoint it was registered in
    does). Raises :class:`TransactionRequiredError` when no transaction is active, since
    there would be no commit to wait for.
    """
    _required("after_commit", data_source).hooks.after_commit(callback)


def after_rollback(callback: AfterCommitCallback, *, data_source: str = DEFAULT) -> None:
    """Run ``callback()`` (sync or async) after the outermost transaction rolls back.

    That includes a failed COMMIT and a transaction rolled back because it was marked
    rollback-only.
    """
    _required("after_rollback", data_source).hooks.after_rollback(callback)


def after_completion(callback: AfterCompletionCallback, *, data_source: str = DEFAULT) -> None:
    """Run ``callback(status)`` once the outermost transaction ended either way.

    ``status`` is ``"committed"`` or ``"rolled_back"``; it runs after the ``after_commit``
    or ``after_rollback`` hooks.
    """
    _required("after_completion", data_source).hooks.after_completion(callback)
