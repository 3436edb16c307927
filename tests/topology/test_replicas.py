"""Read replicas on a real PostgreSQL primary + streaming replica (started by the fixtures)."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest
from sqlalchemy import select, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.topology.models import Note
from tests.topology.servers import PostgresPair
from viveka_db import (
    DatabaseSessionFactory,
    DbMiddleware,
    DbRepo,
    cache_evict,
    cacheable,
    transactional,
)
from viveka_db.cache import current
from viveka_db.cache.current import use_cache
from viveka_db.cache.memory import MemoryCache
from viveka_db.context.db_context import active_scope, current_session

pytestmark = [pytest.mark.topology, pytest.mark.postgresql]


@transactional(read_only=True)
async def served_by_replica() -> bool:
    """Whether this read-only transaction ran on a server in recovery (the replica)."""
    return bool(await current_session().scalar(text("SELECT pg_is_in_recovery()")))


@transactional(read_only=True)
async def read_body(note_id: int) -> str | None:
    return await current_session().scalar(select(Note.body).where(Note.id == note_id))


@transactional
async def write_body(note_id: int, body: str) -> None:
    session = current_session()
    note = await session.get(Note, note_id)
    if note is None:
        session.add(Note(id=note_id, body=body))
    else:
        note.body = body


async def eventually(check: Callable[[], Awaitable[bool]], limit: float = 10.0) -> float:
    """Seconds until ``check()`` holds (fails the test after ``timeout``)."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > limit:
            pytest.fail(f"condition not met within {limit}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def replicated_write(note_id: int, body: str) -> None:
    """Write in another task (its read floor is not ours) and wait until the replica has it."""
    await asyncio.create_task(write_body(note_id, body))

    async def replayed() -> bool:
        return await asyncio.create_task(read_body(note_id)) == body

    await eventually(replayed)


def pause_replay(pair: PostgresPair) -> None:
    pair.psql(pair.replica_port, "select pg_wal_replay_pause()")


def resume_replay(pair: PostgresPair) -> None:
    pair.psql(pair.replica_port, "select pg_wal_replay_resume()")


async def test_read_only_work_runs_on_the_replica_and_reports_its_state(
    replicated: DatabaseSessionFactory, pg_pair: PostgresPair
) -> None:
    assert await served_by_replica()
    await eventually(lambda: _probed(replicated))
    [state] = replicated.replica_states()
    assert state.healthy is True
    assert state.position is not None and state.position > 0
    assert state.last_error is None and state.round_trip_ms is not None
    assert f":{pg_pair.replica_port}/" in state.url


async def _probed(factory: DatabaseSessionFactory) -> bool:
    return factory.replica_states()[0].position is not None


async def test_a_stopped_replica_falls_back_to_the_primary_and_is_readmitted(
    replicated: DatabaseSessionFactory, pg_pair: PostgresPair
) -> None:
    await replicated_write(1, "hello")
    assert await served_by_replica()  # a pooled connection to the replica exists now
    pg_pair.stop_replica()
    try:
        for _ in range(5):  # every read succeeds, on the primary
            assert await read_body(1) == "hello"
            assert not await served_by_replica()
        [state] = replicated.replica_states()
        assert state.healthy is False and state.last_error is not None
    finally:
        pg_pair.start_replica()
    await eventually(served_by_replica)  # re-admitted by itself
    assert replicated.replica_states()[0].healthy is True


async def test_same_task_reads_its_own_write_while_the_replica_lags(
    replicated: DatabaseSessionFactory, pg_pair: PostgresPair
) -> None:
    await replicated_write(1, "old")
    pause_replay(pg_pair)
    await write_body(1, "new")
    assert await read_body(1) == "new"  # this task wrote: primary (or a caught-up replica)
    # a task that never saw this write still reads the lagging replica
    assert await asyncio.create_task(read_body(1), context=contextvars.Context()) == "old"
    resume_replay(pg_pair)


def _app() -> Starlette:
    async def get(request: Request) -> JSONResponse:
        note_id = int(request.path_params["note_id"])
        return JSONResponse(
            {"body": await read_body(note_id), "replica": await served_by_replica()}
        )

    async def post(request: Request) -> JSONResponse:
        note_id = int(request.path_params["note_id"])
        await write_body(note_id, (await request.json())["body"])
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[
            Route("/notes/{note_id:int}", get, methods=["GET"]),
            Route("/notes/{note_id:int}", post, methods=["POST"]),
        ]
    )
    app.add_middleware(DbMiddleware, read_only_methods=["GET"])
    return app


async def test_a_later_request_of_the_same_client_reads_its_write(
    replicated: DatabaseSessionFactory, pg_pair: PostgresPair
) -> None:
    await replicated_write(1, "old")
    app = _app()
    pause_replay(pg_pair)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://test") as writer,
        httpx.AsyncClient(transport=transport, base_url="http://test") as other,
    ):
        posted = await writer.post("/notes/1", json={"body": "new"})
        assert posted.status_code == 200
        assert "viveka_ryw" in posted.cookies
        token = posted.headers["x-viveka-ryw"]

        mine = (await writer.get("/notes/1")).json()
        assert mine == {"body": "new", "replica": False}
        assert (await other.get("/notes/1")).json() == {"body": "old", "replica": True}
        # the header works for clients without cookies; a forged token is ignored
        by_header = await other.get("/notes/1", headers={"x-viveka-ryw": token})
        assert by_header.json()["body"] == "new"
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        assert (await other.get("/notes/1", headers={"x-viveka-ryw": forged})).json()[
            "body"
        ] == "old"

        resume_replay(pg_pair)

        async def back_on_the_replica() -> bool:
            return (await writer.get("/notes/1")).json() == {"body": "new", "replica": True}

        await eventually(back_on_the_replica)  # proven to have replayed it: the replica


async def test_a_token_expires_after_the_window(
    pg_pair: PostgresPair, replicated: DatabaseSessionFactory
) -> None:
    from viveka_db.replicas.consistency import ReadFloor, _Signer

    signer = _Signer("k")
    token = signer.dumps(ReadFloor(5, time.time() + 0.05))
    assert signer.loads(token, time.time()) == ReadFloor(5, pytest.approx(time.time(), abs=1))
    assert signer.loads(token, time.time() + 1) is None
    assert _Signer("other").loads(token, time.time()) is None


def fresh(coro: Awaitable[object]) -> asyncio.Task[object]:
    """Run ``coro`` as a task that has seen no write (another client, say)."""
    return asyncio.create_task(coro, context=contextvars.Context())  # type: ignore[arg-type]


class NoteService:
    @cacheable("topo_note", ttl=600)
    @transactional(read_only=True)
    async def body(self, note_id: int) -> str | None:
        return await current_session().scalar(select(Note.body).where(Note.id == note_id))

    @cache_evict("topo_note")
    @transactional
    async def update(self, note_id: int, body: str) -> None:
        note = await current_session().get(Note, note_id)
        assert note is not None
        note.body = body

    @transactional(read_only=True)
    async def on_replica_then_body(self, note_id: int) -> tuple[bool, str | None]:
        replica = bool(await current_session().scalar(text("SELECT pg_is_in_recovery()")))
        return replica, await self.body(note_id)


@pytest.fixture
def memory_cache() -> Iterator[MemoryCache]:
    cache = MemoryCache()
    previous = (current._current, current._explicit)
    use_cache(cache)
    try:
        yield cache
    finally:
        current._current, current._explicit = previous


async def test_a_cache_fill_never_stores_a_value_older_than_the_eviction(
    replicated: DatabaseSessionFactory, pg_pair: PostgresPair, memory_cache: MemoryCache
) -> None:
    service = NoteService()
    await replicated_write(1, "old")
    assert await fresh(service.body(1)) == "old"
    pause_replay(pg_pair)
    await fresh(service.update(1, "new"))  # commits on the primary, then evicts
    assert await fresh(read_body(1)) == "old"  # the replica really lags
    assert await fresh(service.body(1)) == "new"  # the miss loaded from the primary
    assert await fresh(service.body(1)) == "new"
    assert memory_cache.stats().hits >= 1


async def test_a_value_read_in_a_replica_transaction_is_not_cached(
    replicated: DatabaseSessionFactory, pg_pair: PostgresPair, memory_cache: MemoryCache
) -> None:
    service = NoteService()
    await replicated_write(1, "old")
    pause_replay(pg_pair)
    await fresh(service.update(1, "new"))
    # a transaction already on the (lagging) replica reads the old value ...
    assert await fresh(service.on_replica_then_body(1)) == (True, "old")
    # ... which was not cached: the next caller gets the primary's
    assert await fresh(service.body(1)) == "new"


async def test_a_read_only_stream_runs_on_the_replica_and_leaves_nothing_behind(
    replicated: DatabaseSessionFactory, pg_pair: PostgresPair
) -> None:
    from sqlalchemy import literal_column

    from viveka_db import DbRepo

    notes = DbRepo(Note)

    @transactional
    async def write_many() -> None:
        current_session().add_all(Note(id=i, body=f"b{i}") for i in range(1, 31))

    await asyncio.create_task(write_many())  # another task: its read floor is not ours

    @transactional(read_only=True)
    async def streamed() -> tuple[bool, list[int]]:
        on_replica = bool(await current_session().scalar(text("SELECT pg_is_in_recovery()")))
        return on_replica, [note.id async for note in notes.stream(chunk_size=7)]

    async def replayed() -> bool:
        return len((await asyncio.create_task(streamed()))[1]) == 30

    await eventually(replayed)
    assert await streamed() == (True, list(range(1, 31)))

    @transactional(read_only=True)
    async def broken() -> None:
        async for _note in notes.stream(select(Note).where(literal_column("nope") == 1)):
            pass

    with pytest.raises(Exception, match="nope"):
        await broken()
    assert replicated.read_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    # no backend of the replica is left inside the stream's transaction block
    left = (
        "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' "
        "AND query LIKE '%topo_note%'"
    )
    assert pg_pair.psql(pg_pair.replica_port, left) == "0"


class NoteRepo(DbRepo[Note]):
    pass


@transactional(read_only=True)
async def get_body(note_id: int) -> tuple[str | None, bool]:
    """``get_by_id`` in a read-only transaction, and whether it needed a session."""
    note = await NoteRepo().get_by_id(note_id)
    scope = active_scope()
    assert scope is not None
    return (None if note is None else note.body), scope.has_session


async def test_a_read_by_key_without_a_session_honours_replicas_and_read_your_writes(
    replicated: DatabaseSessionFactory, pg_pair: PostgresPair
) -> None:
    await replicated_write(1, "old")
    pause_replay(pg_pair)
    try:
        await write_body(1, "new")
        assert await get_body(1) == ("new", False)  # this task wrote: not the lagging replica
        other = asyncio.create_task(get_body(1), context=contextvars.Context())
        assert await other == ("old", False)  # the replica, without a session
    finally:
        resume_replay(pg_pair)
