"""``--help`` of every command: flags show no ``<bool>`` placeholder (they take no value)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from viveka_db.cli.app import build_app


def _command_paths() -> list[list[str]]:
    root = typer.main.get_command(build_app())
    paths: list[list[str]] = [[]]

    def walk(command: Any, path: list[str]) -> None:  # Typer vendors its own click
        commands: dict[str, Any] = getattr(command, "commands", {})
        for name, sub in commands.items():
            paths.append([*path, name])
            walk(sub, [*path, name])

    walk(root, [])
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "viveka-db")
def test_help_shows_flags_without_a_type(path: list[str]) -> None:
    result = CliRunner().invoke(build_app(), [*path, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "--help" in result.output
    assert "<bool>" not in result.output


def test_the_revision_help_still_shows_value_types() -> None:
    output = CliRunner().invoke(build_app(), ["db", "revision", "--help"]).output
    assert "--autogenerate" in output and "<bool>" not in output
    assert "--message" in output and "<str>" in output  # options that take a value keep it
