"""``OutboxRelay``: deliver the outbox's events at least once, in order per key.

Each batch is claimed (see :mod:`viveka_db.outbox.claims`), delivered and recorded in one
transaction: delivered rows are marked (or deleted), failed ones get a later
``next_attempt_at`` (exponential backoff with jitter) or, after ``max_attempts``, the
``dead`` state. A relay killed mid-batch never recorded that batch, so its rows are
delivered again by the next relay: consumers must tolerate duplicates (deduplicate on the
event ``id``). Keys are delivered concurrently (``concurrency``), the events of one key
one after the other; a failure holds back the rest of its key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Generator
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from viveka_db.base.types import utc_now
from viveka_db.config.urls import mask_urls_in
from viveka_db.context.db_context import DEFAULT
from viveka_db.outbox.claims import (
    Claimed,
    claim,
    delete_delivered,
    isolation_for,
    mark_delivered,
    mark_failed,
    retry_time,
)
from viveka_db.outbox.events import OutboxEvent
from viveka_db.outbox.publish import CHANNEL
from viveka_db.outbox.settings import RelayOptions
from viveka_db.outbox.wakeup import Listener
from viveka_db.session.db_session import DatabaseSessionFactory
from viveka_db.telemetry.outbox import delivery_span, record_delivery

__all__ = ["Deliver", "OutboxRelay", "Stopping"]

logger = logging.getLogger("viveka_db.outbox")

Deliver = Callable[[OutboxEvent], Awaitable[Any]]


def describe(error: BaseException) -> str:
    """``last_error``: the exception's class and message, credentials in URLs masked."""
    return mask_urls_in(f"{type(error).__qualname__}: {error}")


class Stopping:
    """What :meth:`OutboxRelay.stop` returns: awaiting it waits until the relay has stopped."""

    __slots__ = ("_stopped",)

    def __init__(self, stopped: asyncio.Event | None) -> None:
        self._stopped = stopped

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()

    async def _wait(self) -> None:
        if self._stopped is not None:
            await self._stopped.wait()


class OutboxRelay:
    """Deliver outbox events with ``deliver`` (an ``async`` callable taking an
    :class:`~viveka_db.outbox.OutboxEvent`), until :meth:`stop`.

    Run it with ``await relay.run()`` (returns after :meth:`stop`, once the batch in hand
    is recorded), in the background with :meth:`start` / ``await relay.stop()`` or
    ``async with OutboxRelay(...)``, or from the command line:
    ``viveka-db outbox relay --deliver mod:func``.
    Several relays, in one process or many, share the work. The options are described by
    :class:`~viveka_db.outbox.settings.RelayOptions`.
    """

    def __init__(self, deliver: Deliver, *, data_source: str = DEFAULT, **options: Any) -> None:
        if not callable(deliver):
            raise TypeError(f"deliver must be an async callable, got {deliver!r}")
        self.deliver = deliver
        self.data_source = data_source
        self.options = RelayOptions.of(options)
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._stopped: asyncio.Event | None = None
        """Set when :meth:`run` has returned (``None`` before it first ran)."""
        self._task: asyncio.Task[None] | None = None

    # -- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until :meth:`stop` is called."""
        self._stopping = False
        wake = self._wake = asyncio.Event()
        stopped = self._stopped = asyncio.Event()
        engine = DatabaseSessionFactory.get_instance(self.data_source).engine
        listener = (
            Listener(engine, CHANNEL, wake)
            if self.options.listen and Listener.supported(engine)
            else None
        )
        loop = asyncio.get_running_loop()
        next_cleanup = loop.time()
        try:
            while not self._stopping:
                if listener is not None:
                    await listener.ensure()
                wake.clear()
                busy = await self._batch_logged()
                if loop.time() >= next_cleanup:
                    next_cleanup = loop.time() + self.options.cleanup_interval
                    await self._cleanup_logged()
                if not busy and not self._stopping:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self.options.poll_interval)
        finally:
            try:
                if listener is not None:
                    await listener.close()
            finally:
                stopped.set()

    def start(self) -> asyncio.Task[None]:
        """Run the relay in a background task of the running loop (stop it with :meth:`stop`)."""
        if self._task is not None and not self._task.done():
            raise RuntimeError("this relay is already running")
        self._task = asyncio.create_task(self.run(), name="viveka_db outbox relay")
        return self._task

    def stop(self) -> Stopping:
        """Ask :meth:`run` to return once the batch in hand is delivered and recorded.

        Usable from a signal handler as it is; ``await relay.stop()`` also waits until the
        relay has stopped.
        """
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        return Stopping(self._stopped)

    async def __aenter__(self) -> OutboxRelay:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the background task started by ``async with`` and wait for it."""
        self.stop()
        task, self._task = self._task, None
        if task is not None:
            await task

    # -- one batch -------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim, deliver and record one batch; returns how many events were attempted."""
        _, attempted = await self._batch()
        return attempted

    async def _batch_logged(self) -> bool:
        """Run a batch; ``True`` if it was full and made progress (more may be waiting)."""
        try:
            locked, attempted = await self._batch()
        except Exception as exc:  # the database is away: try again after a poll interval
            logger.warning("outbox relay: batch failed (%s); retrying", describe(exc))
            return False
        # a full batch whose rows all wait for other relays' rows: wait, do not spin
        return locked >= self.options.batch_size and attempted > 0

    async def _batch(self) -> tuple[int, int]:
        engine = DatabaseSessionFactory.get_instance(self.data_source).engine
        options = self.options
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level=isolation_for(engine.dialect.name))
            async with conn.begin():
                claimed, locked = await claim(conn, options.batch_size, utc_now())
                if not claimed:
                    return locked, 0
                results = await self._deliver_all(claimed)
                now = utc_now()
                delivered = [item.seq for item, error in results if error is None]
                await mark_delivered(conn, delivered, now, delete_rows=options.delete_at_once)
                for item, error in results:
                    if error is not None:
                        await self._record_failure(conn, item, error, now)
        for item, error in results:  # counted once committed
            if error is None:
                record_delivery("delivered", (now - item.event.created_at).total_seconds())
        return locked, len(results)

    async def _deliver_all(
        self, claimed: list[Claimed]
    ) -> list[tuple[Claimed, BaseException | None]]:
        by_key: dict[str, list[Claimed]] = {}
        for item in claimed:
            by_key.setdefault(item.event.aggregateid, []).append(item)
        results: list[tuple[Claimed, BaseException | None]] = []
        limit = asyncio.Semaphore(self.options.concurrency)

        async def deliver_key(items: list[Claimed]) -> None:
            async with limit:
                for item in items:
                    error = await self._deliver_one(item.event)
                    results.append((item, error))
                    if error is not None:
                        return  # the later events of this key wait for this one

        await asyncio.gather(*(deliver_key(items) for items in by_key.values()))
        return results

    async def _deliver_one(self, event: OutboxEvent) -> BaseException | None:
        with delivery_span(
            event.type, event.aggregatetype, str(event.id), event.attempt, event.headers
        ):
            try:
                async with asyncio.timeout(self.options.delivery_timeout):
                    await self.deliver(event)
            except Exception as exc:
                return exc
        return None

    async def _record_failure(
        self, conn: AsyncConnection, item: Claimed, error: BaseException, now: datetime
    ) -> None:
        options, event = self.options, item.event
        dead = event.attempt >= options.max_attempts
        when = retry_time(now, event.attempt, options.retry_backoff, options.max_backoff)
        await mark_failed(conn, item, describe(error), when, dead=dead)
        record_delivery("dead" if dead else "retry")
        if dead:
            logger.error(
                "outbox event %s (%s, key %s) is dead after %d attempts: %s",
                event.id, event.type, event.aggregateid, event.attempt, describe(error),
            )  # fmt: skip
        else:
            logger.warning(
                "outbox event %s (%s) attempt %d failed, retrying at %s: %s",
                event.id, event.type, event.attempt, when.isoformat(), describe(error),
            )  # fmt: skip

    # -- cleanup ---------------------------------------------------------------------------

    async def cleanup(self) -> int:
        """Delete rows delivered longer ago than ``delete_delivered_after``; returns how many."""
        after = self.options.delete_delivered_after
        if after is None or self.options.delete_at_once:
            return 0
        engine = DatabaseSessionFactory.get_instance(self.data_source).engine
        async with engine.begin() as conn:
            return await delete_delivered(conn, utc_now() - after)

    async def _cleanup_logged(self) -> None:
        try:
            deleted = await self.cleanup()
        except Exception as exc:
            logger.warning("outbox relay: cleanup failed (%s)", describe(exc))
            return
        if deleted:
            logger.info("outbox relay: deleted %d delivered events", deleted)
