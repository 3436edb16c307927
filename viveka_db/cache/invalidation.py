"""Cross-process invalidation of near-caches through Redis pub/sub.

Every eviction ``RedisCache`` performs publishes the Redis key it changed on the
namespace's channel (:func:`~viveka_db.cache.redis_wire.channel_for`), in the same
server-side script as the change itself (:mod:`~viveka_db.cache.redis_wire`): the
generation key ``ns:{prefix}:~g`` for a prefix, the entry key for one key.
A process with a near-cache subscribes (:class:`InvalidationListener`, one dedicated
connection) and applies each message to its :class:`~viveka_db.cache.near.NearCache`.

Pub/sub delivers at most once: a message published while the subscription is down is
gone. So the near-cache is trusted only between a confirmed subscription and the first
sign of trouble (a connection error, or no reply to a ``PING`` within ``liveness``
seconds); then it is dropped, and refilled only after a new subscription is confirmed.
Client-side tracking (RESP3) was the alternative; it needs every pooled connection to
redirect its tracking to the listener, re-established on every reconnect, which redis-py's
asyncio pool does not do for us. One channel per namespace does not.

On a Redis Cluster a published message reaches the subscribers of every node over the
cluster bus, so the listener subscribes on one node, the next one in turn after each lost
connection. A node that stays reachable while its cluster-bus link to the publishing node
is cut misses what that node publishes until the cluster fails one of them over; for that
window only ``near_ttl`` bounds how long a near entry is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from typing import TYPE_CHECKING, Any

from viveka_db.cache.near import NearCache
from viveka_db.cache.redis_wire import GENERATION_TOKEN, channel_for, parse_invalidation

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["GENERATION_TOKEN", "InvalidationListener", "channel_for", "parse_invalidation"]

logger = logging.getLogger("viveka_db.cache")


def _is_redis_error(exc: Exception) -> bool:
    from redis.exceptions import RedisError

    return isinstance(exc, RedisError)


class InvalidationListener:
    """Keeps ``near`` subscribed to ``namespace``'s evictions, reconnecting by itself.

    ``start()`` (idempotent, needs a running loop) launches the task; ``near`` becomes
    trusted once the subscription is confirmed and is dropped whenever it is lost.
    ``client_id`` is the listening connection's Redis client id (``None`` if unknown);
    on a cluster, on the node ``node``.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        namespace: str,
        near: NearCache,
        *,
        liveness: float = 1.0,
        retry_delay: float = 0.05,
        max_retry_delay: float = 2.0,
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._channel = channel_for(namespace)
        self._near = near
        self._liveness = liveness
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribed = asyncio.Event()
        self._attempts = 0
        """Subscription attempts so far (picks the cluster node to try next)."""
        self.client_id: int | None = None
        self.node: str | None = None
        """``host:port`` of the cluster node subscribed on (``None`` for a plain client)."""
        self.subscriptions = 0
        """Confirmed subscriptions so far (1 + the number of reconnects)."""

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._task is not None and not self._task.done():
            return
        self._near.drop()  # a task of another (closed) loop may have died silently
        self._loop = loop
        self._subscribed = asyncio.Event()
        name = f"viveka-near-invalidation:{self._namespace}"
        self._task = loop.create_task(self._run(), name=name)

    @property
    def running_loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    async def wait_subscribed(self, seconds: float = 5.0) -> bool:
        """Wait until the near-cache is trusted (tests and start-up warmers)."""
        self.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._subscribed.wait()
        return self._near.trusted

    async def stop(self) -> None:
        self._near.drop()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self) -> None:
        delay = self._retry_delay
        try:
            while True:
                try:
                    await self._listen()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._lost(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_retry_delay)
                if self._near.trusted:  # pragma: no cover - _listen only returns on errors
                    delay = self._retry_delay
        finally:
            self._near.drop()
            self._subscribed.clear()

    def _lost(self, exc: Exception) -> None:
        was_trusted = self._near.trusted
        self._near.drop()
        self._subscribed.clear()
        if was_trusted:
            logger.warning(
                "near-cache invalidation channel of namespace %r lost (%s); the near-cache "
                "is dropped and not used until it is subscribed again",
                self._namespace,
                type(exc).__name__,
            )
        elif not isinstance(exc, OSError | TimeoutError) and not _is_redis_error(exc):
            # not a network failure: retrying will not help, and nothing else would say so
            logger.error(
                "near-cache invalidation listener of namespace %r failed (%s); the "
                "near-cache stays unused",
                self._namespace,
                type(exc).__name__,
            )
            frames = "".join(traceback.format_tb(exc.__traceback__))  # no message: no values
            logger.debug("near-cache invalidation listener failed at:\n%s", frames)

    async def _listen(self) -> None:
        client, own_client = await self._subscriber_client()
        pubsub: Any = client.pubsub()
        try:
            await pubsub.connect()
            self.client_id = await self._own_client_id(pubsub)
            await pubsub.subscribe(self._channel)
            async with asyncio.timeout(max(self._liveness, 1.0) * 5):
                while True:  # the confirmation: from now on no eviction can be missed
                    message = await pubsub.get_message(timeout=None)
                    if message is not None and message["type"] == "subscribe":
                        break
            self._near.trust()
            self.subscriptions += 1
            self._subscribed.set()
            if self.subscriptions > 1:
                logger.info("near-cache of namespace %r is subscribed again", self._namespace)
            await self._consume(pubsub)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            if own_client:
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def _subscriber_client(self) -> tuple[Any, bool]:
        """The client to subscribe with, and whether it was made here (then closed here).

        A plain client subscribes itself. For a cluster, a client of one node (public
        ``ClusterNode`` fields: its address and its connection settings), the nodes taken
        in turn so that a node that went away is not tried twice in a row.
        """
        from redis.asyncio import ConnectionPool, Redis

        client: Any = self._client
        self._attempts += 1
        if isinstance(client, Redis):
            return client, False
        await client.initialize()
        nodes: list[Any] = client.get_nodes()
        node = nodes[self._attempts % len(nodes)]
        self.node = f"{node.host}:{node.port}"
        settings: dict[str, Any] = {**node.connection_kwargs, "host": node.host, "port": node.port}
        pool = ConnectionPool(connection_class=node.connection_class, **settings)
        return Redis.from_pool(pool), True  # closing the client closes its pool

    async def _consume(self, pubsub: Any) -> None:
        near = self._near
        namespace = self._namespace
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=self._liveness)
            if message is None:
                if pinged:
                    raise TimeoutError(f"no reply to PING within {self._liveness:.1f} s")
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            if message["type"] != "message":
                continue
            parsed = parse_invalidation(namespace, message["data"])
            if parsed is None:
                continue
            prefix, key = parsed
            if key is None:
                near.invalidate_prefix(prefix)
            else:
                near.invalidate_key(prefix, key)

    @staticmethod
    async def _own_client_id(pubsub: Any) -> int | None:
        """The listening connection's id (``CLIENT ID``; fakeredis may not know it)."""
        connection = pubsub.connection
        try:
            await connection.send_command("CLIENT", "ID")
            reply = await connection.read_response()
        except Exception:
            return None
        return int(reply) if isinstance(reply, int) else None
