"""Migrations on Alembic: ``db migrations init``, ``revision``, ``upgrade``, ``downgrade``, ..."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from viveka_db.cli.db_commands import ModelsOption, model_names
from viveka_db.cli.output import escape, out
from viveka_db.cli.state import STATE

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["register"]

DirectoryOption = Annotated[
    Path,
    typer.Option(
        "--directory",
        "-d",
        envvar="VIVEKA_MIGRATIONS_DIR",
        help="The migrations directory.",
        file_okay=False,
    ),
]
SqlOption = Annotated[
    bool, typer.Option("--sql", help="Print the SQL instead of running it (offline mode).")
]
UNVERSIONED = (
    "(none: the database is unversioned, not versioned by any migration yet. "
    "Run `viveka-db db upgrade`)"
)
_RELATIVE = {"ignore_unknown_options": True}  # so `downgrade -1` is a revision, not an option


def _config(directory: Path, models: list[str] | None = None) -> Config:
    from viveka_db.migrations.setup import alembic_config

    return alembic_config(directory, STATE.settings(), model_names(models))


def migrations_init(directory: DirectoryOption = Path("migrations")) -> None:
    """Create a migrations directory wired to viveka_db (no env.py editing needed)."""
    from viveka_db.migrations.setup import create_directory

    for path in create_directory(directory):
        out.print(f"created {escape(str(path))}")
    out.print('next: viveka-db db revision -m "initial" --autogenerate')


def revision(
    message: Annotated[str, typer.Option("--message", "-m", help="What the revision does.")],
    autogenerate: Annotated[
        bool, typer.Option("--autogenerate", help="Diff the entities against the database.")
    ] = False,
    models: ModelsOption = None,
    directory: DirectoryOption = Path("migrations"),
) -> None:
    """Create a revision: from the entities (--autogenerate) or empty, for op.execute() SQL."""
    from alembic import command

    command.revision(_config(directory, models), message=message, autogenerate=autogenerate)


def upgrade(
    revision: Annotated[str, typer.Argument(help="Target: head, a revision id, or +N.")] = "head",
    sql: SqlOption = False,
    directory: DirectoryOption = Path("migrations"),
) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from alembic import command

    command.upgrade(_config(directory), revision, sql=sql)


def downgrade(
    revision: Annotated[str, typer.Argument(help="Target: -1 (one step), a revision id, base.")],
    sql: SqlOption = False,
    directory: DirectoryOption = Path("migrations"),
) -> None:
    """Revert migrations down to REVISION (-1 reverts the last one)."""
    from alembic import command

    command.downgrade(_config(directory), revision, sql=sql)


def current(
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    directory: DirectoryOption = Path("migrations"),
) -> None:
    """Show the revision the database is at (or that it is not versioned yet)."""
    from alembic import command

    from viveka_db.migrations.status import migration_status

    config = _config(directory)
    if not migration_status(config, STATE.settings()).current:
        out.print(UNVERSIONED)
        return
    command.current(config, verbose=verbose)


def status(directory: DirectoryOption = Path("migrations")) -> None:
    """Show the current revision, the head, and the migrations not yet applied."""
    from viveka_db.migrations.status import migration_status

    result = migration_status(_config(directory), STATE.settings())
    out.print(f"current: {', '.join(result.current) or UNVERSIONED}")
    out.print(f"head:    {', '.join(result.heads) or '(no revisions yet)'}")
    if result.pending:
        out.print(f"pending: {len(result.pending)}")
        for line in result.pending:
            out.print(f"  {escape(line)}")
    else:
        out.print("up to date")


def history(
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    directory: DirectoryOption = Path("migrations"),
) -> None:
    """List the revisions, newest first."""
    from alembic import command

    command.history(_config(directory), verbose=verbose, indicate_current=False)


def register(db: typer.Typer) -> None:
    """Add the migration commands to the ``db`` group."""
    migrations = typer.Typer(no_args_is_help=True, help="Set up the migrations directory.")
    migrations.command("init")(migrations_init)
    db.add_typer(migrations, name="migrations")
    db.command("revision")(revision)
    db.command("upgrade", context_settings=_RELATIVE)(upgrade)
    db.command("downgrade", context_settings=_RELATIVE)(downgrade)
    db.command("current")(current)
    db.command("status")(status)
    db.command("history")(history)
