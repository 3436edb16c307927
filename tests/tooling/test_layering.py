"""The package's layers (pyproject.toml ``[tool.importlinter]``) hold, also under ``make test``.

``docs/contributing/architecture.md`` explains the order. A lower layer that needs
something from a higher one gets it registered or passed down; an import inside a
function counts like any other, which the second test shows on a copy of the package.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="the dev extra installs import-linter")

ROOT = Path(__file__).resolve().parents[2]
RUN = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", RUN, "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_import_contract_is_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_inside_a_function_breaks_the_layers(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "viveka_db", tmp_path / "viveka_db")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    listeners = tmp_path / "viveka_db" / "session" / "listeners.py"
    listeners.write_text(
        listeners.read_text(encoding="utf-8")
        + "\n\ndef _install_cache_directly() -> None:\n"
        + "    from viveka_db.cache.setup import close_cache  # a lazy import is still one\n"
        + "\n    del close_cache\n",
        encoding="utf-8",
    )
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "viveka_db.session is not allowed to import viveka_db.cache" in result.stdout
    assert "viveka_db.session.listeners -> viveka_db.cache.setup" in result.stdout


def test_the_architecture_page_lists_the_layers_of_the_contract() -> None:
    """The contributor's page and the enforced contract name the same layers, in order."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["id"] == "layers")["layers"]
    page = (ROOT / "docs" / "contributing" / "architecture.md").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == len(layers)
    for row, layer in zip(rows, layers, strict=True):
        for module in re.split(r"[|:]", layer):
            name = module.strip()
            assert f"viveka_db.{name}`" in row or f"`{name}`" in row, (name, row)


def test_a_layer_below_the_middleware_that_speaks_asgi_breaks_the_asgi_contract(
    tmp_path: Path,
) -> None:
    """Below the middleware nothing knows HTTP: not even the ASGI types, nor Starlette."""
    shutil.copytree(ROOT / "viveka_db", tmp_path / "viveka_db")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    consistency = tmp_path / "viveka_db" / "replicas" / "consistency.py"
    consistency.write_text(
        consistency.read_text(encoding="utf-8")
        + "\n\ndef _cookie_here() -> None:\n"
        + "    from starlette.requests import Request  # the cookie is the middleware's\n"
        + "\n    del Request\n",
        encoding="utf-8",
    )
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Only the middleware layer and the boundaries above it speak ASGI BROKEN" in (
        result.stdout
    )
    assert "viveka_db.replicas.consistency -> starlette (l." in result.stdout
