"""Issue 6, target 6 (the ``@transactional`` half): the cost of one decorator layer, no I/O.

A no-op ``async`` method, called ``BATCH`` times inside a transaction owned by the calling
task (as in a request or an outer ``@transactional``), decorated and undecorated. The
session is never touched, so nothing but the decorator is measured. Target: joining an
existing transaction costs under 5 microseconds per layer.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from harness import ArmResult, run_interleaved, target_line
from viveka_db import Propagation, transactional
from viveka_db.context.db_context import scope_var, set_scope
from viveka_db.transaction.scope import TransactionScope

BATCH = 2_000
OPS = 25  # batches per arm and round
ROUNDS = 9
TARGET_US = 5.0


class Service:
    async def plain(self) -> int:
        return 1

    @transactional
    async def joined(self) -> int:
        return 1

    @transactional(read_only=True)
    async def joined_read_only(self) -> int:
        return 1

    @transactional(propagation=Propagation.MANDATORY)
    async def mandatory(self) -> int:
        return 1

    @transactional
    async def three_layers(self) -> int:
        return await self.two_layers()

    @transactional
    async def two_layers(self) -> int:
        return await self.joined()

    async def plain_three(self) -> int:
        return await self.plain_two()

    async def plain_two(self) -> int:
        return await self.plain()


@transactional
async def joined_function() -> int:
    return 1


def in_transaction(call: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[None]]:
    """``BATCH`` calls inside a transaction scope owned by the running task."""

    async def batch() -> None:
        scope = TransactionScope(None, owner=asyncio.current_task())
        token = set_scope(scope)
        try:
            for _ in range(BATCH):
                await call()
        finally:
            scope_var().reset(token)

    return batch


def us_per_call(result: ArmResult) -> list[float]:
    return [1e6 / (rate * BATCH) for rate in result.samples]


async def main() -> None:
    svc = Service()
    arms = {
        "undecorated method": svc.plain,
        "@transactional (join)": svc.joined,
        "@transactional(read_only=True) (join)": svc.joined_read_only,
        "@transactional(MANDATORY) (join)": svc.mandatory,
        "@transactional function (join)": joined_function,
        "undecorated, 3 nested methods": svc.plain_three,
        "@transactional, 3 nested layers": svc.three_layers,
    }
    results = await run_interleaved(
        {name: in_transaction(call) for name, call in arms.items()},
        ops=OPS,
        rounds=ROUNDS,
        clock=time.process_time,  # CPU time: no I/O here, and other processes share the cores
    )
    by_name = {r.name: r for r in results}
    base = statistics.median(us_per_call(by_name["undecorated method"]))
    base3 = statistics.median(us_per_call(by_name["undecorated, 3 nested methods"]))
    print("## Target 6: per-layer overhead of @transactional joining a transaction (no I/O)\n")
    print(f"### {BATCH:,} calls per batch, {ROUNDS} interleaved rounds, CPU time per call\n")
    print(f"| arm | median µs/call | min–max | overhead µs/layer | target < {TARGET_US:g} µs |")
    print("|---|---:|---:|---:|---|")
    summary: list[str] = []
    for r in results:
        samples = us_per_call(r)
        median = statistics.median(samples)
        if r.name.startswith("undecorated"):
            overhead, verdict = "—", "—"
        else:
            three = "3 nested" in r.name
            per_layer = (median - (base3 if three else base)) / (3 if three else 1)
            overhead = f"{per_layer:.2f}"
            verdict = "met" if per_layer < TARGET_US else "MISSED"
        print(
            f"| {r.name} | {median:.2f} | {min(samples):.2f}–{max(samples):.2f} "
            f"| {overhead} | {verdict} |"
        )
        if verdict != "—":
            goal = f"< {TARGET_US:g} µs/layer"
            summary.append(target_line(r.name, goal, f"{overhead} µs", verdict == "met"))
    print()
    print("\n".join(summary))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
