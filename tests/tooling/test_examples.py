"""The example service's own test suite passes when run on its own, as a user would run it."""

from __future__ import annotations

import subprocess
import sys

from tests.tooling.cli import ROOT, cli_env


def test_example_shop_suite_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "examples"],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout
