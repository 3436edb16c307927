"""With no current tenant, every path of a tenant-scoped entity raises NoTenantError."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.tenancy.models import Counter, CounterRepo, Keyed, KeyedRepo, Note, NoteRepo
from tests.tenancy.seed import seed
from viveka_db import NoTenantError, current_session, tenant, transactional


@dataclass
class Title:
    title: str


@transactional
async def _orm_update() -> None:
    await current_session().execute(
        update(Note).values(title="x"), execution_options={"synchronize_session": False}
    )


@transactional
async def _select_by_hand() -> list[Any]:
    return list((await current_session().scalars(select(Note.title))).all())


@transactional
async def _save_with_session() -> None:
    current_session().add(Note(title="new"))
    await current_session().flush()


async def _stream() -> list[Note]:
    return [n async for n in NoteRepo().stream()]


PATHS: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
    "get_by_id": lambda ids: NoteRepo().get_by_id(ids["a"]["note"]),
    "get_by_id load=": lambda ids: NoteRepo().get_by_id(ids["a"]["note"], load="remarks"),
    "exists": lambda ids: NoteRepo().exists(ids["a"]["note"]),
    "get_all": lambda ids: NoteRepo().get_all(),
    "all": lambda ids: NoteRepo().all(),
    "find_by": lambda ids: NoteRepo().find_by(title="same"),
    "count": lambda ids: NoteRepo().count(),
    "count(query)": lambda ids: NoteRepo().count(NoteRepo().where(Note.title == "same")),
    "count_grouped_by": lambda ids: NoteRepo().count_grouped_by(Note.title),
    "get_page": lambda ids: NoteRepo().get_page(1, 10),
    "get_slice": lambda ids: NoteRepo().get_slice(size=10),
    "stream": lambda ids: _stream(),
    "project": lambda ids: NoteRepo().project(Title),
    "derived EXISTS": lambda ids: NoteRepo().find_all_by_remarks_body("remark-a"),
    "derived join": lambda ids: NoteRepo().find_all_by_writer_name("writer-a"),
    "exists_by": lambda ids: NoteRepo().exists_by_labels_name("label-a"),
    "count_by": lambda ids: NoteRepo().count_by_title("same"),
    "delete_by": lambda ids: NoteRepo().delete_by_title("same"),
    "delete": lambda ids: NoteRepo().delete(ids["a"]["note"]),
    "soft_delete": lambda ids: NoteRepo().soft_delete(ids["a"]["note"]),
    "restore": lambda ids: NoteRepo().restore(ids["a"]["note"]),
    "ORM update": lambda ids: _orm_update(),
    "select by hand": lambda ids: _select_by_hand(),
    "save": lambda ids: NoteRepo().save(Note(title="new")),
    "session.add": lambda ids: _save_with_session(),
    "insert_all entities": lambda ids: CounterRepo().insert_all([Counter(n=i) for i in range(3)]),
    "insert_all dicts": lambda ids: CounterRepo().insert_all([{"n": i} for i in range(3)]),
    "upsert_all": lambda ids: KeyedRepo().upsert_all([{"id": 1, "name": "x"}]),
    "get_or_create_all": lambda ids: KeyedRepo().get_or_create_all(
        [Keyed(id=1, name="x")], key="id"
    ),
}


@pytest.mark.usefixtures("db")
@pytest.mark.parametrize("path", list(PATHS))
async def test_no_tenant_raises_on_every_path(path: str) -> None:
    ids = await seed()
    with pytest.raises(NoTenantError, match="no tenant is current"):
        await PATHS[path](ids)
    with tenant("a"):  # the same call works with a tenant
        await PATHS[path](ids)
