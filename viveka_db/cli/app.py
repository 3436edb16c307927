"""The ``viveka-db`` Typer application: root options and the command groups."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from viveka_db.cli.state import STATE

__all__ = ["build_app"]


def _quiet_alembic(record: logging.LogRecord) -> bool:
    """Keep Alembic's "Running upgrade ..." / "Detected ..." lines, drop its set-up chatter."""
    return not str(record.msg).startswith(("Context impl", "Will assume"))


def _root(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="VIVEKA_CONFIG",
            help="Config file to read: ini, YAML or TOML by extension (default: the first of "
            "./config.ini, .toml, .yaml, .yml); VIVEKA_<SECTION>__<KEY> variables override it.",
            dir_okay=False,
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log SQL and internals.")
    ] = False,
) -> None:
    """viveka-db: database tooling for viveka_db projects."""
    STATE.config = config
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("alembic.runtime.migration", "alembic.autogenerate.compare"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addFilter(_quiet_alembic)
    if verbose:
        logging.getLogger("viveka_db").setLevel(logging.DEBUG)
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)


def _version() -> None:
    """Print the versions of viveka-db, SQLAlchemy and Python."""
    import platform

    import sqlalchemy

    from viveka_db import __version__
    from viveka_db.cli.output import out

    out.print(f"viveka-db {__version__}")
    out.print(f"SQLAlchemy {sqlalchemy.__version__}, Python {platform.python_version()}")


def _demo(
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Write ./viveka_demo.db and keep it, instead of a temp dir."),
    ] = False,
) -> None:
    """Run a short tour on the embedded SQLite database and in-process cache."""
    from viveka_db.cli.demo import run_demo

    run_demo(keep=keep)


def build_app() -> typer.Typer:
    """Assemble the command tree."""
    from viveka_db.cli import (
        alias_commands,
        codegen_commands,
        db_commands,
        migration_commands,
        outbox_commands,
        rls_command,
    )
    from viveka_db.cli.help_format import hide_flag_types

    hide_flag_types()
    app = typer.Typer(
        name="viveka-db",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        help="Database tooling for viveka_db: schema, health, migrations, codegen, outbox.",
    )
    app.callback()(_root)
    app.command("version")(_version)
    app.command("demo")(_demo)

    db = typer.Typer(no_args_is_help=True, help="Create tables, check health, run migrations.")
    db_commands.register(db)
    migration_commands.register(db)
    alias_commands.register(db)
    rls_command.register(db)
    app.add_typer(db, name="db")

    codegen = typer.Typer(no_args_is_help=True, help="Generate code from entities.")
    codegen_commands.register(codegen)
    app.add_typer(codegen, name="codegen")

    outbox = typer.Typer(no_args_is_help=True, help="The transactional outbox and its relay.")
    outbox_commands.register(outbox)
    app.add_typer(outbox, name="outbox")
    return app
