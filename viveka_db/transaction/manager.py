"""The boundary logic: what happens around a unit of work for each propagation mode.

``@transactional`` and the repository methods call :func:`execute`; everything about
joining, suspending, savepoints, rollback-only, timeouts and after-commit hooks lives here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from viveka_db.context.db_context import active_scope, current_task, scope_var
from viveka_db.errors import (
    IllegalTransactionStateError,
    TransactionRequiredError,
    TransactionTimeoutError,
    UnexpectedRollbackError,
)
from viveka_db.session.db_session import DatabaseSessionFactory
from viveka_db.telemetry.transaction import transaction_span
from viveka_db.transaction.definition import Propagation, TransactionDefinition
from viveka_db.transaction.scope import TransactionScope

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
            return await join(scope, definition, work)
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


async def join(
    scope: TransactionScope, definition: TransactionDefinition, work: Callable[[], Awaitable[R]]
) -> R:
    """Run inside an existing transaction; an escaping error marks it rollback-only."""
    try:
        return await _with_timeout(definition, work)
    except BaseException as exc:
        if definition.should_rollback(exc):
            scope.rollback_only = True
        raise


async def run_in_new_transaction(
    definition: TransactionDefinition,
    data_source: str,
    work: Callable[[], Awaitable[R]],
    *,
    name: str = "",
) -> R:
    """Run ``work`` in a transaction of its own, inside the transaction's span."""
    with transaction_span(
        name,
        propagation=definition.propagation.value,
        read_only=definition.read_only,
        data_source=data_source,
    ) as span:
        try:
            return await _run_in_new_transaction(definition, data_source, work, name=name)
        except UnexpectedRollbackError:
            span.set_outcome("rollback_only")
            raise
        except BaseException as exc:
            span.set_outcome("rolled_back" if definition.should_rollback(exc) else "committed")
            raise


async def _run_in_new_transaction(
    definition: TransactionDefinition,
    data_source: str,
    work: Callable[[], Awaitable[R]],
    *,
    name: str = "",
) -> R:
    """Open a session, run ``work``, commit or roll back, run after-commit hooks, close.

    Work that never touched the database (a cache hit, say) created no session, so there
    is nothing to commit or close: those steps are skipped without a coroutine hop each.
    """
    factory = DatabaseSessionFactory.get_instance(data_source)
    scope = TransactionScope(
        factory,
        data_source=data_source,
        read_only=definition.read_only,
        # an isolation level needs a real transaction: the write engine, refusing writes
        read_engine=definition.read_only and definition.isolation is None,
        owner=current_task(),
    )
    var = scope_var(data_source)
    token = var.set(scope)
    try:
        if definition.isolation is not None:
            await scope.session.connection(
                execution_options={"isolation_level": definition.isolation.value}
            )
        try:
            if definition.timeout is None:
                result = await work()
            else:
                result = await _with_timeout(definition, work)
        except BaseException as exc:
            if definition.should_rollback(exc):
                await scope.rollback()
            else:
                await scope.commit()
                await scope.run_after_commit()
            raise
        if scope.rollback_only:
            await scope.rollback()
            raise UnexpectedRollbackError(
                f"{name or 'the transaction'} was rolled back because an inner transactional "
                "call failed and marked it rollback-only (the caller swallowed that exception)"
            )
        if scope.has_session:
            await scope.commit()
        if scope.callbacks:
            await scope.run_after_commit()
        return result
    finally:
        try:
            if scope.has_session:
                await scope.close()
            else:
                scope.finished = True
        finally:
            var.reset(token)


async def _run_nested(
    scope: TransactionScope, definition: TransactionDefinition, work: Callable[[], Awaitable[R]]
) -> R:
    """Run inside a SAVEPOINT: a failure rolls back to it and leaves the outer work intact."""
    if scope.read_only:
        return await join(scope, definition, work)
    session = scope.session
    hooks_before = len(scope.callbacks)
    was_rollback_only = scope.rollback_only
    savepoint = await session.begin_nested()

    async def undo() -> None:
        # A failed flush deactivates the savepoint without closing it; it still needs the
        # rollback, or the session refuses all further work ("PendingRollbackError").
        if _is_open(session, savepoint):
            await savepoint.rollback()
        del scope.callbacks[hooks_before:]
        scope.rollback_only = was_rollback_only

    try:
        result = await _with_timeout(definition, work)
    except BaseException as exc:
        if definition.should_rollback(exc) or not savepoint.is_active:
            await undo()
        else:
            await savepoint.commit()
        raise
    if (scope.rollback_only and not was_rollback_only) or not savepoint.is_active:
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
    if timeout is None:
        return await work()
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return await work()
    except TimeoutError as exc:
        if not deadline.expired() or isinstance(exc, TransactionTimeoutError):
            raise
        raise TransactionTimeoutError(
            f"transactional work exceeded its timeout of {timeout:g}s and was cancelled"
        ) from exc
