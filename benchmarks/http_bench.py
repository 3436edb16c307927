"""Issue 6, target 2: HTTP through ``DbMiddleware`` vs hand-written and BaseHTTPMiddleware sessions.

Each arm is its own uvicorn process (1 worker) serving ``GET /users/{id}`` from a tiny
FastAPI app on 127.0.0.1 backed by PostgreSQL; this process is the load generator: a
keep-alive raw-socket HTTP/1.1 client with ``CONNECTIONS`` connections per server. Rounds
are interleaved across the servers (idle servers cost nothing).

* ``session in endpoint``  ``async with Session() as s, s.begin(): await s.get(...)`` (reference);
* ``DbMiddleware``          pure ASGI middleware; ``repo.get_by_id`` joins its transaction;
* ``BaseHTTPMiddleware``    a session middleware built on Starlette's ``BaseHTTPMiddleware``
                            (like fastapi-async-sqlalchemy), the endpoint using its session;
* ``DbMiddleware read-only GET``  ``DbMiddleware(read_only_methods=("GET", "HEAD"))``: GETs
                            run on the autocommit read engine (one round trip, no BEGIN/COMMIT);
* ``raw asyncpg``           the endpoint calls an asyncpg pool's ``fetchrow`` (no ORM at all);
* ``fastapi-async-sqlalchemy``  its ``SQLAlchemyMiddleware`` and ``db.session`` (only when that
                            package is installed; otherwise the arm and its target are skipped).

Targets: ``DbMiddleware`` >= 1.0x the reference and >= 1.3x fastapi-async-sqlalchemy; the
read-only GET >= 0.6x raw asyncpg. ``BaseHTTPMiddleware`` is reported for orientation.
The uvicorn modules are whatever is installed (no uvloop/httptools unless present).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from backends import (
    PG_URL,
    POOL_SIZE,
    BenchUser,
    BenchUserRepo,
    IdCycle,
    db_config,
    engine_options,
    raw_asyncpg_pool,
    seed_rows,
    server_up,
)
from harness import format_table, run_interleaved, target_line
from viveka_db import DatabaseSessionFactory, DbMiddleware

CONNECTIONS = 64
SECONDS_PER_RUN = 0.6
ROUNDS = 13
READ_ONLY_ARM = "DbMiddleware read-only GET"
RAW_ARM = "raw asyncpg"
FASTAPI_ASYNC_SQLALCHEMY = "fastapi-async-sqlalchemy"
HAS_FASTAPI_ASYNC_SQLALCHEMY = importlib.util.find_spec("fastapi_async_sqlalchemy") is not None
ARMS = (
    "session in endpoint",
    "DbMiddleware",
    "BaseHTTPMiddleware",
    READ_ONLY_ARM,
    RAW_ARM,
    *((FASTAPI_ASYNC_SQLALCHEMY,) if HAS_FASTAPI_ASYNC_SQLALCHEMY else ()),
)
REFERENCE = ARMS[0]
ARM_ENV = "VIVEKA_BENCH_ARM"

# -- the server side (imported by uvicorn in each arm's process) ---------------------------

request_session: ContextVar[AsyncSession | None] = ContextVar("bench_request_session", default=None)
"""The BaseHTTPMiddleware arm's per-request session."""


class BaseHTTPSessionMiddleware(BaseHTTPMiddleware):
    """A session per request on ``BaseHTTPMiddleware`` (the fastapi-async-sqlalchemy design)."""

    def __init__(self, app: Any, session_maker: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(app)
        self.session_maker = session_maker

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        async with self.session_maker() as session, session.begin():
            token = request_session.set(session)
            try:
                return await call_next(request)
            finally:
                request_session.reset(token)


def as_json(user: BenchUser | None) -> JSONResponse:
    if user is None:
        return JSONResponse({"detail": "not found"}, status_code=404)
    return JSONResponse({"id": user.id, "name": user.name, "email": user.email})


def create_app() -> FastAPI:
    """The app of the arm named by ``$VIVEKA_BENCH_ARM`` (``uvicorn --factory``)."""
    arm = os.environ[ARM_ENV]
    app = FastAPI()
    if arm in ("DbMiddleware", READ_ONLY_ARM):
        DatabaseSessionFactory(db_config(PG_URL))
        repo = BenchUserRepo()
        if arm == READ_ONLY_ARM:
            app.add_middleware(DbMiddleware, read_only_methods=("GET", "HEAD"))
        else:
            app.add_middleware(DbMiddleware)

        @app.get("/users/{user_id}")
        async def via_middleware(user_id: int) -> Response:
            return as_json(await repo.get_by_id(user_id))

        return app
    if arm == RAW_ARM:
        return raw_app(app)
    if arm == FASTAPI_ASYNC_SQLALCHEMY:
        return fastapi_async_sqlalchemy_app(app)
    session_maker = async_sessionmaker(
        create_async_engine(PG_URL, **engine_options()), expire_on_commit=False
    )
    if arm == "BaseHTTPMiddleware":
        app.add_middleware(BaseHTTPSessionMiddleware, session_maker=session_maker)

        @app.get("/users/{user_id}")
        async def via_base_http(user_id: int) -> Response:
            session = request_session.get()
            assert session is not None
            return as_json(await session.get(BenchUser, user_id))

        return app

    @app.get("/users/{user_id}")
    async def in_endpoint(user_id: int) -> Response:
        async with session_maker() as session, session.begin():
            return as_json(await session.get(BenchUser, user_id))

    return app


def raw_app(app: FastAPI) -> FastAPI:
    """The driver alone: an asyncpg pool of ``POOL_SIZE`` connections, one ``fetchrow``."""

    url = make_url(PG_URL)
    pools: list[Any] = []

    @app.get("/users/{user_id}")
    async def raw(user_id: int) -> Response:
        if not pools:
            pools.append(await raw_asyncpg_pool(url, POOL_SIZE))
        row = await pools[0].fetchrow(
            "SELECT id, name, email FROM bench_users WHERE id = $1", user_id
        )
        if row is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return JSONResponse({"id": row[0], "name": row[1], "email": row[2]})

    return app


def fastapi_async_sqlalchemy_app(app: FastAPI) -> FastAPI:
    """fastapi-async-sqlalchemy's middleware (a session per request, committed on exit)."""
    from fastapi_async_sqlalchemy import SQLAlchemyMiddleware, db  # type: ignore[import-not-found]

    app.add_middleware(
        SQLAlchemyMiddleware,
        db_url=PG_URL,
        engine_args=engine_options(),
        session_args={"expire_on_commit": False},
        commit_on_exit=True,
    )

    @app.get("/users/{user_id}")
    async def via_package(user_id: int) -> Response:
        return as_json(await db.session.get(BenchUser, user_id))

    return app


# -- the load generator --------------------------------------------------------------------

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(arm: str, port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "http_bench:create_app",
        "--app-dir",
        str(Path(__file__).parent),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-keep-alive",
        "600",
    ]
    return subprocess.Popen(command, env={**os.environ, ARM_ENV: arm})


async def request(streams: Streams, path: bytes) -> int:
    reader, writer = streams
    writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    start = head.lower().index(b"content-length:") + 15
    await reader.readexactly(int(head[start : head.index(b"\r\n", start)]))
    return int(head[9:12])


async def connect(port: int, deadline: float) -> Streams:
    while True:
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def load_op(pool: deque[Streams], next_id: IdCycle) -> Callable[[], Awaitable[None]]:
    """One request on an idle keep-alive connection (there is one per concurrent worker)."""

    async def op() -> None:
        streams = pool.pop()
        status = await request(streams, b"/users/%d" % next_id())
        if status != 200:
            raise RuntimeError(f"server answered {status}")
        pool.append(streams)

    return op


async def run_load() -> None:
    ports = {arm: free_port() for arm in ARMS}
    servers = [start_server(arm, port) for arm, port in ports.items()]
    next_id = IdCycle()
    try:
        deadline = time.monotonic() + 120  # five servers start at once on a busy machine
        arms = {}
        for arm, port in ports.items():
            pool = deque([await connect(port, deadline) for _ in range(CONNECTIONS)])
            arms[arm] = load_op(pool, next_id)
            await arms[arm]()
        probe_start = time.perf_counter()
        await asyncio.gather(*(arms[REFERENCE]() for _ in range(CONNECTIONS)))
        for _ in range(4):
            await asyncio.gather(*(arms[REFERENCE]() for _ in range(CONNECTIONS)))
        rate = 5 * CONNECTIONS / (time.perf_counter() - probe_start)
        ops = max(int(rate * SECONDS_PER_RUN), CONNECTIONS * 4)
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        results = await run_interleaved(arms, ops=ops, rounds=ROUNDS, concurrency=CONNECTIONS)
        load_cpu = (time.process_time() - cpu_start) / (time.perf_counter() - wall_start)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=10)
    title = f"PostgreSQL: GET /users/{{id}}, uvicorn 1 worker, {CONNECTIONS} keep-alive connections"
    print(format_table(title, results, REFERENCE, unit="req/s"))
    by_name = {r.name: r.median for r in results}
    targets = [
        ("DbMiddleware vs a session in the endpoint", "DbMiddleware", REFERENCE, 1.0),
        ("DbMiddleware read-only GET vs raw asyncpg", READ_ONLY_ARM, RAW_ARM, 0.6),
    ]
    if HAS_FASTAPI_ASYNC_SQLALCHEMY:
        targets.append(
            (
                "DbMiddleware vs fastapi-async-sqlalchemy",
                "DbMiddleware",
                FASTAPI_ASYNC_SQLALCHEMY,
                1.3,
            )
        )
    else:
        print("fastapi-async-sqlalchemy is not installed: its arm and target are skipped.\n")
        print(target_line("DbMiddleware vs fastapi-async-sqlalchemy", ">= 1.3x", "skipped", None))
    for name, arm, reference, goal in targets:
        ratio = by_name[arm] / by_name[reference]
        print(f"{name}: {ratio:.2f}x (target >= {goal:g}x)")
        print(target_line(name, f">= {goal:g}x", f"{ratio:.2f}x", ratio >= goal))
    ratio = by_name["DbMiddleware"] / by_name["BaseHTTPMiddleware"]
    print(f"DbMiddleware vs BaseHTTPMiddleware: {ratio:.2f}x (orientation)\n")
    print(
        f"Load generator used {load_cpu:.0%} of a core on a {os.cpu_count()}-core machine "
        "(server, PostgreSQL and load generator share the cores).\n"
    )


async def main() -> None:
    print("## Target 2: HTTP through DbMiddleware\n")
    if not server_up(PG_URL):
        print("_skipped: PostgreSQL is not reachable_\n")
        return
    factory = DatabaseSessionFactory(db_config(PG_URL))
    await factory.drop_all([BenchUser])
    await factory.create_all([BenchUser])
    await BenchUserRepo().insert_all(seed_rows())
    try:
        await run_load()
    finally:
        await factory.drop_all([BenchUser])
        await DatabaseSessionFactory.close_all()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
