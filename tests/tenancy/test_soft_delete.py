"""Soft-deleted rows are hidden on every path, relationship loads included."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.tenancy.models import Label, NoteRepo, Remark
from tests.tenancy.seed import seed
from viveka_db import Spec, current_session, include_deleted, tenant, transactional

pytestmark = pytest.mark.usefixtures("db")


@transactional
async def _count(model: type[object]) -> int:
    return int(await current_session().scalar(select(func.count()).select_from(model)) or 0)


async def test_relationship_loads_and_many_to_many_hide_deleted_rows() -> None:
    ids = await seed()
    repo = NoteRepo()
    with tenant("a"):
        note = await repo.get_by_id(ids["a"]["note"], load=["remarks", "labels"])
        assert note is not None
        assert [r.body for r in note.remarks] == ["remark-a"]
        assert [label.name for label in note.labels] == ["label-a"]
        assert await _count(Remark) == 1 and await _count(Label) == 1
        with include_deleted():
            note = await repo.get_by_id(ids["a"]["note"], load=["remarks", "labels"])
            assert note is not None
            assert [r.body for r in note.remarks] == ["remark-a", "deleted-a"]
            assert [label.name for label in note.labels] == ["label-a", "gone-a"]
            assert await _count(Remark) == 2


async def test_derived_exists_hides_deleted_related_rows() -> None:
    await seed()
    repo = NoteRepo()
    with tenant("a"):
        assert await repo.find_all_by_remarks_body("deleted-a") == []
        assert not await repo.exists_by_labels_name("gone-a")
        with include_deleted():
            assert len(await repo.find_all_by_remarks_body("deleted-a")) == 1
            assert await repo.exists_by_labels_name("gone-a")


async def test_a_spec_path_hides_deleted_related_rows() -> None:
    await seed()
    repo = NoteRepo()
    with tenant("a"):
        assert await repo.all(query=Spec.eq("remarks.body", "deleted-a")) == []
        assert await repo.all(query=Spec.eq("labels.name", "gone-a")) == []
        assert len(await repo.all(query=Spec.eq("remarks.body", "remark-a"))) == 1
        with include_deleted():
            assert len(await repo.all(query=Spec.eq("remarks.body", "deleted-a"))) == 1
            assert len(await repo.all(query=Spec.eq("labels.name", "gone-a"))) == 1


async def test_soft_delete_then_restore() -> None:
    ids = await seed()
    repo = NoteRepo()
    with tenant("a"):
        note_id = ids["a"]["other"]
        assert await repo.soft_delete(note_id)
        assert await repo.get_by_id(note_id) is None
        assert await repo.count() == 1
        assert not await repo.exists(note_id)
        assert [n.id for n in await repo.only_deleted().all()] == [note_id]
        assert await repo.with_deleted().count() == 2
        assert (await repo.with_deleted().get_by_id(note_id)) is not None
        with include_deleted():
            assert await repo.count() == 2
            assert (await repo.get_by_id(note_id)) is not None
        assert await repo.restore(note_id)
        assert not await repo.restore(note_id)  # not deleted any more
        assert (await repo.get_by_id(note_id)) is not None
    with tenant("b"):
        assert not await repo.restore(note_id)  # another tenant's row: absent
        assert not await repo.soft_delete(note_id)
