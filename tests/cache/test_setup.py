"""Choosing and installing the backend: ``[cache]`` configuration, ``use_cache``, import paths."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.cache.test_fail_open import spare_port
from viveka_db import CacheSettings, DatabaseSessionFactory, cacheable, get_cache, use_cache
from viveka_db.cache import current, setup
from viveka_db.cache.db_cache import MemoryCache, NullCache, RedisCache
from viveka_db.errors import ConfigurationError

pytestmark = pytest.mark.usefixtures("installed")


def install(**section: object) -> object:
    setup.install_from_settings(CacheSettings.model_validate(section))
    return get_cache()


def test_the_section_picks_the_backend() -> None:
    current.reset()
    memory = install(max_entries=5, default_ttl=60)
    assert isinstance(memory, MemoryCache) and memory.max_entries == 5 and memory.default_ttl == 60
    assert isinstance(install(enabled=False), NullCache)
    redis = install(url="redis://127.0.0.1:6379/15", namespace="svc", socket_timeout=0.5)
    assert isinstance(redis, RedisCache) and redis.namespace == "svc"
    assert isinstance(install(url="memory://"), MemoryCache)


def test_an_unknown_scheme_names_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"'mongodb'.*redis"):
        install(url="mongodb://localhost")


def test_rediss_urls_use_tls() -> None:
    from redis.asyncio.connection import SSLConnection

    cache = install(url="rediss://:pw@example.invalid:6380/0")
    assert isinstance(cache, RedisCache)
    assert cache.client.connection_pool.connection_class is SSLConnection


def test_an_application_chosen_backend_survives_configuration_without_a_cache_section() -> None:
    mine = MemoryCache()
    use_cache(mine)
    install()  # no [cache] keys set
    assert get_cache() is mine
    install(url="memory://")  # an explicit section wins
    assert get_cache() is not mine


def test_use_cache_rejects_other_objects() -> None:
    with pytest.raises(TypeError, match="CacheBackend"):
        use_cache("redis://localhost")  # type: ignore[arg-type]


def test_the_embedded_default_is_an_in_process_cache() -> None:
    current.reset()
    assert isinstance(get_cache(), MemoryCache)


async def test_disabled_caching_reaches_the_loader_every_time() -> None:
    install(enabled=False)
    calls = 0

    @cacheable("off")
    async def load(x: int) -> int:
        nonlocal calls
        calls += 1
        return x

    await load(1), await load(1)
    assert calls == 2


async def test_the_password_never_appears_in_reprs_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = RedisCache(f"redis://user:s3cr3t-pw@127.0.0.1:{spare_port()}/0", socket_timeout=0.1)
    use_cache(cache)

    @cacheable("secret")
    async def load(x: int) -> int:
        return x

    with caplog.at_level(logging.DEBUG, "viveka_db.cache"):
        for _ in range(4):
            assert await load(1) == 1
    assert "s3cr3t-pw" not in repr(cache)
    assert caplog.records and "s3cr3t-pw" not in caplog.text
    await cache.close()


async def test_the_session_factory_installs_the_configured_cache(tmp_path: Path) -> None:
    await DatabaseSessionFactory.close_all()
    try:
        DatabaseSessionFactory(
            {
                "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"},
                "cache": {
                    "url": "redis://127.0.0.1:6379/15",
                    "namespace": "configured",
                    "default_ttl": 30,
                },
            }
        )
        cache = get_cache()
        assert isinstance(cache, RedisCache)
        assert (cache.namespace, cache.default_ttl) == ("configured", 30)
        await setup.close_cache()
        assert get_cache() is not cache
    finally:
        await DatabaseSessionFactory.close_all()
