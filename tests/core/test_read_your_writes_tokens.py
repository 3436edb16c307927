"""Hostile read-your-writes tokens: ignored, never a 500; tokens bound to their data source.

The data source's replica is the primary itself (no second server needed): what matters
here is the token a request carries, which the endpoint reports as the floor it runs
under (``current_floor``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import _ensure_schema, empty_tables
from tests.core.models import Item
from viveka_db import DatabaseSessionFactory, DbMiddleware, current_session
from viveka_db.middleware.read_your_writes import COOKIE, HEADER
from viveka_db.replicas.consistency import ReadFloor, _Signer, current_floor

SECRET = "shared-secret"
OTHER = "ryw_reports"


@pytest.fixture
async def replicated(backend: str, backend_url: str) -> AsyncIterator[None]:
    await DatabaseSessionFactory.close_all()
    database = {
        "url": backend_url,
        "read_urls": [backend_url],
        "read_your_writes_secret": SECRET,
        "read_your_writes_window": 30,
    }
    factory = DatabaseSessionFactory({"database": database})
    DatabaseSessionFactory({"database": database}, data_source=OTHER)
    await _ensure_schema(factory, backend)
    try:
        yield
    finally:
        await empty_tables(factory, backend)
        await DatabaseSessionFactory.close_all()


def _app(data_source: str | None = None) -> Starlette:
    name = data_source or "default"

    async def write(request: Request) -> JSONResponse:
        current_session(name).add(Item(tag="ryw"))
        return JSONResponse({"ok": True})

    async def floor(request: Request) -> JSONResponse:
        return JSONResponse({"floor": current_floor(name) is not None})

    app = Starlette(routes=[Route("/w", write, methods=["POST"]), Route("/floor", floor)])
    app.add_middleware(DbMiddleware, data_source=data_source)
    return app


def _client(app: Starlette, scheme: str = "http") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"{scheme}://t")


async def test_a_valid_token_sets_the_floor(replicated: None) -> None:
    async with _client(_app()) as client:
        token = (await client.post("/w")).headers[HEADER]
        async with _client(_app()) as other:
            assert (await other.get("/floor")).json() == {"floor": False}
            answer = await other.get("/floor", headers={HEADER: token})
            assert answer.json() == {"floor": True}


@pytest.mark.parametrize("where", ["header", "cookie"])
@pytest.mark.parametrize(
    "raw",
    [
        "1.-.99999999999999.\u00e9\u00e9\u00e9".encode(),  # non-ASCII signature (UTF-8)
        b"1.-.99999999999999.\xff\xfe",  # not even UTF-8
        "\u2603".encode(),
        b"1.-.99999999999999",  # not signed
        b"1.-.99999999999999.",  # empty signature
        b"x" * 5000,
    ],
)
async def test_a_malformed_or_non_ascii_token_is_ignored_never_a_500(
    replicated: None, where: str, raw: bytes
) -> None:
    headers = {HEADER: raw} if where == "header" else {"cookie": COOKIE.encode() + b"=" + raw}
    async with _client(_app()) as client:
        answer = await client.get("/floor", headers=headers)
        assert answer.status_code == 200
        assert answer.json() == {"floor": False}
        assert (await client.post("/w", headers=headers)).status_code == 200


async def test_a_token_of_another_data_source_is_ignored(replicated: None) -> None:
    async with _client(_app(OTHER)) as reports:
        written = await reports.post("/w")
        token = written.headers[f"{HEADER}-{OTHER}"]
        # valid for the data source that issued it ...
        mine = await reports.get("/floor", headers={f"{HEADER}-{OTHER}": token})
        assert mine.json() == {"floor": True}
    async with _client(_app()) as default:
        # ... but not for another one, although both sign with the same secret
        for headers in ({HEADER: token}, {"cookie": f"{COOKIE}={token}"}):
            assert (await default.get("/floor", headers=headers)).json() == {"floor": False}


def test_the_signature_covers_the_data_source() -> None:
    floor = ReadFloor(7, float(int(time.time()) + 60))
    token = _Signer(SECRET, "default").dumps(floor)
    assert _Signer(SECRET, "default").loads(token, time.time()) == floor
    assert _Signer(SECRET, "reports").loads(token, time.time()) is None
    assert _Signer("another secret", "default").loads(token, time.time()) is None


@pytest.mark.parametrize(("scheme", "secure"), [("https", True), ("http", False)])
async def test_the_cookie_is_secure_on_https(replicated: None, scheme: str, secure: bool) -> None:
    async with _client(_app(), scheme) as client:
        written = await client.post("/w")
    cookie = written.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert ("secure" in attributes) is secure
    assert "httponly" in attributes
