"""``@cacheable`` and ``@cache_evict``: thin, signature-preserving wrappers over
:mod:`viveka_db.cache.aside`, where the caching behaviour lives.

Both stack with ``@transactional`` in either order. Options are validated at decoration
time, so a bad prefix or a non-async function fails at import, not at the first call.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, cast

from viveka_db.cache.aside import CacheableSpec, EvictSpec, cached, evict
from viveka_db.cache.keys import KeySpec, validate_prefix

__all__ = ["cache_evict", "cacheable"]

P = ParamSpec("P")
R = TypeVar("R")


def _require_async(fn: object, decorator: str) -> None:
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(
            f"{decorator} decorates `async def` functions; "
            f"{getattr(fn, '__qualname__', fn)!r} is not one"
        )


def cacheable(
    key_prefix: str,
    ttl: float | None = 3600,
    *,
    key: KeySpec | None = None,
    condition: Callable[..., bool] | None = None,
    unless: Callable[[Any], bool] | None = None,
    cache_none: bool = False,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Cache-aside read: return the cached result, or call the method and cache what it returns.

    The key is ``{key_prefix}:{first_arg}`` for one argument and is built from the bound
    call in general (``self`` excluded, defaults applied), so ``get(1)`` and
    ``get(user_id=1)`` share an entry. ``ttl`` is in seconds (``None``: the cache's
    ``default_ttl``). ``key`` computes the key value from the arguments instead: a
    template naming parameters (``"{user_id}"``, ``"{user.id}"``) or a function taking the
    method's arguments (both checked against the signature here, at decoration);
    ``condition(*args, **kwargs)`` false skips the cache for that call; ``unless(result)``
    true does not cache that result; ``None`` is cached only with ``cache_none=True``.
    A hit returns a copy (an entity comes back detached), never the object first cached.
    """
    prefix = validate_prefix(key_prefix, "@cacheable")
    if ttl is not None and not (isinstance(cast(object, ttl), int | float) and ttl > 0):
        raise ValueError(
            f"@cacheable ttl must be a positive number of seconds or None, got {ttl!r}"
        )
    for name, option in (("condition", condition), ("unless", unless)):
        if option is not None and not callable(option):
            raise TypeError(f"@cacheable {name}= must be a callable, got {option!r}")

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        _require_async(fn, "@cacheable")
        spec = CacheableSpec(fn, prefix, ttl, key, condition, unless, cache_none)
        wrapper = functools.wraps(fn)(cached(spec, fn))
        return cast("Callable[P, Coroutine[Any, Any, R]]", wrapper)

    return decorate


def cache_evict(
    key_prefix: str,
    *,
    key: KeySpec | None = None,
    before_invocation: bool = False,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Evict cached entries when the method succeeds: every entry under ``key_prefix``, or
    with ``key`` the one entry it names.

    ``key`` is a template (``"{user.id}"``) or a function of the method's arguments, as for
    :func:`cacheable`, checked against the method's signature when the decorator is
    applied. The key is computed from the arguments as they were when the call started, so
    a method that renames the entity it is given evicts the entry of the old name.

    In a transaction the eviction runs after the outermost commit (and not at all on
    rollback); until then the transaction's own reads of the prefix skip the cache.
    ``before_invocation=True`` evicts before the method runs, even if it then fails.
    """
    prefix = validate_prefix(key_prefix, "@cache_evict")

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        _require_async(fn, "@cache_evict")
        spec = EvictSpec(fn, prefix, key)

        if before_invocation:

            @functools.wraps(fn)
            async def evict_first(*args: P.args, **kwargs: P.kwargs) -> R:
                await evict(spec, args, spec.key_for(args, kwargs))
                return await fn(*args, **kwargs)

            return evict_first

        @functools.wraps(fn)
        async def evict_after(*args: P.args, **kwargs: P.kwargs) -> R:
            key = spec.key_for(args, kwargs)  # before fn can change its arguments
            result = await fn(*args, **kwargs)
            await evict(spec, args, key)
            return result

        return evict_after

    return decorate
