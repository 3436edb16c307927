"""Writes of tenant-scoped rows: fill ``tenant_id``, refuse another tenant's rows.

Two entry points cover every write path:

* :func:`check_flush`, a ``before_flush`` hook of every session the library makes, for the
  unit of work (``save``, ``update``, ``delete``, ``soft_delete``, ``restore``, the
  unit-of-work fallback of ``insert_all``);
* :func:`check_tenant_values`, called by the bulk paths (``COPY``, multi-row ``INSERT``,
  upserts) on the ``tenant_id`` values of their rows after defaults were applied.

New rows without a ``tenant_id`` get the current tenant (the column default does the same
for Core statements). A row that carries another tenant's id, or an existing row of
another tenant that is changed or deleted, raises :class:`TenantMismatchError`; with no
current tenant, :class:`NoTenantError`. Inside ``with all_tenants():`` rows may belong to
any tenant, and each new row needs a ``tenant_id`` (given, or from a current tenant).
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, UOWTransaction

from viveka_db.errors import TenantMismatchError
from viveka_db.tenancy.context import require_tenant, tenant_filter
from viveka_db.tenancy.mixins import TenantMixin

__all__ = ["check_entity_tenant", "check_flush", "check_tenant_values", "visible_to_tenant"]


def _mismatch(entity: str, found: Any, tid: Any) -> TenantMismatchError:
    # Name the entity and the current tenant; never the other tenant's id (it tells a
    # caller which tenants exist).
    return TenantMismatchError(
        f"a {entity} row of another tenant cannot be written while tenant {tid!r} is "
        "current; tenant_id must be the current tenant (leave it unset to have it filled), "
        "or use `with all_tenants():` for work across tenants"
    )


def check_tenant_values(entity: str, values: list[Any]) -> list[Any]:
    """``values`` (one ``tenant_id`` per row) checked, ``None`` replaced by the tenant.

    Changes ``values`` in place and returns it.
    """
    filtered, tid = tenant_filter()
    if filtered:
        tid = require_tenant(f"writing {entity} rows")
    elif None in values:
        tid = require_tenant(f"inserting {entity} rows without a tenant_id")
    if None in values:
        values[:] = [tid if value is None else value for value in values]
    if filtered and any(value != tid for value in values):
        raise _mismatch(entity, next(v for v in values if v != tid), tid)
    return values


def visible_to_tenant(instance: object) -> bool:
    """Whether a loaded ``instance`` may be shown under the current tenant (an entity the
    session already holds is returned by ``Session.get`` without a statement)."""
    if not isinstance(instance, TenantMixin):
        return True
    filtered, _ = tenant_filter()
    if not filtered:
        return True
    return instance.__dict__.get("tenant_id") == require_tenant(
        f"reading a {type(instance).__name__}"
    )


def check_entity_tenant(entity: object) -> None:
    """Refuse an entity that carries another tenant's ``tenant_id`` (before a merge)."""
    if not isinstance(entity, TenantMixin):
        return
    value = entity.__dict__.get("tenant_id")
    filtered, _ = tenant_filter()
    if value is None or not filtered:
        return
    tid = require_tenant(f"writing a {type(entity).__name__}")
    if value != tid:
        raise _mismatch(type(entity).__name__, value, tid)


def check_flush(session: Session, flush_context: UOWTransaction, instances: Any) -> None:
    """``before_flush``: fill and check ``tenant_id`` of the tenant-scoped entities."""
    new = [obj for obj in session.new if isinstance(obj, TenantMixin)]
    changed = [obj for obj in _changed(session) if isinstance(obj, TenantMixin)]
    if not new and not changed:
        return
    filtered, tid = tenant_filter()
    for obj in new:
        name = type(obj).__name__
        if obj.__dict__.get("tenant_id") is None:
            obj.tenant_id = typing.cast(str, require_tenant(f"inserting a {name}"))
        elif filtered:
            tid = require_tenant(f"inserting a {name}")
            if obj.tenant_id != tid:
                raise _mismatch(name, obj.tenant_id, tid)
    if not filtered:
        return
    for obj in changed:
        name = type(obj).__name__
        tid = require_tenant(f"changing a {name}")
        history = sa_inspect(obj).attrs["tenant_id"].history
        for value in (*history.added, *history.unchanged, *history.deleted):
            if value != tid:
                raise _mismatch(name, value, tid)


def _changed(session: Session) -> Iterable[object]:
    yield from session.dirty
    yield from session.deleted
