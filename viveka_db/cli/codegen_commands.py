"""``codegen schemas MODULE``: Pydantic models for the entities of a module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from viveka_db.cli.errors import CliError
from viveka_db.cli.output import escape, out

__all__ = ["register"]


def schemas(
    module: Annotated[str, typer.Argument(help="Module or package defining entities.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here instead of stdout.", dir_okay=False),
    ] = None,
) -> None:
    """Generate {Entity}Create, {Entity}Update and {Entity}Read Pydantic models."""
    from viveka_db.base.discovery import entities_in, import_models
    from viveka_db.codegen import render_module

    import_models([module])
    entities = entities_in([module])
    if not entities:
        raise CliError(f"no entities found in {module}")
    source = render_module(entities, source=module)
    if output is None:
        typer.echo(source, nl=False)
        return
    output.write_text(source, encoding="utf-8")
    names = ", ".join(entity.__name__ for entity in entities)
    out.print(f"wrote {escape(str(output))}: schemas of {escape(names)}")


def register(codegen: typer.Typer) -> None:
    """Add ``schemas`` (and ``generate-schemas``, persistkat's name) to the ``codegen`` group."""
    codegen.command("schemas")(schemas)
    codegen.command(
        "generate-schemas", help="Alias of `codegen schemas`: the same command, the same options."
    )(schemas)
