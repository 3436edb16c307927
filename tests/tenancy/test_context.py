"""The tenant, actor and visibility context values: task-local, nesting, checked."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from viveka_db import (
    acting_as,
    all_tenants,
    current_actor,
    current_tenant,
    include_deleted,
    tenant,
)
from viveka_db.tenancy.context import deleted_rows_visible, tenant_filter


async def test_tenant_is_task_local_survives_awaits_and_is_inherited_by_child_tasks() -> None:
    seen: dict[str, object] = {}

    async def request(tid: str) -> None:
        with tenant(tid):
            await asyncio.sleep(0.01)
            child = asyncio.create_task(asyncio.sleep(0, result=current_tenant()))
            seen[tid] = (current_tenant(), await child)

    await asyncio.gather(request("a"), request("b"))
    assert seen == {"a": ("a", "a"), "b": ("b", "b")}
    assert current_tenant() is None


def test_context_managers_nest_and_restore() -> None:
    with tenant("a"):
        with tenant("b"):
            assert current_tenant() == "b"
        assert current_tenant() == "a"
        with all_tenants():
            assert tenant_filter() == (False, "a")
        assert tenant_filter() == (True, "a")
    with acting_as("ann"), include_deleted():
        assert current_actor() == "ann" and deleted_rows_visible()
    assert current_actor() is None and not deleted_rows_visible()


def test_tenant_ids_are_checked() -> None:
    with tenant(uuid.UUID(int=1)), tenant(5):
        pass
    for bad in (None, 1.5, True, b"a", ["a"]):
        with pytest.raises(TypeError, match="str, int or UUID"), tenant(bad):  # type: ignore[arg-type]
            pass
    with pytest.raises(ValueError, match="blank"), tenant("  "):
        pass


def test_exported_from_the_package() -> None:
    import viveka_db

    for name in (
        "TenantMixin",
        "AuditMixin",
        "tenant",
        "current_tenant",
        "all_tenants",
        "acting_as",
        "current_actor",
        "include_deleted",
        "NoTenantError",
        "TenantMismatchError",
    ):
        assert name in viveka_db.__all__
