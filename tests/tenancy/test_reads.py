"""Tenant A never sees tenant B's rows, on every read path, on every backend."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import selectinload

from tests.tenancy.models import Note, NoteRepo, Remark, RemarkRepo
from tests.tenancy.seed import raw_rows, seed
from viveka_db import (
    DatabaseSessionFactory,
    EntityNotFoundError,
    all_tenants,
    current_session,
    tenant,
    transactional,
)

pytestmark = pytest.mark.usefixtures("db")


async def test_get_find_and_exists_see_only_the_current_tenant() -> None:
    ids = await seed()
    repo = NoteRepo()
    with tenant("a"):
        assert await repo.get_by_id(ids["b"]["note"]) is None
        assert await repo.get_by_id(ids["b"]["note"], load="remarks") is None
        assert (await repo.get_by_id(ids["a"]["note"])).tenant_id == "a"  # type: ignore[union-attr]
        with pytest.raises(EntityNotFoundError):
            await repo.get_or_raise(ids["b"]["note"])
        assert not await repo.exists(ids["b"]["note"])
        assert await repo.exists(ids["a"]["note"])
        assert {n.tenant_id for n in await repo.get_all()} == {"a"}
        assert {n.tenant_id for n in await repo.all()} == {"a"}
        assert [n.tenant_id for n in await repo.find_all_by(title="same")] == ["a"]
        assert (await repo.find_by(title="only-b")) is None
        assert await repo.find_by_field("title", "only-b") is None
        assert await repo.first(repo.where(Note.title == "only-b")) is None


async def test_counts_see_only_the_current_tenant() -> None:
    await seed()
    repo = NoteRepo()
    with tenant("a"):
        assert await repo.count() == 2
        assert await repo.count(repo.where(Note.title == "same")) == 1
        assert await repo.count_by_title("same") == 1
        assert await repo.count_grouped_by(Note.title) == {"same": 1, "only-a": 1}


async def test_pages_slices_and_streams_see_only_the_current_tenant() -> None:
    await seed()
    repo = NoteRepo()
    with tenant("b"):
        page = await repo.get_page(1, 1, sort=Note.id)
        assert page.total == 2 and [n.tenant_id for n in page.items] == ["b"]
        first = await repo.get_slice(size=1, sort=Note.id)
        second = await repo.get_slice(after=first.next_cursor, size=1, sort=Note.id)
        assert [n.tenant_id for n in first.items + second.items] == ["b", "b"]
        assert second.next_cursor is None
        streamed = [n async for n in repo.stream(chunk_size=1)]
        assert [n.title for n in streamed] == ["same", "only-b"]


@dataclass
class NoteTitle:
    title: str
    tenant_id: str


async def test_projections_see_only_the_current_tenant() -> None:
    await seed()
    with tenant("a"):
        titles = await NoteRepo().project(NoteTitle)
    assert sorted((t.title, t.tenant_id) for t in titles) == [("only-a", "a"), ("same", "a")]


async def test_relationship_loads_see_only_the_current_tenant() -> None:
    """``selectinload`` of a collection, a many-to-many and a joined many-to-one."""
    ids = await seed()
    repo = NoteRepo()
    with tenant("a"):
        note = await repo.get_by_id(ids["a"]["note"], load=["remarks", "labels", "writer"])
        assert note is not None
        # b's remark on a's note is b's row: never loaded under a (deleted ones neither)
        assert [r.body for r in note.remarks] == ["remark-a"]
        assert [label.name for label in note.labels] == ["label-a"]
        assert note.writer is not None and note.writer.name == "writer-a"
        notes = await repo.all(load=selectinload(Note.remarks))
        assert {r.body for n in notes for r in n.remarks} == {"remark-a"}
        remarks = await RemarkRepo().all(load="note")
        assert {(r.body, r.note.title) for r in remarks} == {("remark-a", "same")}
    with all_tenants():
        note = await repo.get_by_id(ids["a"]["note"], load="remarks")
        assert note is not None
        assert [r.body for r in note.remarks] == ["remark-a", "remark-b-on-a"]


async def test_derived_joins_and_exists_see_only_the_current_tenant() -> None:
    ids = await seed()
    repo = NoteRepo()
    with tenant("a"):
        # EXISTS over a one-to-many: b's remark hangs off a's note but is b's row
        assert await repo.find_all_by_remarks_body("remark-b-on-a") == []
        assert [n.id for n in await repo.find_all_by_remarks_body("remark-a")] == [ids["a"]["note"]]
        assert await repo.find_all_by_remarks_body("remark-b") == []
        # EXISTS over a many-to-many, and a join of a many-to-one
        assert not await repo.exists_by_labels_name("label-b")
        assert await repo.exists_by_labels_name("label-a")
        assert await repo.find_all_by_writer_name("writer-b") == []
        assert len(await repo.find_all_by_writer_name("writer-a")) == 1
        # a query written by hand with an explicit ON clause
        stmt = select(Note.title, Remark.body).join(Remark, Remark.note_id == Note.id)

        @transactional
        async def joined() -> list[tuple[str, str]]:
            return [tuple(row) for row in (await current_session().execute(stmt)).all()]  # type: ignore[misc]

        assert await joined() == [("same", "remark-a")]


async def test_delete_by_and_updates_touch_only_the_current_tenant() -> None:
    ids = await seed()
    repo = NoteRepo()
    with tenant("a"):
        assert await repo.delete_by_title("same") == 1  # soft delete: one UPDATE

        @transactional
        async def rename_all() -> int:
            result = await current_session().execute(
                update(Note).values(title="renamed"),
                execution_options={"synchronize_session": False},
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

        assert await rename_all() == 1  # a's other note; the deleted one is hidden too
    rows = await raw_rows(
        "SELECT tenant_id, title, deleted_at IS NOT NULL FROM ten_notes ORDER BY id"
    )
    assert [(r[0], r[1], bool(r[2])) for r in rows] == [
        ("a", "same", True),
        ("a", "renamed", False),
        ("b", "same", False),
        ("b", "only-b", False),
    ]
    assert ids["a"]["note"] < ids["b"]["note"]


async def test_all_tenants_sees_every_tenant() -> None:
    await seed()
    repo = NoteRepo()
    with all_tenants():
        assert await repo.count() == 4
        assert {n.tenant_id for n in await repo.all()} == {"a", "b"}
        with tenant("a"):  # a current tenant does not narrow all_tenants()
            assert await repo.count() == 4


async def test_an_entity_already_in_the_session_is_not_shown_to_another_tenant() -> None:
    """``Session.get`` answers from the identity map without SQL: checked separately."""
    ids = await seed()
    repo = NoteRepo()

    @transactional
    async def mixed() -> tuple[object, object]:
        with all_tenants():
            theirs = await repo.get_by_id(ids["b"]["note"])  # now in this session
        with tenant("a"):
            return theirs, await repo.get_by_id(ids["b"]["note"])

    theirs, seen_by_a = await mixed()
    assert theirs is not None and seen_by_a is None


async def test_a_statement_built_under_one_tenant_runs_under_the_current_one() -> None:
    await seed()
    repo = NoteRepo()
    with tenant("a"):
        query = repo.where(Note.title == "same")
    with tenant("b"):
        assert [n.tenant_id for n in await repo.all(query)] == ["b"]


async def test_raw_sql_is_not_filtered() -> None:
    """What the filter does not cover (documented): SQL text never passes the ORM."""
    await seed()
    with tenant("a"):
        rows = await raw_rows("SELECT count(*) FROM ten_notes")
    assert rows[0][0] == 4
    factory = DatabaseSessionFactory.get_instance()
    async with factory.engine.connect() as conn:
        counted = await conn.scalar(select(func.count()).select_from(Note.__table__))
    assert counted == 4
