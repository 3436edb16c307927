"""Writes outside every transaction boundary: ``[database] implicit_transactions``.

A repository method called where no boundary is active (no ``DbMiddleware`` request, no
``SessionDep``, no ``@transactional`` caller) runs in a transaction of its own that commits
when the method returns. Two such calls are two transactions: when the second fails, the
first stays committed. That is right for a script that saves one row and wrong for a POST
handler that saves two, so the data source decides:

- ``allow`` (the default): it runs, as always;
- ``warn``: it runs, and the first write of each call site (the repository method and the
  line of code that called it) is logged on ``viveka_db.transaction``, once per call site
  while the data source is initialised (in a service: once per process);
- ``forbid``: the write raises :class:`~viveka_db.errors.NoTransactionError` before it
  reaches the database (reads still run).

A *write* is a flush with new, changed or deleted entities, or an INSERT/UPDATE/DELETE (or
a textual statement that is not a SELECT) executed through the session. Boundaries opened
explicitly (``@transactional`` in application code, ``DbMiddleware``, ``SessionDep``,
``unit_of_work``, the test fixture) are never implicit.

The request-boundary marker also lives here: ``DbMiddleware`` and the session dependencies
carry :data:`REQUEST_BOUNDARY_ATTR`, which the web integrations look for at start-up.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Generator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import FrameType
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.sql.elements import TextClause

from viveka_db.errors import NotInitializedError, NoTransactionError
from viveka_db.session.db_session import DatabaseSessionFactory
from viveka_db.session.engine import VivekaSession

__all__ = [
    "REQUEST_BOUNDARY_ATTR",
    "ImplicitCall",
    "implicit_call",
    "implicit_policy",
    "note_write",
]

logger = logging.getLogger("viveka_db.transaction")

REQUEST_BOUNDARY_ATTR = "__viveka_request_boundary__"
"""Set to ``True`` on what gives an HTTP request its transaction (the middleware, the
session dependencies), so start-up checks can find it on an application."""

_READS = ("select", "with", "values", "show", "explain", "pragma")


@dataclass(frozen=True, slots=True)
class ImplicitCall:
    """A repository call running in a transaction of its own, under a policy that watches."""

    name: str
    policy: str
    site: tuple[str, int] | None = None
    """The file and line that called the repository method (``warn`` only)."""
    warned: set[tuple[str, tuple[str, int] | None]] | None = None
    """The call sites the data source has reported already (``warn`` only)."""


_current: ContextVar[ImplicitCall | None] = ContextVar("viveka_implicit_call", default=None)
_warned: WeakKeyDictionary[DatabaseSessionFactory, set[tuple[str, tuple[str, int] | None]]] = (
    WeakKeyDictionary()
)


def implicit_policy(data_source: str) -> str:
    """``allow``, ``warn`` or ``forbid``: the data source's ``implicit_transactions``."""
    try:
        factory = DatabaseSessionFactory.get_instance(data_source)
    except NotInitializedError:
        return "allow"  # the call itself reports the missing data source
    return factory.settings.database.implicit_transactions


@contextmanager
def implicit_call(name: str, policy: str, data_source: str) -> Generator[None]:
    """Watch the writes of the repository call ``name`` (runs in the caller's task)."""
    site = warned = None
    if policy == "warn":
        site = _caller_site()
        warned = _warned.setdefault(DatabaseSessionFactory.get_instance(data_source), set())
    token = _current.set(ImplicitCall(name, policy, site, warned))
    try:
        yield
    finally:
        _current.reset(token)


def _caller_site() -> tuple[str, int] | None:
    """The first frame outside viveka_db: the application line that called the repository."""
    frame: FrameType | None = sys._getframe(1)  # pyright: ignore[reportPrivateUsage]
    while frame is not None and frame.f_globals.get("__name__", "").startswith(
        ("viveka_db.", "contextlib")
    ):
        frame = frame.f_back
    return None if frame is None else (frame.f_code.co_filename, frame.f_lineno)


def note_write() -> None:
    """Report a write that bypasses the session's events (the bulk paths call it first)."""
    if _current.get() is not None:
        _on_write()


def _on_write() -> None:
    call = _current.get()
    if call is None:
        return
    if call.policy == "forbid":
        raise NoTransactionError(
            f"{call.name} tried to write outside any transaction boundary, and "
            "[database] implicit_transactions = forbid. Run the work in a @transactional "
            "method, or in a request handled by DbMiddleware (or with the SessionDep "
            "dependency), so that its writes commit or roll back together"
        )
    key = (call.name, call.site)
    if call.warned is None or key in call.warned:
        return
    call.warned.add(key)
    where = "" if call.site is None else f" (called from {call.site[0]}:{call.site[1]})"
    logger.warning(
        "%s wrote to the database outside any transaction boundary%s: it committed on its "
        "own, so a later failure in the same request or job cannot undo it. Run the work in "
        "a @transactional method or a request handled by DbMiddleware; "
        "[database] implicit_transactions = forbid makes this an error",
        call.name,
        where,
    )


@event.listens_for(VivekaSession, "before_flush")
def _watch_flush(session: Session, flush_context: UOWTransaction, instances: Any) -> None:
    if _current.get() is not None and (session.new or session.deleted or session.dirty):
        _on_write()


@event.listens_for(VivekaSession, "do_orm_execute")
def _watch_statement(state: ORMExecuteState) -> None:
    if _current.get() is None:
        return
    statement = state.statement
    if state.is_insert or state.is_update or state.is_delete:
        _on_write()
    elif isinstance(statement, TextClause):
        words = statement.text.lstrip().split(None, 1)
        if words and words[0].lower() not in _READS:
            _on_write()
