"""Rich consoles for results (stdout) and problems (stderr); never wraps, never highlights."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

__all__ = ["err", "escape", "out"]

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)
