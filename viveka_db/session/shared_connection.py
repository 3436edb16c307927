"""One connection, inside an outer transaction, that every new session of a data source joins.

The ``db_session`` test fixture binds one to the default data source for the length of a
test (SQLAlchemy's "join a session into an external transaction" recipe). While it is
bound, every session the data source hands out, to ``DbMiddleware``, the FastAPI
dependency, ``@transactional`` (``REQUIRES_NEW`` included) and read-only work alike, is
bound to that connection with ``join_transaction_mode="create_savepoint"``: its BEGIN is a
SAVEPOINT, its COMMIT releases it and its ROLLBACK rolls back to it, so a failed request
undoes only its own work and everything is undone when the fixture rolls the outer
transaction back.

One connection runs one statement at a time, and savepoints must end in the reverse order
of their start. So the boundaries that own a transaction take turns (:meth:`acquire`):
while one holds its turn, another task's boundary waits for it. Work started inside a
turn (a ``REQUIRES_NEW`` in the same task, the tasks of ``run_concurrently``) takes turns
one level down, among themselves, so it never waits for the turn it runs in.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextvars import ContextVar, Token

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from viveka_db.session.engine import READ_ONLY_KEY, VivekaSession

__all__ = ["SharedConnection", "Turn"]


class _Level:
    """The turns of the boundaries started at one nesting level of one shared connection."""

    __slots__ = ("lock", "shared")

    def __init__(self, shared: SharedConnection) -> None:
        self.shared = shared
        self.lock = asyncio.Lock()


_level: ContextVar[_Level | None] = ContextVar("viveka_db_shared_level", default=None)
"""The level whose turns the current task takes: the one below the turn it runs in."""


class Turn:
    """One boundary's exclusive use of the shared connection; :meth:`release` ends it."""

    __slots__ = ("_level", "_token")

    def __init__(self, level: _Level, token: Token[_Level | None]) -> None:
        self._level = level
        self._token = token

    def release(self) -> None:
        with contextlib.suppress(ValueError):  # released from another context: nothing to reset
            _level.reset(self._token)
        self._level.lock.release()


class SharedConnection:
    """Hands out sessions joined to ``connection``'s transaction, one boundary at a time."""

    __slots__ = ("_root", "connection")

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self._root = _Level(self)

    def new_session(self, *, read_only: bool = False) -> AsyncSession:
        """A session whose transaction is a SAVEPOINT on the shared connection."""
        return AsyncSession(
            bind=self.connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
            autoflush=not read_only,
            sync_session_class=VivekaSession,
            info={READ_ONLY_KEY: True} if read_only else None,
        )

    async def acquire(self) -> Turn:
        """Wait for this task's turn; work the turn starts takes its turns one level down."""
        level = _level.get()
        if level is None or level.shared is not self:
            level = self._root
        await level.lock.acquire()
        return Turn(level, _level.set(_Level(self)))
