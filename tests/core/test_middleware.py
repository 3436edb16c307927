"""``DbMiddleware`` with Starlette and FastAPI apps, in process and on uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import BackgroundTasks, FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tests.core.helpers import (
    checked_out,
    committed_count,
    committed_tags,
    slow_sql,
    wait_until_released,
)
from tests.core.models import Child, Item, ItemRepo
from viveka_db import (
    DatabaseSessionFactory,
    NoSessionError,
    after_commit,
    current_session,
    in_transaction,
    transactional,
)
from viveka_db.middleware.db_middleware import DbMiddleware

Message = MutableMapping[str, Any]

repo = ItemRepo()  # ONE repository instance shared by every request, as in real services


class ItemService:
    def __init__(self) -> None:
        self.repo = repo

    @transactional
    async def create(self, tag: str, count: int = 1) -> list[Item]:
        return await self.repo.insert_all([Item(tag=tag, n=i) for i in range(count)])

    @transactional
    async def fail(self) -> None:
        raise ValueError("inner failure")


service = ItemService()


def client_for(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def http_scope(path: str = "/") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }


async def no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


# -- the documented registration ------------------------------------------------------------


async def test_add_middleware_with_engine_as_documented(db: DatabaseSessionFactory) -> None:
    app = FastAPI()
    engine = DatabaseSessionFactory.get_instance().engine
    app.add_middleware(DbMiddleware, engine=engine)

    @app.post("/items/{tag}")
    async def create(tag: str) -> dict[str, Any]:
        items = await service.create(tag, 2)
        return {"ids": [item.id for item in items], "in_tx": in_transaction()}

    async with client_for(app) as client:
        response = await client.post("/items/doc")
    assert response.status_code == 200
    assert response.json()["in_tx"] is True
    assert len(response.json()["ids"]) == 2
    assert await committed_tags(db.engine) == ["doc", "doc"]


async def test_add_middleware_without_arguments_uses_the_default_data_source(
    db: DatabaseSessionFactory,
) -> None:
    async def create(request: Request) -> Response:
        await repo.insert_all([Item(tag="noarg")])
        return PlainTextResponse(str(id(current_session())))

    app = Starlette(routes=[Route("/", create)])
    app.add_middleware(DbMiddleware)
    async with client_for(app) as client:
        assert (await client.get("/")).status_code == 200
    assert await committed_tags(db.engine) == ["noarg"]


async def test_engine_that_no_factory_owns_is_rejected(db: DatabaseSessionFactory) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    stray = create_async_engine("sqlite+aiosqlite:///:memory:")
    middleware = DbMiddleware(PlainTextResponse("x"), engine=stray)
    with pytest.raises(RuntimeError, match="no DatabaseSessionFactory owns"):
        await middleware(http_scope(), no_body, _discard)
    await stray.dispose()


async def _discard(message: Message) -> None:
    pass


# -- isolation between concurrent requests ---------------------------------------------------


async def test_200_concurrent_requests_share_one_repository_without_cross_talk(
    db: DatabaseSessionFactory,
) -> None:
    sessions: dict[str, AsyncSession] = {}
    app = FastAPI()
    app.add_middleware(DbMiddleware, engine=db.engine)

    @app.post("/items/{tag}")
    async def create(tag: str) -> dict[str, Any]:
        sessions[tag] = repo.db
        await service.create(tag, 3)
        await asyncio.sleep(0)  # let the other requests interleave
        rows = await repo.find_all_by_field("tag", tag)
        assert repo.db is sessions[tag]
        in_session = sorted({str(o.tag) for o in repo.db.identity_map.values()})
        if tag.endswith("7"):
            raise RuntimeError("this request fails after its writes")
        return {"count": len(rows), "tags_in_session": in_session}

    tags = [f"r{i:03d}" for i in range(200)]
    async with client_for(app) as client:
        responses = await asyncio.gather(*(client.post(f"/items/{tag}") for tag in tags))
    for tag, response in zip(tags, responses, strict=True):
        if tag.endswith("7"):
            assert response.status_code == 500, tag
        else:
            assert response.status_code == 200, (tag, response.text)
            assert response.json() == {"count": 3, "tags_in_session": [tag]}
    assert len({id(s) for s in sessions.values()}) == 200
    assert "db" not in vars(repo)
    expected = sorted(tag for tag in tags if not tag.endswith("7") for _ in range(3))
    assert await committed_tags(db.engine) == expected
    assert await wait_until_released(db.engine) == 0


# -- commit / rollback around the response ------------------------------------------------------


def status_app(db: DatabaseSessionFactory) -> Starlette:
    hooks: list[str] = []

    async def write(request: Request) -> Response:
        status = int(request.path_params["status"])
        await service.create(f"s{status}")
        after_commit(lambda: hooks.append(f"hook {status}"))
        if request.query_params.get("raise"):
            raise RuntimeError("route fails after writing")
        return PlainTextResponse("done", status_code=status)

    app = Starlette(routes=[Route("/write/{status}", write)])
    app.add_middleware(DbMiddleware, engine=db.engine)
    app.state.hooks = hooks
    return app


async def test_write_then_exception_leaves_nothing_behind(db: DatabaseSessionFactory) -> None:
    app = status_app(db)
    async with client_for(app) as client:
        response = await client.get("/write/200?raise=1")
    assert response.status_code == 500
    assert await committed_tags(db.engine) == []
    assert app.state.hooks == []
    assert checked_out(db.engine) == 0


async def test_5xx_rolls_back_and_2xx_4xx_commit(db: DatabaseSessionFactory) -> None:
    app = status_app(db)
    async with client_for(app) as client:
        for status in (200, 201, 404, 500, 503):
            assert (await client.get(f"/write/{status}")).status_code == status
    assert await committed_tags(db.engine) == ["s200", "s201", "s404"]
    assert app.state.hooks == ["hook 200", "hook 201", "hook 404"]


async def test_rollback_status_is_configurable(db: DatabaseSessionFactory) -> None:
    async def write(request: Request) -> Response:
        await service.create(f"s{request.path_params['status']}")
        return PlainTextResponse("x", status_code=int(request.path_params["status"]))

    app = Starlette(routes=[Route("/write/{status}", write)])
    app.add_middleware(DbMiddleware, engine=db.engine, rollback_status=400)
    async with client_for(app) as client:
        for status in (201, 399, 400, 422):
            assert (await client.get(f"/write/{status}")).status_code == status
    assert await committed_tags(db.engine) == ["s201", "s399"]


async def test_commit_happens_before_the_response_starts(db: DatabaseSessionFactory) -> None:
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await repo.insert_all([Item(tag="ordered")])
        after_commit(lambda: events.append("after-commit hook"))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        events.append("app continues")
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message: Message) -> None:
        events.append(message["type"])

    def on_commit(conn: Any) -> None:
        events.append("COMMIT")

    event.listen(db.engine.sync_engine, "commit", on_commit)
    try:
        await DbMiddleware(app)(http_scope(), no_body, send)
    finally:
        event.remove(db.engine.sync_engine, "commit", on_commit)
    assert events == [
        "COMMIT",
        "after-commit hook",
        "http.response.start",
        "app continues",
        "http.response.body",
    ]
    assert await committed_tags(db.engine) == ["ordered"]


async def test_session_is_not_reused_after_the_response_started(
    db: DatabaseSessionFactory,
) -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await repo.count()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with pytest.raises(NoSessionError) as info:
            current_session()
        seen.append(str(info.value))
        await repo.insert_all([Item(tag="late")])  # runs in a transaction of its own
        await send({"type": "http.response.body", "body": b"ok"})

    await DbMiddleware(app)(http_scope(), no_body, _discard)
    assert "already committed" in seen[0]
    assert await committed_tags(db.engine) == ["late"]


async def test_commit_failure_at_commit_time_returns_500(
    db: DatabaseSessionFactory, backend: str
) -> None:
    """PostgreSQL and SQLite: a DEFERRED foreign key fails at COMMIT; MariaDB has none, so
    there the COMMIT itself is made to fail."""
    hooks: list[str] = []

    async def orphan(request: Request) -> Response:
        current_session().add(Item(tag="with-orphan"))
        current_session().add(Child(parent_id=424242))
        await current_session().flush()  # accepted: the constraint is checked at COMMIT
        after_commit(lambda: hooks.append("ran"))
        return JSONResponse({"saved": True}, status_code=201)

    app = Starlette(routes=[Route("/orphan", orphan, methods=["POST"])])
    app.add_middleware(DbMiddleware, engine=db.engine)

    def failing_commit(conn: Any) -> None:
        raise RuntimeError("COMMIT refused")

    if backend == "mariadb":
        event.listen(db.engine.sync_engine, "commit", failing_commit)
    try:
        async with client_for(app) as client:
            response = await client.post("/orphan")
    finally:
        if backend == "mariadb":
            event.remove(db.engine.sync_engine, "commit", failing_commit)
    assert response.status_code == 500
    assert "saved" not in response.text
    assert hooks == []
    assert await committed_tags(db.engine) == []
    assert await committed_count(db.engine, Child) == 0
    assert await wait_until_released(db.engine) == 0


async def test_swallowed_inner_failure_is_not_answered_with_success(
    db: DatabaseSessionFactory,
) -> None:
    async def swallow(request: Request) -> Response:
        await service.create("before")
        with contextlib.suppress(ValueError):
            await service.fail()  # marks the request's transaction rollback-only
        return PlainTextResponse("pretends success", status_code=int(request.path_params["s"]))

    app = Starlette(routes=[Route("/swallow/{s}", swallow)])
    app.add_middleware(DbMiddleware, engine=db.engine)
    async with client_for(app) as client:
        ok = await client.get("/swallow/200")
        conflict = await client.get("/swallow/409")
    assert ok.status_code == 500
    assert "pretends" not in ok.text
    assert conflict.status_code == 409  # an error status already tells the client
    assert await committed_tags(db.engine) == []


# -- connections, cancellation, disconnects ------------------------------------------------------


async def test_request_that_never_touches_the_database_checks_out_nothing(
    db: DatabaseSessionFactory,
) -> None:
    checkouts = 0

    def on_checkout(*args: Any) -> None:
        nonlocal checkouts
        checkouts += 1

    async def ping(request: Request) -> Response:
        return PlainTextResponse(f"{in_transaction()} {checked_out(db.engine)}")

    app = Starlette(routes=[Route("/ping", ping)])
    app.add_middleware(DbMiddleware, engine=db.engine)
    event.listen(db.engine.sync_engine, "checkout", on_checkout)
    try:
        async with client_for(app) as client:
            responses = await asyncio.gather(*(client.get("/ping") for _ in range(10)))
    finally:
        event.remove(db.engine.sync_engine, "checkout", on_checkout)
    assert {r.text for r in responses} == {"True 0"}
    assert checkouts == 0


async def test_cancellation_rolls_back_and_closes_the_session(db: DatabaseSessionFactory) -> None:
    holding = asyncio.Event()
    sessions: list[AsyncSession] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await repo.insert_all([Item(tag="cancelled")])
        sessions.append(current_session())
        holding.set()
        await asyncio.sleep(30)

    task = asyncio.create_task(DbMiddleware(app)(http_scope(), no_body, _discard))
    await holding.wait()
    assert checked_out(db.engine) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert checked_out(db.engine) == 0
    assert not sessions[0].in_transaction()
    assert await committed_tags(db.engine) == []
    with pytest.raises(NoSessionError):
        current_session()


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[tuple[str, int]]:
    """Run ``app`` on a real uvicorn server on 127.0.0.1 (an OS-chosen port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_level="error", ws="none")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done(), "uvicorn failed to start"
            await asyncio.sleep(0.01)
        yield sock.getsockname()
    finally:
        server.should_exit = True
        await task
        sock.close()


async def request_then_disconnect(address: tuple[str, int], path: str, wait: asyncio.Event) -> None:
    _, writer = await asyncio.open_connection(*address)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    await writer.drain()
    await wait.wait()
    writer.close()
    await writer.wait_closed()


async def test_client_disconnect_leaks_no_connection_on_uvicorn(
    db: DatabaseSessionFactory,
) -> None:
    holding = asyncio.Event()
    streaming = asyncio.Event()
    seen: list[str] = []

    async def hold(request: Request) -> Response:
        await repo.insert_all([Item(tag="held")])  # the request's connection is checked out
        seen.append(f"holding {checked_out(db.engine)}")
        holding.set()
        while (await request.receive())["type"] != "http.disconnect":
            pass
        seen.append("handler saw the disconnect")
        return PlainTextResponse("nobody is listening")

    @transactional
    async def slow_read() -> int:
        count = await repo.count()
        seen.append(f"streaming {checked_out(db.engine)}")
        streaming.set()
        await asyncio.sleep(30)  # cancelled when the client goes away
        return count

    async def stream(request: Request) -> Response:
        async def body() -> AsyncIterator[str]:
            yield "start\n"
            yield f"{await slow_read()}\n"

        return StreamingResponse(body())

    app = Starlette(routes=[Route("/hold", hold), Route("/stream", stream)])
    app.add_middleware(DbMiddleware, engine=db.engine)
    async with serve(app) as address:
        await request_then_disconnect(address, "/hold", holding)
        assert await wait_until_released(db.engine) == 0
        assert seen == ["holding 1", "handler saw the disconnect"]
        await request_then_disconnect(address, "/stream", streaming)
        assert await wait_until_released(db.engine) == 0
        assert seen[-1] == "streaming 1"
    assert checked_out(db.engine) == 0


# -- other scopes, background tasks, streaming ---------------------------------------------------


async def test_lifespan_and_websocket_pass_through(db: DatabaseSessionFactory) -> None:
    phases: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        phases.append(f"startup in_tx={in_transaction()}")
        yield
        phases.append("shutdown")

    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        name = await websocket.receive_text()
        await service.create(f"ws-{name}")  # its own transaction: no request session here
        await websocket.send_text(f"in_tx={in_transaction()}")
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/ws", ws_endpoint)], lifespan=lifespan)
    app.add_middleware(DbMiddleware, engine=db.engine)

    async with LifespanManager(app):
        assert phases == ["startup in_tx=False"]
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        outbox: list[Message] = []
        for message in ({"type": "websocket.connect"}, {"type": "websocket.receive", "text": "x"}):
            inbox.put_nowait(message)

        async def send(message: Message) -> None:
            outbox.append(message)

        scope = {**http_scope("/ws"), "type": "websocket", "scheme": "ws", "subprotocols": []}
        await app(scope, inbox.get, send)
    assert phases == ["startup in_tx=False", "shutdown"]
    assert [m["type"] for m in outbox] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert outbox[1]["text"] == "in_tx=False"
    assert await committed_tags(db.engine) == ["ws-x"]


async def test_background_tasks_run_after_the_response_in_their_own_session(
    db: DatabaseSessionFactory,
) -> None:
    record: dict[str, Any] = {}

    @transactional
    async def background_write(tag: str) -> None:
        record["background session"] = current_session()
        record["request row visible"] = [i.tag for i in await repo.find_all_by_field("tag", "req")]
        await repo.insert_all([Item(tag=tag)])

    async def background_repository_call() -> None:
        with pytest.raises(NoSessionError, match="already committed"):
            current_session()
        await repo.insert_all([Item(tag="bg-direct")])  # its own transaction

    app = FastAPI()
    app.add_middleware(DbMiddleware, engine=db.engine)

    @app.post("/work")
    async def work(tasks: BackgroundTasks) -> dict[str, bool]:
        record["request session"] = current_session()
        await service.create("req")
        tasks.add_task(background_write, "bg")
        tasks.add_task(background_repository_call)
        return {"accepted": True}

    async with client_for(app) as client:
        response = await client.post("/work")
    assert response.status_code == 200
    assert record["background session"] is not record["request session"]
    assert record["request row visible"] == ["req"]  # committed before the background ran
    assert await committed_tags(db.engine) == ["bg", "bg-direct", "req"]
    assert checked_out(db.engine) == 0


async def test_streaming_response_works(db: DatabaseSessionFactory) -> None:
    async def stream(request: Request) -> Response:
        await service.create("streamed", 3)

        async def body() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"chunk{i}\n".encode()
            yield f"count={await repo.count()}\n".encode()  # the request's rows are committed

        return StreamingResponse(body(), media_type="text/plain")

    app = Starlette(routes=[Route("/stream", stream)])
    app.add_middleware(DbMiddleware, engine=db.engine)
    async with client_for(app) as client:
        response = await client.get("/stream")
    assert response.status_code == 200
    assert response.text == "chunk0\nchunk1\nchunk2\ncount=3\n"
    assert await committed_tags(db.engine) == ["streamed"] * 3


async def test_after_commit_hooks_of_a_request_that_wrote_nothing_still_run(
    db: DatabaseSessionFactory,
) -> None:
    hooks: list[str] = []

    async def notify(request: Request) -> Response:
        after_commit(lambda: hooks.append("ran"))
        return PlainTextResponse("ok", status_code=int(request.path_params["s"]))

    app = Starlette(routes=[Route("/notify/{s}", notify)])
    app.add_middleware(DbMiddleware, engine=db.engine)
    async with client_for(app) as client:
        assert (await client.get("/notify/200")).status_code == 200
        assert (await client.get("/notify/500")).status_code == 500
    assert hooks == ["ran"]


async def test_middleware_for_a_named_data_source(
    db: DatabaseSessionFactory, backend: str, backend_url: str, tmp_path: Any
) -> None:
    reports_url = (
        f"sqlite+aiosqlite:///{tmp_path / 'reports.db'}" if backend == "sqlite" else backend_url
    )
    reports = DatabaseSessionFactory({"database": {"url": reports_url}}, data_source="reports")
    if backend == "sqlite":
        await reports.create_all([Item])
    reports_repo = ItemRepo(data_source="reports")

    async def write(request: Request) -> Response:
        session = current_session("reports")
        await reports_repo.insert_all([Item(tag="reported")])
        assert reports_repo.db is session
        with pytest.raises(NoSessionError):
            current_session()  # this middleware serves the reports data source only
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", write)])
    app.add_middleware(DbMiddleware, data_source="reports")
    async with client_for(app) as client:
        assert (await client.get("/")).status_code == 200
    assert await committed_tags(reports.engine) == ["reported"]


async def test_cancellation_during_a_query_releases_the_servers_locks(
    db: DatabaseSessionFactory, backend: str
) -> None:
    from sqlalchemy import text

    sleep_sql = slow_sql(backend)  # on SQLite the library interrupts it
    querying = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await repo.insert_all([Item(tag="locked")])
        querying.set()
        await current_session().execute(text(sleep_sql))

    task = asyncio.create_task(DbMiddleware(app)(http_scope(), no_body, _discard))
    await querying.wait()
    await asyncio.sleep(0.05)  # let the statement reach the server
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    @transactional
    async def delete_all() -> None:
        await current_session().execute(text("DELETE FROM core_items"))

    await asyncio.wait_for(delete_all(), timeout=2.5)  # not blocked by the cancelled request
    assert await wait_until_released(db.engine) == 0
    assert await committed_tags(db.engine) == []


async def test_http_middleware_functions_around_db_middleware_keep_the_request_transaction(
    db: DatabaseSessionFactory,
) -> None:
    """FastAPI's ``@app.middleware("http")`` is a BaseHTTPMiddleware, which runs everything
    inside it in another task; registered after DbMiddleware it wraps it, so DbMiddleware and
    the route still share one task and one transaction."""
    app = FastAPI()
    app.add_middleware(DbMiddleware, engine=db.engine)

    @app.middleware("http")
    async def timing(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers["x-seen"] = "1"
        return response

    @app.post("/fail")
    async def fail() -> None:
        await service.create("rolled-back")
        raise RuntimeError("after the write")

    @app.post("/ok")
    async def ok() -> dict[str, bool]:
        await service.create("kept")
        return {"in_tx": in_transaction()}

    async with client_for(app) as client:
        assert (await client.post("/fail")).status_code == 500
        response = await client.post("/ok")
    assert response.json() == {"in_tx": True}
    assert response.headers["x-seen"] == "1"
    assert await committed_tags(db.engine) == ["kept"]


async def test_db_middleware_wrapping_a_base_http_middleware_warns(
    db: DatabaseSessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The other order: the route runs in BaseHTTPMiddleware's task, which cannot use the
    request's session; its calls get transactions of their own, and that is said loudly."""
    app = FastAPI()

    @app.middleware("http")
    async def passthrough(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        return response

    app.add_middleware(DbMiddleware, engine=db.engine)

    class Writer:
        @transactional
        async def write(self) -> bool:
            await repo.insert_all([Item(tag="own-transaction")])
            return in_transaction()

    writer = Writer()

    @app.post("/write")
    async def write() -> dict[str, bool]:
        return {"in_request_tx": in_transaction(), "in_own_tx": await writer.write()}

    with caplog.at_level(logging.WARNING, logger="viveka_db"):
        async with client_for(app) as client:
            response = await client.post("/write")
    assert response.json() == {"in_request_tx": False, "in_own_tx": True}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Writer.write" in warnings[0] and "BaseHTTPMiddleware" in warnings[0]
    assert await committed_tags(db.engine) == ["own-transaction"]


async def test_middleware_follows_a_reinitialised_data_source(
    db: DatabaseSessionFactory, backend: str, backend_url: str, tmp_path: Any
) -> None:
    async def write(request: Request) -> Response:
        await repo.insert_all([Item(tag=request.path_params["tag"])])
        return PlainTextResponse(str(current_session().bind.url.database))

    app = Starlette(routes=[Route("/{tag}", write)])
    app.add_middleware(DbMiddleware)  # no engine: whatever the default data source is now
    try:
        async with client_for(app) as client:
            first = await client.get("/first")
            # start-up code (or a test) disposes and initialises the data source again
            await DatabaseSessionFactory.close_all()
            other_url = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
            other = DatabaseSessionFactory({"database": {"url": other_url}})
            await other.create_all([Item])
            second = await client.get("/second")
        assert first.text != second.text
        assert second.text.endswith("other.db")
        assert await committed_tags(other.engine) == ["second"]
    finally:  # the backend's data source again, for the checks and the fixture's clean-up
        await DatabaseSessionFactory.close_all()
        again = DatabaseSessionFactory({"database": {"url": backend_url}})
    assert await committed_tags(again.engine) == ["first"]
