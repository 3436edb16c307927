"""The body of a migrations directory's ``env.py``: :func:`run_migrations`.

The database comes from viveka_db's configuration (``--config``, ``$VIVEKA_CONFIG``,
``./config.ini`` and ``VIVEKA_*`` variables); the target metadata is
:class:`~viveka_db.VivekaDbBase`'s, after importing the modules named by ``models`` or
``[database] models``. Async URLs work as they are: the migration runs on the async
engine's connection through ``run_sync``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["CONFIG_ATTRIBUTE", "MODELS_ATTRIBUTE", "run_migrations"]

CONFIG_ATTRIBUTE = "viveka_settings"
"""``alembic.config.Config.attributes`` key holding the :class:`VivekaSettings` to use."""
MODELS_ATTRIBUTE = "viveka_models"
"""``Config.attributes`` key holding the model module names given on the command line."""


def _refuse_dropping_everything(script: Any) -> None:
    """With no entities loaded, autogenerate would drop every table: refuse instead."""
    from viveka_db.errors import ConfigurationError

    ops = getattr(script, "upgrade_ops", None)
    if ops is not None and not ops.is_empty():
        raise ConfigurationError(
            "autogenerate found no entities, so it would drop every table; nothing was "
            "written. Name the model modules with --models or [database] models "
            "(VIVEKA_DATABASE__MODELS)"
        )


def _revision_directives(
    metadata: MetaData, user_hook: Callable[..., None] | None
) -> Callable[[Any, Any, list[Any]], None]:
    """Our checks and additions to a generated revision, then the caller's own hook."""
    from viveka_db.base.db_base import application_tables
    from viveka_db.migrations.render import drop_enum_types, skip_index_drops_of_dropped_tables

    def process(context: Any, revision: Any, directives: list[Any]) -> None:
        script = directives[0] if directives else None
        if script is not None:
            if not application_tables(metadata):  # viveka_db's own tables at most
                _refuse_dropping_everything(script)
            skip_index_drops_of_dropped_tables(script)
            drop_enum_types(metadata, script)
        if user_hook is not None:
            user_hook(context, revision, directives)

    return process


def _transactional_sqlite(engine: AsyncEngine) -> None:
    """Let SQLite run DDL inside the migration's transaction (SQLAlchemy's pysqlite recipe).

    The driver otherwise commits before every DDL statement, so a failed upgrade leaves the
    tables it created, and an empty ``alembic_version``, behind.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")


def run_migrations(
    *,
    models: Sequence[str] | None = None,
    target_metadata: MetaData | None = None,
    include_object: Callable[..., bool] | None = None,
    **configure_options: Any,
) -> None:
    """Run the current Alembic command (online or offline) against the configured database.

    ``models`` adds model modules to those of the configuration; ``target_metadata``
    replaces :class:`VivekaDbBase`'s metadata; ``include_object`` and ``configure_options``
    go to ``context.configure`` (e.g. ``compare_server_default=True``).
    """
    from alembic import context

    from viveka_db.base.db_base import VivekaDbBase
    from viveka_db.base.discovery import import_models
    from viveka_db.config import VivekaSettings, load_settings
    from viveka_db.config.urls import build_url
    from viveka_db.dialects import adapter_for
    from viveka_db.migrations.render import render_item

    config = context.config
    settings = config.attributes.get(CONFIG_ATTRIBUTE)
    if not isinstance(settings, VivekaSettings):
        settings = load_settings(config.get_main_option("viveka_config") or None)
    names = [
        *settings.database.models,
        *config.attributes.get(MODELS_ATTRIBUTE, ()),
        *(models or ()),
    ]
    import_models(list(dict.fromkeys(names)))
    metadata = target_metadata if target_metadata is not None else VivekaDbBase.metadata
    url = build_url(settings.database)
    sqlite = adapter_for(url.get_backend_name()).driver_commits_before_ddl
    options: dict[str, Any] = {
        "target_metadata": metadata,
        "compare_type": True,
        "render_as_batch": adapter_for(url.get_backend_name()).batch_migrations,
        "transactional_ddl": True if sqlite else None,  # see _transactional_sqlite
        "render_item": render_item,
        **configure_options,
    }
    if include_object is not None:
        options["include_object"] = include_object
    options["process_revision_directives"] = _revision_directives(
        metadata, configure_options.get("process_revision_directives")
    )

    def run_on(connection: Connection) -> None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()

    if context.is_offline_mode():
        context.configure(
            url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **options
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):  # the Alembic cookbook's "share a connection"
        run_on(connection)
        return

    async def run_async() -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(url, poolclass=NullPool)
        if sqlite:
            _transactional_sqlite(engine)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(run_on)
        finally:
            await engine.dispose()

    asyncio.run(run_async())
