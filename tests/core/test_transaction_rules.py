"""Each transaction rule has one home; these tests pin the rule where every caller meets it.

- errors: :class:`~viveka_db.errors.mapped_errors` maps the same failure the
  same way at every boundary (class, message, cause, retry classification);
- propagation: a mode dispatched through ``@transactional`` and through the manager ends
  the same way, and that way is Spring's;
- hooks: :class:`~viveka_db.context.completion.TransactionHooks` orders the phases, drops a
  savepoint's hooks, and its ``completed`` flag is what makes a scope unusable;
- data source: :func:`~viveka_db.context.data_source.data_source_of` decides for the
  decorator, ``self.db`` and the cache alike.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import sqlite as sqlite_dialect

from tests.core.models import Code
from viveka_db import (
    DatabaseSessionFactory,
    DuplicateKeyError,
    IllegalTransactionStateError,
    Propagation,
    SerializationFailureError,
    TransactionRequiredError,
    UnexpectedRollbackError,
    transactional,
)
from viveka_db.context.completion import TransactionHooks
from viveka_db.context.data_source import DATA_SOURCE_ATTR, DEFAULT, data_source_of
from viveka_db.context.db_context import active_scope, scope_var, set_scope
from viveka_db.context.scope import TransactionScope
from viveka_db.decorator.transactional import SessionAccessor
from viveka_db.dialects.translate import (
    MAPPED_ERRORS,
    driver_errors,
    translate_driver_error,
    translate_error,
)
from viveka_db.errors import mapped_errors
from viveka_db.repository.bulk_paths import mapped
from viveka_db.transaction.definition import TransactionDefinition
from viveka_db.transaction.manager import execute
from viveka_db.transaction.retry import is_retryable

# -- errors: one construct, the same mapping at every boundary ---------------------------------


def duplicate_driver_error() -> sqlite3.IntegrityError:
    return sqlite3.IntegrityError("UNIQUE constraint failed: core_codes.code")


def locked_driver_error() -> sqlite3.OperationalError:
    return sqlite3.OperationalError("database is locked")


def raw(orig: Exception) -> sa_exc.DBAPIError:
    """What an engine without viveka_db's error hook raises: not mapped yet."""
    cls = (
        sa_exc.IntegrityError
        if isinstance(orig, sqlite3.IntegrityError)
        else sa_exc.OperationalError
    )
    return cls("INSERT INTO core_codes (code) VALUES (?)", ("SECRET",), orig)


def fingerprint(error: BaseException) -> tuple[type[BaseException], str, type[Any], bool]:
    """What must not differ between boundaries: class, message, cause's class, retryable."""
    return type(error), str(error), type(error.__cause__), is_retryable(error)


async def raising(orig: Exception) -> None:
    raise raw(orig)


async def at_outermost(orig: Exception) -> BaseException:
    @transactional
    async def work() -> None:
        await raising(orig)

    with pytest.raises(Exception) as caught:
        await work()
    return caught.value


async def at_joined(orig: Exception) -> BaseException:
    seen: list[BaseException] = []

    @transactional
    async def inner() -> None:
        await raising(orig)

    @transactional(no_rollback_for=Exception)
    async def outer() -> None:
        try:
            await inner()
        except Exception as exc:
            seen.append(exc)

    with pytest.raises(UnexpectedRollbackError):  # the joined failure marked it rollback-only
        await outer()
    return seen[0]


async def at_savepoint(orig: Exception) -> BaseException:
    seen: list[BaseException] = []

    @transactional(propagation=Propagation.NESTED)
    async def inner() -> None:
        await raising(orig)

    @transactional
    async def outer() -> None:
        try:
            await inner()
        except Exception as exc:
            seen.append(exc)

    await outer()  # the savepoint took the failure back: the outer work commits
    return seen[0]


async def at_commit(orig: Exception, monkeypatch: pytest.MonkeyPatch) -> BaseException:
    async def failing_commit(self: TransactionScope) -> None:
        raise raw(orig)

    @transactional
    async def work() -> None:
        current = active_scope()
        assert current is not None
        _ = current.session  # something to commit
        monkeypatch.setattr(TransactionScope, "commit", failing_commit)

    try:
        with pytest.raises(Exception) as caught:
            await work()
    finally:
        monkeypatch.undo()
    return caught.value


async def at_bulk_driver_path(orig: Exception) -> BaseException:
    async def native() -> bool:
        raise orig

    plan: Any = SimpleNamespace(table=Code.__table__)  # the table the rows were going to
    with pytest.raises(Exception) as caught:
        await mapped(native(), sqlite_dialect.dialect(), plan)
    return caught.value


def at_the_construct(orig: Exception) -> BaseException:
    with pytest.raises(Exception) as caught, MAPPED_ERRORS:
        raise raw(orig)
    return caught.value


@pytest.mark.parametrize(
    ("make", "family", "retryable"),
    [
        (duplicate_driver_error, DuplicateKeyError, False),
        (locked_driver_error, SerializationFailureError, True),
    ],
)
async def test_every_boundary_maps_a_failure_the_same_way(
    db: DatabaseSessionFactory,
    monkeypatch: pytest.MonkeyPatch,
    make: Callable[[], Exception],
    family: type[Exception],
    retryable: bool,
) -> None:
    reference = translate_error(raw(make()))
    assert isinstance(reference, family) and is_retryable(reference) is retryable
    # the driver paths know the table they wrote, so the message may name its constraint
    driver_reference = translate_driver_error(make(), sqlite_dialect.dialect(), Code.__table__)
    found = {
        "the construct": (at_the_construct(make()), reference),
        "outermost @transactional": (await at_outermost(make()), reference),
        "joined @transactional": (await at_joined(make()), reference),
        "savepoint (NESTED)": (await at_savepoint(make()), reference),
        "COMMIT": (await at_commit(make(), monkeypatch), reference),
        "bulk driver path": (await at_bulk_driver_path(make()), driver_reference),
    }
    for boundary, (error, expected) in found.items():
        assert fingerprint(error) == fingerprint(expected), boundary
        assert type(error) is type(reference), boundary
        assert isinstance(error.__cause__, sqlite3.Error), boundary  # the driver's error
        assert "SECRET" not in str(error), boundary


def test_an_error_with_nothing_to_map_escapes_unchanged() -> None:
    error = ValueError("not a database error")
    with pytest.raises(ValueError) as caught, MAPPED_ERRORS:
        raise error
    assert caught.value is error and caught.value.__cause__ is None


def test_the_construct_raises_what_its_mapper_gives_from_the_mappers_cause() -> None:
    driver = duplicate_driver_error()
    replacement = DuplicateKeyError("duplicate key")
    replacement.__cause__ = driver
    with pytest.raises(DuplicateKeyError) as caught, mapped_errors(lambda exc: replacement):
        raise raw(driver)
    assert caught.value is replacement and caught.value.__cause__ is driver
    with pytest.raises(KeyError), mapped_errors(lambda exc: replacement, only=sa_exc.DBAPIError):
        raise KeyError("not one of the classes it maps")


def test_only_limits_what_a_driver_path_maps() -> None:
    dialect = sqlite_dialect.dialect()
    with pytest.raises(DuplicateKeyError), driver_errors(dialect, only=sqlite3.Error):
        raise duplicate_driver_error()
    with pytest.raises(KeyError), driver_errors(dialect, only=sqlite3.Error):
        raise KeyError("x")


# -- propagation: one dispatch -----------------------------------------------------------------


async def observe(outer: list[TransactionScope | None]) -> tuple[str, ...]:
    """Which transaction the work runs in: none, the caller's, a savepoint of it, or a new one."""
    scope = active_scope()
    if scope is None:
        return ("no transaction",)
    if outer and scope is outer[0]:
        nested = scope.has_session and scope.session.in_nested_transaction()
        return ("the caller's", "savepoint" if nested else "joined")
    return ("a new one",)


INSIDE = {
    Propagation.REQUIRED: ("the caller's", "joined"),
    Propagation.SUPPORTS: ("the caller's", "joined"),
    Propagation.MANDATORY: ("the caller's", "joined"),
    Propagation.REQUIRES_NEW: ("a new one",),
    Propagation.NESTED: ("the caller's", "savepoint"),
    Propagation.NOT_SUPPORTED: ("no transaction",),
    Propagation.NEVER: IllegalTransactionStateError,
}
OUTSIDE = {
    Propagation.REQUIRED: ("a new one",),
    Propagation.REQUIRES_NEW: ("a new one",),
    Propagation.NESTED: ("a new one",),
    Propagation.SUPPORTS: ("no transaction",),
    Propagation.NOT_SUPPORTED: ("no transaction",),
    Propagation.NEVER: ("no transaction",),
    Propagation.MANDATORY: TransactionRequiredError,
}


async def outcome(call: Callable[[], Awaitable[tuple[str, ...]]]) -> object:
    try:
        return await call()
    except Exception as exc:
        return type(exc)


async def both_ways(
    propagation: Propagation, outer: list[TransactionScope | None]
) -> tuple[object, object]:
    @transactional(propagation=propagation)
    async def decorated() -> tuple[str, ...]:
        return await observe(outer)

    definition = TransactionDefinition.create(propagation=propagation)
    through_decorator = await outcome(decorated)
    through_manager = await outcome(lambda: execute(definition, DEFAULT, lambda: observe(outer)))
    return through_decorator, through_manager


@pytest.mark.parametrize("propagation", list(Propagation))
async def test_a_mode_dispatches_the_same_through_decorator_and_manager(
    db: DatabaseSessionFactory, propagation: Propagation
) -> None:
    outer: list[TransactionScope | None] = []
    assert await both_ways(propagation, outer) == (OUTSIDE[propagation],) * 2

    @transactional
    async def caller() -> tuple[object, object]:
        outer.append(active_scope())
        _ = current.session if (current := active_scope()) is not None else None
        return await both_ways(propagation, outer)

    assert await caller() == (INSIDE[propagation],) * 2


# -- hooks: one object per transaction ---------------------------------------------------------


async def test_hooks_run_in_phase_order_once_and_a_savepoint_drops_its_own() -> None:
    hooks = TransactionHooks()
    events: list[str] = []
    hooks.after_commit(lambda: events.append("commit 1"))
    mark = hooks.mark()
    hooks.rollback_only = True
    hooks.after_commit(lambda: events.append("commit in savepoint"))
    hooks.roll_back_to(mark)
    assert hooks.rollback_only is False

    async def late() -> None:
        events.append("commit 2")

    hooks.after_commit(late)
    hooks.after_rollback(lambda: events.append("rollback"))
    hooks.after_completion(lambda status: events.append(f"completion {status}"))
    assert hooks.pending and not hooks.completed
    await hooks.complete("committed")
    assert events == ["commit 1", "commit 2", "completion committed"]
    assert hooks.completed and not hooks.pending
    await hooks.complete("committed")  # nothing runs twice
    assert len(events) == 3


async def test_discarded_hooks_never_run() -> None:
    hooks = TransactionHooks()
    events: list[str] = []
    hooks.after_rollback(lambda: events.append("rollback"))
    hooks.after_completion(lambda status: events.append(status))
    hooks.discard()
    await hooks.complete("rolled_back")
    assert events == [] and hooks.completed


async def test_a_completed_transaction_is_never_joined() -> None:
    scope = TransactionScope(None, owner=asyncio.current_task())
    token = set_scope(scope)
    try:
        assert active_scope() is scope
        await scope.hooks.complete("committed")
        assert active_scope() is None
    finally:
        scope_var().reset(token)


# -- data source: one rule ---------------------------------------------------------------------


class Reports:
    db = SessionAccessor()

    def __init__(self, data_source: str | None) -> None:
        if data_source is not None:
            setattr(self, DATA_SOURCE_ATTR, data_source)


def test_the_named_data_source_wins_then_the_owner_then_the_default() -> None:
    assert data_source_of(Reports("reports"), "audit") == "audit"
    assert data_source_of(Reports("reports")) == "reports"
    assert data_source_of(Reports(None)) == DEFAULT
    assert data_source_of(None) == DEFAULT
    assert data_source_of(None, "audit") == "audit"


async def test_the_decorator_and_self_db_use_the_owners_data_source() -> None:
    """A scope on data source "reports" is what both find; "default" has none."""
    seen: list[object] = []

    class Service(Reports):
        @transactional(propagation=Propagation.MANDATORY)
        async def run(self) -> None:
            seen.append(self.db)

    scope = TransactionScope(None, data_source="reports", owner=asyncio.current_task())
    scope._session = session = object()  # type: ignore[assignment]  # pyright: ignore[reportPrivateUsage]
    token = set_scope(scope, "reports")
    try:
        await Service("reports").run()
        with pytest.raises(TransactionRequiredError):
            await Service(None).run()
    finally:
        scope_var("reports").reset(token)
    assert seen == [session]
