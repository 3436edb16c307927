"""The current tenant, actor and soft-delete visibility: task-local context values.

Each is a :class:`~contextvars.ContextVar`, so it follows the code across ``await`` and
into tasks created inside (which start with a copy), and concurrent requests never see
each other's values. The context managers restore the previous value on exit, so they
nest: ``with tenant("b"):`` inside ``with tenant("a"):`` is tenant ``b`` until it ends.

These values are read once per statement, when it is executed; nothing is captured when
a query is *built*, so a statement built under one tenant and run under another is
filtered by the one current when it runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeAlias

from viveka_db.errors import NoTenantError

__all__ = [
    "TenantId",
    "acting_as",
    "all_tenants",
    "current_actor",
    "current_tenant",
    "deleted_rows_visible",
    "include_deleted",
    "require_tenant",
    "tenant",
    "tenant_filter",
]

TenantId: TypeAlias = str | int | uuid.UUID
"""What identifies a tenant: the value stored in ``tenant_id``."""

_tenant: ContextVar[TenantId | None] = ContextVar("viveka_tenant", default=None)
_all_tenants: ContextVar[bool] = ContextVar("viveka_all_tenants", default=False)
_actor: ContextVar[Any] = ContextVar("viveka_actor", default=None)
_include_deleted: ContextVar[bool] = ContextVar("viveka_include_deleted", default=False)


def _checked_tenant(tid: object) -> TenantId:
    if isinstance(tid, bool) or not isinstance(tid, str | int | uuid.UUID):
        raise TypeError(
            f"a tenant id is a str, int or UUID (the value stored in tenant_id), "
            f"got {type(tid).__name__}"
        )
    if isinstance(tid, str) and not tid.strip():
        raise ValueError("a tenant id may not be empty or blank")
    return tid


@contextmanager
def tenant(tid: TenantId) -> Generator[TenantId]:
    """Make ``tid`` the current tenant for the block (and the tasks it creates).

    Every read of a tenant-scoped entity (``TenantMixin``) sees only that tenant's rows,
    and every write fills or checks ``tenant_id`` against it.
    """
    token = _tenant.set(_checked_tenant(tid))
    try:
        yield tid
    finally:
        _tenant.reset(token)


def current_tenant() -> TenantId | None:
    """The current tenant id, or ``None`` outside any ``with tenant(...):``."""
    return _tenant.get()


@contextmanager
def all_tenants() -> Generator[None]:
    """Lift the tenant filter for the block: reads see every tenant's rows.

    The explicit escape for jobs (migrations of data, reports, clean-ups). Writes inside
    still need a ``tenant_id``: it is taken from a current tenant if there is one,
    otherwise each new row must carry its own.
    """
    token = _all_tenants.set(True)
    try:
        yield
    finally:
        _all_tenants.reset(token)


def tenant_filter() -> tuple[bool, TenantId | None]:
    """``(filtered, tenant)``: whether reads are filtered, and by which tenant (if any)."""
    return (not _all_tenants.get(), _tenant.get())


def require_tenant(what: str) -> TenantId:
    """The current tenant; :class:`NoTenantError` naming ``what`` needed it if there is none."""
    tid = _tenant.get()
    if tid is None:
        raise NoTenantError(
            f"{what} is tenant-scoped but no tenant is current; run it inside "
            "`with tenant(tenant_id):` (DbMiddleware(tenant_resolver=...) does that per "
            "request), or inside `with all_tenants():` for work across tenants"
        )
    return tid


@contextmanager
def acting_as(actor: Any) -> Generator[Any]:
    """Make ``actor`` (a user id or name) the one ``AuditMixin`` records for the block."""
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


def current_actor() -> Any:
    """The current actor, or ``None`` outside any ``with acting_as(...):``."""
    return _actor.get()


@contextmanager
def include_deleted() -> Generator[None]:
    """Show soft-deleted rows (``SoftDeleteMixin``) on every read inside the block."""
    token = _include_deleted.set(True)
    try:
        yield
    finally:
        _include_deleted.reset(token)


def deleted_rows_visible() -> bool:
    """Whether ``with include_deleted():`` is active."""
    return _include_deleted.get()
