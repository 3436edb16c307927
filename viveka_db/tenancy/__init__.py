"""Tenants, actors and soft-delete visibility, applied on every path the library owns.

``context`` holds the task-local values (``tenant``, ``all_tenants``, ``acting_as``,
``include_deleted``); ``mixins`` the columns they fill; ``filters`` the one hook that adds
the read criteria to every ORM statement; ``writes`` the checks of every write path; ``rls``
PostgreSQL row-level security.
"""

from viveka_db.tenancy.context import (
    acting_as,
    all_tenants,
    current_actor,
    current_tenant,
    include_deleted,
    tenant,
)
from viveka_db.tenancy.mixins import AuditMixin, TenantMixin

__all__ = [
    "AuditMixin",
    "TenantMixin",
    "acting_as",
    "all_tenants",
    "current_actor",
    "current_tenant",
    "include_deleted",
    "tenant",
]
