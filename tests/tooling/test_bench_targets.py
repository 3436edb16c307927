"""``make bench``'s summary: every target line a benchmark prints ends up in one table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "harness.py"


def load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("viveka_bench_harness", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_target_lines_become_the_summary_table() -> None:
    harness = load_harness()
    output = (
        "### a table\n| arm | x |\n"
        + harness.target_line("near hit vs GET", ">= 10x", "12.0x", True)
        + "\n"
        + harness.target_line("bulk vs COPY", ">= 0.6x", "0.45x", False)
        + "\n"
        + harness.target_line("miss cost", "reported", "+13 µs", None)
        + "\ntrailing text\n"
    )
    kept, rows = harness.split_targets(output)
    assert kept == "### a table\n| arm | x |\ntrailing text\n"
    assert rows == [
        ["near hit vs GET", ">= 10x", "12.0x", "met"],
        ["bulk vs COPY", ">= 0.6x", "0.45x", "MISSED"],
        ["miss cost", "reported", "+13 µs", "—"],
    ]
    table = harness.target_table(rows)
    assert table.splitlines()[0] == "| target | goal | measured | met |"
    assert "| bulk vs COPY | >= 0.6x | 0.45x | MISSED |" in table
