"""Help output: flags read ``--sql``, not ``--sql <bool>``.

Recent Typer releases print a type placeholder after every option, flags included, which
suggests ``--autogenerate true`` is the syntax. A flag takes no value, so it shows none.
"""

from __future__ import annotations

from typing import Any

__all__ = ["hide_flag_types"]


def hide_flag_types() -> None:
    """Make Typer show no type after boolean flags (idempotent; no-op on other versions)."""
    from typer import core

    option: Any = getattr(core, "TyperOption", None)
    original = getattr(option, "display_type_rich", None)
    if original is None or getattr(original, "viveka_flags_hidden", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) and not getattr(self, "count", False):
            return None
        result: str | None = original(self, ctx=ctx)
        return result

    display_type_rich.viveka_flags_hidden = True  # type: ignore[attr-defined]
    option.display_type_rich = display_type_rich
