"""``insert_all``'s attach step: the version-gated fast route, the public route and a flush
leave the session in the same state.

The fast route (:data:`viveka_db.compat.FAST_ATTACH`) writes SQLAlchemy's
bookkeeping directly; the public one uses ``make_transient_to_detached`` + ``Session.add``
and session events. Both are compared with the unit of work itself (``add_all`` +
``flush``): identity map, ``new``/``dirty``, attribute history, change tracking, commit,
and rollback of the transaction and of a savepoint (inserted entities become transient
with their values, as after a rolled-back flush).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError

from tests.repository.models import Item, ItemRepo
from viveka_db import DatabaseSessionFactory, Propagation, compat, current_session, transactional

ROUTES = ["flush", "fast", "public"]


def _driver_duplicates() -> tuple[type[Exception], ...]:
    """The fast paths talk to the drivers directly (``COPY``, escaped multi-row ``INSERT``):
    their errors arrive untranslated by SQLAlchemy."""
    found: list[type[Exception]] = []
    try:
        from asyncpg.exceptions import UniqueViolationError

        found.append(UniqueViolationError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from pymysql.err import IntegrityError as MySQLIntegrityError

        found.append(MySQLIntegrityError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(found)


COLUMNS = ("id", "sku", "shop", "qty", "note", "seen_at")


def test_the_fast_route_is_gated_on_verified_versions() -> None:
    verified = compat.fast_attach_verified
    assert verified("2.0.43") and verified("2.0.44") and verified("2.1.0")
    assert not verified("2.0.42") and not verified("2.2.0") and not verified("3.0.0")
    assert not verified("nonsense")
    assert verified() == compat.FAST_ATTACH


def use_route(
    route: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Coroutine[Any, Any, list[Item]]]:
    """``insert(repo, rows)`` the way ``route`` attaches (the inserts themselves are the same)."""
    if route == "public":
        monkeypatch.setattr(compat, "FAST_ATTACH", False)
    elif route == "fast":
        assert compat.FAST_ATTACH, "this SQLAlchemy should take the fast route"

    async def insert(repo: ItemRepo, values: list[dict[str, Any]]) -> list[Item]:
        if route == "flush":
            items = [Item(**v) for v in values]
            session = current_session()
            session.add_all(items)
            await session.flush()
            return items
        return await repo.insert_all([Item(**v) for v in values])

    return insert


def snapshot(items: list[Item], like_flush: bool) -> dict[str, Any]:
    """What a user (or SQLAlchemy) can observe of the session and the entities.

    Generated ids differ between runs: they are checked to be the identity map's keys
    and then left out; ``sku`` values lose their run tag. ``like_flush``: a column left
    ``None`` reads ``None`` either way, but a flush does not put it in the entity's
    ``__dict__`` (its history is empty) while the bulk paths do (history ``[None]``).
    """
    session = current_session().sync_session
    states = [sa_inspect(item) for item in items]
    in_map = sorted(key[1] for key in session.identity_map.keys() if key[0] is Item)  # noqa: SIM118
    assert in_map == sorted((item.id,) for item in items)
    assert [s.identity for s in states] == [(item.id,) for item in items]

    def history(state: Any, column: str) -> Any:
        added, unchanged, deleted = state.attrs[column].history
        if column == "id":
            unchanged = ["ID" for _ in unchanged]
        if column == "sku":
            unchanged = [v[1:] for v in unchanged]
        if like_flush and list(unchanged) == [None]:
            unchanged = []
        return (list(added), list(unchanged), list(deleted))

    return {
        "new": len(session.new),
        "dirty": len(session.dirty),
        "persistent": [s.persistent for s in states],
        "get is the same object": [
            session.identity_map.get(s.key) is item for s, item in zip(states, items, strict=True)
        ],
        "history": [[history(s, c) for c in COLUMNS] for s in states],
        "modified": [s.modified for s in states],
        "expired": [sorted(s.expired_attributes) for s in states],
    }


def values(n: int, tag: str) -> list[dict[str, Any]]:
    return [{"sku": f"{tag}{i}", "shop": "s"} for i in range(n)]


async def observe(
    route: str, tag: str, count: int, monkeypatch: pytest.MonkeyPatch, like_flush: bool
) -> Any:
    """Insert through ``route``, change one entity, commit: what was seen along the way."""
    with monkeypatch.context() as patch:
        insert = use_route(route, patch)
        repo = ItemRepo()
        seen: dict[str, Any] = {}

        @transactional
        async def work() -> list[Item]:
            items = await insert(repo, values(count, tag))
            seen["after insert"] = snapshot(items, like_flush)
            items[0].qty = 5  # change tracking: dirty, with history, flushed at commit
            seen["after change"] = {
                "dirty": [item is items[0] for item in current_session().dirty],
                "history": tuple(sa_inspect(items[0]).attrs.qty.history),
            }
            return items

        items = await work()
        seen["after commit"] = [sa_inspect(item).detached for item in items]  # session closed
        stored = await repo.find_by(sku=f"{tag}0")
        seen["stored"] = None if stored is None else stored.qty
        return seen


@pytest.mark.parametrize("route", ["fast", "public"])
@pytest.mark.parametrize("count", [3, 600])  # the multi-row INSERT and (PostgreSQL) COPY
async def test_each_route_leaves_the_state_a_flush_leaves(
    db: DatabaseSessionFactory, route: str, count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = await observe("flush", "f", count, monkeypatch, like_flush=True)
    assert reference["after insert"]["persistent"] == [True] * count
    assert reference["after change"] == {"dirty": [True], "history": ([5], (), [0])}
    assert reference["stored"] == 5
    assert await observe(route, "x", count, monkeypatch, like_flush=True) == reference


@pytest.mark.parametrize("count", [3, 600])
async def test_the_fast_route_and_the_public_one_leave_the_same_state(
    db: DatabaseSessionFactory, count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = await observe("fast", "a", count, monkeypatch, like_flush=False)
    assert fast == await observe("public", "b", count, monkeypatch, like_flush=False)


@pytest.mark.parametrize("route", ROUTES)
async def test_a_rollback_makes_the_inserted_entities_transient(
    db: DatabaseSessionFactory, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert = use_route(route, monkeypatch)
    repo = ItemRepo()
    inserted: list[Item] = []

    @transactional
    async def work() -> None:
        inserted.extend(await insert(repo, values(600, "r")))
        raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        await work()
    assert await repo.count() == 0
    for item in inserted:
        state = sa_inspect(item)
        assert state.transient and state.key is None and state.session_id is None
    assert [item.sku for item in inserted] == [f"r{i}" for i in range(600)]  # values kept
    assert all(item.id is not None for item in inserted)


@pytest.mark.parametrize("route", ROUTES)
async def test_a_savepoint_rollback_drops_only_its_own_entities(
    db: DatabaseSessionFactory, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert = use_route(route, monkeypatch)
    repo = ItemRepo()
    kept: list[Item] = []
    dropped: list[Item] = []
    released: list[Item] = []

    @transactional(propagation=Propagation.NESTED)
    async def undone() -> None:
        dropped.extend(await insert(repo, values(600, "d")))
        raise RuntimeError("undo the savepoint")

    @transactional(propagation=Propagation.NESTED)
    async def released_savepoint() -> None:
        released.extend(await insert(repo, values(3, "s")))

    @transactional
    async def outer() -> None:
        kept.extend(await insert(repo, values(600, "k")))
        await released_savepoint()
        with pytest.raises(RuntimeError):
            await undone()
        assert all(sa_inspect(item).transient for item in dropped)
        assert all(sa_inspect(item).persistent for item in kept + released)
        identity = current_session().sync_session.identity_map
        assert len([k for k in identity.keys() if k[0] is Item]) == 603  # noqa: SIM118
        raise RuntimeError("now the whole transaction")

    with pytest.raises(RuntimeError, match="whole"):
        await outer()
    assert await repo.count() == 0
    # the released savepoint's entities went with the outer transaction
    assert all(sa_inspect(item).transient for item in kept + released + dropped)


DUPLICATE = (IntegrityError, *_driver_duplicates())


async def test_a_failed_insert_leaves_no_entity_attached(db: DatabaseSessionFactory) -> None:
    """On PostgreSQL the bookkeeping runs while the ``COPY`` streams: a ``COPY`` that fails
    (a duplicate key in the last row) must leave every entity transient again."""
    repo = ItemRepo()
    await repo.insert_all([{"sku": "dup", "shop": "s"}])
    items = [Item(sku=f"c{i}", shop="s") for i in range(5_999)] + [Item(sku="dup", shop="s")]
    seen: list[bool] = []

    @transactional
    async def work() -> None:
        with pytest.raises(DUPLICATE):
            await repo.insert_all(items)
        session = current_session()
        seen.append(any(item in session for item in items))
        seen.append(all(sa_inspect(item).transient for item in items))
        raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        await work()
    assert seen == [False, True]
    assert await repo.count() == 1


async def test_keys_drawn_on_a_guess_are_used_only_when_they_fit(
    db: DatabaseSessionFactory,
) -> None:
    """PostgreSQL draws keys while the rows are prepared, judging by the first entity; when
    later entities bring their own keys the draw does not fit and keys are drawn again."""
    repo = ItemRepo()
    items = [Item(sku=f"g{i}", shop="s") for i in range(600)]
    for i, item in enumerate(items[300:]):
        item.id = 1_000_000 + i
    inserted = await repo.insert_all(items)
    ids = [item.id for item in inserted]
    assert len(set(ids)) == 600 and ids[300:] == [1_000_000 + i for i in range(300)]
    assert await repo.count() == 600
    stored = await repo.find_by(sku="g0")
    assert stored is not None and stored.id == ids[0]
