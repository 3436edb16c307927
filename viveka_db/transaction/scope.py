"""The transaction scope and its hooks, re-exported where earlier code imported them from.

It lives in :mod:`viveka_db.context.scope`, below the session layer, so the context
variable can hold it without the context layer importing the transaction layer.
"""

from __future__ import annotations

from viveka_db.context.scope import (
    AfterCommitCallback,
    AfterCompletionCallback,
    CompletionStatus,
    TransactionHooks,
    TransactionScope,
    run_uncancellable,
)

__all__ = [
    "AfterCommitCallback",
    "AfterCompletionCallback",
    "CompletionStatus",
    "TransactionHooks",
    "TransactionScope",
    "run_uncancellable",
]
