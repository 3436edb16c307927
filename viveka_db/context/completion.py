"""How one transaction ends: its completion hooks and the state that decides them.

Every transaction scope owns one :class:`TransactionHooks`. Registration (the public
``after_commit``/``after_rollback``/``after_completion`` helpers, the cache, the outbox),
the savepoint that drops what was registered inside it, the attempt that a retry discards,
and the run once the outcome is final all go through it, so the order of the phases and
the rule that a failing hook is only logged cannot differ between callers. Its two flags
are the only ones: ``rollback_only`` (an inner call failed, so the owner must roll back)
and ``completed`` (the owner ended the transaction: nothing may join it any more).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

__all__ = [
    "AfterCommitCallback",
    "AfterCompletionCallback",
    "CompletionStatus",
    "HooksMark",
    "TransactionHooks",
    "run_hooks",
]

logger = logging.getLogger("viveka_db.transaction")

CompletionStatus = Literal["committed", "rolled_back"]
AfterCommitCallback = Callable[[], "Awaitable[Any] | Any"]
AfterCompletionCallback = Callable[[CompletionStatus], "Awaitable[Any] | Any"]
HooksMark = tuple[int, bool]
"""Where a savepoint began: the after-commit hooks registered so far, and rollback-only."""


class TransactionHooks:
    """The hooks registered on one transaction, run once its outcome is final.

    Phases follow Spring's ``TransactionSynchronization``: ``after_commit`` hooks then
    ``after_completion("committed")`` hooks, or ``after_rollback`` hooks then
    ``after_completion("rolled_back")`` hooks, each in registration order.
    """

    __slots__ = (
        "_after_commit",
        "_after_completion",
        "_after_rollback",
        "completed",
        "rollback_only",
    )

    def __init__(self) -> None:
        self._after_commit: list[AfterCommitCallback] = []
        self._after_rollback: list[AfterCommitCallback] = []
        self._after_completion: list[AfterCompletionCallback] = []
        self.rollback_only = False
        """An inner call failed: the owner must roll back even if the caller swallowed it."""
        self.completed = False
        """The owner ended the transaction (or closed its session): it takes no new work."""

    # -- registration ----------------------------------------------------------------------

    def after_commit(self, callback: AfterCommitCallback) -> None:
        self._after_commit.append(callback)

    def after_rollback(self, callback: AfterCommitCallback) -> None:
        self._after_rollback.append(callback)

    def after_completion(self, callback: AfterCompletionCallback) -> None:
        self._after_completion.append(callback)

    @property
    def pending(self) -> bool:
        """Whether any hook waits for the outcome (else completing costs no coroutine hop)."""
        return bool(self._after_commit or self._after_rollback or self._after_completion)

    # -- savepoints and retries ---------------------------------------------------------------

    def mark(self) -> HooksMark:
        """The state a savepoint returns to when it rolls back (see :meth:`roll_back_to`)."""
        return len(self._after_commit), self.rollback_only

    def roll_back_to(self, mark: HooksMark) -> None:
        """Drop the after-commit hooks registered since ``mark`` and its rollback-only mark:
        the savepoint's work is undone, so its commit side effects must not happen."""
        registered, self.rollback_only = mark
        del self._after_commit[registered:]

    def discard(self) -> None:
        """Forget every hook (an attempt that will be retried must not run any)."""
        self._after_commit.clear()
        self._after_rollback.clear()
        self._after_completion.clear()

    # -- the outcome --------------------------------------------------------------------------

    async def complete(self, status: CompletionStatus) -> None:
        """Mark the transaction ended and run the hooks of ``status``, once."""
        self.completed = True
        if not self.pending:
            return
        if status == "committed":
            callbacks, self._after_commit = self._after_commit, []
            await run_hooks("after-commit", callbacks)
        else:
            callbacks, self._after_rollback = self._after_rollback, []
            await run_hooks("after-rollback", callbacks)
        completions, self._after_completion = self._after_completion, []
        await run_hooks("after-completion", completions, status)
        self.discard()

    async def run_after_commit(self) -> None:
        """Run the after-commit hooks registered so far (the test fixture's commit, which
        releases a savepoint of a transaction that goes on)."""
        callbacks, self._after_commit = self._after_commit, []
        await run_hooks("after-commit", callbacks)


async def run_hooks(
    phase: str, callbacks: list[Callable[..., Any]], *args: CompletionStatus
) -> None:
    """Run ``callbacks`` in order; one that raises is logged and the others still run.

    The transaction has already ended, so raising here would report a failure for work that
    did (or did not) happen, and would skip the remaining hooks.
    """
    for callback in callbacks:
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("%s callback %r failed", phase, callback)
