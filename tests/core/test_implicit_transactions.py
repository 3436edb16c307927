"""``[database] implicit_transactions``: writes outside every boundary, and the start-up warning.

The motivating case: a POST handler doing two saves in an app without ``DbMiddleware``.
Each save is a transaction of its own, so when the second fails the first stays.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import (
    ConfigurationError,
    DatabaseSessionFactory,
    DbMiddleware,
    DbRepo,
    DuplicateKeyError,
    IntPKMixin,
    NoTransactionError,
    VivekaDbBase,
    entity,
    query,
    table,
    transactional,
)
from viveka_db.integrations.fastapi import (
    SessionDep,
    add_exception_handlers,
    viveka_lifespan,
)


@entity
@table("core_implicit_notes")
class Note(VivekaDbBase, IntPKMixin):
    title: Mapped[str] = mapped_column(String(50), unique=True)


class NoteRepo(DbRepo[Note]):
    async def delete_by_title(self, title: str) -> int: ...

    @query("UPDATE core_implicit_notes SET title = :new WHERE title = :old")
    async def rename(self, old: str, new: str) -> int: ...


notes = NoteRepo()


@pytest.fixture
async def use_policy(
    db: DatabaseSessionFactory, backend_url: str
) -> AsyncIterator[Callable[[str], DatabaseSessionFactory]]:
    """Re-initialise the default data source with ``implicit_transactions = <policy>``."""
    await db.dispose()

    def make(policy: str) -> DatabaseSessionFactory:
        return DatabaseSessionFactory(
            {"database": {"url": backend_url, "implicit_transactions": policy}}
        )

    yield make


async def _titles() -> list[str]:
    @transactional
    async def read() -> list[str]:
        return sorted(n.title for n in await notes.get_all())

    return await read()


async def _post_two(first: str, second: str) -> None:
    """What a handler without a boundary does: two saves, each committing on its own."""
    await notes.save(Note(title=first))
    await notes.save(Note(title=second))


async def test_allow_keeps_the_first_write_when_the_second_fails(
    use_policy: Callable[[str], DatabaseSessionFactory],
) -> None:
    use_policy("allow")
    await notes.save(Note(title="taken"))
    with pytest.raises(DuplicateKeyError):
        await _post_two("first", "taken")
    assert await _titles() == ["first", "taken"]  # the half-done work the docs warn about


async def test_forbid_refuses_every_kind_of_write_before_it_happens(
    use_policy: Callable[[str], DatabaseSessionFactory],
) -> None:
    use_policy("forbid")
    with pytest.raises(NoTransactionError, match=r"NoteRepo.*save.*implicit_transactions"):
        await notes.save(Note(title="lost"))
    with pytest.raises(NoTransactionError):
        await notes.insert_all([Note(title="lost")])
    with pytest.raises(NoTransactionError):
        await notes.delete_by_title("x")  # a derived DELETE
    with pytest.raises(NoTransactionError):
        await notes.rename("a", "b")  # a textual UPDATE through @query
    assert await notes.count() == 0  # reads outside a boundary still run
    assert await notes.get_by_id(1) is None


async def test_forbid_lets_explicit_boundaries_write(
    use_policy: Callable[[str], DatabaseSessionFactory],
) -> None:
    use_policy("forbid")

    @transactional
    async def register() -> None:
        await notes.save(Note(title="a"))
        await notes.save(Note(title="b"))
        await notes.rename("b", "c")

    await register()
    assert await _titles() == ["a", "c"]


async def test_warn_logs_once_per_call_site(
    use_policy: Callable[[str], DatabaseSessionFactory], caplog: pytest.LogCaptureFixture
) -> None:
    use_policy("warn")  # a new initialisation: no call site reported yet
    caplog.set_level(logging.WARNING, logger="viveka_db.transaction")
    for number in range(3):
        await notes.save(Note(title=f"loop {number}"))  # one call site, three calls
    await notes.save(Note(title="elsewhere"))  # another call site
    await notes.count()  # a read: never reported
    warnings = [r for r in caplog.records if "outside any transaction boundary" in r.message]
    assert len(warnings) == 2
    assert all(__file__ in r.getMessage() for r in warnings)  # names the calling line
    assert "NoteRepo.save" in warnings[0].getMessage()
    assert await _titles() == ["elsewhere", "loop 0", "loop 1", "loop 2"]  # still written


async def test_a_bad_policy_names_the_valid_ones(backend_url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"implicit_transactions.*'allow', 'warn' or"):
        DatabaseSessionFactory(
            {"database": {"url": backend_url, "implicit_transactions": "sometimes"}},
            data_source="bad_policy",
        )


def _app(backend_url: str, policy: str, *, middleware: bool) -> FastAPI:
    config = {"database": {"url": backend_url, "implicit_transactions": policy}}
    app = FastAPI(lifespan=viveka_lifespan(config))
    if middleware:
        app.add_middleware(DbMiddleware)
    add_exception_handlers(app)

    @app.post("/pair", status_code=201)
    async def create_pair(first: str, second: str) -> dict[str, str]:
        await _post_two(first, second)
        return {"first": first, "second": second}

    return app


async def _count_titled(title: str) -> int:
    @transactional
    async def count() -> int:
        found = await notes.db.scalar(
            select(func.count()).select_from(Note).where(Note.title == title)
        )
        return int(found or 0)

    return await count()


@pytest.mark.parametrize(
    ("policy", "middleware", "status", "left_behind"),
    [
        ("allow", False, 409, 1),  # the silent half-write
        ("forbid", False, 500, 0),  # refused: NoTransactionError
        ("allow", True, 409, 0),  # one transaction per request: rolled back together
        ("forbid", True, 409, 0),
    ],
)
async def test_post_doing_two_saves(
    db: DatabaseSessionFactory,
    backend_url: str,
    policy: str,
    middleware: bool,
    status: int,
    left_behind: int,
) -> None:
    await db.dispose()
    app = _app(backend_url, policy, middleware=middleware)
    async with LifespanManager(app) as manager:
        await transactional(notes.save)(Note(title="taken"))  # an explicit boundary
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.post("/pair", params={"first": "new", "second": "taken"})
        assert answer.status_code == status
        assert await _count_titled("new") == left_behind
    DatabaseSessionFactory({"database": {"url": backend_url}})  # the db fixture cleans up


@pytest.fixture
async def _sqlite_startup(tmp_path: object) -> AsyncIterator[str]:
    await DatabaseSessionFactory.close_all()
    yield f"sqlite+aiosqlite:///{tmp_path}/wiring.db"
    await DatabaseSessionFactory.close_all()


def _wiring_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "viveka_db.startup"]


async def test_start_up_warns_about_an_app_without_a_request_boundary(
    _sqlite_startup: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="viveka_db.startup")
    async with LifespanManager(_app(_sqlite_startup, "allow", middleware=False)):
        pass
    (warning,) = _wiring_warnings(caplog)
    assert "no DbMiddleware" in warning.getMessage()
    assert "implicit_transactions" in warning.getMessage()


async def test_no_warning_with_the_middleware_or_the_dependency(
    _sqlite_startup: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="viveka_db.startup")
    async with LifespanManager(_app(_sqlite_startup, "allow", middleware=True)):
        pass
    await DatabaseSessionFactory.close_all()

    with_dependency = FastAPI(lifespan=viveka_lifespan({"database": {"url": _sqlite_startup}}))

    @with_dependency.get("/health")
    async def health() -> dict[str, str]:  # a route that needs no database
        return {}

    @with_dependency.post("/notes")
    async def add(title: str, session: SessionDep) -> dict[str, str]:
        session.add(Note(title=title))
        return {}

    async with LifespanManager(with_dependency):
        pass
    assert _wiring_warnings(caplog) == []
