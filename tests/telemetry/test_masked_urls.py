"""Every URL the library prints is masked, passwords given as query parameters included.

One function (``viveka_db.config.urls.mask_url``) masks database and cache URLs alike; these
tests go through what users see: ``check_health`` and the health endpoint, ``RedisCache``
reprs, configuration errors, and every log line written meanwhile.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.engine import make_url

from viveka_db import (
    ConfigurationError,
    DatabaseSessionFactory,
    RedisCache,
    check_health,
    health_endpoint,
)
from viveka_db.cache import current
from viveka_db.config.urls import mask_url

SECRET = "Qs3cr3t-in-the-query"
USER_SECRET = "Us3r-info-secret"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        ("redis://h:6379/0?password=s3cret", "redis://h:6379/0?password=***"),
        (
            "postgresql+asyncpg://app@db:5432/app?password=s3cret&ssl=require",
            "postgresql+asyncpg://app@db:5432/app?password=***&ssl=require",
        ),
        (
            "mysql+aiomysql://app@db/app?charset=utf8mb4&passwd=s3cret",
            "mysql+aiomysql://app@db/app?charset=utf8mb4&passwd=***",
        ),
        ("mysql+asyncmy://app@db/app?PWD=s3cret", "mysql+asyncmy://app@db/app?PWD=***"),
        (
            "postgresql+asyncpg://app@db/app?sslpassword=s3cret;application_name=x",
            "postgresql+asyncpg://app@db/app?sslpassword=***;application_name=x",
        ),
        (
            "postgresql+asyncpg://u:p@ss/w@rd@db:notaport/x",
            "postgresql+asyncpg://u:***@db:notaport/x",
        ),
        ("sqlite+aiosqlite:///./viveka.db", "sqlite+aiosqlite:///./viveka.db"),
    ],
)
def test_mask_url_hides_the_password_and_secret_query_parameters(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert "s3cret" not in mask_url(url)


def test_mask_url_takes_a_sqlalchemy_url() -> None:
    url = make_url(f"postgresql+asyncpg://app:{USER_SECRET}@db/app?password={SECRET}")
    shown = mask_url(url)
    assert SECRET not in shown and USER_SECRET not in shown
    assert shown == "postgresql+asyncpg://app:***@db/app?password=***"


def test_there_is_one_masking_function() -> None:
    import viveka_db.cache.redis_cache as redis_cache

    assert not hasattr(redis_cache, "mask_redis_url")
    assert redis_cache.mask_url is mask_url


@pytest.fixture
async def fresh() -> AsyncIterator[None]:
    await DatabaseSessionFactory.close_all()
    try:
        yield
    finally:
        await DatabaseSessionFactory.close_all()


def _no_secret_logged(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        text = record.getMessage() + str(record.args) + str(record.exc_info or "")
        assert SECRET not in text and USER_SECRET not in text, text


@pytest.mark.parametrize(
    "scheme",
    [
        pytest.param("postgresql+asyncpg", marks=pytest.mark.postgresql),
        pytest.param("mysql+aiomysql", marks=pytest.mark.mariadb),
    ],
)
async def test_health_output_masks_a_password_given_as_a_query_parameter(
    scheme: str, fresh: None, restore_cache: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = closed_port()
    url = f"{scheme}://app:{USER_SECRET}@127.0.0.1:{port}/app?password={SECRET}"
    DatabaseSessionFactory({"database": {"url": url}})
    cache = RedisCache(f"redis://127.0.0.1:{closed_port()}/0?password={SECRET}")
    current.use_cache(cache)
    try:
        report = await check_health(timeout=5)
        for component in report.components:
            assert SECRET not in component.target and USER_SECRET not in component.target
            assert SECRET not in str(component.as_dict())
        assert "password=***" in report.components[0].target
        transport = httpx.ASGITransport(app=health_endpoint(timeout=5))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.get("/health")
        assert answer.status_code == 503
        assert SECRET not in answer.text and USER_SECRET not in answer.text
        assert SECRET not in repr(cache) and "password=***" in repr(cache)
        factory = DatabaseSessionFactory.get_instance()
        assert SECRET not in repr(factory) and USER_SECRET not in repr(factory)
    finally:
        await cache.close()
    _no_secret_logged(caplog)


def test_a_configuration_error_masks_query_passwords(caplog: pytest.LogCaptureFixture) -> None:
    url = f"postgresql+psycopg2://app:{USER_SECRET}@db/app?password={SECRET}"
    with pytest.raises(ConfigurationError) as raised:
        DatabaseSessionFactory({"database": {"url": url}}, data_source="masked_error")
    assert SECRET not in str(raised.value) and USER_SECRET not in str(raised.value)
    assert "blocking driver" in str(raised.value)
    _no_secret_logged(caplog)


def test_url_secrets_are_what_mask_url_hides() -> None:
    from viveka_db.config.urls import url_secrets

    url = f"redis+sentinel://:{USER_SECRET}@h1:1,h2:2/svc?sentinel_password={SECRET}&x=1"
    assert url_secrets(url) == {USER_SECRET, SECRET}
    assert url_secrets("postgresql+asyncpg://u:p%40ss@h/db?passwd=a%2Fb") == {
        "p%40ss",
        "p@ss",
        "a%2Fb",
        "a/b",
    }
    assert url_secrets("sqlite+aiosqlite:///./x.db") == set()


def test_urls_inside_a_message_are_masked_by_the_same_rule() -> None:
    from viveka_db.config.urls import mask_urls_in

    text = f"broker at kafka://svc:{USER_SECRET}@h:9092/x?password={SECRET} refused"
    assert mask_urls_in(text) == "broker at kafka://svc:***@h:9092/x?password=*** refused"
