"""``insert_all`` of dicts returns the entities the unit of work would have given.

Dicts take the fast paths (``COPY`` on PostgreSQL from 500 rows, the driver-escaped
multi-row ``INSERT`` on MySQL/MariaDB, executemany elsewhere) and their entities are built
by the library, a batch at a time, without ``__init__``. Each case inserts the same dicts
twice, through ``insert_all`` and through ``Model(**row)`` + ``add_all`` + ``flush``, and
compares what a caller can see: the class, every value (generated keys by type; the
statement's timestamps as one instant per insert), defaults, and the state in the session
(persistent, in the identity map under its key, no pending change) and after the
transaction (detached, stored as returned). One difference is documented: every row of one
``insert_all`` gets the statement's instant, as one executemany gives it, where a flush
that inserts row by row may give each its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import inspect as sa_inspect

from tests.repository.models import Doc, Item, Label, Tier, User
from viveka_db import DatabaseSessionFactory, DbRepo, compat, current_session, transactional
from viveka_db.repository import bulk, bulk_attach
from viveka_db.repository.bulk_plan import plan_for
from viveka_db.repository.rows import prepare_batch

COUNTS = [3, 600, 6_000]
"""A multi-row ``INSERT``; a ``COPY`` (PostgreSQL); a ``COPY`` with entities built and
attached in several chunks while it runs."""

VOLATILE = {"id", "created_at", "updated_at"}


def user_rows(count: int, tag: str) -> list[dict[str, Any]]:
    return [
        {"email": f"{tag}{i}@x.io", "name": f"N{i}", **({"age": i} if i % 3 else {})}
        for i in range(count)
    ]


def doc_rows(count: int, tag: str) -> list[dict[str, Any]]:
    return [{"title": f"{tag}{i}", **({"views": 7} if i % 2 else {})} for i in range(count)]


def label_rows(count: int, tag: str) -> list[dict[str, Any]]:
    return [{"name": f"{tag}{i}", **({"kind": "cat"} if i % 2 else {})} for i in range(count)]


def item_rows(count: int, tag: str) -> list[dict[str, Any]]:
    return [{"sku": f"{tag}{i}", "shop": "s", "qty": i} for i in range(count)]


CASES = {
    "User": (User, user_rows),
    "Doc": (Doc, doc_rows),
    "Label": (Label, label_rows),
    "Item": (Item, item_rows),
}


def observe(model: type[Any], entities: list[Any], tag: str) -> dict[str, Any]:
    """What a caller sees of ``entities`` in the current session (run tags stripped)."""
    session = current_session().sync_session
    columns = [attr.key for attr in sa_inspect(model).column_attrs]

    def plain(value: Any) -> Any:
        return value.replace(tag, "") if isinstance(value, str) else value

    states = [sa_inspect(entity) for entity in entities]
    stamps = {
        (entity.created_at, entity.updated_at)
        for entity in entities
        if hasattr(entity, "created_at")
    }
    return {
        "instants": len({a for a, _ in stamps}),
        "types": {type(entity) for entity in entities},
        "values": [
            {c: plain(getattr(entity, c)) for c in columns if c not in VOLATILE}
            for entity in entities
        ],
        "key types": {type(entity.id) for entity in entities},
        "unique keys": len({entity.id for entity in entities}) == len(entities),
        "created is updated": all(
            a == b and isinstance(a, datetime) and a.tzinfo for a, b in stamps
        ),
        "persistent": {state.persistent for state in states},
        "in the map under its key": all(
            state.key == (model, (entity.id,), None) and session.identity_map[state.key] is entity
            for state, entity in zip(states, entities, strict=True)
        ),
        "pending changes": [
            c for state in states for c in columns if state.attrs[c].history.has_changes()
        ],
        "modified": {state.modified for state in states},
        "new or dirty": (len(session.new), len(session.dirty)),
    }


async def run(
    model: type[Any], rows: list[dict[str, Any]], tag: str, *, orm: bool
) -> tuple[dict[str, Any], list[Any]]:
    @transactional
    async def work() -> tuple[dict[str, Any], list[Any]]:
        if orm:
            entities = [model(**row) for row in rows]
            current_session().add_all(entities)
            await current_session().flush()
        else:
            entities = await DbRepo(model).insert_all(rows)
        return observe(model, entities, tag), entities

    return await work()


@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize("case", list(CASES))
async def test_dicts_give_the_entities_the_unit_of_work_gives(
    db: DatabaseSessionFactory, case: str, count: int
) -> None:
    model, make_rows = CASES[case]
    fast, entities = await run(model, make_rows(count, "qf"), "qf", orm=False)
    reference, _ = await run(model, make_rows(count, "qo"), "qo", orm=True)
    # one executemany gives every row the statement's instant; a flush may insert row by row
    assert fast.pop("instants") <= 1
    reference.pop("instants")
    assert fast == reference
    assert fast["persistent"] == {True} and fast["pending changes"] == []
    assert all(sa_inspect(entity).detached for entity in entities)  # the session closed
    stored = {row.id: row for row in await DbRepo(model).all()}
    columns = [attr.key for attr in sa_inspect(model).column_attrs]
    for entity in entities:
        row = stored[entity.id]
        assert {c: getattr(row, c) for c in columns} == {c: getattr(entity, c) for c in columns}


async def test_defaults_of_dicts_are_filled_per_row_and_per_statement(
    db: DatabaseSessionFactory,
) -> None:
    users = await DbRepo(User).insert_all(user_rows(700, "d"))
    assert {u.tier for u in users} == {Tier.free} and {u.is_active for u in users} == {True}
    assert [u.age for u in users[:4]] == [None, 1, 2, None]
    assert len({u.created_at for u in users}) == 1  # the statement's instant
    docs = await DbRepo(Doc).insert_all(doc_rows(700, "d"))
    assert len({d.id for d in docs}) == 700 and all(isinstance(d.id, uuid.UUID) for d in docs)
    assert [d.views for d in docs[:2]] == [0, 7] and {d.version for d in docs} == {1}


def test_entities_built_the_fast_way_equal_the_public_way() -> None:
    """:func:`viveka_db.compat.new_entities`: both routes give transient entities holding
    the same values and the same instance state, without ``__init__``."""
    mapper = sa_inspect(User)
    keys = [attr.key for attr in mapper.column_attrs]
    stamp = datetime(2024, 1, 2, 3, 4, 5)
    columns = [
        [i if k == "id" else stamp if k.endswith("_at") else f"{k}{i}" for i in range(5)]
        for k in keys
    ]
    fast = compat.new_entities_private(mapper, keys, columns)
    public = compat.new_entities_public(mapper, keys, columns)
    assert fast is not None

    def seen(entity: Any) -> Any:
        state = sa_inspect(entity)
        values = {k: v for k, v in vars(entity).items() if k != "_sa_instance_state"}
        slots = (state.class_, state.manager, state.obj() is entity, state.committed_state)
        return (
            type(entity),
            values,
            slots,
            state.expired_attributes,
            state.transient,
            state.key,
            state.session_id,
            sa_inspect(entity).attrs.name.history,
        )

    assert [seen(e) for e in fast] == [seen(e) for e in public]
    assert fast[2].name == "name2" and fast[2].created_at is stamp
    assert compat.new_entities(mapper, keys, [[] for _ in keys]) == []


async def test_the_public_route_gives_the_same_entities(
    db: DatabaseSessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a SQLAlchemy release the fast route was not verified against, entities of dicts are
    built and attached through public API only, with the same result."""
    fast, _ = await run(User, user_rows(600, "qf"), "qf", orm=False)
    monkeypatch.setattr(compat, "FAST_ATTACH", False)
    public, _ = await run(User, user_rows(600, "qp"), "qp", orm=False)
    assert fast == public and public["persistent"] == {True}


def after_one_chunk(
    real: Callable[..., Awaitable[None]],
) -> Callable[..., Coroutine[Any, Any, None]]:
    """``build_entities`` as if the key draw finished after one chunk was built."""

    async def build(plan: Any, batch: Any, until: Any) -> None:
        done = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(done.set_result, None)  # runs at the first yield
        await real(plan, batch, done)
        assert batch.built == bulk_attach.ATTACH_CHUNK < len(batch)

    return build


async def test_entities_built_in_part_before_the_insert_are_completed_after_it() -> None:
    """What the key draw left unbuilt is built after the insert (or alongside ``COPY``)."""
    rows = user_rows(450, "qb")
    batch = prepare_batch(plan_for(sa_inspect(User)), rows)
    plan = plan_for(sa_inspect(User))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bulk_attach, "ATTACH_CHUNK", 200)
        await after_one_chunk(bulk_attach.build_entities)(plan, batch, None)
        first = batch.instances[:200]
        batch.fill_keys(plan, range(1, 451))
        entities = bulk_attach.materialize(plan, batch)
    assert entities[:200] == first and all(isinstance(e, User) for e in entities)
    assert [e.id for e in entities] == list(range(1, 451))
    assert [e.email for e in entities] == [row["email"] for row in rows]
    assert [e.age for e in entities[:4]] == [None, 1, 2, None]


async def test_a_part_built_batch_gives_the_same_entities(
    db: DatabaseSessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the rest is built alongside the ``COPY``; the entities are the same."""
    reference, _ = await run(User, user_rows(600, "qo"), "qo", orm=True)
    monkeypatch.setattr(bulk_attach, "ATTACH_CHUNK", 200)
    monkeypatch.setattr(bulk, "build_entities", after_one_chunk(bulk_attach.build_entities))
    fast, _ = await run(User, user_rows(600, "qf"), "qf", orm=False)
    fast.pop("instants")
    reference.pop("instants")
    assert fast == reference
