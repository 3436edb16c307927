"""Database errors leave repository methods and boundaries mapped per dialect.

Each violation is provoked for real on every backend, through a repository method, through
the COMMIT of a ``@transactional`` call and through an HTTP request, and must arrive as the
right :mod:`viveka_db.errors` class that is still the SQLAlchemy class it replaces, with the
constraint's columns, and with no bound value in its message.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.core.error_models import (
    CHECK_AGE,
    FK_ORG,
    UNIQUE_EMAIL,
    Member,
    MemberRepo,
    Note,
    NoteRepo,
    Org,
)
from tests.core.models import Child
from viveka_db import (
    CheckViolationError,
    ConstraintViolationError,
    DatabaseSessionFactory,
    DuplicateKeyError,
    ForeignKeyViolationError,
    NotNullViolationError,
    OptimisticLockError,
    Propagation,
    current_session,
    transactional,
)
from viveka_db.middleware.db_middleware import DbMiddleware

SECRET = "s3cr3t-Value-4711@example.com"
members = MemberRepo()
notes = NoteRepo()


async def seed() -> None:
    """One organisation and one member holding the secret e-mail address."""
    await members.insert_all([Member(id=1, email=SECRET, name=SECRET)])


def duplicate() -> Member:
    return Member(id=2, email=SECRET, name="second")


def dangling() -> Member:
    return Member(id=3, email="fk@example.com", name=SECRET, org_id=987654)


def nameless() -> Member:
    return Member(id=4, email=SECRET + ".nn", name=None)


def negative() -> Member:
    return Member(id=5, email=SECRET + ".ck", name=SECRET, age=-4711)


CASES: dict[str, tuple[Callable[[], Member], type[ConstraintViolationError], tuple[str, ...]]] = {
    "duplicate": (duplicate, DuplicateKeyError, ("email",)),
    "foreign_key": (dangling, ForeignKeyViolationError, ("org_id",)),
    "not_null": (nameless, NotNullViolationError, ("name",)),
}
CONSTRAINTS = {"duplicate": UNIQUE_EMAIL, "foreign_key": FK_ORG}


def assert_mapped(error: BaseException, case: str, backend: str, *, chained: bool = True) -> None:
    """The class, the SQLAlchemy class, the columns and constraint, and no value anywhere."""
    _, family, columns = CASES[case]
    assert isinstance(error, family), repr(error)
    assert isinstance(error, IntegrityError)  # existing `except IntegrityError` still works
    assert error.columns == columns
    expected = CONSTRAINTS.get(case)
    if expected is not None and backend == "sqlite" and case == "duplicate":
        # SQLite names only the columns; the name is looked up in the statement's table
        # metadata, which a full CI run once did not reach (see the closing note of issue 9)
        assert error.constraint in (expected, None)
    elif expected is not None:
        assert error.constraint == expected
    if case == "not_null":
        assert error.constraint is None  # a NOT NULL column has no constraint name to report
    assert error.table == "core_err_users"
    assert error.orig is not None
    if chained:
        assert error.__cause__ is error.orig
    for rendered in (str(error), repr(error), "".join(map(str, error.args))):
        assert SECRET not in rendered and "4711" not in rendered


@pytest.fixture
async def seeded(db: DatabaseSessionFactory) -> DatabaseSessionFactory:
    await seed()
    return db


# -- through a repository method -----------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
async def test_repository_method_raises_mapped_errors(
    seeded: DatabaseSessionFactory, backend: str, case: str
) -> None:
    make = CASES[case][0]
    with pytest.raises(ConstraintViolationError) as caught:
        await members.insert_all([make()])
    assert_mapped(caught.value, case, backend)


@pytest.mark.parametrize("case", list(CASES))
async def test_repository_method_joined_in_a_transaction_raises_mapped_errors(
    seeded: DatabaseSessionFactory, backend: str, case: str
) -> None:
    seen: list[BaseException] = []

    @transactional
    async def work() -> None:
        try:
            await members.save(CASES[case][0]())
        except IntegrityError as exc:  # the documented pre-mapping handler still catches it
            seen.append(exc)
            raise

    with pytest.raises(IntegrityError):
        await work()
    assert_mapped(seen[0], case, backend)


async def test_duplicate_primary_key_names_the_key_columns(
    seeded: DatabaseSessionFactory, backend: str
) -> None:
    @transactional
    async def add_again() -> None:
        current_session().add(Member(id=1, email="other@example.com", name="other"))

    with pytest.raises(DuplicateKeyError) as caught:
        await add_again()
    assert caught.value.columns == ("id",)
    assert caught.value.constraint in ("pk_core_err_users", "PRIMARY")  # MySQL's own name


async def test_check_violation_names_its_constraint(
    seeded: DatabaseSessionFactory, backend: str
) -> None:
    with pytest.raises(CheckViolationError) as caught:
        await members.insert_all([negative()])
    error = caught.value
    assert error.constraint == CHECK_AGE
    assert isinstance(error, IntegrityError)  # even where MariaDB raises OperationalError
    assert SECRET not in str(error) and "4711" not in str(error)


async def test_upsert_fail_policy_raises_duplicate_key(
    seeded: DatabaseSessionFactory, backend: str
) -> None:
    with pytest.raises(DuplicateKeyError) as caught:
        await members.upsert_all([{"id": 9, "email": SECRET, "name": "x"}], on_conflict="fail")
    assert caught.value.columns == ("email",)


# -- through the COMMIT of a @transactional call ---------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
async def test_transactional_commit_raises_mapped_errors(
    seeded: DatabaseSessionFactory, backend: str, case: str
) -> None:
    @transactional
    async def add_without_flush() -> None:
        current_session().add(CASES[case][0]())  # written by the flush inside COMMIT

    with pytest.raises(ConstraintViolationError) as caught:
        await add_without_flush()
    assert_mapped(caught.value, case, backend)
    assert [m.id for m in await members.get_all()] == [1]


async def test_deferred_foreign_key_fails_at_commit_mapped(
    seeded: DatabaseSessionFactory, backend: str
) -> None:
    if backend == "mariadb":
        pytest.skip("MariaDB has no deferred constraints")

    @transactional
    async def orphan() -> None:
        session = current_session()
        session.add(Child(id=1, parent_id=424242))
        await session.flush()  # accepted: the check waits for COMMIT

    with pytest.raises(ForeignKeyViolationError) as caught:
        await orphan()
    assert isinstance(caught.value, IntegrityError)
    assert "424242" not in str(caught.value)


# -- through an HTTP request ----------------------------------------------------------------


def member_app(db: DatabaseSessionFactory, case: str) -> Starlette:
    make = CASES[case][0]

    async def via_repository(request: Request) -> Response:
        try:
            await members.insert_all([make()])
        except ConstraintViolationError as exc:
            return JSONResponse(
                {"type": type(exc).__name__, "columns": list(exc.columns), "text": str(exc)},
                status_code=409,
            )
        return PlainTextResponse("inserted")

    async def via_commit(request: Request) -> Response:
        current_session().add(make())  # fails at the COMMIT when the response starts
        return PlainTextResponse("accepted")

    app = Starlette(routes=[Route("/repo", via_repository), Route("/commit", via_commit)])
    app.add_middleware(DbMiddleware, engine=db.engine)
    return app


def client_for(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.mark.parametrize("case", list(CASES))
async def test_request_sees_mapped_errors_from_repository_methods(
    seeded: DatabaseSessionFactory, backend: str, case: str
) -> None:
    async with client_for(member_app(seeded, case)) as client:
        response = await client.get("/repo")
    assert response.status_code == 409
    body = response.json()
    assert body["type"] == CASES[case][1].__name__
    assert tuple(body["columns"]) == CASES[case][2]
    assert SECRET not in body["text"]


@pytest.mark.parametrize("case", list(CASES))
async def test_commit_failure_at_response_start_is_a_500_logged_mapped(
    seeded: DatabaseSessionFactory, backend: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="viveka_db.middleware"):
        async with client_for(member_app(seeded, case)) as client:
            response = await client.get("/commit")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    records = [r for r in caplog.records if r.name == "viveka_db.middleware"]
    assert records and records[0].exc_info is not None
    logged = records[0].exc_info[1]
    assert logged is not None
    assert_mapped(logged, case, backend, chained=False)  # the driver's text holds the values
    assert SECRET not in caplog.text
    assert [m.id for m in await members.get_all()] == [1]


# -- optimistic locking detected at COMMIT ---------------------------------------------------


@transactional(propagation=Propagation.REQUIRES_NEW)
async def edit_concurrently(note_id: int) -> None:
    """Another transaction changes the note and commits (its version moves on)."""
    loaded = await notes.get_by_id(note_id)
    assert loaded is not None
    loaded.title = "theirs"


async def test_version_conflict_at_commit_raises_optimistic_lock_error(
    db: DatabaseSessionFactory,
) -> None:
    note = (await notes.insert_all([Note(title="first")]))[0]

    @transactional
    async def stale_edit() -> None:
        mine = await notes.get_by_id(note.id)
        assert mine is not None
        await edit_concurrently(note.id)  # another transaction commits version 2 meanwhile
        mine.title = "mine"  # no flush here: the UPDATE ... WHERE version = 1 runs in COMMIT

    with pytest.raises(OptimisticLockError) as caught:
        await stale_edit()
    error = caught.value
    assert isinstance(error, StaleDataError)
    assert error.entity is Note
    assert error.ident == note.id
    stored = await notes.get_by_id(note.id)
    assert stored is not None and stored.title == "theirs"


async def test_version_conflict_on_delete_at_commit(db: DatabaseSessionFactory) -> None:
    note = (await notes.insert_all([Note(title="first")]))[0]

    @transactional
    async def stale_delete() -> None:
        mine = await notes.get_by_id(note.id)
        await edit_concurrently(note.id)
        await current_session().delete(mine)

    with pytest.raises(OptimisticLockError) as caught:
        await stale_delete()
    assert caught.value.entity is Note


async def test_version_conflict_among_several_pending_names_the_class_only(
    db: DatabaseSessionFactory,
) -> None:
    first, second = await notes.insert_all([Note(title="one"), Note(title="two")])

    @transactional
    async def edit_both() -> None:
        mine = [await notes.get_by_id(first.id), await notes.get_by_id(second.id)]
        await edit_concurrently(second.id)
        for note in mine:
            assert note is not None
            note.title = "mine"

    with pytest.raises(OptimisticLockError) as caught:
        await edit_both()
    assert caught.value.entity is Note
    assert caught.value.ident is None  # which of the two is not known: no guess


# -- the mapped classes themselves ------------------------------------------------------------


async def test_mapped_errors_pickle_as_their_family(seeded: DatabaseSessionFactory) -> None:
    with pytest.raises(DuplicateKeyError) as caught:
        await members.insert_all([duplicate()])
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is DuplicateKeyError
    assert copy.columns == ("email",)
    assert str(copy) == str(caught.value)


async def test_unmapped_errors_pass_through_unchanged(db: DatabaseSessionFactory) -> None:
    @transactional
    async def bad_sql() -> None:
        await current_session().execute(text("SELEC 1"))  # a syntax error

    with pytest.raises(Exception) as caught:
        await bad_sql()
    assert not isinstance(caught.value, ConstraintViolationError)
    assert type(caught.value).__module__.startswith("sqlalchemy")


async def test_raw_connection_errors_are_mapped_too(
    seeded: DatabaseSessionFactory, backend: str
) -> None:
    async with seeded.engine.connect() as conn:
        with pytest.raises(DuplicateKeyError) as caught:
            await conn.execute(
                text("INSERT INTO core_err_users (id, email, name, age) VALUES (7, :e, 'x', 0)"),
                {"e": SECRET},
            )
        with contextlib.suppress(Exception):
            await conn.rollback()
    assert SECRET not in str(caught.value)
    assert caught.value.constraint in (UNIQUE_EMAIL, None)
    assert isinstance(caught.value, IntegrityError)
    assert not isinstance(caught.value, OperationalError)
    assert (await members.count(select(Member))) == 1 or backend == "sqlite"
    _ = Org
