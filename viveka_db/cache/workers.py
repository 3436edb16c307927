"""Warn when an in-process cache runs in a server with several worker processes.

Each worker then has its own ``MemoryCache``: an eviction in one worker never reaches the
others, which keep serving what they cached for the whole TTL. Worker servers are
recognised by ``WEB_CONCURRENCY`` (read by uvicorn and gunicorn), ``GUNICORN_CMD_ARGS``,
and ``--workers N`` / ``-w N`` on the command line (worker processes inherit it).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence

__all__ = ["warn_if_per_process", "worker_count"]

logger = logging.getLogger("viveka_db.cache")

_WORKERS = re.compile(r"^(?:--workers|-w)(?:=(\d+))?$")
_warned = False


def worker_count(
    environ: Mapping[str, str] | None = None, argv: Sequence[str] | None = None
) -> int:
    """How many worker processes the server says it runs (1 when nothing says more)."""
    environ = os.environ if environ is None else environ
    argv = sys.argv if argv is None else argv
    counts = [_int(environ.get("WEB_CONCURRENCY"))]
    gunicorn = environ.get("GUNICORN_CMD_ARGS")
    for args in (list(argv), shlex.split(gunicorn) if gunicorn else []):
        for index, arg in enumerate(args):
            match = _WORKERS.match(arg)
            if match:
                value = match.group(1) or (args[index + 1] if index + 1 < len(args) else None)
                counts.append(_int(value))
    return max(counts)


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 1
    except ValueError:
        return 1


def warn_if_per_process(description: str) -> bool:
    """Log once per process that ``description`` (a per-process cache) is not shared."""
    global _warned
    workers = worker_count()
    if workers <= 1 or _warned:
        return False
    _warned = True
    logger.warning(
        "the cache is %s, which lives inside each process, and this server runs %d worker "
        "processes: an eviction in one worker does not reach the others, which keep serving "
        "their cached values until the TTL ends. Configure a shared cache ([cache] url = "
        "redis://...) or run a single worker.",
        description,
        workers,
    )
    return True
