"""Cluster and Sentinel URLs: parsing, masking, and configuration errors that say what to fix."""

from __future__ import annotations

import pytest

from viveka_db.cache.redis_cache import RedisCache
from viveka_db.cache.redis_clients import parse_url
from viveka_db.cache.registry import registered_schemes
from viveka_db.config.urls import mask_url
from viveka_db.errors import ConfigurationError


def test_every_topology_scheme_is_registered() -> None:
    assert {"redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel"} <= set(
        registered_schemes()
    )


def test_cluster_url() -> None:
    parts = parse_url("redis+cluster://user:p%40ss@10.0.0.1:7000,[::1]:7001?read_from_replicas=1")
    assert parts.nodes == [("10.0.0.1", 7000), ("::1", 7001)]
    assert (parts.username, parts.password, parts.tls) == ("user", "p@ss", False)
    assert parts.options == {"read_from_replicas": "1"} and parts.service_name is None


def test_sentinel_url() -> None:
    parts = parse_url("rediss+sentinel://:pw@s1:26379,s2:26379/mymaster/3?sentinel_password=x")
    assert parts.tls and parts.service_name == "mymaster" and parts.db == 3
    assert parts.password == "pw" and parts.options == {"sentinel_password": "x"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://s1:26379", "service name"),
        ("redis+cluster://", "no host:port"),
        ("redis+cluster://h1", "not host:port"),
        ("redis+cluster://h1:7000/2", "only database 0"),
        ("redis+sentinel://s1:26379/svc/x", "must be an integer"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_url(url)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
        ("redis+cluster://u:s3cret@h1:1,h2:2", "redis+cluster://u:***@h1:1,h2:2"),
        (
            "redis+sentinel://:s3cret@h1:1/svc?sentinel_password=s3cret2",
            "redis+sentinel://:***@h1:1/svc?sentinel_password=***",
        ),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_passwords_never_show(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_the_cache_repr_masks_a_topology_password() -> None:
    cache = RedisCache("redis+cluster://:s3cret@127.0.0.1:1,127.0.0.1:2")
    assert "s3cret" not in repr(cache) and "***" in repr(cache)


def test_the_cli_scrubs_replica_and_topology_passwords() -> None:
    from viveka_db.cli.state import CliState
    from viveka_db.config import load_settings

    settings = load_settings(
        {
            "database": {
                "url": "sqlite+aiosqlite://",
                "read_urls": "postgresql+asyncpg://u:r1@h/db, postgresql+asyncpg://u:r2@h2/db",
                "read_your_writes_secret": "k1",
            },
            "cache": {"url": "redis+cluster://:c1@h:1,h:2"},
        },
        environ={},
    )
    state = CliState()
    state._remember_secrets(settings)
    assert {"r1", "r2", "k1", "c1"} <= state.secrets()
