"""``check_health()`` and ``health_endpoint()``: 200/503, JSON, no secrets."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.telemetry.conftest import Telemetry
from viveka_db import DatabaseSessionFactory, RedisCache, check_health, health_endpoint
from viveka_db.cache import current

PASSWORD = "Hunter2-secret-pw"


def closed_port() -> int:
    """A loopback port nothing listens on: bound to learn a free one, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def get(app: Any, method: str = "GET") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, "/health")


@pytest.fixture
async def fresh() -> AsyncIterator[None]:
    """No data source initialised before the test, none left after it."""
    await DatabaseSessionFactory.close_all()
    try:
        yield
    finally:
        await DatabaseSessionFactory.close_all()


async def test_healthy_database_answers_200(db: DatabaseSessionFactory, backend: str) -> None:
    report = await check_health()
    assert report.status == "up" and report.healthy
    database, cache = report.components
    assert (database.name, database.kind, database.role, database.up) == (
        "default",
        "database",
        "primary",
        True,
    )
    assert database.latency_ms is not None and 0 < database.latency_ms < 2000
    assert (cache.kind, cache.up, cache.target) == ("cache", True, "in-process")

    response = await get(health_endpoint())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == "up"
    assert [c["status"] for c in body["checks"]] == ["up", "up"]
    assert body["checks"][0]["latency_ms"] > 0
    head = await get(health_endpoint(), "HEAD")
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True
)
async def test_the_report_masks_the_password(backend_url: str, fresh: None) -> None:
    url = make_url(backend_url).set(password=PASSWORD)  # trust auth accepts any password
    DatabaseSessionFactory({"database": {"url": url.render_as_string(hide_password=False)}})
    response = await get(health_endpoint())
    assert response.status_code == 200
    assert PASSWORD not in response.text
    assert ":***@" in response.json()["checks"][0]["target"]


@pytest.mark.parametrize("scheme", ["postgresql+asyncpg", "mysql+aiomysql"])
async def test_database_on_a_closed_port_answers_503(scheme: str, fresh: None) -> None:
    url = f"{scheme}://app:{PASSWORD}@127.0.0.1:{closed_port()}/app"
    DatabaseSessionFactory({"database": {"url": url}})
    response = await get(health_endpoint(timeout=5))
    assert response.status_code == 503
    assert PASSWORD not in response.text
    body = response.json()
    assert body["status"] == "down"
    database = body["checks"][0]
    assert database["status"] == "down" and database["latency_ms"] is None
    assert "Refused" in database["error"] or "OSError" in database["error"], database
    assert ":***@" in database["target"]


async def test_a_replica_is_checked_too(backend_url: str, backend: str, fresh: None) -> None:
    if backend == "sqlite":
        pytest.skip("a replica needs a server")
    url = make_url(backend_url).set(port=closed_port()).render_as_string(hide_password=False)
    DatabaseSessionFactory({"database": {"url": backend_url, "read_url": url}})
    report = await check_health(timeout=5)
    roles = {(c.role, c.up) for c in report.components if c.kind == "database"}
    assert roles == {("primary", True), ("replica 1", False)}
    assert report.status == "degraded"  # reads fall back to the primary meanwhile
    assert (await get(health_endpoint(timeout=5))).status_code == 200


async def test_no_data_source_is_down(fresh: None) -> None:
    report = await check_health()
    assert report.status == "down"
    assert (await get(health_endpoint())).status_code == 503


async def test_an_unreachable_cache_degrades_unless_required(
    db: DatabaseSessionFactory, restore_cache: None
) -> None:
    backend = RedisCache(f"redis://:{PASSWORD}@127.0.0.1:{closed_port()}/0")
    current.use_cache(backend)
    try:
        report = await check_health(timeout=5)
        assert report.status == "degraded" and report.healthy
        response = await get(health_endpoint(timeout=5))
        assert response.status_code == 200
        body = json.loads(response.text)
        cache = body["checks"][-1]
        assert (cache["kind"], cache["status"], cache["role"]) == ("cache", "down", "RedisCache")
        assert PASSWORD not in response.text
        strict = await get(health_endpoint(timeout=5, require_cache=True))
        assert strict.status_code == 503
        assert strict.json()["status"] == "down"
    finally:
        await backend.close()


async def test_a_reachable_redis_reports_its_round_trip(
    db: DatabaseSessionFactory, redis_url: str, restore_cache: None
) -> None:
    backend = RedisCache(redis_url)
    current.use_cache(backend)
    try:
        report = await check_health()
        cache = report.components[-1]
        assert cache.up and cache.latency_ms is not None and cache.latency_ms > 0
        assert report.status == "up"
    finally:
        await backend.close()


async def test_health_probes_are_not_traced(
    db: DatabaseSessionFactory, telemetry: Telemetry
) -> None:
    assert (await check_health()).status == "up"
    assert telemetry.spans() == []
    # the probe's statement is still measured
    assert telemetry.points("db.client.operation.duration")
