"""A local file of evictions that could not reach Redis yet, so a restart does not lose them.

``RedisCache(eviction_journal=path)`` (``[cache] eviction_journal``) appends each failed
eviction as a JSON line before retrying it, removes it once delivered, and, when a cache
starts, takes over the entries it finds (from a process that exited, or a sibling worker
on the same host: delivering an eviction twice only invalidates twice). Every change holds
an exclusive ``flock`` on the file, so worker processes can share one journal.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import IO

__all__ = ["EvictionJournal", "Pending"]

logger = logging.getLogger("viveka_db.cache")

Pending = tuple[str, "str | None"]
"""``(prefix, key)``; ``key`` ``None`` for the whole prefix."""


class EvictionJournal:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> list[Pending]:
        """The evictions recorded and not yet delivered, oldest first."""
        with self._locked() as file:
            return list(_parse(file.read()))

    def add(self, prefix: str, key: str | None) -> None:
        line = json.dumps({"prefix": prefix, "key": key}) + "\n"
        with self._locked() as file:
            file.seek(0, os.SEEK_END)
            file.write(line)
            file.flush()
            os.fsync(file.fileno())

    def remove(self, delivered: Iterable[Pending]) -> None:
        """Drop one recorded occurrence of each delivered eviction (others' entries stay)."""
        done = list(delivered)
        with self._locked() as file:
            kept: list[Pending] = []
            for entry in _parse(file.read()):
                if entry in done:
                    done.remove(entry)
                else:
                    kept.append(entry)
            file.seek(0)
            file.truncate()
            file.writelines(json.dumps({"prefix": p, "key": k}) + "\n" for p, k in kept)
            file.flush()
            os.fsync(file.fileno())

    @contextlib.contextmanager
    def _locked(self) -> Generator[IO[str], None, None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+", encoding="utf-8") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            try:
                file.seek(0)
                yield file
            finally:
                fcntl.flock(file, fcntl.LOCK_UN)


def _parse(text: str) -> Iterator[Pending]:
    for line in text.splitlines():
        try:
            record = json.loads(line)
            prefix, key = record["prefix"], record["key"]
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring an unreadable line in the cache eviction journal")
            continue
        if isinstance(prefix, str) and (key is None or isinstance(key, str)):
            yield prefix, key
