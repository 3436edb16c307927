"""The task-local session store: the async equivalent of Spring's ThreadLocal session.

One :class:`~contextvars.ContextVar` per data source holds the current
:class:`~viveka_db.transaction.scope.TransactionScope`. A scope belongs to the task that
opened it: a task created inside a request copies the context, but it does not *own* the
request's scope, so it never uses that session (sharing one ``AsyncSession`` between
concurrent tasks corrupts it). In such a task ``@transactional`` and repository calls open
a session of their own, exactly as in a background job, and :func:`current_session` raises
:class:`~viveka_db.errors.NoSessionError` explaining why. A scope that its owner has
finished (a request's, once the response has started) is never reused either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

from viveka_db.context.data_source import DEFAULT
from viveka_db.context.scope import TransactionScope
from viveka_db.errors import NoSessionError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "DEFAULT",
    "active_scope",
    "bind_session",
    "current_session",
    "current_task",
    "get_current_session",
    "scope_of_another_task",
    "scope_var",
    "set_scope",
]

_scope_vars: dict[str, ContextVar[TransactionScope | None]] = {}
"""One context variable per data source name, created on first use."""

current_task = asyncio.current_task
"""The running task: the owner recorded on a scope (an alias, so tests can see one name)."""


def scope_var(data_source: str = DEFAULT) -> ContextVar[TransactionScope | None]:
    """The context variable holding ``data_source``'s current scope."""
    var = _scope_vars.get(data_source)
    if var is None:
        var = _scope_vars.setdefault(
            data_source, ContextVar(f"viveka_db_scope_{data_source}", default=None)
        )
    return var


def active_scope(data_source: str = DEFAULT) -> TransactionScope | None:
    """The scope the current task may use for ``data_source``, or ``None``.

    ``None`` also when the context holds a scope that is finished or owned by another task.
    """
    var = _scope_vars.get(data_source)
    if var is None:
        return None
    scope = var.get()
    if scope is None or scope.hooks.completed:
        return None
    if scope.owner is not None and scope.owner is not current_task():
        return None
    return scope


def scope_of_another_task(data_source: str = DEFAULT) -> TransactionScope | None:
    """The unfinished scope in the context that another task owns (so this task cannot use it).

    Seen in a task created inside a request or transaction, including the task that
    ``BaseHTTPMiddleware`` runs the rest of the app in.
    """
    var = _scope_vars.get(data_source)
    scope = None if var is None else var.get()
    if scope is None or scope.hooks.completed or scope.owner in (None, current_task()):
        return None
    return scope


def set_scope(
    scope: TransactionScope | None, data_source: str = DEFAULT
) -> Token[TransactionScope | None]:
    """Make ``scope`` current; reset with ``scope_var(data_source).reset(token)``."""
    return scope_var(data_source).set(scope)


def current_session(data_source: str = DEFAULT) -> AsyncSession:
    """The current task's session for ``data_source``.

    Raises :class:`NoSessionError` with the reason when there is none: no transaction was
    started, the request's session was already committed, or the session belongs to
    another task.
    """
    scope = active_scope(data_source)
    if scope is not None:
        return scope.session
    raise NoSessionError(_why_no_session(data_source))


def get_current_session(data_source: str = DEFAULT) -> AsyncSession | None:
    """The current task's session for ``data_source``, or ``None`` (never opens one)."""
    scope = active_scope(data_source)
    return None if scope is None else scope.session


@contextmanager
def bind_session(
    session: AsyncSession, *, data_source: str = DEFAULT, any_task: bool = False
) -> Generator[TransactionScope, None, None]:
    """Make an externally managed ``session`` the current one inside the ``with`` block.

    The caller keeps ownership: nothing here commits or closes ``session``; decorated code
    joins it as it would join a request's session. ``any_task=True`` lets every task use
    it (for test fixtures that run in a task other than the test's).
    """
    owner = None if any_task else current_task()
    scope = TransactionScope(None, data_source=data_source, owner=owner, session=session)
    token = set_scope(scope, data_source)
    try:
        yield scope
    finally:
        scope.hooks.completed = True
        scope_var(data_source).reset(token)


def _why_no_session(data_source: str) -> str:
    var = _scope_vars.get(data_source)
    scope = var.get() if var is not None else None
    where = "" if data_source == DEFAULT else f" for data source {data_source!r}"
    if scope is None:
        return (
            f"no database session is active{where}: call this from a @transactional method, "
            "a repository method, or a request handled by DbMiddleware"
        )
    if scope.hooks.completed:
        return (
            f"the session{where} was already committed and closed by its owner (a request's "
            "session ends when the response starts); code running after that, such as a "
            "background task, must run under @transactional to get a session of its own"
        )
    return (
        f"the active session{where} belongs to another task; a task never shares another "
        "task's session (that corrupts it). Run this code under @transactional to give the "
        "task its own session, or use viveka_db.run_concurrently(...)"
    )
