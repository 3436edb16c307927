"""The replicas of one data source: which are healthy, how far each has replayed, which to use.

Each replica has its own engine (pool). Read-only work picks one round-robin among the
healthy replicas, or the primary when none qualifies. Three mechanisms keep that right:

* **Connect-time fallback.** A replica engine connects through a ``do_connect`` hook: if
  the replica refuses or times out (``replica_connect_timeout``), it is marked down and
  the connection is made to the primary instead, so the read still succeeds. Pooled
  connections are pinged at checkout; a dead one is replaced the same way. Connections
  to the wrong target (a primary fallback once the replica is back, a replica marked
  down) are replaced at checkout.
* **A background probe** (one task per data source, every ``replica_probe_interval``
  seconds, on a dedicated connection per replica) reads each replica's replay position
  and marks it up or down; a recovered replica is re-admitted by it, with no request
  paying for the check.
* **Retry-after.** A replica marked down is left out for ``replica_retry_after`` seconds,
  then tried again by the next connection even if no probe ran.

A statement already running on a replica that dies fails like any statement on a dead
connection; the next one goes elsewhere. :meth:`ReplicaSet.states` reports each replica
(for ``check_health()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, exc, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from viveka_db.config.urls import check_async_url, mask_url
from viveka_db.dialects import adapter_for
from viveka_db.replicas.consistency import ReadFloor
from viveka_db.replicas.positions import parse_position, replica_position_sql

if TYPE_CHECKING:
    from viveka_db.config.settings import DatabaseSettings

__all__ = ["Replica", "ReplicaSet", "ReplicaState"]

logger = logging.getLogger("viveka_db.replicas")

_TARGET = "viveka_target"
_ON_REPLICA, _ON_PRIMARY = "replica", "primary"


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """What is known about one replica (``DatabaseSessionFactory.replica_states()``)."""

    url: str
    """The replica's URL with the password masked."""
    healthy: bool | None
    """``None`` until the first connection or probe tells."""
    position: int | None
    """Replayed position (PostgreSQL LSN as an integer) at the last probe."""
    last_error: str | None
    """The exception class of the last failure, while the replica is down."""
    retry_in: float | None
    """Seconds until a replica that is down is tried again."""
    round_trip_ms: float | None
    """Duration of the last successful probe."""
    checked_at: float | None
    """Wall-clock time of the last probe."""


class Replica:
    """One replica: its serving engine, its probe engine and what is known about it."""

    def __init__(self, url: URL, engine: AsyncEngine, probe: AsyncEngine, retry_after: float):
        self.url = url
        self.position_sql, self.has_position = replica_position_sql(url.get_backend_name())
        self.masked = mask_url(url)
        self.engine = engine
        self.probe_engine = probe
        self.retry_after = retry_after
        self.healthy: bool | None = None
        self.down_until = 0.0
        self.position: int | None = None
        self.last_error: str | None = None
        self.round_trip_ms: float | None = None
        self.checked_at: float | None = None

    def usable(self, now: float) -> bool:
        return self.healthy is not False or now >= self.down_until

    def mark_down(self, error: BaseException) -> None:
        self.down_until = time.monotonic() + self.retry_after
        self.last_error = error.__class__.__name__
        if self.healthy is not False:
            logger.warning(
                "replica %s is unreachable (%s); reading from the other replicas or the "
                "primary, retrying in %.1fs",
                self.masked,
                self.last_error,
                self.retry_after,
            )
        self.healthy = False

    def mark_up(self) -> None:
        if self.healthy is False:
            logger.info("replica %s is reachable again; reading from it", self.masked)
        self.healthy = True
        self.last_error = None

    def state(self) -> ReplicaState:
        retry = None
        if self.healthy is False:
            retry = max(0.0, self.down_until - time.monotonic())
        return ReplicaState(
            self.masked,
            self.healthy,
            self.position,
            self.last_error,
            retry,
            self.round_trip_ms,
            self.checked_at,
        )


class ReplicaSet:
    """The replicas of one data source (built by ``DatabaseSessionFactory``)."""

    def __init__(
        self,
        settings: DatabaseSettings,
        primary_url: URL,
        build_engine: Callable[[URL], AsyncEngine],
    ) -> None:
        self.settings = settings
        self.primary_url = primary_url
        self.replicas: list[Replica] = []
        self._turn = itertools.count()
        self._probe_task: asyncio.Task[None] | None = None
        for raw in settings.replica_urls:
            url = make_url(raw)
            check_async_url(url)
            replica = Replica(
                url,
                build_engine(url),
                create_async_engine(
                    url,
                    pool_size=1,
                    max_overflow=0,
                    connect_args=self._connect_args(url),
                ),
                settings.replica_retry_after,
            )
            self._route(replica)
            self.replicas.append(replica)

    def _connect_args(self, url: URL) -> dict[str, Any]:
        adapter = adapter_for(url.get_backend_name())
        return adapter.connect_timeout_args(
            url.get_driver_name(), self.settings.replica_connect_timeout
        )

    # -- routing --------------------------------------------------------------------------

    def _route(self, replica: Replica) -> None:
        """Fall back to the primary at connect time; replace misrouted pooled connections."""
        sync_engine = replica.engine.sync_engine
        primary_url = self.primary_url
        timeout_args = self._connect_args(replica.url)
        # the primary is reachable through this engine only with the same driver
        can_fall_back = (replica.url.get_backend_name(), replica.url.get_driver_name()) == (
            primary_url.get_backend_name(),
            primary_url.get_driver_name(),
        )

        @event.listens_for(sync_engine, "do_connect")
        def _connect(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
            if not can_fall_back or replica.usable(time.monotonic()):
                try:
                    connection = dialect.connect(*cargs, **{**cparams, **timeout_args})
                except Exception as error:  # refused, timed out, authentication...
                    replica.mark_down(error)
                    if not can_fall_back:
                        raise
                else:
                    record.info[_TARGET] = _ON_REPLICA
                    replica.mark_up()
                    return connection
            record.info[_TARGET] = _ON_PRIMARY
            p_args, p_params = dialect.create_connect_args(primary_url)
            extra = {k: v for k, v in cparams.items() if k not in p_params}
            return dialect.connect(*p_args, **{**extra, **p_params})

        @event.listens_for(sync_engine, "checkout")
        def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
            target = record.info.get(_TARGET)
            if (target == _ON_PRIMARY and replica.healthy) or (
                target == _ON_REPLICA and not replica.usable(time.monotonic())
            ):
                raise exc.DisconnectionError("reconnecting to the right server")

        @event.listens_for(sync_engine, "handle_error")
        def _on_error(context: Any) -> None:
            connection = context.connection
            if not context.is_disconnect or connection is None:
                return
            with contextlib.suppress(Exception):
                if connection.info.get(_TARGET) == _ON_REPLICA:
                    replica.mark_down(context.original_exception)

    def pick(self, floor: ReadFloor | None) -> AsyncEngine | None:
        """The engine of the replica to read from, or ``None`` to read from the primary.

        With a ``floor``, only a replica whose probed replay position is at or past it
        qualifies (a floor of unknown position: none does).
        """
        self.ensure_probe()
        now = time.monotonic()
        candidates = [r for r in self.replicas if r.usable(now)]
        if floor is not None:
            wanted = floor.position
            if wanted is None:
                return None
            candidates = [r for r in candidates if r.position is not None and r.position >= wanted]
        if not candidates:
            return None
        return candidates[next(self._turn) % len(candidates)].engine

    def states(self) -> list[ReplicaState]:
        return [replica.state() for replica in self.replicas]

    def engines(self) -> list[AsyncEngine]:
        return [replica.engine for replica in self.replicas]

    # -- probing --------------------------------------------------------------------------

    def ensure_probe(self) -> None:
        """Start the background probe in the running event loop if it is not running there."""
        task = self._probe_task
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        self._probe_task = loop.create_task(self._probe_forever(), name="viveka_db replica probe")

    async def _probe_forever(self) -> None:
        while True:
            await self.probe()
            await asyncio.sleep(self.settings.replica_probe_interval)

    async def probe(self) -> None:
        """Check every replica once: reachable or not, and how far it has replayed."""
        await asyncio.gather(*(self._probe_one(replica) for replica in self.replicas))

    async def _probe_one(self, replica: Replica) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.replica_connect_timeout * 2):
                async with replica.probe_engine.connect() as conn:
                    value = await conn.scalar(text(replica.position_sql))
        except Exception as error:
            replica.mark_down(error)
            with contextlib.suppress(Exception):
                await replica.probe_engine.dispose()
        else:
            replica.round_trip_ms = (time.perf_counter() - started) * 1000
            if replica.has_position:
                replica.position = parse_position(value, replica.url.get_backend_name())
            replica.mark_up()
        replica.checked_at = time.time()

    # -- shutdown -------------------------------------------------------------------------

    async def dispose(self) -> None:
        task, self._probe_task = self._probe_task, None
        if task is not None and not task.done():
            try:
                same_loop = task.get_loop() is asyncio.get_running_loop()
                task.cancel()
            except RuntimeError:  # its loop is closed: the task is gone with it
                same_loop = False
            if same_loop:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for replica in self.replicas:
            await replica.engine.dispose()
            await replica.probe_engine.dispose()
