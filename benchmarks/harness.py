"""Interleaved A/B benchmarking: every arm runs in the same process and the same rounds.

Arms are run A B C, B C A, ... after a warm-up; each round measures ops/s of every arm,
and the table shows the median, the min–max, and the ratio of medians against the
reference arm. Ratios, not absolute numbers, are what the targets are stated in.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import statistics
import sysconfig
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PROFILE_MARK",
    "TARGET_MARK",
    "ArmResult",
    "bench",
    "format_table",
    "profile_lines",
    "profile_summary",
    "run_interleaved",
    "split_profiles",
    "split_targets",
    "target_line",
    "target_table",
]

TARGET_MARK = "TARGET\t"
"""Lines starting with this are targets; ``run_all.py`` collects them into one table."""

PROFILE_MARK = "PROFILE\t"
"""Lines starting with this say where a missed target's time goes (``profile_lines``)."""

Op = Callable[[], Awaitable[object]]

_ROOT = str(Path(__file__).resolve().parent.parent) + "/"
_STDLIB = sysconfig.get_paths()["stdlib"] + "/"


@dataclass
class ArmResult:
    name: str
    samples: list[float]  # ops/s, one per round

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


async def _run_arm(
    op: Op, ops: int, concurrency: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    per_task, extra = divmod(ops, concurrency)

    async def worker(n: int) -> None:
        for _ in range(n):
            await op()

    start = clock()
    await asyncio.gather(*(worker(per_task + (1 if i < extra else 0)) for i in range(concurrency)))
    return ops / (clock() - start)


async def run_interleaved(
    arms: Mapping[str, Op],
    *,
    ops: int,
    rounds: int = 7,
    warmup_ops: int | None = None,
    concurrency: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> list[ArmResult]:
    """Run each arm ``ops`` times per round, rotating the order every round.

    ``clock=time.process_time`` measures CPU time instead of wall time: for benchmarks
    without I/O it is robust to other processes competing for the cores.
    """
    names = list(arms)
    for name in names:  # warm-up: pools filled, statements cached, code paths hot
        await _run_arm(
            arms[name],
            warmup_ops if warmup_ops is not None else max(ops // 5, 10),
            concurrency,
            clock,
        )
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(rounds):
        order = names[round_no % len(names) :] + names[: round_no % len(names)]
        for name in order:
            samples[name].append(await _run_arm(arms[name], ops, concurrency, clock))
    return [ArmResult(name, samples[name]) for name in names]


def format_table(
    title: str, results: Sequence[ArmResult], reference: str, unit: str = "op/s"
) -> str:
    ref = next(r for r in results if r.name == reference).median
    width = max(len(r.name) for r in results)
    lines = [
        f"### {title}",
        "",
        f"| {'arm':<{width}} | median {unit} | min–max | ratio vs {reference} |",
        f"|{'-' * (width + 2)}|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name:<{width}} | {r.median:,.0f} | {min(r.samples):,.0f}–{max(r.samples):,.0f} "
            f"| {r.median / ref:.2f}x |"
        )
    return "\n".join(lines) + "\n"


async def bench(
    title: str,
    arms: Mapping[str, Op],
    *,
    reference: str,
    ops: int,
    rounds: int = 7,
    concurrency: int = 1,
) -> list[ArmResult]:
    """Run and print one comparison table."""
    results = await run_interleaved(arms, ops=ops, rounds=rounds, concurrency=concurrency)
    print(
        format_table(
            f"{title} ({concurrency} task{'s' if concurrency > 1 else ''})", results, reference
        ),
        flush=True,
    )
    return results


def target_line(target: str, goal: str, measured: str, met: bool | None) -> str:
    """One target's outcome, for ``make bench``'s summary table (``met=None``: reported only)."""
    verdict = "—" if met is None else ("met" if met else "MISSED")
    return f"{TARGET_MARK}{target}\t{goal}\t{measured}\t{verdict}"


def split_targets(output: str) -> tuple[str, list[list[str]]]:
    """The script's output without its target lines, and those lines' fields."""
    kept: list[str] = []
    targets: list[list[str]] = []
    for line in output.splitlines(keepends=True):
        if line.startswith(TARGET_MARK):
            fields = line[len(TARGET_MARK) :].rstrip("\n").split("\t")
            targets.append([*fields, "", "", "", ""][:4])
        elif not line.startswith(PROFILE_MARK):
            kept.append(line)
    return "".join(kept), targets


def split_profiles(output: str) -> dict[str, list[str]]:
    """The ``profile_lines`` of a script's output, by target."""
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        if line.startswith(PROFILE_MARK):
            target, _, text = line[len(PROFILE_MARK) :].partition("\t")
            found.setdefault(target, []).append(text)
    return found


def target_table(rows: list[list[str]]) -> str:
    lines = ["| target | goal | measured | met |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines) + "\n"


async def profile_summary(
    op: Op, *, calls: int = 2000, concurrency: int = 1, top: int = 8, warmup: int | None = None
) -> list[str]:
    """Where one call of ``op`` spends its time: the ``top`` functions by own time, in µs per
    call of ``op`` (cProfile's overhead inflates every figure alike; compare them, not the
    benchmark's numbers, with each other)."""
    await _run_arm(op, max(calls // 10, 10) if warmup is None else warmup, concurrency)
    profiler = cProfile.Profile()
    profiler.enable()
    await _run_arm(op, calls, concurrency)
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    total = sum(item[1][2] for item in rows) or 1.0
    lines = []
    for (filename, line, name), (_, ncalls, own, _cumulative, _) in rows[:top]:
        where = filename.rsplit("site-packages/", 1)[-1].replace(_ROOT, "").replace(_STDLIB, "")
        lines.append(
            f"{own / calls * 1e6:7.1f} µs/call own ({own / total:4.0%}), "
            f"{ncalls / calls:g} calls/op: {name} ({where}:{line})"
        )
    return lines


def profile_lines(target: str, lines: Sequence[str]) -> str:
    """``lines`` (from :func:`profile_summary`) marked for run_all's missed-targets section."""
    return "\n".join(f"{PROFILE_MARK}{target}\t{line}" for line in lines)
