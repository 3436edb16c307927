"""``@transactional``: a thin decorator over :mod:`viveka_db.transaction`.

It validates options once, at decoration time, and keeps the wrapped signature for type
checkers (``ParamSpec``). What a call does (join, start, suspend, refuse) is not decided
here: each decorated function gets a :class:`~viveka_db.transaction.manager.Boundary` at
decoration time, and every call goes to it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from viveka_db.context.data_source import data_source_of
from viveka_db.context.db_context import current_session
from viveka_db.transaction.definition import (
    REQUIRED,
    Isolation,
    Propagation,
    TransactionDefinition,
)
from viveka_db.transaction.manager import Boundary

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["SessionAccessor", "implicit_transactional", "transactional"]

P = ParamSpec("P")
R = TypeVar("R")


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
        return current_session(data_source_of(instance))


_session_accessor = SessionAccessor()
_classes_with_db: set[type] = set()


def _ensure_db_attribute(cls: type) -> None:
    """Give a service class that uses ``self.db`` the session accessor (once per class)."""
    if not hasattr(cls, "db"):
        # built-in or slotted classes refuse the attribute: leave them alone
        with contextlib.suppress(TypeError, AttributeError):
            cls.db = _session_accessor  # type: ignore[attr-defined]
    _classes_with_db.add(cls)


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
    return _decorate(fn, REQUIRED, implicit=True)


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
    named = definition.data_source
    if implicit is None:  # the repository package's own methods (not a user's wrapping)
        target: object = fn  # a bound method passed in by application code is explicit
        implicit = inspect.isfunction(target) and target.__module__.startswith(_REPOSITORY_PACKAGE)
    run = Boundary(definition, getattr(fn, "__qualname__", repr(fn)), implicit=implicit).run

    if not is_method:
        source = data_source_of(None, named)

        @functools.wraps(fn)
        async def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return await run(source, fn, args, kwargs)

        return call

    @functools.wraps(fn)
    async def call_method(*args: P.args, **kwargs: P.kwargs) -> R:
        owner = args[0] if args else None
        if owner is not None and type(owner) not in _classes_with_db:
            _ensure_db_attribute(type(owner))
        return await run(data_source_of(owner, named), fn, args, kwargs, owner)

    return call_method
