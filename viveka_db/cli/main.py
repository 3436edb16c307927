"""The console-script entry point: imports the CLI lazily and turns errors into one line.

Every failure ends as ``error: <reason>`` on stderr and exit status 1: no stack trace, and
every configured secret is scrubbed from the text first.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec

__all__ = ["main"]

_REQUIRED = ("typer", "rich", "alembic")


def main(argv: list[str] | None = None) -> None:
    """Run ``viveka-db`` with ``argv`` (default: ``sys.argv[1:]``)."""
    missing = [name for name in _REQUIRED if find_spec(name) is None]
    if missing:
        sys.stderr.write(
            f"viveka-db needs {', '.join(missing)}; install the CLI extra: "
            'pip install "viveka-db[cli]"\n'
        )
        raise SystemExit(2)

    from viveka_db.cli.app import build_app
    from viveka_db.cli.errors import describe_error
    from viveka_db.cli.state import STATE

    app = build_app()
    try:
        app(args=argv, prog_name="viveka-db")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    except Exception as exc:
        sys.stderr.write(f"error: {describe_error(exc, STATE.secrets())}\n")
        raise SystemExit(1) from None
