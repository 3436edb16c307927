"""Connections the cache's reads keep between commands, so a hit does not pay the pool.

A cache hit is one short command; taking its connection from redis-py's pool and giving it
back (a lock, connection checks, pool bookkeeping and events on each side) costs about as
much as the rest of the hit. :class:`HeldConnections` takes connections from the pool once
and keeps the idle ones for the next read on the same event loop; at most as many are held
as reads ran at once, which the command gate bounds (:mod:`~viveka_db.cache.redis_gate`).

A held connection whose command failed in any way is never reused: it is closed and given
back to the pool. A connection that sat idle may have been closed by the server meanwhile
(a restart, a failover, an idle timeout): its command is sent once more on a fresh
connection from the pool, which checks it as usual. Only single-server and Sentinel
clients are served this way; a cluster client routes each key itself (:func:`pool_of`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["HeldConnections", "pool_of"]


def pool_of(client: Any) -> Any | None:
    """The connection pool whose connections may be held, or ``None`` (a cluster client,
    or one that pins a single connection)."""
    from redis.asyncio import Redis

    if isinstance(client, Redis) and not client.single_connection_client:
        return client.connection_pool
    return None


def _stale(exc: BaseException) -> bool:
    """Whether a command failed because its idle connection was already closed."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    if isinstance(exc, TimeoutError):
        return False
    return isinstance(exc, RedisConnectionError | ConnectionError | EOFError)


class HeldConnections:
    """Idle connections of ``pool``, kept per event loop (a connection serves one loop)."""

    __slots__ = ("_idle", "_loop", "_pool", "_returning")

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[Any] = []
        self._returning: set[asyncio.Task[None]] = set()

    async def send(self, *command: Any) -> Any:
        """Send ``command`` and return its reply (errors are raised, as redis-py raises them)."""
        idle = self._idle
        if self._loop is not asyncio.get_running_loop():
            idle = self._restart()
        if idle:
            connection = idle.pop()
            try:
                reply = await _exchange(connection, command)
            except BaseException as exc:
                self._discard(connection)
                if not _stale(exc):
                    raise
            else:
                idle.append(connection)
                return reply
        connection = await _checkout(self._pool, command[0])
        try:
            reply = await _exchange(connection, command)
        except BaseException:
            self._discard(connection)
            raise
        idle.append(connection)
        return reply

    def __len__(self) -> int:
        return len(self._idle)

    async def close(self) -> None:
        """Give every held connection back to the pool (before the pool itself closes)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await self._give_back(connection)
        if self._returning:
            await asyncio.gather(*self._returning, return_exceptions=True)

    def _restart(self) -> list[Any]:
        """On a new event loop: the connections held for the old one go back to the pool."""
        for connection in self._idle:
            self._discard(connection)
        self._loop = asyncio.get_running_loop()
        self._idle = []
        return self._idle

    def _discard(self, connection: Any) -> None:
        """Close ``connection`` and return it to the pool, in the background: the command
        that failed may be cancelled already, and must not wait for this."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the coroutine is being closed without a loop: nothing to await
            return
        task = loop.create_task(self._give_back(connection))
        self._returning.add(task)
        task.add_done_callback(self._returning.discard)

    async def _give_back(self, connection: Any) -> None:
        with contextlib.suppress(Exception):
            await connection.disconnect()
        with contextlib.suppress(Exception):
            await self._pool.release(connection)


def _checkout(pool: Any, command_name: Any) -> Any:
    """``pool.get_connection()``: redis-py before 5.3 requires the command's name (later
    releases deprecate passing it), so the call is made the way this release accepts."""
    try:
        return pool.get_connection()
    except TypeError:  # raised by the call itself, before anything is awaited
        return pool.get_connection(command_name)


async def _exchange(connection: Any, command: tuple[Any, ...]) -> Any:
    await connection.send_command(*command)
    return await connection.read_response()
