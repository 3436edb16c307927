"""``db status``: the revisions the database is at, and those still to apply."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from alembic.config import Config

    from viveka_db.config import VivekaSettings

__all__ = ["MigrationStatus", "migration_status"]


@dataclass(frozen=True)
class MigrationStatus:
    """Where the database is, where the scripts end, and what lies between (oldest first)."""

    current: tuple[str, ...]
    heads: tuple[str, ...]
    pending: tuple[str, ...]
    """``"<rev>  <message>"`` for each revision not yet applied, oldest first."""


def migration_status(config: Config, settings: VivekaSettings) -> MigrationStatus:
    """Compare the database's ``alembic_version`` with the scripts of ``config``."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.ext.asyncio import create_async_engine

    from viveka_db.config.urls import build_url

    script = ScriptDirectory.from_config(config)

    def read_current(connection: Connection) -> tuple[str, ...]:
        return tuple(MigrationContext.configure(connection).get_current_heads())

    async def fetch() -> tuple[str, ...]:
        engine = create_async_engine(build_url(settings.database), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(read_current)
        finally:
            await engine.dispose()

    current = asyncio.run(fetch())
    heads = tuple(script.get_heads())
    pending = [
        f"{rev.revision}  {rev.doc or ''}".rstrip()
        for rev in script.iterate_revisions(heads, current or "base")
        if rev.revision not in current
    ]
    return MigrationStatus(current=current, heads=heads, pending=tuple(reversed(pending)))
