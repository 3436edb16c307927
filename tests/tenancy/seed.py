"""Two tenants' data for the tenancy tests, and helpers that read the tables unfiltered."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.tenancy.models import Label, Note, Remark, Writer
from viveka_db import (
    DatabaseSessionFactory,
    acting_as,
    all_tenants,
    current_session,
    tenant,
    transactional,
)
from viveka_db.base.types import utc_now

TENANTS = ("a", "b")


@transactional
async def _seed_tenant(tid: str) -> dict[str, Any]:
    session = current_session()
    writer = Writer(name=f"writer-{tid}")
    label = Label(name=f"label-{tid}")
    gone = Label(name=f"gone-{tid}", deleted_at=utc_now())
    note = Note(title="same", writer=writer, labels=[label, gone])
    note.remarks = [
        Remark(body=f"remark-{tid}"),
        Remark(body=f"deleted-{tid}", deleted_at=utc_now()),
    ]
    other = Note(title=f"only-{tid}")
    session.add_all([note, other])
    await session.flush()
    return {"note": note.id, "other": other.id, "writer": writer.id, "label": label.id}


@transactional
async def _cross_tenant_remark(note_id: int) -> int:
    # a row of tenant b hanging off tenant a's note: a's relationship loads must skip it
    remark = Remark(note_id=note_id, body="remark-b-on-a")
    current_session().add(remark)
    await current_session().flush()
    return remark.id


async def seed() -> dict[str, dict[str, Any]]:
    """Per tenant: a note titled ``same`` (writer, two labels of which one is deleted, two
    remarks of which one is deleted) and a note titled ``only-<tenant>``."""
    ids: dict[str, dict[str, Any]] = {}
    for tid in TENANTS:
        with tenant(tid), acting_as(f"user-{tid}"):
            ids[tid] = await _seed_tenant(tid)
    with all_tenants(), tenant("b"):
        ids["b"]["cross_remark"] = await _cross_tenant_remark(ids["a"]["note"])
    return ids


async def raw_rows(sql: str, **params: Any) -> list[Any]:
    """Rows of raw SQL on the write engine (no ORM, so no filter)."""
    engine = DatabaseSessionFactory.get_instance().engine
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())
