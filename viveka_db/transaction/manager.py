"""Propagation: which boundary a call gets, for each propagation mode.

``@transactional`` and the repository methods call :func:`execute`. Starting a
transaction is :class:`~viveka_db.transaction.unit_of_work.UnitOfWork`'s job and joining
one is :func:`~viveka_db.transaction.unit_of_work.join`'s; this module chooses between
them and adds what only propagation needs: suspending, savepoints and retries.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from viveka_db.context.db_context import active_scope, scope_var
from viveka_db.context.scope import TransactionScope
from viveka_db.dialects.translate import MAPPED_ERRORS
from viveka_db.errors import (
    IllegalTransactionStateError,
    TransactionRequiredError,
    UnexpectedRollbackError,
)
from viveka_db.telemetry.transaction import TransactionSpan, transaction_span
from viveka_db.transaction.definition import Propagation, TransactionDefinition
from viveka_db.transaction.retry import is_retryable, retry_policy
from viveka_db.transaction.unit_of_work import UnitOfWork, join, with_timeout

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction

__all__ = ["REQUIRED", "execute", "join", "run_in_new_transaction"]

R = TypeVar("R")
logger = logging.getLogger("viveka_db.transaction")

REQUIRED = TransactionDefinition()
_JOINING = (Propagation.REQUIRED, Propagation.SUPPORTS, Propagation.MANDATORY)
_STARTING = (Propagation.REQUIRED, Propagation.REQUIRES_NEW, Propagation.NESTED)


async def execute(
    definition: TransactionDefinition,
    data_source: str,
    work: Callable[[], Awaitable[R]],
    *,
    name: str = "",
) -> R:
    """Run ``work`` under ``definition`` for ``data_source``."""
    propagation = definition.propagation
    scope = active_scope(data_source)
    if scope is not None:
        if propagation in _JOINING:
            return await join(scope, definition, work())
        if propagation is Propagation.REQUIRES_NEW:
            return await run_in_new_transaction(definition, data_source, work, name=name)
        if propagation is Propagation.NESTED:
            return await _run_nested(scope, definition, work)
        if propagation is Propagation.NOT_SUPPORTED:
            return await _run_suspended(definition, data_source, work)
        raise IllegalTransactionStateError(
            f"{name or 'this call'} uses Propagation.NEVER but a transaction is active"
            + ("" if data_source == "default" else f" on data source {data_source!r}")
        )
    if propagation in _STARTING:
        return await run_in_new_transaction(definition, data_source, work, name=name)
    if propagation is Propagation.MANDATORY:
        raise TransactionRequiredError(
            f"{name or 'this call'} uses Propagation.MANDATORY but no transaction is active"
            + ("" if data_source == "default" else f" on data source {data_source!r}")
            + "; call it from a @transactional method or a request handled by DbMiddleware"
        )
    if propagation is Propagation.NOT_SUPPORTED and scope_var(data_source).get() is not None:
        return await _run_suspended(definition, data_source, work)
    return await _with_timeout(definition, work)


async def run_in_new_transaction(
    definition: TransactionDefinition,
    data_source: str,
    work: Callable[[], Awaitable[R]],
    *,
    name: str = "",
) -> R:
    """Run ``work`` as a new outermost transaction (a :class:`UnitOfWork`), retried as asked.

    ``work`` is called once per attempt, so each attempt runs the whole call again. One
    telemetry span covers all attempts; it records how many were retries.
    """
    with transaction_span(
        name,
        propagation=definition.propagation.value,
        read_only=definition.read_only,
        data_source=data_source,
    ) as span:
        if not definition.retry:
            return await _attempt(definition, data_source, work, name, span, None)
        retries = definition.retry
        async for attempt in retry_policy(retries, name):
            with attempt:
                number = attempt.retry_state.attempt_number
                span.set_retries(number - 1)

                def will_retry(exc: BaseException, number: int = number) -> bool:
                    return number <= retries and is_retryable(exc)

                return await _attempt(definition, data_source, work, name, span, will_retry)
    raise AssertionError("unreachable: the retry policy re-raises the last failure")


def _attempt(
    definition: TransactionDefinition,
    data_source: str,
    work: Callable[[], Awaitable[R]],
    name: str,
    span: TransactionSpan,
    will_retry: Callable[[BaseException], bool] | None,
) -> Awaitable[R]:
    uow = UnitOfWork.open(
        data_source,
        read_only=definition.read_only,
        # an isolation level needs a real transaction: the write engine, refusing writes
        read_engine=definition.read_only and definition.isolation is None,
        name=name,
        span=span,
    )
    return uow.run(work, definition, will_retry=will_retry)


async def _run_nested(
    scope: TransactionScope, definition: TransactionDefinition, work: Callable[[], Awaitable[R]]
) -> R:
    """Run inside a SAVEPOINT: a failure rolls back to it and leaves the outer work intact."""
    if scope.read_only:
        return await join(scope, definition, work())
    session = scope.session
    hooks = scope.hooks
    mark = hooks.mark()
    _, was_rollback_only = mark
    savepoint = await session.begin_nested()

    async def undo() -> None:
        # A failed flush deactivates the savepoint without closing it; it still needs the
        # rollback, or the session refuses all further work ("PendingRollbackError").
        if _is_open(session, savepoint):
            await savepoint.rollback()
        hooks.roll_back_to(mark)

    try:
        with MAPPED_ERRORS:
            result = await _with_timeout(definition, work)
    except BaseException as error:  # mapped
        if definition.should_rollback(error) or not savepoint.is_active:
            await undo()
        else:
            await savepoint.commit()
        raise
    if (hooks.rollback_only and not was_rollback_only) or not savepoint.is_active:
        await undo()
        raise UnexpectedRollbackError(
            "the nested transaction (savepoint) was rolled back because an inner transactional "
            "call or a flush failed and the caller swallowed that exception"
        )
    await savepoint.commit()
    return result


def _is_open(session: AsyncSession, savepoint: AsyncSessionTransaction) -> bool:
    """Whether ``savepoint`` is still one of ``session``'s open (possibly failed) transactions."""
    target = savepoint.sync_transaction
    current = session.sync_session.get_nested_transaction()
    while current is not None:
        if current is target:
            return True
        current = current.parent
    return False


async def _run_suspended(
    definition: TransactionDefinition, data_source: str, work: Callable[[], Awaitable[R]]
) -> R:
    var = scope_var(data_source)
    token = var.set(None)
    try:
        return await _with_timeout(definition, work)
    finally:
        var.reset(token)


async def _with_timeout(definition: TransactionDefinition, work: Callable[[], Awaitable[R]]) -> R:
    timeout = definition.timeout
    return await (work() if timeout is None else with_timeout(timeout, work()))
