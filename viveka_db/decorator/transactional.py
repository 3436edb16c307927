"""``@transactional``: a thin decorator over :mod:`viveka_db.transaction`.

It validates options once, at decoration time, and keeps the wrapped signature for type
checkers (``ParamSpec``). Joining an existing transaction goes straight to
:func:`~viveka_db.transaction.unit_of_work.join`; starting one goes to the unit of work.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from viveka_db.context.data_source import DATA_SOURCE_ATTR
from viveka_db.context.db_context import (
    DEFAULT,
    active_scope,
    current_session,
    scope_of_another_task,
)
from viveka_db.transaction.definition import Isolation, Propagation, TransactionDefinition
from viveka_db.transaction.implicit import implicit_call, implicit_policy
from viveka_db.transaction.manager import execute, run_in_new_transaction
from viveka_db.transaction.unit_of_work import join

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["SessionAccessor", "implicit_transactional", "transactional"]

P = ParamSpec("P")
R = TypeVar("R")
logger = logging.getLogger("viveka_db.transaction")

_STARTING = (Propagation.REQUIRED, Propagation.REQUIRES_NEW, Propagation.NESTED)
_JOINING = (Propagation.REQUIRED, Propagation.SUPPORTS, Propagation.MANDATORY)


class SessionAccessor:
    """``self.db``: the current task's session, looked up on every access.

    A non-data descriptor, so it is never stored on the (shared) instance, and an
    instance attribute of the same name set by user code still wins.
    """

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> SessionAccessor: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> AsyncSession: ...
    def __get__(
        self, instance: object, owner: type | None = None
    ) -> AsyncSession | SessionAccessor:
        if instance is None:
            return self
        return current_session(getattr(instance, DATA_SOURCE_ATTR, DEFAULT))


_session_accessor = SessionAccessor()
_classes_with_db: set[type] = set()


def _ensure_db_attribute(cls: type) -> None:
    """Give a service class that uses ``self.db`` the session accessor (once per class)."""
    if not hasattr(cls, "db"):
        # built-in or slotted classes refuse the attribute: leave them alone
        with contextlib.suppress(TypeError, AttributeError):
            cls.db = _session_accessor  # type: ignore[attr-defined]
    _classes_with_db.add(cls)


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


@overload
def transactional(func: Callable[P, Awaitable[R]], /) -> Callable[P, Coroutine[Any, Any, R]]: ...
@overload
def transactional(
    *,
    propagation: Propagation | str = Propagation.REQUIRED,
    read_only: bool = False,
    isolation: Isolation | str | None = None,
    timeout: float | None = None,
    rollback_for: type[BaseException] | tuple[type[BaseException], ...] = (),
    no_rollback_for: type[BaseException] | tuple[type[BaseException], ...] = (),
    data_source: str | None = None,
    retry: int = 0,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R]]]: ...
def transactional(
    func: Callable[..., Awaitable[Any]] | None = None,
    /,
    *,
    propagation: Propagation | str = Propagation.REQUIRED,
    read_only: bool = False,
    isolation: Isolation | str | None = None,
    timeout: float | None = None,
    rollback_for: type[BaseException] | tuple[type[BaseException], ...] = (),
    no_rollback_for: type[BaseException] | tuple[type[BaseException], ...] = (),
    data_source: str | None = None,
    retry: int = 0,
) -> Any:
    """Run an ``async def`` function or method inside a transaction (Spring semantics).

    In a request handled by ``DbMiddleware`` it joins the request's transaction; in a
    background task or worker it opens a session, commits on success, rolls back on error
    and closes. See :class:`~viveka_db.Propagation` for the propagation modes. Inside the
    method ``self.db`` (or :func:`viveka_db.current_session`) is the current session.

    ``retry=N`` re-runs the whole call up to ``N`` more times when it fails with a
    :class:`~viveka_db.RetryableTransactionError` (a serialization failure or deadlock),
    but only where this call started the transaction: a joined call lets the error through
    to the boundary that owns the transaction.
    """
    definition = TransactionDefinition.create(
        propagation=propagation,
        read_only=read_only,
        isolation=isolation,
        timeout=timeout,
        rollback_for=rollback_for,
        no_rollback_for=no_rollback_for,
        data_source=data_source,
        retry=retry,
    )
    if func is not None:
        return _decorate(func, definition)

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        return _decorate(fn, definition)

    return decorate


def implicit_transactional(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """``@transactional`` for a method the library writes for the user (derived, ``@query``).

    Like the methods of the repository package, it joins the caller's transaction; where
    there is none, the transaction it starts is *implicit*, governed by
    ``[database] implicit_transactions`` (see :mod:`viveka_db.transaction.implicit`).
    """
    return _decorate(fn, _IMPLICIT, implicit=True)


_IMPLICIT = TransactionDefinition()
_REPOSITORY_PACKAGE = "viveka_db.repository."


def _decorate(
    fn: Callable[P, Awaitable[R]],
    definition: TransactionDefinition,
    *,
    implicit: bool | None = None,
) -> Callable[P, Coroutine[Any, Any, R]]:
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(
            f"@transactional decorates `async def` functions; "
            f"{getattr(fn, '__qualname__', fn)!r} is not one"
        )
    params = list(inspect.signature(fn).parameters)
    is_method = bool(params) and params[0] in ("self", "cls")
    fixed_source = definition.data_source
    fast_join = definition.propagation in _JOINING
    starts = definition.propagation in _STARTING
    name = getattr(fn, "__qualname__", repr(fn))
    propagation = definition.propagation
    announced = warned = False
    if implicit is None:  # the repository package's own methods (not a user's wrapping)
        target: object = fn  # a bound method passed in by application code is explicit
        implicit = inspect.isfunction(target) and target.__module__.startswith(_REPOSITORY_PACKAGE)
    implicit = implicit and propagation is Propagation.REQUIRED and not definition.read_only

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        nonlocal announced, warned
        source = fixed_source or DEFAULT
        if is_method and args:
            owner = args[0]
            if fixed_source is None:
                source = getattr(owner, DATA_SOURCE_ATTR, DEFAULT)
            if type(owner) not in _classes_with_db:
                _ensure_db_attribute(type(owner))
        scope = active_scope(source)
        if scope is not None:
            if fast_join:
                return await join(scope, definition, fn(*args, **kwargs))
        elif starts:
            if (
                not warned
                and propagation is not Propagation.REQUIRES_NEW
                and scope_of_another_task(source) is not None
            ):
                warned = True
                _warn_not_joined(name)
            elif not announced:
                announced = True
                logger.info(
                    "%s opened a standalone session (no request or transaction in context); "
                    "it commits or rolls back on its own",
                    name,
                )
            elif logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s opened a standalone session", name)
            if implicit:
                policy = implicit_policy(source)
                if policy != "allow":
                    caller = f"{type(args[0]).__name__}.{fn.__name__}" if is_method else name
                    with implicit_call(caller, policy, source):
                        return await run_in_new_transaction(
                            definition, source, lambda: fn(*args, **kwargs), name=name
                        )
            return await run_in_new_transaction(
                definition, source, lambda: fn(*args, **kwargs), name=name
            )
        return await execute(definition, source, lambda: fn(*args, **kwargs), name=name)

    return wrapper
