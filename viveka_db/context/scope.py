"""What the context variable holds: one transaction's lazily opened session and its state.

A scope is created by the outermost boundary (the unit of work in
:mod:`viveka_db.transaction.unit_of_work`) and only that boundary commits, rolls back and
closes it; joined inner calls merely use it. It lives in the context layer, below the
session factory, so it knows the factory only through the small :class:`SessionSource`
protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

from viveka_db.context.completion import (
    AfterCommitCallback,
    AfterCompletionCallback,
    CompletionStatus,
    TransactionHooks,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from viveka_db.session.shared_connection import SharedConnection

__all__ = [
    "AfterCommitCallback",
    "AfterCompletionCallback",
    "CompletionStatus",
    "SessionSource",
    "TransactionHooks",
    "TransactionScope",
    "run_uncancellable",
]


class SessionSource(Protocol):
    """What a scope needs of a data source: new sessions (the session factory provides it)."""

    @property
    def shared_connection(self) -> SharedConnection | None:
        """The test's connection every new session joins, taking turns (else ``None``)."""
        ...

    def new_session(self, *, read_only: bool = False) -> AsyncSession: ...

    def mark_read_only(self, session: AsyncSession) -> None: ...


class TransactionScope:
    """The session and transaction state shared by every call that joins one transaction."""

    __slots__ = (
        "_session",
        "data_source",
        "extras",
        "factory",
        "hooks",
        "owner",
        "read_engine",
        "read_only",
    )

    def __init__(
        self,
        factory: SessionSource | None,
        *,
        data_source: str = "default",
        read_only: bool = False,
        read_engine: bool | None = None,
        owner: asyncio.Task[Any] | None = None,
        session: AsyncSession | None = None,
    ) -> None:
        self.factory = factory
        self.data_source = data_source
        self.read_only = read_only
        """No flush, no commit: the work ends with a rollback and unflushed changes are dropped."""
        self.read_engine = read_only if read_engine is None else read_engine
        """Run on the read engine (replica, autocommit); ``False`` for read-only work that
        needs the write engine's transaction, e.g. with an isolation level."""
        self.owner = owner
        """The task allowed to use this scope; ``None`` lets any task use it (test fixtures)."""
        self._session = session
        self.hooks = TransactionHooks()
        """The completion hooks, and the rollback-only and completed state."""
        self.extras: dict[str, Any] = {}
        """Per-transaction state of extensions (the cache keeps its evicted prefixes here)."""

    @property
    def session(self) -> AsyncSession:
        """The session, created on first use so untouched requests never build one."""
        session = self._session
        if session is None:
            factory = self.factory
            assert factory is not None
            session = self._session = factory.new_session(read_only=self.read_engine)
            if self.read_only and not self.read_engine:
                factory.mark_read_only(session)
        return session

    @property
    def has_session(self) -> bool:
        return self._session is not None

    async def commit(self) -> None:
        """Commit; a failed commit is rolled back before the error propagates.

        Some databases keep the transaction open when COMMIT fails (SQLite with a deferred
        constraint), so the connection must not go back to the pool without a rollback.
        """
        session = self._session
        if session is not None and not self.read_only and session.in_transaction():
            try:
                await session.commit()
            except BaseException:
                await self.rollback()
                raise

    async def rollback(self) -> None:
        """Roll back the database transaction (cleanup: runs to completion despite cancellation).

        A read-only transaction has nothing to undo: it is left to :meth:`close`, which
        ends it on the connection without expiring the entities it loaded (a rollback
        would, and a detached, expired entity cannot be read any more).
        """
        session = self._session
        if session is not None and not self.read_only and session.in_transaction():
            await run_uncancellable(session.rollback())

    async def close(self) -> None:
        self.hooks.completed = True
        session = self._session
        if session is not None:
            await run_uncancellable(session.close())


async def run_uncancellable(awaitable: Awaitable[Any]) -> None:
    """Await cleanup to completion even if the calling task is cancelled meanwhile.

    Closing a session must finish, or its connection never returns to the pool. A
    cancellation that arrives during the cleanup is re-raised once the cleanup is done.
    """
    task = asyncio.ensure_future(awaitable)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError
