"""The near-cache: hot Redis entries kept in process memory, trusted only while Redis says so.

A near hit costs a dictionary lookup instead of a network round trip. It is safe only as
long as every eviction, in any process, reaches this process: :class:`NearCache` is
therefore *trusted* only while an :class:`~viveka_db.cache.invalidation.InvalidationListener`
is subscribed to the namespace's invalidation channel. Losing that subscription drops
every entry and stops filling until it is back (messages sent meanwhile are lost, so
nothing cached before can be proven current).

The store is bounded twice: ``max_entries`` (least recently filled entries go first) and
``ttl`` seconds per entry (never longer than the Redis entry has left). A prefix eviction
bumps a per-prefix generation (O(1)); entries of an older generation are never served.

Fill races: a Redis read whose reply arrives after this process already handled an
invalidation of the same prefix may carry the value that eviction removed (the reply and
the invalidation travel on different connections). Each fill therefore carries the
:meth:`NearCache.mark` taken before the read and is dropped if the prefix (or the whole
store) was invalidated since.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from viveka_db.cache.backend import Lookup, Stamp

__all__ = ["PREFIX_SLACK", "Mark", "NearCache", "NearStats"]

PREFIX_SLACK = 1_000
"""Prefixes tracked beyond ``max_entries`` before the store starts over (memory bound)."""


class Mark(NamedTuple):
    """What the store looked like before a Redis read (see :meth:`NearCache.mark`)."""

    epoch: int
    changes: int


class NearStats(NamedTuple):
    """Counters of one near-cache (``RedisCache.near.stats()``)."""

    hits: int
    entries: int
    fills: int
    stale_fills: int
    """Fills refused because an invalidation of their prefix arrived during the read."""
    invalidations: int
    drops: int
    """Times the whole store was dropped (lost or restarted invalidation channel)."""


class _Entry:
    __slots__ = ("expires", "generation", "lookup")

    def __init__(self, lookup: Lookup, generation: int, expires: float) -> None:
        self.lookup = lookup
        self.generation = generation
        self.expires = expires


class NearCache:
    """A bounded, TTL-limited store of payloads in front of Redis (one per ``RedisCache``)."""

    __slots__ = (
        "_changes",
        "_clock",
        "_entries",
        "_epoch",
        "_generations",
        "_trusted",
        "drops",
        "fills",
        "hits",
        "invalidations",
        "max_entries",
        "stale_fills",
        "ttl",
    )

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"near_max_entries must be at least 1, got {max_entries!r}")
        if ttl <= 0:
            raise ValueError(f"near_ttl must be positive, got {ttl!r}")
        self.max_entries = max_entries
        self.ttl = float(ttl)
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._generations: dict[str, int] = {}
        """Prefix evictions seen, per prefix: entries of an older count are dead."""
        self._changes: dict[str, int] = {}
        """Any invalidation seen, per prefix: a fill whose read straddles one is dropped."""
        self._epoch = 0
        """Bumped whenever the whole store is dropped."""
        self._trusted = False
        self.hits = self.fills = self.stale_fills = self.invalidations = self.drops = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        state = "trusted" if self._trusted else "untrusted"
        return f"NearCache({len(self._entries)}/{self.max_entries} entries, {state})"

    @property
    def trusted(self) -> bool:
        """Whether evictions from other processes are being received (entries may be served)."""
        return self._trusted

    def get(self, prefix: str, key: str) -> Lookup | None:
        """The ``(payload, stamp)`` held for the entry, or ``None`` (then ask Redis)."""
        entry = self._entries.get((prefix, key))
        if entry is None or not self._trusted:
            return None
        if entry.generation != self._generations.get(prefix, 0) or entry.expires <= self._clock():
            del self._entries[(prefix, key)]
            return None
        self.hits += 1
        return entry.lookup

    def mark(self, prefix: str) -> Mark:
        """Taken before a Redis read whose result may be kept (:meth:`put`)."""
        return Mark(self._epoch, self._changes.get(prefix, 0))

    def put(
        self,
        prefix: str,
        key: str,
        payload: bytes,
        stamp: Stamp,
        mark: Mark,
        ttl: float | None = None,
    ) -> bool:
        """Keep ``payload`` (read or written under ``mark``) unless it may be stale already.

        ``ttl``: what the Redis entry has left (seconds), if known; the entry is never
        served longer than that nor longer than the store's own ``ttl``.
        """
        if (
            not self._trusted
            or mark.epoch != self._epoch
            or mark.changes != self._changes.get(prefix, 0)
        ):
            self.stale_fills += 1
            return False
        life = self.ttl if ttl is None else min(self.ttl, ttl)
        if life <= 0:
            return False
        entries = self._entries
        full_key = (prefix, key)
        entries[full_key] = _Entry(
            (payload, stamp), self._generations.get(prefix, 0), self._clock() + life
        )
        entries.move_to_end(full_key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)
        self.fills += 1
        return True

    def invalidate_prefix(self, prefix: str) -> None:
        """Every entry under ``prefix`` is dead (O(1)); reads in flight will not fill."""
        self._generations[prefix] = self._generations.get(prefix, 0) + 1
        self._changed(prefix)

    def invalidate_key(self, prefix: str, key: str) -> None:
        self._entries.pop((prefix, key), None)
        self._changed(prefix)

    def _changed(self, prefix: str) -> None:
        self._changes[prefix] = self._changes.get(prefix, 0) + 1
        self.invalidations += 1
        if len(self._changes) > self.max_entries + PREFIX_SLACK:
            # other processes evict prefixes this one may never read: stay bounded by
            # starting over (nothing stale can survive a full clear)
            trusted = self._trusted
            self._clear()
            self._trusted = trusted

    def drop(self) -> None:
        """Forget everything and stop serving until :meth:`trust` (channel lost)."""
        self._trusted = False
        self._clear()

    def trust(self) -> None:
        """The invalidation channel is (again) subscribed: start from empty and serve."""
        self._clear()
        self._trusted = True

    def _clear(self) -> None:
        self._entries.clear()
        self._generations.clear()
        self._changes.clear()
        self._epoch += 1
        self.drops += 1

    def stats(self) -> NearStats:
        return NearStats(
            hits=self.hits,
            entries=len(self._entries),
            fills=self.fills,
            stale_fills=self.stale_fills,
            invalidations=self.invalidations,
            drops=self.drops,
        )
