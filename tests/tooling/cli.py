"""Running ``viveka-db`` as a subprocess, the way users run it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SQLITE_AND_POSTGRESQL = [
    pytest.param("sqlite", marks=pytest.mark.sqlite),
    pytest.param("postgresql", marks=pytest.mark.postgresql),
]
"""The ``backend`` parameters of tooling tests that run on a file and a server database."""


def cli_env(database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: no inherited VIVEKA_* settings, the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIVEKA_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["NO_COLOR"] = "1"
    if database_url is not None:
        env["VIVEKA_DATABASE__URL"] = database_url
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: Path, env: Mapping[str, str], check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m viveka_db.cli ARGS`` in ``cwd``; fails the test with the output if ``check``."""
    result = subprocess.run(
        [sys.executable, "-m", "viveka_db.cli", *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"viveka-db {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result
