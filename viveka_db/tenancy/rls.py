"""PostgreSQL row-level security: a second wall behind the ORM filter.

With ``[database] tenant_rls = true`` every transaction the library opens starts with::

    SELECT set_config('viveka.tenant_id', $1, true), set_config('viveka.all_tenants', $2, true)

``true`` makes both settings transaction-local (``SET LOCAL``): they end with the
transaction, so a pooled connection never carries one request's tenant into the next. The
values are bound parameters, never formatted into the SQL.

The policies (:func:`policy_statements`, printed by ``viveka-db db rls``) let a row be seen
or written only when its ``tenant_id`` is the transaction's tenant, or inside
``with all_tenants():``. ``FORCE ROW LEVEL SECURITY`` applies them to the table's owner
too; superusers and roles with ``BYPASSRLS`` are never subject to them, so the
application must connect as an ordinary role.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, SessionTransaction

from viveka_db.dialects import adapter_for
from viveka_db.errors import ConfigurationError
from viveka_db.tenancy.context import tenant_filter
from viveka_db.tenancy.mixins import TenantMixin

__all__ = [
    "POLICY_NAME",
    "RLS_KEY",
    "policy_statements",
    "rls_enabled",
    "set_transaction_tenant",
    "tables_without_policy",
    "tenant_tables",
]

RLS_KEY = "viveka_tenant_rls"
"""``Session.info`` flag: the session's data source has ``tenant_rls`` on."""

POLICY_NAME = "viveka_tenant_isolation"

_SET_TENANT = text(
    "SELECT set_config('viveka.tenant_id', :tenant, true), "
    "set_config('viveka.all_tenants', :all_tenants, true)"
)

_CONDITION = (
    "({column}::text = current_setting('viveka.tenant_id', true) "
    "OR current_setting('viveka.all_tenants', true) = 'on')"
)


def rls_enabled(enabled: bool, backend: str) -> bool:
    """``[database] tenant_rls`` of a data source on ``backend``; refused without RLS."""
    if enabled and not adapter_for(backend).has_row_level_security:
        raise ConfigurationError(
            f"[database] tenant_rls = true needs PostgreSQL (row-level security); this data "
            f"source is {backend}: set tenant_rls = false (the tenant filter of the ORM "
            "still applies)"
        )
    return enabled


def set_transaction_tenant(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    """``after_begin``: put the current tenant into the new transaction's settings."""
    if not session.info.get(RLS_KEY):
        return
    filtered, tid = tenant_filter()
    connection.execute(
        _SET_TENANT,
        {"tenant": "" if tid is None else str(tid), "all_tenants": "off" if filtered else "on"},
    )


def tenant_tables(entities: Iterable[object]) -> list[Table]:
    """The tables of the tenant-scoped entities among ``entities``, each once, sorted."""
    tables: dict[str, Table] = {}
    for entity in entities:
        table = getattr(entity, "__table__", None)
        if (
            isinstance(entity, type)
            and issubclass(entity, TenantMixin)
            and isinstance(table, Table)
        ):
            tables[table.key] = table
    return [tables[key] for key in sorted(tables)]


def policy_statements(tables: Sequence[Table]) -> list[str]:
    """The SQL that enables row-level security with the tenant policy on each table."""
    from sqlalchemy.dialects import postgresql

    dialect: Any = postgresql.dialect()  # type: ignore[no-untyped-call]
    preparer = dialect.identifier_preparer
    out: list[str] = []
    for table in tables:
        name = preparer.format_table(table)
        condition = _CONDITION.format(column=preparer.quote(table.c.tenant_id.name))
        policy = preparer.quote(POLICY_NAME)
        out += [
            f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;",
            f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY;",
            f"DROP POLICY IF EXISTS {policy} ON {name};",
            f"CREATE POLICY {policy} ON {name}\n    USING {condition}\n    WITH CHECK {condition};",
        ]
    return out


_STATUS = text(
    "SELECT c.relrowsecurity AND c.relforcerowsecurity, "
    "EXISTS (SELECT 1 FROM pg_policies p WHERE p.schemaname = n.nspname "
    "AND p.tablename = c.relname AND p.policyname = :policy) "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = :table AND n.nspname = COALESCE(:schema, current_schema())"
)


async def tables_without_policy(conn: Any, tables: Sequence[Table]) -> list[str]:
    """The names of ``tables`` that lack forced row-level security or the tenant policy.

    ``conn`` is an ``AsyncConnection`` to PostgreSQL; a missing table counts as lacking.
    """
    lacking: list[str] = []
    for table in tables:
        result = await conn.execute(
            _STATUS, {"policy": POLICY_NAME, "table": table.name, "schema": table.schema}
        )
        row = result.first()
        if row is None or not (row[0] and row[1]):
            lacking.append(table.fullname)
    return lacking
