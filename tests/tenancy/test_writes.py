"""Writes fill tenant and actor on every path and refuse another tenant's rows."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from tests.tenancy.models import Counter, CounterRepo, Keyed, KeyedRepo, Note, NoteRepo
from tests.tenancy.seed import raw_rows, seed
from viveka_db import (
    DatabaseSessionFactory,
    TenantMismatchError,
    acting_as,
    all_tenants,
    current_session,
    tenant,
    transactional,
)
from viveka_db.repository.bulk_paths import COPY_THRESHOLD

pytestmark = pytest.mark.usefixtures("db")

BULK_ROWS = 10_000


async def test_save_fills_tenant_and_actor_and_update_moves_updated_by() -> None:
    repo = NoteRepo()
    with tenant("a"), acting_as("alice"):
        note = await repo.save(Note(title="t"))
    assert (note.tenant_id, note.created_by, note.updated_by) == ("a", "alice", "alice")
    with tenant("a"), acting_as(42):  # any actor, stored as text
        loaded = await repo.get_or_raise(note.id)
        loaded.title = "t2"
        saved = await repo.save(loaded)
    assert (saved.created_by, saved.updated_by) == ("alice", "42")
    with tenant("a"):  # no actor: updated_by records that nobody was acting
        assert await repo.soft_delete(note.id)
    rows = await raw_rows("SELECT created_by, updated_by FROM ten_notes WHERE id = :i", i=note.id)
    assert tuple(rows[0]) == ("alice", None)


async def test_set_based_soft_delete_records_the_actor() -> None:
    await seed()
    with tenant("b"), acting_as("bob"):
        assert await NoteRepo().delete_by_title("same") == 1
    rows = await raw_rows("SELECT tenant_id, updated_by FROM ten_notes WHERE title = 'same'")
    assert sorted(tuple(r) for r in rows) == [("a", "user-a"), ("b", "bob")]


async def test_a_row_of_another_tenant_is_refused_on_every_write_path() -> None:
    ids = await seed()
    repo = NoteRepo()
    with tenant("a"):
        with pytest.raises(TenantMismatchError):
            await repo.save(Note(title="x", tenant_id="b"))
        with pytest.raises(TenantMismatchError):
            await CounterRepo().insert_all([Counter(n=1, tenant_id="b")])
        with pytest.raises(TenantMismatchError):
            await CounterRepo().insert_all([{"n": 1, "tenant_id": "b"}])
        with pytest.raises(TenantMismatchError):
            await KeyedRepo().upsert_all([{"id": 9, "name": "x", "tenant_id": "b"}])
        note = await repo.get_or_raise(ids["a"]["note"])
        note.tenant_id = "b"  # moving a row to another tenant
        with pytest.raises(TenantMismatchError):
            await repo.save(note)
    with all_tenants():
        theirs = await repo.get_or_raise(ids["b"]["note"])
    theirs.title = "hijacked"
    with tenant("a"):
        with pytest.raises(TenantMismatchError):
            await repo.update(theirs)  # a detached row of b, merged under a
        with pytest.raises(TenantMismatchError):
            await repo.delete_entity(theirs)
    rows = await raw_rows("SELECT count(*) FROM ten_notes WHERE title = 'hijacked'")
    assert rows[0][0] == 0


async def test_all_tenants_writes_any_tenant_and_needs_one_per_row() -> None:
    with all_tenants():
        saved = await NoteRepo().save(Note(title="x", tenant_id="b"))
        assert saved.tenant_id == "b"
        with tenant("a"):
            assert (await NoteRepo().save(Note(title="y"))).tenant_id == "a"


@pytest.mark.parametrize("shape", ["entities", "dicts"])
async def test_bulk_insert_of_ten_thousand_rows_fills_tenant_and_actor(
    shape: str, backend: str
) -> None:
    """``COPY`` on PostgreSQL, multi-row INSERT on MariaDB and SQLite (the fast paths:
    a handful of statements, none per row)."""
    assert BULK_ROWS >= COPY_THRESHOLD
    rows = (
        [Counter(n=i) for i in range(BULK_ROWS)]
        if shape == "entities"
        else [{"n": i} for i in range(BULK_ROWS)]
    )
    inserts: list[str] = []

    def note_insert(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            inserts.append(statement)

    engine = DatabaseSessionFactory.get_instance().engine.sync_engine
    event.listen(engine, "before_cursor_execute", note_insert)
    try:
        with tenant("a"), acting_as("loader"):
            inserted = await CounterRepo().insert_all(rows)
    finally:
        event.remove(engine, "before_cursor_execute", note_insert)
    if backend == "postgresql":
        assert inserts == []  # COPY
    else:  # multi-row INSERTs (MariaDB's go to the driver directly)
        assert len(inserts) < 100
    assert len(inserted) == BULK_ROWS
    assert {(c.tenant_id, c.created_by, c.updated_by) for c in inserted} == {
        ("a", "loader", "loader")
    }
    counted = await raw_rows(
        "SELECT tenant_id, created_by, updated_by, count(*) FROM ten_counters "
        "GROUP BY tenant_id, created_by, updated_by"
    )
    assert [tuple(r) for r in counted] == [("a", "loader", "loader", BULK_ROWS)]
    with tenant("b"):
        assert await CounterRepo().count() == 0


async def test_updating_upsert_keeps_created_by_and_never_touches_another_tenant() -> None:
    repo = KeyedRepo()
    with tenant("a"), acting_as("ann"):
        await repo.upsert_all([{"id": 1, "name": "one"}, {"id": 2, "name": "two"}])
    with tenant("a"), acting_as("amy"):
        written = await repo.upsert_all([{"id": 1, "name": "uno"}])
    rows = await raw_rows("SELECT name, created_by, updated_by FROM ten_keyed WHERE id = 1")
    assert tuple(rows[0]) == ("uno", "ann", "amy")
    assert [(k.name, k.updated_by) for k in written] == [("uno", "amy")]
    # b collides with a's key: a's row is neither changed nor returned to b
    with tenant("b"), acting_as("bob"):
        written = await repo.upsert_all([{"id": 2, "name": "hijacked"}])
        assert written == []
        assert await repo.upsert_all([{"id": 2, "name": "x"}], on_conflict="nothing") == []
        assert await repo.get_by_id(2) is None
    rows = await raw_rows("SELECT tenant_id, name, updated_by FROM ten_keyed WHERE id = 2")
    assert tuple(rows[0]) == ("a", "two", "ann")


async def test_get_or_create_all_fills_the_tenant() -> None:
    with tenant("a"), acting_as("ann"):
        made = await KeyedRepo().get_or_create_all([Keyed(id=5, name="x")], key="id")
        again = await KeyedRepo().get_or_create_all([{"id": 5, "name": "y"}], key="id")
    assert [(k.tenant_id, k.created_by, k.name) for k in made] == [("a", "ann", "x")]
    assert [k.name for k in again] == ["x"]


@transactional
async def _flush_in_session(note: Note) -> None:
    current_session().add(note)
    await current_session().flush()


async def test_unit_of_work_under_all_tenants_without_tenant_needs_a_tenant_id() -> None:
    from viveka_db import NoTenantError

    with all_tenants(), pytest.raises(NoTenantError):
        await _flush_in_session(Note(title="orphan"))
