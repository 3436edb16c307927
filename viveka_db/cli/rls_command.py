"""``db rls``: print the row-level security policies of the tenant tables, or check them."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from viveka_db.cli.db_commands import ModelsOption, model_names
from viveka_db.cli.errors import CliError
from viveka_db.cli.output import err, escape, out
from viveka_db.cli.state import STATE

__all__ = ["register"]


def _tenant_tables(models: list[str] | None) -> list[Any]:
    from viveka_db.base.discovery import entities_in, import_models
    from viveka_db.tenancy.rls import tenant_tables

    names = model_names(models)
    if not names:
        raise CliError(
            "no model modules given: pass --models myapp.models or set [database] models "
            "(VIVEKA_DATABASE__MODELS)"
        )
    import_models(names)
    tables = tenant_tables(entities_in(names))
    if not tables:
        raise CliError(f"no tenant-scoped entities (TenantMixin) found in {', '.join(names)}")
    return tables


async def _lacking(tables: list[Any]) -> list[str]:
    from viveka_db.cache.setup import close_cache
    from viveka_db.config.urls import build_url
    from viveka_db.dialects import adapter_for
    from viveka_db.session.db_session import DatabaseSessionFactory
    from viveka_db.tenancy.rls import tables_without_policy

    settings = STATE.settings()
    if not adapter_for(build_url(settings.database).get_backend_name()).has_row_level_security:
        raise CliError("row-level security needs PostgreSQL; this data source is not one")
    factory = DatabaseSessionFactory(settings)
    try:
        async with factory.engine.connect() as conn:
            return await tables_without_policy(conn, tables)
    finally:
        await factory.dispose()
        await close_cache()


def rls(
    models: ModelsOption = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Connect and fail (exit 1) if a tenant table lacks row-level security or "
            "its policy, instead of printing the SQL.",
        ),
    ] = False,
) -> None:
    """Print the PostgreSQL row-level security SQL for every tenant table in MODELS.

    Run the printed SQL as the tables' owner (in a migration); set [database] tenant_rls =
    true so each transaction tells the policies its tenant.
    """
    from viveka_db.tenancy.rls import policy_statements

    tables = _tenant_tables(models)
    if not check:
        for statement in policy_statements(tables):
            out.print(escape(statement))
        return
    lacking = asyncio.run(_lacking(tables))
    if lacking:
        err.print(
            "row-level security missing on: "
            + escape(", ".join(lacking))
            + "; run the SQL that `viveka-db db rls` prints"
        )
        raise typer.Exit(1)
    out.print(f"row-level security: ok on {len(tables)} tenant table(s)")


def register(db: typer.Typer) -> None:
    """Add ``rls`` to the ``db`` group."""
    db.command("rls")(rls)
