"""The Makefile tells a newcomer what ``make demo`` is doing while it installs."""

from __future__ import annotations

import subprocess

from tests.tooling.cli import ROOT


def test_install_steps_announce_themselves() -> None:
    """``make -n`` prints the recipe: every slow step is preceded by an ``==>`` line."""
    recipe = subprocess.run(
        ["make", "-n", "-B", "-C", str(ROOT), "demo"], capture_output=True, text=True, check=True
    ).stdout
    lines = recipe.splitlines()
    install = next(i for i, line in enumerate(lines) if "pip install" in line and "-e" in line)
    assert "--quiet" not in lines[install]  # pip's own progress is shown
    assert any("==> installing" in line for line in lines[:install])
    assert any("==> running viveka-db demo" in line for line in lines)
