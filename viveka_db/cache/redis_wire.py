"""What the Redis cache stores, and the server-side scripts that change it: the wire layout.

This is the lowest layer of the Redis backend, kept apart so that the format other
processes (and other versions of this library) read can be checked in one place; nothing
here waits for or talks to a server. Layout of one prefix ``p`` in namespace ``ns``::

    ns:{p}:~g     the prefix's generation (no TTL)
    ns:{p}:<key>  b"vk1:" + token(16) + generation(20, zero padded) + payload   (TTL)
                  b"vkT:" + token(16)                                          (tombstone)
    ns:{p}:~lease:<key>  a cross-process load lease (short TTL)

A hit is one ``MGET`` of the generation and the entry: an entry counts only if it carries
the current generation, so evicting the prefix is one ``INCR`` however many keys it has
(old entries become unreachable and expire by TTL) and the hit path pays no second round
trip. A write is a Lua compare-and-set (:data:`PUT`): it lands only if the generation and
the entry's token are still what the reader saw, so a value loaded before a concurrent
eviction (of the prefix, or of the key, which leaves a tombstone with a new token) never
lands after it. A missing generation is created from the clock, so a generation key lost
to ``maxmemory`` eviction can never make older entries reachable again.

Every key of a prefix carries the hash tag ``{p}``, so on a Redis Cluster the generation
and the entries of one prefix live in one slot and the scripts stay single-slot. Every
eviction script publishes the key it changed on the namespace's channel
(:func:`channel_for`), in the same script as the change, for the near-caches of other
processes (:mod:`~viveka_db.cache.invalidation`).
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

from viveka_db.cache.backend import Lookup

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.commands.core import AsyncScript

__all__ = [
    "GENERATION_TOKEN",
    "KeyLayout",
    "Scripts",
    "channel_for",
    "decode_entry",
    "fresh_generation",
    "new_token",
    "parse_invalidation",
    "tombstone",
]

MAGIC = b"vk1:"
TOMBSTONE = b"vkT:"
GENERATION_TOKEN = "~g"
"""The key part of a prefix's generation key (never a key token: those tag ``~``)."""
LEASE = "~lease:"
"""Lease keys never collide with entries: no encoded argument starts with ``~le``."""

PUT = """
local gen = redis.call('GET', KEYS[1])
if gen then
  if gen ~= ARGV[1] then return 0 end
else
  if ARGV[1] ~= '' then return 0 end
  gen = ARGV[6]
  redis.call('SET', KEYS[1], gen)
end
local cur = redis.call('GET', KEYS[2])
local tok = ''
if cur then tok = string.sub(cur, 5, 20) end
if tok ~= ARGV[2] then return 0 end
local stored = 'vk1:' .. ARGV[5] .. string.rep('0', 20 - #gen) .. gen .. ARGV[3]
redis.call('SET', KEYS[2], stored, 'PX', ARGV[4])
return 1
"""

EVICT_PREFIX = """
local result = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  result = redis.call('INCR', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', ARGV[2], KEYS[1])
return result
"""

EVICT_KEY = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], KEYS[1])
return 1
"""

NEAR_READ = """
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]), redis.call('PTTL', KEYS[2])}
"""


class Scripts:
    """The scripts above, registered on one client (each is sent by its SHA)."""

    __slots__ = ("evict_key", "evict_prefix", "near_read", "put")

    def __init__(self, client: Redis | RedisCluster) -> None:
        self.put: AsyncScript = client.register_script(PUT)
        self.evict_prefix: AsyncScript = client.register_script(EVICT_PREFIX)
        self.evict_key: AsyncScript = client.register_script(EVICT_KEY)
        self.near_read: AsyncScript = client.register_script(NEAR_READ)


class KeyLayout:
    """The Redis keys of one namespace; each prefix's common part is built once."""

    __slots__ = ("_bases", "namespace")

    def __init__(self, namespace: str) -> None:
        if "{" in namespace or "}" in namespace or not namespace:
            raise ValueError(f"namespace must be non-empty without braces, got {namespace!r}")
        self.namespace = namespace
        self._bases: dict[str, str] = {}

    def base(self, prefix: str) -> str:
        """``ns:{prefix}:``, the start of every key of ``prefix``."""
        base = self._bases.get(prefix)
        if base is None:
            base = self._bases[prefix] = f"{self.namespace}:{{{prefix}}}:"
        return base

    def entry(self, prefix: str, key: str) -> str:
        return self.base(prefix) + key

    def generation(self, prefix: str) -> str:
        return self.base(prefix) + GENERATION_TOKEN

    def lease(self, prefix: str, key: str) -> str:
        return self.base(prefix) + LEASE + key


def decode_entry(generation: bytes | None, raw: bytes | None) -> Lookup:
    """A read's ``(payload, stamp)`` from the generation and the stored entry."""
    if raw is None:
        return None, (generation or b"", b"")
    if generation is not None and raw[:4] == MAGIC and raw[20:40] == generation.rjust(20, b"0"):
        return raw[40:], (generation, raw[4:20])
    return None, (generation or b"", raw[4:20])


def fresh_generation() -> bytes:
    """A generation for a prefix whose key is missing: later than any it could have had."""
    return str(time.time_ns() // 1000).encode()


def new_token() -> str:
    """An entry's token (16 hex characters): a write replaces it, so stale stamps fail."""
    return secrets.token_hex(8)


def tombstone() -> bytes:
    """What an evicted key holds until it expires: a fresh token, no payload."""
    return TOMBSTONE + new_token().encode()


def channel_for(namespace: str) -> str:
    """The pub/sub channel that carries the evictions of ``namespace``."""
    return f"{namespace}:~invalidate"


def parse_invalidation(namespace: str, data: bytes | str) -> tuple[str, str | None] | None:
    """``(prefix, key)`` (``key`` ``None`` for the whole prefix) from a published Redis key."""
    text = data.decode() if isinstance(data, bytes) else data
    head = namespace + ":{"
    if not text.startswith(head):
        return None
    end = text.find("}:", len(head))  # prefixes contain no braces
    if end < 0:
        return None
    prefix, key = text[len(head) : end], text[end + 2 :]
    return (prefix, None) if key == GENERATION_TOKEN else (prefix, key)
