"""@transactional propagation modes, rollback-only and rollback rules, per backend.

SQLite allows one writer at a time and a transaction takes that lock at its first write, so
tests in which a second transaction writes while the first is open let it write before the
first has written (reads take no lock).
"""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tests.core.helpers import add, committed_tags
from tests.core.models import Code, Item, ItemRepo
from viveka_db import (
    DatabaseSessionFactory,
    IllegalTransactionStateError,
    NoSessionError,
    Propagation,
    TransactionRequiredError,
    UnexpectedRollbackError,
    current_session,
    in_transaction,
    transactional,
)

repo = ItemRepo()


# -- REQUIRED -----------------------------------------------------------------------------


async def test_required_joins_the_outer_transaction(db: DatabaseSessionFactory) -> None:
    seen = []

    @transactional
    async def inner() -> None:
        seen.append(current_session())
        await add("inner")

    @transactional
    async def outer() -> None:
        seen.append(current_session())
        await add("outer")
        await inner()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await outer()
    assert seen[0] is seen[1]
    assert await committed_tags(db.engine) == []  # the inner work rolled back with the outer


async def test_required_outermost_commits(db: DatabaseSessionFactory) -> None:
    @transactional
    async def outer() -> None:
        await add("a")
        await repo.insert_all([Item(tag="b")])

    await outer()
    assert await committed_tags(db.engine) == ["a", "b"]
    assert not in_transaction()


# -- REQUIRES_NEW -------------------------------------------------------------------------


async def test_requires_new_survives_outer_rollback_and_resumes_outer(
    db: DatabaseSessionFactory,
) -> None:
    sessions: dict[str, object] = {}

    @transactional(propagation=Propagation.REQUIRES_NEW)
    async def audit() -> None:
        sessions["inner"] = current_session()
        await add("audit")

    @transactional
    async def outer() -> None:
        sessions["before"] = current_session()
        await audit()
        sessions["after"] = current_session()
        await add("outer")
        raise RuntimeError("outer fails")

    with pytest.raises(RuntimeError):
        await outer()
    assert sessions["inner"] is not sessions["before"]
    assert sessions["after"] is sessions["before"]  # the outer one was resumed
    assert await committed_tags(db.engine) == ["audit"]


async def test_requires_new_rollback_leaves_outer_work(db: DatabaseSessionFactory) -> None:
    @transactional(propagation="REQUIRES_NEW")
    async def failing() -> None:
        await add("inner")
        raise ValueError("inner fails")

    @transactional
    async def outer() -> None:
        with pytest.raises(ValueError):
            await failing()
        await add("outer")

    await outer()  # no UnexpectedRollbackError: the inner failure was its own transaction
    assert await committed_tags(db.engine) == ["outer"]


async def test_requires_new_does_not_see_outer_uncommitted_rows(db: DatabaseSessionFactory) -> None:

    @transactional(propagation=Propagation.REQUIRES_NEW)
    async def look() -> list[str]:
        return [str(i.tag) for i in await repo.find_all_by_field("tag", "outer")]

    @transactional
    async def outer() -> list[str]:
        await add("outer")
        return await look()

    assert await outer() == []
    assert await committed_tags(db.engine) == ["outer"]


# -- NESTED -------------------------------------------------------------------------------


async def test_nested_savepoint_rollback_keeps_outer_work(db: DatabaseSessionFactory) -> None:
    @transactional(propagation=Propagation.NESTED)
    async def risky() -> None:
        await add("nested")
        raise ValueError("nested fails")

    @transactional
    async def outer() -> None:
        await add("before")
        with pytest.raises(ValueError):
            await risky()
        await add("after")

    await outer()
    assert await committed_tags(db.engine) == ["after", "before"]


async def test_nested_integrity_error_rolls_back_to_savepoint(db: DatabaseSessionFactory) -> None:
    @transactional(propagation=Propagation.NESTED)
    async def insert_code(code: str) -> None:
        current_session().add(Code(code=code))
        await current_session().flush()

    @transactional
    async def outer() -> list[str]:
        await insert_code("x")
        with pytest.raises(IntegrityError):
            await insert_code("x")
        await insert_code("y")
        return list((await current_session().scalars(select(Code.code).order_by(Code.code))).all())

    assert await outer() == ["x", "y"]
    async with db.engine.connect() as conn:
        assert list((await conn.scalars(select(Code.code).order_by(Code.code))).all()) == ["x", "y"]


async def test_nested_success_commits_with_outer(db: DatabaseSessionFactory) -> None:
    @transactional(propagation=Propagation.NESTED)
    async def nested() -> None:
        await add("nested")

    @transactional
    async def outer() -> None:
        await nested()
        raise RuntimeError("outer fails")

    with pytest.raises(RuntimeError):
        await outer()
    assert await committed_tags(db.engine) == []  # a released savepoint is still the outer's


async def test_nested_without_transaction_starts_one(db: DatabaseSessionFactory) -> None:
    @transactional(propagation=Propagation.NESTED)
    async def work(fail: bool) -> None:
        assert in_transaction()
        await add("fail" if fail else "ok")
        if fail:
            raise RuntimeError

    await work(False)
    with pytest.raises(RuntimeError):
        await work(True)
    assert await committed_tags(db.engine) == ["ok"]


# -- MANDATORY / SUPPORTS / NOT_SUPPORTED / NEVER -----------------------------------------


async def test_mandatory(db: DatabaseSessionFactory) -> None:
    @transactional(propagation=Propagation.MANDATORY)
    async def needs_tx() -> object:
        await add("m")
        return current_session()

    with pytest.raises(TransactionRequiredError, match="MANDATORY"):
        await needs_tx()

    @transactional
    async def outer() -> bool:
        return await needs_tx() is current_session()

    assert await outer()
    assert await committed_tags(db.engine) == ["m"]


async def test_supports_without_transaction_runs_without_one(db: DatabaseSessionFactory) -> None:
    @transactional(propagation=Propagation.SUPPORTS)
    async def maybe() -> None:
        assert not in_transaction()
        with pytest.raises(NoSessionError):
            current_session()
        await repo.insert_all([Item(tag="own-tx")])  # a repository call runs in its own
        raise RuntimeError("after the repository call")

    with pytest.raises(RuntimeError):
        await maybe()
    assert await committed_tags(db.engine) == ["own-tx"]


async def test_supports_inside_transaction_joins(db: DatabaseSessionFactory) -> None:
    @transactional(propagation=Propagation.SUPPORTS)
    async def maybe() -> object:
        await add("joined")
        return current_session()

    @transactional
    async def outer() -> None:
        assert await maybe() is current_session()
        raise RuntimeError

    with pytest.raises(RuntimeError):
        await outer()
    assert await committed_tags(db.engine) == []


async def test_not_supported_suspends_the_transaction(db: DatabaseSessionFactory) -> None:
    @transactional(propagation=Propagation.NOT_SUPPORTED)
    async def outside() -> None:
        assert not in_transaction()
        with pytest.raises(NoSessionError):
            current_session()
        await repo.insert_all([Item(tag="outside")])

    @transactional
    async def outer() -> None:
        before = current_session()
        await outside()
        assert current_session() is before  # resumed
        await add("outer")
        raise RuntimeError

    with pytest.raises(RuntimeError):
        await outer()
    assert await committed_tags(db.engine) == ["outside"]


async def test_never(db: DatabaseSessionFactory) -> None:
    @transactional(propagation=Propagation.NEVER)
    async def never() -> str:
        return "ran"

    assert await never() == "ran"

    @transactional
    async def outer() -> None:
        await never()

    with pytest.raises(IllegalTransactionStateError, match="NEVER"):
        await outer()


# -- rollback-only and rollback rules ------------------------------------------------------


async def test_swallowed_inner_failure_makes_outer_raise_unexpected_rollback(
    db: DatabaseSessionFactory,
) -> None:
    @transactional
    async def inner() -> None:
        await add("inner")
        raise ValueError("inner fails")

    @transactional
    async def outer() -> str:
        await add("outer")
        with contextlib.suppress(ValueError):
            await inner()  # swallowed
        await add("after")
        return "pretends success"

    with pytest.raises(UnexpectedRollbackError, match="rollback-only"):
        await outer()
    assert await committed_tags(db.engine) == []


async def test_swallowed_failure_of_a_repository_call_also_marks_rollback_only(
    db: DatabaseSessionFactory,
) -> None:
    @transactional
    async def outer() -> None:
        await add("outer")
        with contextlib.suppress(ValueError):
            await repo.find_by_field("no_such_field", 1)

    with pytest.raises(UnexpectedRollbackError):
        await outer()
    assert await committed_tags(db.engine) == []


async def test_no_rollback_for_commits_and_reraises(db: DatabaseSessionFactory) -> None:
    @transactional(no_rollback_for=LookupError)
    async def work(exc: Exception) -> None:
        await add(type(exc).__name__)
        raise exc

    with pytest.raises(KeyError):
        await work(KeyError("subclass of LookupError: commit"))
    with pytest.raises(ValueError):
        await work(ValueError("not listed: roll back"))
    assert await committed_tags(db.engine) == ["KeyError"]


async def test_closest_rule_wins(db: DatabaseSessionFactory) -> None:
    @transactional(no_rollback_for=LookupError, rollback_for=KeyError)
    async def work(exc: Exception) -> None:
        await add(type(exc).__name__)
        raise exc

    with pytest.raises(KeyError):
        await work(KeyError())
    with pytest.raises(IndexError):
        await work(IndexError())
    assert await committed_tags(db.engine) == ["IndexError"]


async def test_inner_no_rollback_for_does_not_mark_rollback_only(
    db: DatabaseSessionFactory,
) -> None:
    class Expected(Exception):
        pass

    @transactional(no_rollback_for=Expected)
    async def inner() -> None:
        await add("inner")
        raise Expected

    @transactional
    async def outer() -> None:
        with pytest.raises(Expected):
            await inner()
        await add("outer")

    await outer()
    assert await committed_tags(db.engine) == ["inner", "outer"]


def test_rules_must_be_exception_classes() -> None:
    with pytest.raises(TypeError, match="rollback_for"):
        transactional(rollback_for="ValueError")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="propagation"):
        transactional(propagation="SOMETIMES")
    with pytest.raises(ValueError, match="timeout"):
        transactional(timeout=0)


async def test_nested_that_swallows_its_own_flush_failure_is_rolled_back(
    db: DatabaseSessionFactory,
) -> None:
    @transactional(propagation=Propagation.NESTED)
    async def careless() -> str:
        current_session().add_all([Code(code="dup"), Code(code="dup")])
        with contextlib.suppress(IntegrityError):
            await current_session().flush()
        return "pretends success"

    @transactional
    async def outer() -> None:
        await add("outer")
        with pytest.raises(UnexpectedRollbackError, match="savepoint"):
            await careless()
        await add("after")

    await outer()
    assert await committed_tags(db.engine) == ["after", "outer"]
