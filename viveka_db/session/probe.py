"""One round trip to a database engine, bounded in time even when the server stops answering.

Used by the start-up verification and by ``check_health``. Cancelling a statement on a
connection whose server went silent is not instant: asyncpg, for one, sends a cancel
request and waits for the connection to close (about two seconds more). A probe must
answer within its timeout, so it runs in a task of its own; after the timeout the task is
cancelled and given :data:`CANCEL_GRACE` seconds to clean up, and if it needs longer it
finishes its cleanup in the background while the caller already has its answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["CANCEL_GRACE", "probe_engine", "within"]

R = TypeVar("R")

CANCEL_GRACE = 0.1
"""Seconds a timed-out probe may take to clean up before the caller is answered anyway."""

_cleanups: set[asyncio.Future[Any]] = set()  # timed-out probes still cleaning up


async def within(seconds: float, work: Callable[[], Awaitable[R]]) -> R:
    """``await work()``, or raise ``TimeoutError`` after at most ``seconds + CANCEL_GRACE``."""

    async def run() -> R:
        return await work()

    task = asyncio.ensure_future(run())
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        _keep_until_done(task)
        raise
    if done:
        return task.result()
    task.cancel()
    await asyncio.wait({task}, timeout=CANCEL_GRACE)
    if not task.done():
        _keep_until_done(task)
    elif not task.cancelled() and task.exception() is None:
        return task.result()  # it finished just as the time ran out
    raise TimeoutError(f"no answer within {seconds:g}s")


def _keep_until_done(task: asyncio.Future[Any]) -> None:
    """Hold a reference to a task left cleaning up, and consume its outcome when it ends."""
    _cleanups.add(task)

    def forget(finished: asyncio.Future[Any]) -> None:
        _cleanups.discard(finished)
        if not finished.cancelled():
            finished.exception()  # retrieved: no "exception was never retrieved" warning

    task.add_done_callback(forget)


async def probe_engine(engine: AsyncEngine, seconds: float) -> float:
    """Check out a connection of ``engine`` and run ``SELECT 1``; returns the seconds it took.

    Raises what the driver raised (unreachable server, refused login, missing database), or
    ``TimeoutError`` when there is no answer within ``seconds`` (see :func:`within`).
    """

    async def round_trip() -> float:
        started = time.perf_counter()
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return time.perf_counter() - started

    return await within(seconds, round_trip)
