"""Row locks on reads: ``lock="update" | "share" | "update_skip_locked" | "update_nowait"``.

Every read of a repository that returns rows takes ``lock=``; this module is the one place
that turns it into SQL and decides where it is allowed:

- ``"update"`` is ``SELECT ... FOR UPDATE``: the rows stay locked against other writers and
  lockers until the transaction ends; ``"share"`` is ``FOR SHARE`` (MySQL/MariaDB: ``LOCK IN
  SHARE MODE``): others may read and share-lock them, nobody may change them;
  ``"update_skip_locked"`` leaves out rows another transaction has locked (a work queue;
  see ``claim_batch``); ``"update_nowait"`` raises :class:`~viveka_db.LockTimeoutError` at
  once instead of waiting for a locked row.
- Only the repository's own entity is locked (``FOR UPDATE OF <table>`` where the database
  has it), not the rows of relationships joined for ``load=`` or for a derived query.
- Locked entities are refreshed from the row read (``populate_existing``): an instance the
  session already held shows the values the lock protects, not an older read's.
- A lock lasts until its transaction ends, so a locking read outside a transaction (which
  would release the lock as soon as the call returns) raises
  :class:`~viveka_db.NoTransactionError`, and one in ``read_only`` work (which may run on a
  replica or in autocommit) raises :class:`~viveka_db.ReadOnlyTransactionError`. Locking
  reads therefore always run on the primary.

SQLite has no row locks. A locking read there takes the database's single write lock
(``BEGIN IMMEDIATE``) for the rest of the transaction, unless the transaction holds it
already: stronger than a row lock (it serialises every writer), never weaker. ``update_nowait``
fails at once when another connection holds that lock; ``update_skip_locked`` skips nothing,
as no row is ever locked by someone else once the caller holds the write lock.

Why these choices: ``docs/contributing/decisions.md``, "Row locks, work queues and
advisory locks".
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, Literal, ParamSpec, TypeVar

from sqlalchemy import Select

from viveka_db.context.data_source import data_source_of
from viveka_db.context.db_context import DEFAULT, active_scope
from viveka_db.dialects.base import NOWAIT_OPTION
from viveka_db.errors import NoTransactionError, ReadOnlyTransactionError

__all__ = [
    "LOCK_MODES",
    "LockMode",
    "always_locking",
    "check_lock",
    "lock_rows",
    "lockable",
    "require_lock_scope",
]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound=Select[Any])

LockMode = Literal["update", "share", "update_skip_locked", "update_nowait"]
"""The row locks a read can take (``None``: no lock)."""

LOCK_MODES: Final[tuple[LockMode, ...]] = typing.get_args(LockMode)

_FOR_UPDATE: Final[dict[str, dict[str, bool]]] = {
    "update": {},
    "share": {"read": True},
    "update_skip_locked": {"skip_locked": True},
    "update_nowait": {"nowait": True},
}


def check_lock(lock: object) -> LockMode | None:
    """``lock`` if it is ``None`` or a valid mode; otherwise a ``ValueError`` listing them."""
    if lock is None or (isinstance(lock, str) and lock in _FOR_UPDATE):
        return typing.cast("LockMode | None", lock)
    valid = ", ".join(repr(mode) for mode in LOCK_MODES)
    raise ValueError(f"lock={lock!r} is not a row lock; valid values are {valid} or None")


def lock_rows(stmt: S, lock: LockMode | None, model: type[Any]) -> S:
    """``stmt`` taking row lock ``lock`` on ``model``'s rows (``None``: ``stmt`` unchanged)."""
    if lock is None:
        return stmt
    options = _FOR_UPDATE[typing.cast(str, check_lock(lock))]
    locked = stmt.with_for_update(of=model, **options)
    if lock == "update_nowait":
        return locked.execution_options(populate_existing=True, **{NOWAIT_OPTION: True})
    return locked.execution_options(populate_existing=True)


def require_lock_scope(owner: object, lock: object, what: str) -> None:
    """Refuse a row lock that could not hold: bad value, no transaction, read-only work.

    ``owner`` is the repository (its data source is used); ``what`` names the call.
    """
    check_lock(lock)
    data_source = data_source_of(owner)
    scope = active_scope(data_source)
    where = "" if data_source == DEFAULT else f" on data source {data_source!r}"
    if scope is None:
        raise NoTransactionError(
            f"{what} with lock={lock!r} needs a transaction{where}: a row lock lasts until the "
            "transaction ends, so outside one it would be released as the call returns. Call "
            "it from a @transactional method or a request handled by DbMiddleware"
        )
    if scope.read_only:
        raise ReadOnlyTransactionError(
            f"{what} with lock={lock!r} takes row locks, which read_only=True work refuses "
            "(it may run on a replica or without a transaction); lock rows in a transaction "
            "that is not read-only"
        )


def lockable(method: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Check ``lock=`` of a repository read before its transaction starts.

    Outermost decorator of the read (above ``@transactional``), so "no transaction" means
    the caller has none, not the one the read would open for itself.
    """
    return _guarded(method, None)


def always_locking(
    lock: LockMode,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """:func:`lockable` for a method that always locks rows with ``lock`` (``claim_batch``)."""

    def decorate(method: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        return _guarded(method, lock)

    return decorate


def _guarded(
    method: Callable[P, Awaitable[R]], fixed: LockMode | None
) -> Callable[P, Coroutine[Any, Any, R]]:
    name = method.__name__

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        lock = fixed or kwargs.get("lock")
        if lock is not None:
            require_lock_scope(args[0] if args else None, lock, f"{name}()")
        return await method(*args, **kwargs)

    return wrapper
