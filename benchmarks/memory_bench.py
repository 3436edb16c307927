"""Issue 6, target 7: memory stays flat and no connection is left checked out.

``CALLS`` HTTP requests through ``DbMiddleware`` (in-process ASGI calls, each request its
own task as a server runs it) and ``CALLS`` background ``@transactional`` calls (half of
them ``read_only=True``), ``CONCURRENCY`` at a time, on PostgreSQL (SQLite when it is down).
Every call opens a transaction scope; every ``SESSION_EVERY``-th also creates its session
(``self.db``) and every ``DB_EVERY``-th reads a row, so scopes, lazily created sessions and
pooled connections are all exercised without the benchmark taking minutes. RSS is
measured after a warm-up and again at the end, each time after a full garbage collection.
Targets: growth under 5 %, 0 connections checked out.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from backends import (
    PG_URL,
    BenchUser,
    BenchUserRepo,
    IdCycle,
    db_config,
    rss_bytes,
    seed_rows,
    server_up,
    sqlite_url,
)
from harness import target_line
from viveka_db import DatabaseSessionFactory, DbMiddleware, transactional

CALLS = 100_000
WARMUP = 5_000
CONCURRENCY = 32
SESSION_EVERY = 4
DB_EVERY = 50
TARGET_GROWTH = 0.05
BODY = b'{"ok":true}'


class Service:
    def __init__(self, repo: BenchUserRepo) -> None:
        self.repo = repo
        self.calls = 0
        self.next_id = IdCycle()

    async def work(self) -> None:
        self.calls += 1
        if self.calls % DB_EVERY == 0:
            await self.repo.get_by_id(self.next_id())
        elif self.calls % SESSION_EVERY == 0:
            _ = self.repo.db  # the session is created, no connection is checked out

    @transactional
    async def background(self) -> None:
        await self.work()

    @transactional(read_only=True)
    async def background_read_only(self) -> None:
        await self.work()


def asgi_app(service: Service) -> Any:
    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        await service.work()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": BODY})

    return DbMiddleware(endpoint)


def http_call(app: Any) -> Callable[[], Awaitable[None]]:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"request failed with {message['status']}")

    async def call() -> None:
        await asyncio.create_task(app(dict(scope), receive, send))  # one task per request

    return call


async def run(op: Callable[[], Awaitable[None]], calls: int) -> float:
    per_task = calls // CONCURRENCY

    async def worker() -> None:
        for _ in range(per_task):
            await op()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return per_task * CONCURRENCY / (time.perf_counter() - start)


def snapshot() -> tuple[int, int]:
    gc.collect()
    return rss_bytes(), len(gc.get_objects())


async def main() -> None:
    url = PG_URL if server_up(PG_URL) else sqlite_url()
    factory = DatabaseSessionFactory(db_config(url))
    await factory.drop_all([BenchUser])
    await factory.create_all([BenchUser])
    repo = BenchUserRepo()
    await repo.insert_all(seed_rows())
    service = Service(repo)
    request = http_call(asgi_app(service))
    flip = [False]

    async def background() -> None:
        flip[0] = not flip[0]
        await (service.background_read_only() if flip[0] else service.background())

    try:
        for op in (request, background):
            await run(op, WARMUP)
        rss0, objects0 = snapshot()
        rates = {
            name: await run(op, CALLS)
            for name, op in (("requests", request), ("background", background))
        }
        rss1, objects1 = snapshot()
        checked_out = factory.engine.pool.checkedout() + factory.read_engine.pool.checkedout()
    finally:
        await factory.drop_all([BenchUser])
        await DatabaseSessionFactory.close_all()
    growth = rss1 / rss0 - 1
    backend = url.split("+")[0]
    print("## Target 7: memory after 100,000 requests and 100,000 background calls\n")
    print(
        f"### {backend}, {CONCURRENCY} concurrent; a session every {SESSION_EVERY} calls, "
        f"a row read every {DB_EVERY}\n"
    )
    print("| measure | value | target |")
    print("|---|---:|---|")
    print(f"| requests through DbMiddleware | {CALLS:,} ({rates['requests']:,.0f}/s) | |")
    print(f"| background @transactional calls | {CALLS:,} ({rates['background']:,.0f}/s) | |")
    print(f"| RSS after warm-up | {rss0 / 2**20:.1f} MiB | |")
    print(f"| RSS at the end | {rss1 / 2**20:.1f} MiB | |")
    verdict = "met" if growth < TARGET_GROWTH else "MISSED"
    print(f"| RSS growth | {growth:+.1%} | < {TARGET_GROWTH:.0%}: {verdict} |")
    print(f"| live Python objects | {objects0:,} → {objects1:,} ({objects1 - objects0:+,}) | |")
    print(
        f"| connections checked out | {checked_out} "
        f"| 0: {'met' if checked_out == 0 else 'MISSED'} |"
    )
    print()
    goal = f"< {TARGET_GROWTH:.0%}"
    print(target_line(f"{backend}: RSS growth", goal, f"{growth:+.1%}", growth < TARGET_GROWTH))
    left = f"{backend}: connections left checked out"
    print(target_line(left, "0", str(checked_out), checked_out == 0))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
