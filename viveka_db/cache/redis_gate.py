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
and ends here too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, cast

from viveka_db.cache.backend import CacheCounters
from viveka_db.cache.breaker import CircuitBreaker
from viveka_db.cache.redis_clients import misconfigured_cluster_message
from viveka_db.cache.redis_wire import decode_entry
from viveka_db.telemetry.cache import CacheSpan, cache_span, redis_attributes

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["FAILED", "CommandGate"]

logger = logging.getLogger("viveka_db.cache")

FAILED: Any = object()
"""What :meth:`CommandGate.run` returns when a command did not complete."""


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
        self._slot_state: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
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

    async def run(
        self, what: str, operation: str, call: Any, *args: Any, read: bool = False, **kwargs: Any
    ) -> Any:
        """Run one Redis command under the timeout; :data:`FAILED` if it did not complete.

        ``what`` names the cache operation in logs; ``operation`` names the command's span;
        a ``read`` span records hit or miss (the entry is the reply's second item).
        """
        with cache_span(operation, self.span_attributes) as span:
            slots = self._slots()
            if slots.locked():
                try:
                    async with asyncio.timeout(self.pool_timeout):
                        await slots.acquire()
                except TimeoutError as exc:
                    self.counters.pool_timeouts += 1
                    span.fail(exc)
                    return FAILED
            else:
                await slots.acquire()
            try:
                async with asyncio.timeout(self.timeout):
                    result = await call(*args, **kwargs)
            except Exception as exc:
                span.fail(exc)
                self._failed(exc, what)
                return FAILED
            finally:
                slots.release()
            if read:
                _record_read(span, result)
        if self.breaker.record_success():
            logger.info("cache backend %s is reachable again; caching resumed", self._owner)
        return result

    def _slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        state = self._slot_state
        if state is None or state[0] is not loop:
            state = self._slot_state = (loop, asyncio.Semaphore(self.max_in_flight))
        return state[1]

    def _failed(self, exc: Exception, what: str) -> None:
        self.counters.errors += 1
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
