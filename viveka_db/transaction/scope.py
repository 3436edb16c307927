"""The transaction scope, re-exported where earlier code imported it from.

It lives in :mod:`viveka_db.context.scope`, below the session layer, so the context
variable can hold it without the context layer importing the transaction layer.
"""

from __future__ import annotations

from viveka_db.context.scope import (
    AfterCommitCallback,
    AfterCompletionCallback,
    CompletionStatus,
    TransactionScope,
    run_uncancellable,
)

__all__ = [
    "AfterCommitCallback",
    "AfterCompletionCallback",
    "CompletionStatus",
    "TransactionScope",
    "run_uncancellable",
]
