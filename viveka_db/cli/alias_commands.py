"""``db create``, ``db up``, ``db down``: other names of ``revision``, ``upgrade``, ``downgrade``.

They are the migration commands' names in persistkat's documentation, kept so that its
command lines run as written. Each takes the same options and does the same thing as the
command it stands for; only ``create`` takes the revision's name as an argument, and
``down`` defaults to ``-1`` (revert the last revision).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from viveka_db.cli.db_commands import ModelsOption
from viveka_db.cli.migration_commands import (
    RELATIVE,
    AutogenerateOption,
    DirectoryOption,
    SqlOption,
    SqlRevisionOption,
    create_revision,
    downgrade,
    upgrade,
)

__all__ = ["register"]


def create(
    name: Annotated[str, typer.Argument(help="What the revision does (its message).")],
    autogenerate: AutogenerateOption = False,
    sql: SqlRevisionOption = False,
    models: ModelsOption = None,
    directory: DirectoryOption = Path("migrations"),
) -> None:
    """Alias of `db revision -m NAME`: create a revision named NAME."""
    create_revision(name, autogenerate=autogenerate, sql=sql, models=models, directory=directory)


def up(
    revision: Annotated[str, typer.Argument(help="Target: head, a revision id, or +N.")] = "head",
    sql: SqlOption = False,
    directory: DirectoryOption = Path("migrations"),
) -> None:
    """Alias of `db upgrade`: apply migrations up to REVISION (default: head)."""
    upgrade(revision, sql=sql, directory=directory)


def down(
    revision: Annotated[
        str, typer.Argument(help="Target: -1 (the last revision), a revision id, base.")
    ] = "-1",
    sql: SqlOption = False,
    directory: DirectoryOption = Path("migrations"),
) -> None:
    """Alias of `db downgrade -1`: revert the last revision (or down to REVISION)."""
    downgrade(revision, sql=sql, directory=directory)


def register(db: typer.Typer) -> None:
    """Add the aliases to the ``db`` group."""
    db.command("create")(create)
    db.command("up", context_settings=RELATIVE)(up)
    db.command("down", context_settings=RELATIVE)(down)
