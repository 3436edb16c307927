"""SQLite: a file lock beside the database file.

SQLite's own locks cover the whole database, and holding its write lock for the length
of a block would stop every writer of the application. Instead each name has a small
file in the directory ``<database file>.locks/`` (created on first use), locked with
``flock``: exclusive between processes and between tasks of one process alike, and
released by the operating system when the holder's process dies. Waiting polls without
blocking (1 ms doubling to 50 ms), so it honours ``timeout`` and cancellation.

The fencing token is an 8-byte counter inside that file, incremented and written to
disk (``fsync``) while the lock is held. An in-memory database gets a lock directory of
its own process (it has no file, and no other process can open it). The lock files
must be on a local file system (``flock`` over NFS is not reliable) and are not
available on Windows.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from viveka_db.context.scope import run_uncancellable
from viveka_db.locks.base import digest, timed_out

if sys.platform != "win32":
    import fcntl

__all__ = ["SqliteLock", "lock_directory"]

_MAX_POLL = 0.05
_memory_directory: Path | None = None


def lock_directory(database: str | None) -> Path:
    """Where the lock files of the SQLite database ``database`` live (created if needed)."""
    global _memory_directory
    if database in (None, "", ":memory:"):
        if _memory_directory is None:
            _memory_directory = Path(tempfile.mkdtemp(prefix="viveka_db_locks_"))
        return _memory_directory
    directory = Path(str(database) + ".locks")
    directory.mkdir(exist_ok=True)
    return directory


def _next_token(fd: int) -> int:
    """Read, increment and durably write the counter of a locked file."""
    raw = os.pread(fd, 8, 0)
    token = (int.from_bytes(raw, "big") if len(raw) == 8 else 0) + 1
    os.pwrite(fd, token.to_bytes(8, "big"), 0)
    os.fsync(fd)
    return token


class SqliteLock:
    """One acquisition of ``name`` beside the SQLite database ``database``."""

    def __init__(self, database: str | None, name: str) -> None:
        if sys.platform == "win32":  # pragma: no cover - the suite runs on POSIX
            raise NotImplementedError("advisory_lock on SQLite needs flock (not on Windows)")
        self.path = lock_directory(database) / f"{digest(name).hex()[:32]}.lock"
        self.name = name
        self.fd: int | None = None

    async def acquire(self, limit: float | None) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await self._wait(fd, limit)
            task = asyncio.ensure_future(asyncio.to_thread(_next_token, fd))
            await run_uncancellable(task)  # never close the file under the writing thread
            token = task.result()
        except BaseException:
            os.close(fd)  # releases the flock too
            raise
        self.fd = fd
        return token

    async def _wait(self, fd: int, limit: float | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = None if limit is None else loop.time() + limit
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    raise timed_out(self.name, limit or 0)
                delay = min(delay, left)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_POLL)

    async def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock
