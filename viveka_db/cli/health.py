"""``db health``: connect, run a trivial query, report the server version and round trip."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from viveka_db.config import VivekaSettings, mask_url
from viveka_db.dialects import adapter_for

__all__ = ["Check", "check_cache", "check_database"]


@dataclass(frozen=True)
class Check:
    """The outcome of one health check; ``detail`` is the version or the one-line reason."""

    name: str
    ok: bool
    target: str
    detail: str
    millis: float | None = None


async def _server_version(conn: AsyncConnection) -> str:
    dialect = conn.dialect
    adapter = adapter_for(dialect)
    if adapter.version_query is not None:
        version = str((await conn.execute(text(adapter.version_query))).scalar())
        return f"{adapter.product(version)} {version}"
    info = dialect.server_version_info
    return f"{dialect.name} {'.'.join(map(str, info))}" if info else dialect.name


async def check_database(settings: VivekaSettings, seconds: float) -> Check:
    """Connect with ``settings``, run ``SELECT 1`` and read the server version."""
    from viveka_db.cache.setup import close_cache
    from viveka_db.cli.errors import describe_error
    from viveka_db.config import build_url
    from viveka_db.session.db_session import DatabaseSessionFactory

    url = build_url(settings.database)
    target = mask_url(url)
    factory = DatabaseSessionFactory(settings)
    try:
        async with asyncio.timeout(seconds):
            async with factory.engine.connect() as conn:
                started = time.perf_counter()
                await conn.execute(text("SELECT 1"))
                millis = (time.perf_counter() - started) * 1000
                version = await _server_version(conn)
        return Check("database", True, target, version, millis)
    except TimeoutError:
        return Check("database", False, target, f"no answer within {seconds:g}s")
    except Exception as exc:
        return Check("database", False, target, describe_error(exc))
    finally:
        await factory.dispose()
        await close_cache()  # the factory installed the configured cache; not needed here


async def check_cache(settings: VivekaSettings, seconds: float) -> Check | None:
    """PING the configured Redis; ``None`` when no networked cache is configured."""
    cache = settings.cache
    url = cache.url or ""
    if not cache.enabled or not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    from viveka_db.cli.errors import describe_error

    target = mask_url(url)
    try:
        import redis.asyncio as aioredis
    except ImportError:
        return Check(
            "cache", False, target, 'the redis package is missing: pip install "viveka-db[redis]"'
        )
    client = aioredis.from_url(url, socket_timeout=seconds, socket_connect_timeout=seconds)
    try:
        async with asyncio.timeout(seconds):
            started = time.perf_counter()
            await client.ping()  # pyright: ignore[reportUnknownMemberType]
            millis = (time.perf_counter() - started) * 1000
            info = await client.info("server")  # pyright: ignore[reportUnknownMemberType]
        return Check("cache", True, target, f"Redis {info.get('redis_version', '?')}", millis)
    except TimeoutError:
        return Check("cache", False, target, f"no answer within {seconds:g}s")
    except Exception as exc:
        return Check("cache", False, target, describe_error(exc))
    finally:
        await client.aclose()
