"""A decoration's options, checked once when the method is decorated, not on every call.

``@cacheable`` and ``@cache_evict`` validate their arguments and build their key builders
here, so the per-call code in :mod:`~viveka_db.cache.aside` only reads ready values; the
per-transaction record of what was evicted lives here too, under :data:`EXTRAS_KEY` of the
transaction's scope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from viveka_db.cache.keys import KeyBuilder, KeySpec

__all__ = ["EXTRAS_KEY", "CacheableSpec", "EvictSpec", "TransactionCacheState"]

EXTRAS_KEY = "viveka_db.cache"
"""Where a transaction scope keeps its :class:`TransactionCacheState`."""


class TransactionCacheState:
    """What a transaction evicted, so its own reads skip the cache until it ends."""

    __slots__ = ("keys", "prefixes")

    def __init__(self) -> None:
        self.prefixes: set[str] = set()
        self.keys: set[tuple[str, str]] = set()


class CacheableSpec:
    """A ``@cacheable`` decoration's options, validated once."""

    __slots__ = (
        "cache_none",
        "condition",
        "keys",
        "name",
        "prefix",
        "skip",
        "ttl",
        "unless",
        "warned",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        prefix: str,
        ttl: float | None,
        key: KeySpec | None,
        condition: Callable[..., bool] | None,
        unless: Callable[[Any], bool] | None,
        cache_none: bool,
    ) -> None:
        self.prefix = prefix
        self.ttl = ttl
        self.keys = KeyBuilder(fn, key)
        self.skip = self.keys.skip
        self.condition = condition
        self.unless = unless
        self.cache_none = cache_none
        self.name = getattr(fn, "__qualname__", repr(fn))
        self.warned: set[type[Any]] = set()
        """Result types already reported as unserialisable (each is logged once)."""


class EvictSpec:
    """A ``@cache_evict`` decoration's options; ``keys`` is ``None`` for the whole prefix."""

    __slots__ = ("keys", "prefix", "skip")

    def __init__(self, fn: Callable[..., Any], prefix: str, key: KeySpec | None) -> None:
        self.prefix = prefix
        builder = KeyBuilder(fn, key)
        self.skip = builder.skip
        self.keys = builder if key is not None else None

    def key_for(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        """The key to evict (``None``: the whole prefix), from the arguments as they are now.

        Taken before the method runs: a method that changes its arguments (a rename) must
        evict the entry cached under the old values, not one under the new values.
        """
        return self.keys.build(args, kwargs) if self.keys is not None else None
