"""``TenantMixin`` and ``AuditMixin``: columns filled from the current context.

Their values come from Python-side column defaults, so every path that inserts or updates
rows fills them the same way: the unit of work, SQLAlchemy Core ``insert()``/``update()``,
and the repository's bulk paths (``COPY``, multi-row ``INSERT``, upserts), which apply
column defaults themselves. Each default is taken once per statement (every row of one
bulk insert gets the same tenant and actor).
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db.tenancy.context import current_actor, require_tenant

__all__ = ["AuditMixin", "TenantMixin", "actor_default", "tenant_default"]

_LAST = 90  # after the entity's own columns, before the timestamps


def tenant_default(context: Any) -> Any:
    """``tenant_id`` of a new row: the current tenant (:class:`NoTenantError` without one)."""
    return require_tenant("inserting a row of a tenant-scoped entity (TenantMixin)")


def actor_default(context: Any) -> str | None:
    """``created_by`` / ``updated_by``: the current actor as text, ``None`` without one."""
    actor = current_actor()
    return None if actor is None else str(actor)


for _default in (tenant_default, actor_default):
    # once per statement, and the context argument is never read (see repository.rows)
    _default.__dict__.update(viveka_per_statement=True, viveka_context_free=True)


class TenantMixin:
    """``tenant_id``: the tenant a row belongs to (text, up to 64 characters, indexed).

    Rows are filtered by the current tenant (``with tenant(tid):``) on every read and
    filled with it on every insert; work with no current tenant raises
    :class:`~viveka_db.NoTenantError`, and a write of another tenant's row raises
    :class:`~viveka_db.TenantMismatchError`. ``with all_tenants():`` lifts the filter.
    Unique constraints of a tenant-scoped table usually include ``tenant_id``.
    """

    __viveka_tenant__: ClassVar[bool] = True

    tenant_id: Mapped[str] = mapped_column(
        String(64), default=tenant_default, nullable=False, index=True, sort_order=_LAST
    )


class AuditMixin:
    """``created_by`` and ``updated_by``: who wrote the row (``with acting_as(actor):``).

    Both are set on insert; ``updated_by`` moves on every update (unit of work, updating
    upserts, set-based soft deletes). ``None`` when no actor is current. The actor is
    stored as text (``str(actor)``, up to 255 characters).
    """

    created_by: Mapped[str | None] = mapped_column(
        String(255), default=actor_default, nullable=True, sort_order=_LAST
    )
    updated_by: Mapped[str | None] = mapped_column(
        String(255),
        default=actor_default,
        onupdate=actor_default,
        nullable=True,
        sort_order=_LAST,
    )
