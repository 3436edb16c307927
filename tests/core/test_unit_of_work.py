"""The one transaction boundary: rollback-only on every join path, the three
hook phases on every ending, retries only where the transaction started."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.core.helpers import add, committed_tags, wait_until_released
from tests.core.models import Item, ItemRepo
from viveka_db import (
    DatabaseSessionFactory,
    DbMiddleware,
    DeadlockError,
    Propagation,
    SerializationFailureError,
    UnexpectedRollbackError,
    after_commit,
    after_completion,
    after_rollback,
    transactional,
)
from viveka_db.context.scope import TransactionScope
from viveka_db.integrations.request_session import unit_of_work
from viveka_db.transaction import retry as retry_module

repo = ItemRepo()


class Journal:
    """Records every hook phase, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def register(self, label: str = "") -> None:
        after_commit(lambda: self.events.append(f"commit{label}"))
        after_rollback(lambda: self.events.append(f"rollback{label}"))
        after_completion(lambda status: self.events.append(f"completion{label}:{status}"))


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry_module, "BACKOFF_MULTIPLIER", 0.001)


@transactional
async def failing_inner() -> None:
    raise ValueError("inner")


def serialization_failure() -> SerializationFailureError:
    return SerializationFailureError("could not serialize access (simulated)")


# -- rollback-only through every join path --------------------------------------------------


@pytest.mark.parametrize("join_timeout", [None, 5.0], ids=["plain-join", "join-with-timeout"])
async def test_swallowed_failure_in_a_joined_call_rolls_the_outer_back(
    db: DatabaseSessionFactory, join_timeout: float | None
) -> None:
    @transactional(timeout=join_timeout)
    async def inner() -> None:
        await add("inner")
        raise ValueError("inner failed")

    @transactional
    async def outer() -> None:
        await add("outer")
        with contextlib.suppress(ValueError):
            await inner()

    journal = Journal()

    @transactional
    async def top() -> None:
        journal.register()
        await outer()

    with pytest.raises(UnexpectedRollbackError):
        await top()
    assert await committed_tags(db.engine) == []
    assert journal.events == ["rollback", "completion:rolled_back"]


async def test_joined_call_with_timeout_that_times_out_marks_rollback_only(
    db: DatabaseSessionFactory,
) -> None:
    @transactional(timeout=0.05)
    async def slow() -> None:
        await add("slow")
        await asyncio.sleep(5)

    @transactional
    async def outer() -> None:
        await add("outer")
        with contextlib.suppress(TimeoutError):
            await slow()

    with pytest.raises(UnexpectedRollbackError):
        await outer()
    assert await committed_tags(db.engine) == []


# -- hook phases -----------------------------------------------------------------------------


async def test_commit_runs_after_commit_then_after_completion(db: DatabaseSessionFactory) -> None:
    journal = Journal()

    @transactional
    async def work() -> None:
        journal.register()
        await add("a")
        assert journal.events == []  # nothing runs before the outcome is final

    await work()
    assert journal.events == ["commit", "completion:committed"]
    assert await committed_tags(db.engine) == ["a"]


async def test_failure_runs_after_rollback_then_after_completion(
    db: DatabaseSessionFactory,
) -> None:
    journal = Journal()

    @transactional
    async def work() -> None:
        journal.register()
        await add("a")
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await work()
    assert journal.events == ["rollback", "completion:rolled_back"]
    assert await committed_tags(db.engine) == []


async def test_a_hook_that_raises_neither_undoes_the_commit_nor_skips_the_others(
    db: DatabaseSessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def broken(*_: Any) -> None:
        raise RuntimeError("hook broke")

    async def async_hook() -> None:
        seen.append("async")

    @transactional
    async def work() -> str:
        after_commit(broken)
        after_commit(async_hook)
        after_completion(broken)
        after_completion(lambda status: seen.append(status))
        await add("kept")
        return "done"

    with caplog.at_level(logging.ERROR, logger="viveka_db.transaction"):
        assert await work() == "done"
    assert seen == ["async", "committed"]
    assert await committed_tags(db.engine) == ["kept"]
    failures = [r for r in caplog.records if "callback" in r.getMessage()]
    assert [r.getMessage().split()[0] for r in failures] == ["after-commit", "after-completion"]


async def test_failed_rollback_hook_does_not_hide_the_original_error(
    db: DatabaseSessionFactory,
) -> None:
    def broken() -> None:
        raise RuntimeError("hook broke")

    @transactional
    async def work() -> None:
        after_rollback(broken)
        raise LookupError("the real error")

    with pytest.raises(LookupError, match="the real error"):
        await work()


async def test_savepoint_rollback_discards_its_after_commit_hooks_only(
    db: DatabaseSessionFactory,
) -> None:
    journal = Journal()

    @transactional(propagation=Propagation.NESTED)
    async def nested() -> None:
        journal.register("-nested")
        await add("nested")
        raise ValueError("undo the savepoint")

    @transactional
    async def outer() -> None:
        journal.register("-outer")
        await add("outer")
        with pytest.raises(ValueError):
            await nested()

    await outer()
    assert await committed_tags(db.engine) == ["outer"]
    assert "commit-nested" not in journal.events
    assert journal.events[:1] == ["commit-outer"]
    assert "completion-outer:committed" in journal.events


async def test_requires_new_runs_its_own_hooks_at_its_own_commit(
    db: DatabaseSessionFactory,
) -> None:
    events: list[str] = []

    @transactional(propagation=Propagation.REQUIRES_NEW)
    async def audit() -> None:
        after_commit(lambda: events.append("audit committed"))
        await add("audit")

    @transactional
    async def outer() -> None:
        after_rollback(lambda: events.append("outer rolled back"))
        await audit()
        assert events == ["audit committed"]
        raise ValueError("outer fails after the audit committed")

    with pytest.raises(ValueError):
        await outer()
    assert events == ["audit committed", "outer rolled back"]
    assert await committed_tags(db.engine) == ["audit"]


async def test_rollback_only_runs_rollback_hooks(db: DatabaseSessionFactory) -> None:
    journal = Journal()

    @transactional
    async def inner() -> None:
        raise ValueError("x")

    @transactional
    async def outer() -> None:
        journal.register()
        await add("a")
        with contextlib.suppress(ValueError):
            await inner()

    with pytest.raises(UnexpectedRollbackError):
        await outer()
    assert journal.events == ["rollback", "completion:rolled_back"]


async def test_cancellation_rolls_back_runs_rollback_hooks_and_releases(
    db: DatabaseSessionFactory,
) -> None:
    journal = Journal()
    started = asyncio.Event()

    @transactional
    async def work() -> None:
        journal.register()
        await add("cancelled")
        started.set()
        await asyncio.sleep(30)

    task = asyncio.create_task(work())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert journal.events == ["rollback", "completion:rolled_back"]
    assert await wait_until_released(db.engine) == 0
    assert await committed_tags(db.engine) == []


async def test_hooks_need_a_transaction() -> None:
    from viveka_db import TransactionRequiredError

    for hook in (after_commit, after_rollback):
        with pytest.raises(TransactionRequiredError, match=hook.__name__):
            hook(lambda: None)
    with pytest.raises(TransactionRequiredError, match="after_completion"):
        after_completion(lambda status: None)


# -- the same boundary for requests and the FastAPI dependency ------------------------------


async def test_request_runs_hook_phases_and_rollback_only_gives_500(
    db: DatabaseSessionFactory,
) -> None:
    events: list[str] = []

    async def ok(request: Request) -> JSONResponse:
        after_commit(lambda: events.append("commit"))
        after_completion(lambda status: events.append(status))
        await add("ok")
        return JSONResponse({"ok": True})

    async def swallowed(request: Request) -> JSONResponse:
        after_rollback(lambda: events.append("rollback"))
        await add("swallowed")
        with contextlib.suppress(ValueError):
            await failing_inner()
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/ok", ok), Route("/swallowed", swallowed)])
    app.add_middleware(DbMiddleware)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/ok")).status_code == 200
        assert events == ["commit", "committed"]
        events.clear()
        assert (await client.get("/swallowed")).status_code == 500
        assert events == ["rollback"]
    assert await committed_tags(db.engine) == ["ok"]


async def test_dependency_unit_of_work_honours_rollback_only_and_hooks(
    db: DatabaseSessionFactory,
) -> None:
    events: list[str] = []

    with pytest.raises(UnexpectedRollbackError):
        async with unit_of_work() as session:
            after_rollback(lambda: events.append("rollback"))
            session.add(Item(tag="dep"))
            with contextlib.suppress(ValueError):
                await failing_inner()
    assert events == ["rollback"]
    assert await committed_tags(db.engine) == []

    async with unit_of_work() as session:
        after_commit(lambda: events.append("commit"))
        session.add(Item(tag="dep"))
    assert events == ["rollback", "commit"]
    assert await committed_tags(db.engine) == ["dep"]


# -- retry -------------------------------------------------------------------------------------


async def test_retry_reruns_the_whole_call_and_runs_hooks_once(db: DatabaseSessionFactory) -> None:
    attempts = 0
    journal = Journal()

    @transactional(retry=3)
    async def work() -> int:
        nonlocal attempts
        attempts += 1
        journal.register(f" {attempts}")
        await add(f"attempt-{attempts}")
        if attempts < 3:
            raise serialization_failure()
        return attempts

    assert await work() == 3
    assert journal.events == ["commit 3", "completion 3:committed"]  # none of failed attempts
    assert await committed_tags(db.engine) == ["attempt-3"]


async def test_a_failure_at_commit_is_retried_without_running_that_attempts_hooks(
    db: DatabaseSessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL reports most SERIALIZABLE conflicts at COMMIT, after the work succeeded."""
    real_commit = TransactionScope.commit
    commits = 0

    async def commit_failing_once(scope: TransactionScope) -> None:
        nonlocal commits
        commits += 1
        if commits == 1:
            await scope.rollback()
            raise serialization_failure()
        await real_commit(scope)

    monkeypatch.setattr(TransactionScope, "commit", commit_failing_once)
    attempts = 0
    journal = Journal()

    @transactional(retry=2)
    async def work() -> None:
        nonlocal attempts
        attempts += 1
        journal.register(f" {attempts}")
        await add(f"attempt-{attempts}")

    await work()
    assert attempts == 2
    assert journal.events == ["commit 2", "completion 2:committed"]
    assert await committed_tags(db.engine) == ["attempt-2"]


async def test_retry_gives_up_after_n_more_attempts_and_logs_each(
    db: DatabaseSessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = 0
    events: list[str] = []

    @transactional(retry=2)
    async def work() -> None:
        nonlocal attempts
        attempts += 1
        after_rollback(lambda: events.append("rollback"))
        raise DeadlockError("deadlock detected (simulated)")

    with (
        caplog.at_level(logging.WARNING, logger="viveka_db.transaction.retry"),
        pytest.raises(DeadlockError),
    ):
        await work()
    assert attempts == 3
    assert events == ["rollback"]  # only the last, final attempt's hooks
    retries = [r for r in caplog.records if r.name == "viveka_db.transaction.retry"]
    assert len(retries) == 2
    assert "DeadlockError" in retries[0].getMessage()


async def test_non_retryable_errors_are_not_retried(db: DatabaseSessionFactory) -> None:
    attempts = 0

    @transactional(retry=3)
    async def work() -> None:
        nonlocal attempts
        attempts += 1
        raise OperationalError("SELECT 1", None, Exception("connection refused"))

    with pytest.raises(OperationalError):
        await work()
    assert attempts == 1


async def test_a_joined_call_does_not_retry_by_itself(db: DatabaseSessionFactory) -> None:
    inner_attempts = outer_attempts = 0

    @transactional(retry=3)
    async def inner() -> None:
        nonlocal inner_attempts
        inner_attempts += 1
        raise serialization_failure()

    @transactional
    async def outer_without_retry() -> None:
        await inner()

    with pytest.raises(SerializationFailureError):
        await outer_without_retry()
    assert inner_attempts == 1

    @transactional(retry=2)
    async def outer_with_retry() -> None:
        nonlocal outer_attempts
        outer_attempts += 1
        await inner()

    inner_attempts = 0
    with pytest.raises(SerializationFailureError):
        await outer_with_retry()
    assert (outer_attempts, inner_attempts) == (3, 3)  # the owner retried, the joiner did not


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", 101])
def test_retry_is_validated(bad: object) -> None:
    with pytest.raises(ValueError, match="retry"):
        transactional(retry=bad)  # type: ignore[arg-type]
