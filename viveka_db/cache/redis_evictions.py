"""Evictions that could not reach Redis yet: kept, retried in the background, journalled.

A lost eviction would leave a stale value cached for its whole TTL, so an eviction that
fails is never dropped: it is queued here (oldest first), its prefix is not served by this
process until it is delivered (:attr:`PendingEvictions.prefixes`), and a background task
delivers it as soon as Redis takes it, without waiting for a read. Each retry is sent even
while the circuit breaker is open: it doubles as the breaker's probe. With a journal
(:mod:`~viveka_db.cache.eviction_journal`) the queue also survives a restart.
docs/how-to/replicas.md gives what other processes can observe meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable

from viveka_db.cache.eviction_journal import EvictionJournal, Pending

__all__ = ["Deliver", "PendingEvictions"]

logger = logging.getLogger("viveka_db.cache")

Deliver = Callable[[str, "str | None"], Awaitable[bool]]
"""Sends one eviction (``key`` ``None``: the prefix) as a probe; ``True`` once Redis took it."""


class PendingEvictions:
    """The queue of one backend (``owner``, named in logs), delivered through ``deliver``."""

    def __init__(
        self,
        owner: object,
        deliver: Deliver,
        *,
        retry_interval: float,
        journal: str | os.PathLike[str] | None = None,
    ) -> None:
        self._owner = owner
        self._deliver = deliver
        self.retry_interval = retry_interval
        self._pending: dict[Pending, None] = {}
        """Evictions that failed, oldest first; their prefixes are not served meanwhile."""
        self.prefixes: set[str] = set()
        """The prefixes with an eviction not delivered yet (never served from Redis)."""
        self._flusher: asyncio.Task[None] | None = None
        self._journal = None if journal is None else EvictionJournal(journal)
        if self._journal is not None:
            for prefix, key in self._journal.load():  # left by a process that exited
                self._pending[(prefix, key)] = None
                self.prefixes.add(prefix)

    def __len__(self) -> int:
        return len(self._pending)

    def remember(self, prefix: str, key: str | None) -> None:
        """Queue an eviction that failed (a prefix's covers the key evictions under it)."""
        if key is None:
            covered = [p for p in self._pending if p[0] == prefix]
            for pending in covered:
                del self._pending[pending]
            if covered and self._journal is not None:
                with contextlib.suppress(OSError):
                    self._journal.remove(covered)
        elif (prefix, None) in self._pending:
            return
        self._pending[(prefix, key)] = None
        if self._journal is not None:
            try:
                self._journal.add(prefix, key)
            except OSError as exc:
                logger.warning("could not record a pending cache eviction: %s", exc)
        if prefix in self.prefixes:
            return  # logged when the prefix's first eviction failed
        self.prefixes.add(prefix)
        logger.warning(
            "cache eviction of %s in %s failed; it is retried in the background, and the "
            "prefix is not served from the cache in this process until it is delivered",
            prefix if key is None else f"{prefix}:{key}",
            self._owner,
        )
        self.ensure_flusher()

    def ensure_flusher(self) -> None:
        """Make sure the delivering task runs on this event loop (a loop may have closed)."""
        flusher = self._flusher
        loop = asyncio.get_running_loop()
        if flusher is None or flusher.done() or flusher.get_loop() is not loop:
            self._flusher = loop.create_task(self._flush(), name="viveka_db eviction flusher")

    def stop(self) -> None:
        flusher, self._flusher = self._flusher, None
        if flusher is not None and not flusher.done():
            flusher.cancel()

    async def _flush(self) -> None:
        """Retry until Redis takes every eviction, every ``retry_interval`` seconds at most."""
        while self._pending:
            await asyncio.sleep(self.retry_interval)
            await self.replay()

    async def replay(self) -> bool:
        """Retry the queued evictions (oldest first); ``True`` once none is left."""
        for prefix, key in list(self._pending):
            if not await self._deliver(prefix, key):
                return False
            del self._pending[(prefix, key)]
            if not any(p == prefix for p, _ in self._pending):
                self.prefixes.discard(prefix)
            if self._journal is not None:
                try:
                    self._journal.remove([(prefix, key)])
                except OSError as exc:  # delivered anyway; a later start re-delivers it
                    logger.warning("could not update the cache eviction journal: %s", exc)
        logger.info(
            "delivered the cache evictions that failed while %s was unreachable", self._owner
        )
        return True
