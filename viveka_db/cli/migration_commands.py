"""Migrations on Alembic: ``db migrations init``, ``revision``, ``upgrade``, ``downgrade``, ..."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from sqlalchemy import MetaData

from viveka_db.cli.db_commands import NO_MODELS, ModelsOption, model_names
from viveka_db.cli.errors import CliError
from viveka_db.cli.output import escape, out
from viveka_db.cli.state import STATE

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "AutogenerateOption",
    "DirectoryOption",
    "SqlOption",
    "SqlRevisionOption",
    "RELATIVE",
    "create_revision",
    "downgrade",
    "register",
    "upgrade",
]

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
SqlRevisionOption = Annotated[
    bool,
    typer.Option(
        "--sql", help="Write a plain-SQL revision: its upgrade and downgrade are SQL you write."
    ),
]
AutogenerateOption = Annotated[
    bool, typer.Option("--autogenerate", help="Diff the entities against the database.")
]
UNVERSIONED = (
    "(none: the database is unversioned, not versioned by any migration yet. "
    "Run `viveka-db db upgrade`)"
)
RELATIVE = {"ignore_unknown_options": True}  # so `downgrade -1` is a revision, not an option


def _config(directory: Path, models: list[str] | None = None) -> Config:
    from viveka_db.migrations.setup import alembic_config

    return alembic_config(directory, STATE.settings(), model_names(models))


def migrations_init(directory: DirectoryOption = Path("migrations")) -> None:
    """Create a migrations directory wired to viveka_db (no env.py editing needed)."""
    _create_directory(directory)
    out.print('next: viveka-db db revision -m "initial" --autogenerate')


def _create_directory(directory: Path) -> None:
    from viveka_db.migrations.setup import create_directory

    for path in create_directory(directory):
        out.print(f"created {escape(str(path))}")


def revision(
    message: Annotated[str, typer.Option("--message", "-m", help="What the revision does.")],
    autogenerate: AutogenerateOption = False,
    sql: SqlRevisionOption = False,
    models: ModelsOption = None,
    directory: DirectoryOption = Path("migrations"),
) -> None:
    """Create a revision: from the entities (--autogenerate), of plain SQL (--sql), or empty."""
    create_revision(message, autogenerate=autogenerate, sql=sql, models=models, directory=directory)


def create_revision(
    message: str, *, autogenerate: bool, sql: bool, models: list[str] | None, directory: Path
) -> None:
    """What ``db revision`` (and its alias ``db create``) does."""
    from alembic import command

    if sql and autogenerate:
        raise CliError(
            "--sql and --autogenerate do not combine: --sql writes a revision whose SQL you "
            "write; --autogenerate writes the operations it finds"
        )
    names = model_names(models)
    if not directory.exists():  # the first revision of a project sets the directory up
        if autogenerate and not names:
            raise CliError(_no_entities(names))
        _create_directory(directory)
    config = _config(directory, models)
    if sql:
        from viveka_db.migrations.sql_revision import create_sql_revision

        create_sql_revision(config, message)
        return
    hook = _refuse_without_entities(names) if autogenerate else None
    command.revision(
        config, message=message, autogenerate=autogenerate, process_revision_directives=hook
    )


def _refuse_without_entities(names: list[str]) -> Callable[[Any, Any, list[Any]], None]:
    """A revision hook failing an autogenerate that has no entity to compare (writes nothing)."""

    from viveka_db.base.db_base import application_tables

    def check(context: Any, revision: Any, directives: list[Any]) -> None:
        target: object = context.opts.get("target_metadata")
        given = cast("Sequence[object]", target) if isinstance(target, Sequence) else [target]
        if any(isinstance(m, MetaData) and application_tables(m) for m in given):
            return  # viveka_db's own tables (the outbox) are not the user's entities
        raise CliError(_no_entities(names))

    return check


def _no_entities(names: list[str]) -> str:
    why = f"no entities found in {', '.join(names)}" if names else NO_MODELS
    return f"--autogenerate found no entities to compare ({why}); nothing was written"


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
    from alembic.util import CommandError

    try:
        command.downgrade(_config(directory), revision, sql=sql)
    except CommandError as exc:
        if revision.startswith("-") and str(exc).startswith("Relative revision"):
            raise CliError(
                f"cannot revert {revision[1:]} revision(s): fewer are applied to the database "
                "(see `viveka-db db status`)"
            ) from None
        raise


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
    db.command("upgrade", context_settings=RELATIVE)(upgrade)
    db.command("downgrade", context_settings=RELATIVE)(downgrade)
    db.command("current")(current)
    db.command("status")(status)
    db.command("history")(history)
