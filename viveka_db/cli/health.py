"""``db health``: the library's ``check_health()`` on the configured database and cache, plus
the server versions (which the HTTP endpoint leaves out) and full one-line error reasons."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text

from viveka_db.config import VivekaSettings
from viveka_db.dialects import adapter_for

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from viveka_db.cache.backend import CacheBackend
    from viveka_db.health.checks import ComponentHealth

__all__ = ["Check", "run_checks"]


@dataclass(frozen=True)
class Check:
    """The outcome of one health check; ``detail`` is the version or the one-line reason."""

    name: str
    ok: bool
    target: str
    detail: str
    millis: float | None = None


async def _server_version(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        dialect = conn.dialect
        adapter = adapter_for(dialect)
        if adapter.version_query is not None:
            version = str((await conn.execute(text(adapter.version_query))).scalar())
            return f"{adapter.product(version)} {version}"
        info = dialect.server_version_info
        return f"{dialect.name} {'.'.join(map(str, info))}" if info else dialect.name


async def _cache_version(backend: CacheBackend) -> str:
    from viveka_db.cache.redis_cache import RedisCache

    if not isinstance(backend, RedisCache):
        return type(backend).__name__
    info = await backend.client.info("server")  # pyright: ignore[reportUnknownMemberType]
    return f"Redis {info.get('redis_version', '?')}"


def _reason(component: ComponentHealth) -> str:
    """The driver's own first line (scrubbed by the caller), or the report's short error."""
    from viveka_db.cli.errors import describe_error

    exc = component.exception
    if exc is None or isinstance(exc, TimeoutError):
        return component.error or "down"
    return describe_error(exc)


async def _describe(component: ComponentHealth, engines: dict[str, AsyncEngine]) -> Check:
    from viveka_db.cache.current import get_cache

    if component.kind == "cache":
        label = "cache"
    else:
        label = "database" if component.role == "primary" else f"database ({component.role})"
    if not component.up:
        return Check(label, False, component.target, _reason(component))
    if component.kind == "database":
        version = await _server_version(engines[component.role])
    elif component.latency_ms is None:
        return Check(label, True, "in-process", "memory cache (nothing to ping)")
    else:
        version = await _cache_version(get_cache())
    return Check(label, True, component.target, version, component.latency_ms)


async def run_checks(settings: VivekaSettings, seconds: float) -> list[Check]:
    """Initialise the data source from ``settings``, check it and its cache, dispose of both."""
    from viveka_db.cache.null import NullCache
    from viveka_db.cache.setup import close_cache, get_cache
    from viveka_db.health.checks import check_health, database_targets
    from viveka_db.session.db_session import DatabaseSessionFactory

    factory = DatabaseSessionFactory(settings)
    try:
        report = await check_health(timeout=seconds, data_sources=[factory.data_source])
        engines = {role: engine for role, engine, _ in database_targets(factory)}
        skip_cache = isinstance(get_cache(), NullCache)
        return [
            await asyncio.wait_for(_describe(component, engines), seconds)
            for component in report.components
            if not (component.kind == "cache" and skip_cache)
        ]
    finally:
        await factory.dispose()
        await close_cache()
