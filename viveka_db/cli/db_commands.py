"""``db init`` and ``db health``."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from viveka_db.cli.errors import CliError, scrub
from viveka_db.cli.output import err, escape, out
from viveka_db.cli.state import STATE

__all__ = ["NO_MODELS", "ModelsOption", "model_names", "register"]

NO_MODELS = (
    "no model modules given: pass --models myapp.models or set [database] models "
    "(VIVEKA_DATABASE__MODELS)"
)

ModelsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--models",
        help="Module or package defining entities (repeat or comma-separate); "
        "default: \\[database] models.",
    ),
]


def model_names(models: list[str] | None) -> list[str]:
    """``--models`` if given, otherwise ``[database] models``."""
    from viveka_db.cli.models import split_names

    names = split_names(models or [])
    return names or list(STATE.settings().database.models)


def init(models: ModelsOption = None) -> None:
    """Create the tables of the entities in MODELS, and the outbox table, that do not exist
    yet (never drops)."""
    from viveka_db.base.discovery import entities_in, import_models
    from viveka_db.cache.setup import close_cache
    from viveka_db.config.urls import build_url, mask_url
    from viveka_db.outbox.table import OutboxRecord
    from viveka_db.session.db_session import DatabaseSessionFactory

    names = model_names(models)
    if not names:
        raise CliError(NO_MODELS)
    settings = STATE.settings()
    import_models(names)
    entities = entities_in(names)
    if not entities:
        raise CliError(f"no entities found in {', '.join(names)}")
    tables = [entity.__table__.name for entity in entities]
    out.print(f"database: {escape(mask_url(build_url(settings.database)))}")

    async def create() -> tuple[list[str], list[str]]:
        factory = DatabaseSessionFactory(settings)
        try:
            return await factory.create_all(entities), await factory.create_all([OutboxRecord])
        finally:
            await factory.dispose()
            await close_cache()

    created, outbox = asyncio.run(create())
    existed = [name for name in tables if name not in created]
    out.print(f"created: {', '.join(created) if created else '(none)'}")
    out.print(f"already existed: {', '.join(existed) if existed else '(none)'}")
    out.print(f"outbox table: {OutboxRecord.__tablename__} ({'created' if outbox else 'existed'})")


def health(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each service.")] = 10.0,
) -> None:
    """Connect to the database (and the cache, if configured); report versions and latency."""
    from viveka_db.cli.health import run_checks

    checks = asyncio.run(run_checks(STATE.settings(), timeout))
    secrets = STATE.secrets()
    for check in checks:
        detail = escape(scrub(check.detail, secrets))
        if check.ok:
            millis = f"  {check.millis:.1f} ms" if check.millis is not None else ""
            out.print(f"{check.name}: ok  {detail}  {escape(check.target)}{millis}")
        else:
            err.print(f"{check.name}: FAILED  {escape(check.target)}: {detail}")
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


def register(db: typer.Typer) -> None:
    """Add ``init`` and ``health`` to the ``db`` group."""
    db.command("init")(init)
    db.command("health")(health)
