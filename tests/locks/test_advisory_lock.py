"""``advisory_lock``: excludes across tasks and processes, times out, and hands out fencing
tokens that always grow (also past a holder killed with SIGKILL)."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from viveka_db import (
    AdvisoryLock,
    DatabaseSessionFactory,
    LockTimeoutError,
    NotInitializedError,
    advisory_lock,
    transactional,
)

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import asyncio, sys
from viveka_db import DatabaseSessionFactory, advisory_lock

async def main() -> None:
    DatabaseSessionFactory({"database": {"url": sys.argv[1]}})
    async with advisory_lock(sys.argv[2]) as lock:
        print(f"held {lock.token}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await DatabaseSessionFactory.close_all()
    print("released", flush=True)

asyncio.run(main())
"""


class Holder:
    """A subprocess that takes the lock, says ``held <token>`` and holds it until told."""

    def __init__(self, url: str, name: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, url, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    async def held(self) -> int:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 60)
        assert line.startswith("held "), line
        return int(line.split()[1])

    def release(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "released"
        assert self.process.wait(30) == 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)


@pytest.fixture
def holders(backend_url: str) -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        if holder.process.poll() is None:
            holder.kill()


@pytest.fixture
async def lock_db(db: DatabaseSessionFactory) -> AsyncIterator[DatabaseSessionFactory]:
    yield db


async def test_the_lock_excludes_other_tasks(lock_db: DatabaseSessionFactory) -> None:
    """A read-modify-write with awaits inside the lock loses no update."""
    counter = {"value": 0}
    tokens: list[int] = []

    async def increment() -> None:
        async with advisory_lock("counter") as lock:
            tokens.append(lock.token)
            seen = counter["value"]
            await asyncio.sleep(0.005)
            counter["value"] = seen + 1

    await asyncio.gather(*(increment() for _ in range(8)))
    assert counter["value"] == 8
    assert tokens == sorted(tokens) and len(set(tokens)) == 8  # in order of acquisition


async def test_names_are_independent(lock_db: DatabaseSessionFactory) -> None:
    async with advisory_lock("a") as a, advisory_lock("b", timeout=1) as b:
        assert isinstance(a, AdvisoryLock) and (a.name, b.name) == ("a", "b")
        assert a.data_source == "default"


async def test_timeout_raises_lock_timeout_error(lock_db: DatabaseSessionFactory) -> None:
    async with advisory_lock("busy"):
        for timeout in (0, 0.3):
            started = time.monotonic()
            with pytest.raises(LockTimeoutError, match="'busy' was not granted within"):
                async with advisory_lock("busy", timeout=timeout):
                    pytest.fail("granted while held")
            waited = time.monotonic() - started
            assert timeout <= waited < timeout + 1.0
    async with advisory_lock("busy", timeout=0):  # free again
        pass


async def test_the_lock_is_released_when_the_block_raises_or_is_cancelled(
    lock_db: DatabaseSessionFactory,
) -> None:
    with pytest.raises(RuntimeError):
        async with advisory_lock("job"):
            raise RuntimeError("boom")
    entered = asyncio.Event()

    async def hold_for_ever() -> None:
        async with advisory_lock("job"):
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.ensure_future(hold_for_ever())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with advisory_lock("job", timeout=0):
        pass


async def test_a_waiter_cancelled_while_waiting_leaves_no_lock(
    lock_db: DatabaseSessionFactory,
) -> None:
    async with advisory_lock("queue"):
        waiter = asyncio.ensure_future(advisory_lock("queue").__aenter__())
        await asyncio.sleep(0.2)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    async with advisory_lock("queue", timeout=1):
        pass


async def test_the_lock_is_independent_of_the_callers_transaction(
    lock_db: DatabaseSessionFactory,
) -> None:
    @transactional
    async def fails() -> int:
        async with advisory_lock("tx") as lock:
            token = lock.token
        raise RuntimeError(str(token))

    with pytest.raises(RuntimeError) as info:
        await fails()
    async with advisory_lock("tx", timeout=0) as again:
        assert again.token > int(str(info.value))  # the rollback did not take the token back


async def test_bad_arguments_are_refused(lock_db: DatabaseSessionFactory) -> None:
    for name in ("", None, 5, "x" * 2000):
        with pytest.raises(ValueError, match="name must be a non-empty str"):
            async with advisory_lock(name):  # type: ignore[arg-type]
                pass
    for timeout in (-1, "1", True):
        with pytest.raises(ValueError, match="timeout must be None or seconds"):
            async with advisory_lock("x", timeout=timeout):  # type: ignore[arg-type]
                pass
    with pytest.raises(NotInitializedError):
        async with advisory_lock("x", data_source="nowhere"):
            pass


# -- across processes ----------------------------------------------------------------------


async def test_a_lock_held_by_another_process_excludes_and_times_out(
    lock_db: DatabaseSessionFactory, backend_url: str, holders: list[Holder]
) -> None:
    holder = Holder(backend_url, "shared")
    holders.append(holder)
    theirs = await holder.held()
    started = time.monotonic()
    with pytest.raises(LockTimeoutError):
        async with advisory_lock("shared", timeout=0.5):
            pytest.fail("granted while another process holds it")
    assert time.monotonic() - started >= 0.5

    async def take() -> int:
        async with advisory_lock("shared", timeout=30) as lock:
            return lock.token

    waiting = asyncio.ensure_future(take())
    await asyncio.sleep(0.3)
    assert not waiting.done()  # still waiting for the other process
    await asyncio.to_thread(holder.release)
    ours = await waiting
    assert ours > theirs


async def test_fencing_tokens_grow_across_processes_and_past_a_killed_holder(
    lock_db: DatabaseSessionFactory, backend_url: str, holders: list[Holder]
) -> None:
    tokens: list[int] = []
    for round_ in range(3):
        async with advisory_lock("fenced") as lock:
            tokens.append(lock.token)
        holder = Holder(backend_url, "fenced")
        holders.append(holder)
        tokens.append(await holder.held())
        if round_ == 1:
            await asyncio.to_thread(holder.kill)  # dies holding it: the lock must come free
        else:
            await asyncio.to_thread(holder.release)
    async with advisory_lock("fenced", timeout=30) as lock:
        tokens.append(lock.token)
    assert all(a < b for a, b in itertools.pairwise(tokens)), tokens
