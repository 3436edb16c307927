"""``@transactional(retry=N)``: the policy for re-running a whole transaction.

Serialization failures and deadlocks are the database asking the application to run the
transaction again (PostgreSQL's documentation says so for SERIALIZABLE and REPEATABLE READ
work). The policy is tenacity's: at most ``N`` extra attempts, only for
:class:`~viveka_db.errors.RetryableTransactionError`, with full-jitter exponential backoff so
that the transactions that collided do not collide again in lock step.
"""

from __future__ import annotations

import logging

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from viveka_db.errors import RetryableTransactionError

__all__ = ["BACKOFF_MAX", "BACKOFF_MULTIPLIER", "is_retryable", "retry_policy"]

logger = logging.getLogger("viveka_db.transaction.retry")

BACKOFF_MULTIPLIER = 0.02
"""Seconds: the n-th retry waits a random time up to ``BACKOFF_MULTIPLIER * 2**n``."""
BACKOFF_MAX = 1.0
"""Seconds: the longest wait before one retry."""


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, RetryableTransactionError)


def retry_policy(retries: int, name: str) -> AsyncRetrying:
    """Attempts of one call: the first plus up to ``retries`` more, each retry logged."""

    def log_retry(state: RetryCallState) -> None:
        outcome = state.outcome
        error = None if outcome is None else outcome.exception()
        action = state.next_action
        logger.warning(
            "%s: %s on attempt %d of %d; retrying the transaction in %.3fs",
            name or "transaction",
            type(error).__name__,
            state.attempt_number,
            retries + 1,
            0.0 if action is None else action.sleep,
        )

    return AsyncRetrying(
        stop=stop_after_attempt(retries + 1),
        wait=wait_random_exponential(multiplier=BACKOFF_MULTIPLIER, max=BACKOFF_MAX),
        retry=retry_if_exception_type(RetryableTransactionError),
        before_sleep=log_retry,
        reraise=True,
    )
