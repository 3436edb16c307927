"""Propagation: which boundary a call gets, for each propagation mode, decided here only.

``@transactional`` (and so every repository method) hands each call to a :class:`Boundary`
built once, at decoration time, from its definition: the boundary looked up its two
handlers (one for a call made inside a transaction, one for a call outside any) in the
tables below, so a call costs one context-variable read and one indirect call before the
work runs. Starting a transaction is
:class:`~viveka_db.transaction.unit_of_work.UnitOfWork`'s job and joining one is
:func:`~viveka_db.transaction.unit_of_work.join`'s; this module chooses between them and
adds what only propagation needs: suspending, savepoints and retries.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from viveka_db.context.db_context import DEFAULT, active_scope, scope_of_another_task, scope_var
from viveka_db.context.scope import TransactionScope
from viveka_db.dialects.translate import MAPPED_ERRORS
from viveka_db.errors import (
    IllegalTransactionStateError,
    TransactionRequiredError,
    UnexpectedRollbackError,
)
from viveka_db.telemetry.transaction import TransactionSpan, transaction_span
from viveka_db.transaction.definition import Propagation, TransactionDefinition
from viveka_db.transaction.implicit import implicit_call, implicit_policy
from viveka_db.transaction.retry import is_retryable, retry_policy
from viveka_db.transaction.unit_of_work import UnitOfWork, join, with_timeout

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction

__all__ = ["Boundary", "execute", "join", "run_in_new_transaction"]

R = TypeVar("R")
logger = logging.getLogger("viveka_db.transaction")

Fn = Callable[..., Awaitable[Any]]
Args = tuple[Any, ...]
Kwargs = dict[str, Any]


class Boundary:
    """The transaction boundary of one decorated function, for every call it gets.

    ``implicit``: the library wrote the method for the user (a repository method), so the
    transaction it starts outside every boundary follows ``[database]
    implicit_transactions`` (only for a writable ``REQUIRED``, the repository's default).
    """

    __slots__ = (
        "_inside",
        "_joins",
        "_outside",
        "announced",
        "definition",
        "implicit",
        "name",
        "warned",
    )

    def __init__(
        self, definition: TransactionDefinition, name: str = "", *, implicit: bool = False
    ) -> None:
        propagation = definition.propagation
        self.definition = definition
        self.name = name
        self.implicit = (
            implicit and propagation is Propagation.REQUIRED and not definition.read_only
        )
        self.announced = self.warned = False
        """Whether a standalone session / a call that could not join was logged already."""
        self._inside = _INSIDE[propagation]
        self._outside = _OUTSIDE[propagation]
        self._joins = self._inside is _join
        """The table's most common entry, taken without the indirect call (hot: every
        repository method a service calls joins)."""

    def run(
        self,
        data_source: str,
        fn: Callable[..., Awaitable[R]],
        args: Args = (),
        kwargs: Kwargs | None = None,
        owner: object = None,
    ) -> Awaitable[R]:
        """Run ``fn(*args, **kwargs)`` (called once per attempt) under this boundary.

        ``owner``: the instance a method runs on, which names an implicit transaction. The
        call is not wrapped in a closure unless a new transaction needs one to retry it.
        """
        scope = active_scope(data_source)
        if scope is not None:
            if self._joins:
                return join(scope, self.definition, fn(*args, **(kwargs or _NO_KWARGS)))
            return self._inside(self, scope, data_source, fn, args, kwargs or _NO_KWARGS)
        return self._outside(self, data_source, fn, args, kwargs or _NO_KWARGS, owner)


def execute(
    definition: TransactionDefinition,
    data_source: str,
    work: Callable[[], Awaitable[R]],
    *,
    name: str = "",
) -> Awaitable[R]:
    """Run ``work`` under ``definition`` for ``data_source`` (a boundary for one call)."""
    return Boundary(definition, name).run(data_source, work)


_NO_KWARGS: Kwargs = {}


# -- the handlers: inside a transaction ------------------------------------------------------


def _join(
    b: Boundary, scope: TransactionScope, data_source: str, fn: Fn, args: Args, kwargs: Kwargs
) -> Awaitable[Any]:
    return join(scope, b.definition, fn(*args, **kwargs))


def _new(
    b: Boundary, scope: TransactionScope, data_source: str, fn: Fn, args: Args, kwargs: Kwargs
) -> Awaitable[Any]:
    return run_in_new_transaction(
        b.definition, data_source, lambda: fn(*args, **kwargs), name=b.name
    )


def _nested(
    b: Boundary, scope: TransactionScope, data_source: str, fn: Fn, args: Args, kwargs: Kwargs
) -> Awaitable[Any]:
    return _run_nested(scope, b.definition, lambda: fn(*args, **kwargs))


def _suspend(
    b: Boundary, scope: TransactionScope, data_source: str, fn: Fn, args: Args, kwargs: Kwargs
) -> Awaitable[Any]:
    return _run_suspended(b.definition, data_source, lambda: fn(*args, **kwargs))


def _refuse_never(
    b: Boundary, scope: TransactionScope, data_source: str, fn: Fn, args: Args, kwargs: Kwargs
) -> Awaitable[Any]:
    raise IllegalTransactionStateError(
        f"{b.name or 'this call'} uses Propagation.NEVER but a transaction is active"
        + ("" if data_source == DEFAULT else f" on data source {data_source!r}")
    )


# -- the handlers: outside every transaction -------------------------------------------------


async def _start(
    b: Boundary, data_source: str, fn: Fn, args: Args, kwargs: Kwargs, owner: object
) -> Any:
    """A transaction of the call's own: said once in the log, governed by the implicit policy."""
    name = b.name
    if (
        not b.warned
        and b.definition.propagation is not Propagation.REQUIRES_NEW
        and scope_of_another_task(data_source) is not None
    ):
        b.warned = True
        _warn_not_joined(name)
    elif not b.announced:
        b.announced = True
        logger.info(
            "%s opened a standalone session (no request or transaction in context); "
            "it commits or rolls back on its own",
            name,
        )
    elif logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s opened a standalone session", name)

    def work() -> Awaitable[Any]:
        return fn(*args, **kwargs)

    if b.implicit:
        policy = implicit_policy(data_source)
        if policy != "allow":
            caller = name if owner is None else f"{type(owner).__name__}.{name.rpartition('.')[2]}"
            with implicit_call(caller, policy, data_source):
                return await run_in_new_transaction(b.definition, data_source, work, name=name)
    return await run_in_new_transaction(b.definition, data_source, work, name=name)


def _refuse_mandatory(
    b: Boundary, data_source: str, fn: Fn, args: Args, kwargs: Kwargs, owner: object
) -> Awaitable[Any]:
    raise TransactionRequiredError(
        f"{b.name or 'this call'} uses Propagation.MANDATORY but no transaction is active"
        + ("" if data_source == DEFAULT else f" on data source {data_source!r}")
        + "; call it from a @transactional method or a request handled by DbMiddleware"
    )


def _without(
    b: Boundary, data_source: str, fn: Fn, args: Args, kwargs: Kwargs, owner: object
) -> Awaitable[Any]:
    return _with_timeout(b.definition, lambda: fn(*args, **kwargs))


def _suspend_outside(
    b: Boundary, data_source: str, fn: Fn, args: Args, kwargs: Kwargs, owner: object
) -> Awaitable[Any]:
    """Hide a scope this task may not use (another task's, or a finished one) from the work."""
    if scope_var(data_source).get() is not None:
        return _run_suspended(b.definition, data_source, lambda: fn(*args, **kwargs))
    return _without(b, data_source, fn, args, kwargs, owner)


_INSIDE: dict[
    Propagation, Callable[[Boundary, TransactionScope, str, Fn, Args, Kwargs], Awaitable[Any]]
] = {
    Propagation.REQUIRED: _join,
    Propagation.SUPPORTS: _join,
    Propagation.MANDATORY: _join,
    Propagation.REQUIRES_NEW: _new,
    Propagation.NESTED: _nested,
    Propagation.NOT_SUPPORTED: _suspend,
    Propagation.NEVER: _refuse_never,
}
"""What a call does when its task is inside a transaction, per propagation."""

_OUTSIDE: dict[Propagation, Callable[[Boundary, str, Fn, Args, Kwargs, object], Awaitable[Any]]] = {
    Propagation.REQUIRED: _start,
    Propagation.REQUIRES_NEW: _start,
    Propagation.NESTED: _start,
    Propagation.MANDATORY: _refuse_mandatory,
    Propagation.SUPPORTS: _without,
    Propagation.NOT_SUPPORTED: _suspend_outside,
    Propagation.NEVER: _without,
}
"""What a call does when its task is in no transaction, per propagation."""


def _warn_not_joined(name: str) -> None:
    """Say that a call could not join the transaction in its context (once per function)."""
    logger.warning(
        "%s runs in a task other than the one that owns the current request or transaction "
        "(a task from asyncio.create_task/gather, or an app behind a BaseHTTPMiddleware such "
        "as @app.middleware('http') that DbMiddleware wraps), so it gets a transaction of its "
        "own that commits independently. Add DbMiddleware before such middleware so that "
        "they wrap it, and use viveka_db.run_concurrently for concurrent work",
        name,
    )


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
