"""The gate every Redis command of the cache passes: its timeout, its turn, its breaker.

The cache fails open, so an outage must cost each call a bounded, small amount of time
and never an exception. That takes three rules applied to every command alike, and they
live here, below the backend's operations (:mod:`~viveka_db.cache.redis_store`) and above
nothing but the wire layout:

- a **timeout** per command (``socket_timeout``), so a slow Redis is a miss, not a hang;
- an **in-flight bound** (``max_connections``): more commands wait for a turn up to
  ``pool_timeout`` before their own timeout starts, so a burst is never mistaken for a
  slow Redis (a command that gets no turn is a miss and counted as ``pool_timeouts``,
  not a breaker failure);
- a **circuit breaker** (:mod:`~viveka_db.cache.breaker`): after repeated failures,
  calls skip Redis for ``recovery_time`` seconds, then one probe goes through.

Failures are counted and logged once per outage; each command's telemetry span starts
and ends here too (and only while someone traces). Every rule is on the hit path, so each
is kept cheap: one timer per event loop checks the deadlines of all commands in flight,
the bound is a counter, and plain reads (:meth:`CommandGate.fetch`) are sent on
connections held between commands (:mod:`~viveka_db.cache.redis_connections`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, cast

from viveka_db.cache.backend import CacheCounters
from viveka_db.cache.breaker import CircuitBreaker
from viveka_db.cache.redis_clients import misconfigured_cluster_message
from viveka_db.cache.redis_connections import HeldConnections, pool_of
from viveka_db.cache.redis_wire import decode_entry
from viveka_db.telemetry.cache import CacheSpan, cache_span, redis_attributes
from viveka_db.telemetry.providers import active_tracer

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["FAILED", "CommandGate"]

logger = logging.getLogger("viveka_db.cache")

FAILED: Any = object()
"""What :meth:`CommandGate.run` returns when a command did not complete."""

TICKS_PER_TIMEOUT = 8
"""How often per ``socket_timeout`` the deadlines of commands in flight are checked: a
command that hangs is cancelled at most an eighth of its timeout late."""


class _Turns:
    """The commands in flight on one event loop: how many, who waits for a turn (oldest
    first), and their deadlines, checked by one repeating timer for all of them (a timer
    per command, as ``asyncio.timeout`` makes, costs more than the rest of the gate)."""

    __slots__ = ("deadlines", "expired", "in_flight", "loop", "tick", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.in_flight = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.deadlines: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        """Tasks cancelled here because their command outlived its deadline."""
        self.tick: asyncio.TimerHandle | None = None

    def release(self) -> None:
        """End a command: its turn passes to the oldest waiter, if any is left."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_flight -= 1

    def watch(self, task: asyncio.Task[Any], seconds: float) -> None:
        self.deadlines[task] = self.loop.time() + seconds
        if self.tick is None:
            self.tick = self.loop.call_later(seconds / TICKS_PER_TIMEOUT, self._check, seconds)

    def _check(self, seconds: float) -> None:
        now = self.loop.time()
        deadlines = self.deadlines
        for task, deadline in list(deadlines.items()):
            if deadline <= now:
                del deadlines[task]
                self.expired.add(task)
                task.cancel()
        self.tick = None
        if deadlines:
            self.tick = self.loop.call_later(seconds / TICKS_PER_TIMEOUT, self._check, seconds)


class CommandGate:
    """Runs commands on ``client`` for ``owner`` (named in logs), counting in ``counters``."""

    def __init__(
        self,
        client: Redis | RedisCluster,
        owner: object,
        counters: CacheCounters,
        *,
        timeout: float,
        max_in_flight: int,
        pool_timeout: float,
        failure_threshold: int,
        recovery_time: float,
    ) -> None:
        self._client = client
        self._owner = owner
        self.counters = counters
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.pool_timeout = pool_timeout
        self.breaker = CircuitBreaker(
            failure_threshold=failure_threshold, recovery_time=recovery_time
        )
        self._turns: _Turns | None = None
        pool = pool_of(client)
        self._held = None if pool is None else HeldConnections(pool)
        self._attributes: dict[str, Any] | None = None
        self._warned_cluster = False

    @property
    def span_attributes(self) -> dict[str, Any]:
        """The server attributes of the spans (``db.system.name = "redis"``...)."""
        attributes = self._attributes
        if attributes is None:
            pool = getattr(self._client, "connection_pool", None)
            kwargs: dict[str, Any] = getattr(pool, "connection_kwargs", None) or {}
            attributes = self._attributes = redis_attributes(kwargs)
        return attributes

    def allow(self) -> bool:
        """Whether the breaker lets a command through now; counts it if not."""
        if self.breaker.allow():
            return True
        self.counters.short_circuits += 1
        return False

    def run(
        self, what: str, operation: str, call: Any, *args: Any, read: bool = False, **kwargs: Any
    ) -> Coroutine[Any, Any, Any]:
        """Run one Redis command under the timeout; :data:`FAILED` if it did not complete.

        ``what`` names the cache operation in logs; ``operation`` names the command's span
        (made only while someone traces); a ``read`` span records hit or miss. Not a
        coroutine itself: untraced, the caller awaits the gated command directly (one
        frame less on every hit).
        """
        if active_tracer() is None:
            return self._gated(what, call, args, kwargs, None)
        return self._traced(what, operation, call, args, kwargs, read)

    def fetch(self, what: str, *command: Any, read: bool = False) -> Coroutine[Any, Any, Any]:
        """:meth:`run` for a plain command (``"MGET", key, key``), sent on a held connection
        when the client allows it (:mod:`~viveka_db.cache.redis_connections`)."""
        held = self._held
        if held is None:
            client: Any = self._client  # a cluster client: it routes each command itself
            return self.run(what, command[0], client.execute_command, *command, read=read)
        if active_tracer() is None:
            return self._gated(what, held.send, command, {}, None)
        return self._traced(what, command[0], held.send, command, {}, read)

    async def close(self) -> None:
        """Give the held connections back to the client's pool."""
        if self._held is not None:
            await self._held.close()

    async def _traced(
        self,
        what: str,
        operation: str,
        call: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        read: bool,
    ) -> Any:
        with cache_span(operation, self.span_attributes) as span:
            result = await self._gated(what, call, args, kwargs, span)
            if read and result is not FAILED:
                _record_read(span, result)
        return result

    async def _gated(
        self,
        what: str,
        call: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        span: CacheSpan | None,
    ) -> Any:
        turns = self._turns
        loop = asyncio.get_running_loop()
        if turns is None or turns.loop is not loop:
            turns = self._turns = _Turns(loop)
        if turns.in_flight < self.max_in_flight:
            turns.in_flight += 1
        elif not await self._wait_turn(turns, span):
            return FAILED
        task = cast("asyncio.Task[Any]", asyncio.current_task())
        cancelling = task.cancelling()
        turns.watch(task, self.timeout)
        try:
            result = await call(*args, **kwargs)
        except asyncio.CancelledError:
            if task not in turns.expired:
                raise
            turns.expired.discard(task)
            if task.uncancel() > cancelling:
                raise  # cancelled from outside as well: that cancellation goes on
            self._failed(TimeoutError(f"no reply within {self.timeout}s"), what, span)
            return FAILED
        except Exception as exc:
            self._failed(exc, what, span)
            return FAILED
        finally:
            turns.deadlines.pop(task, None)
            turns.release()
        if turns.expired and task in turns.expired:  # the command ignored its cancellation
            turns.expired.discard(task)
            task.uncancel()
        if self.breaker.record_success():
            logger.info("cache backend %s is reachable again; caching resumed", self._owner)
        return result

    async def _wait_turn(self, turns: _Turns, span: CacheSpan | None) -> bool:
        """Wait up to ``pool_timeout`` for a turn; a command that gets none is a miss
        counted as ``pool_timeouts``, not a failure of Redis."""
        waiter: asyncio.Future[None] = turns.loop.create_future()
        turns.waiters.append(waiter)
        try:
            async with asyncio.timeout(self.pool_timeout):
                await waiter
        except TimeoutError as exc:
            if waiter.done() and not waiter.cancelled():
                turns.release()  # handed a turn just as the wait ended: pass it on
            self.counters.pool_timeouts += 1
            if span is not None:
                span.fail(exc)
            return False
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                turns.release()
            raise
        return True

    def _failed(self, exc: Exception, what: str, span: CacheSpan | None) -> None:
        self.counters.errors += 1
        if span is not None:
            span.fail(exc)
        if (
            exc.__class__.__name__ == "ResponseError"
            and str(exc).startswith(("MOVED", "ASK"))
            and not self._warned_cluster
        ):
            self._warned_cluster = True
            logger.error("%s: %s", self._owner, misconfigured_cluster_message())
        if self.breaker.record_failure():
            logger.warning(
                "cache backend %s failed (%s: %s); serving from the database and skipping the "
                "cache for %.1fs",
                self._owner,
                what,
                exc.__class__.__name__,
                self.breaker.recovery_time,
            )
        else:
            logger.debug("cache %s failed on %s: %r", what, self._owner, exc)


def _record_read(span: CacheSpan, found: Any) -> None:
    """Mark a read's span as a hit or a miss (the entry is the second item of the reply)."""
    entries = cast("list[Any]", found)
    hit = len(entries) > 1 and decode_entry(entries[0], entries[1])[0] is not None
    span.set_result("hit" if hit else "miss")
