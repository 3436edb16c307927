"""``make bench``: run every ``benchmarks/*_bench.py`` and collect the tables in RESULTS.md.

Each script runs in its own process (and process group) with a time limit, its output is
shown as it comes, and the tables it printed are written to ``benchmarks/RESULTS.md``
under the date and a description of the machine. ``python benchmarks/run_all.py tx http``
runs only the scripts whose names start with those words (and leaves RESULTS.md alone).

Scripts report each target they measure as a ``TARGET\t`` line (``harness.target_line``);
those lines are gathered into one table, target / goal / measured / met, printed at the
end and written at the top of RESULTS.md. A script that fails or times out shows as a
missed row, so a broken benchmark cannot look like a met target.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import platform
import signal
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "RESULTS.md"
TIMEOUT = float(os.environ.get("VIVEKA_BENCH_TIMEOUT", "240"))

sys.path.insert(0, str(BENCH_DIR))
from backends import MARIADB_URL, PG_URL  # noqa: E402
from harness import split_profiles, split_targets, target_table  # noqa: E402


async def _pump(stream: asyncio.StreamReader, sink: list[str], out: object) -> None:
    async for raw in stream:
        line = raw.decode(errors="replace")
        sink.append(line)
        print(line, end="", file=out, flush=True)  # type: ignore[call-overload]


async def run_script(path: Path) -> tuple[str, str]:
    """Run one script; returns (its stdout, a status line)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(path),
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out: list[str] = []
    err: list[str] = []
    start = time.perf_counter()
    try:
        await asyncio.wait_for(
            asyncio.gather(
                _pump(proc.stdout, out, sys.stdout),
                _pump(proc.stderr, err, sys.stderr),
                proc.wait(),
            ),
            TIMEOUT,
        )
    except TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)  # the script and the servers it started
        await proc.wait()
        return "".join(out), f"TIMED OUT after {TIMEOUT:.0f} s"
    elapsed = time.perf_counter() - start
    if proc.returncode:
        tail = "".join(err[-15:])
        return "".join(
            out
        ) + f"\n```\n{tail}```\n", f"FAILED (exit {proc.returncode}) after {elapsed:.0f} s"
    return "".join(out), f"ok in {elapsed:.0f} s"


async def _server_versions() -> dict[str, str]:
    from sqlalchemy.engine import make_url

    versions: dict[str, str] = {}
    pg = make_url(PG_URL)
    maria = make_url(MARIADB_URL)
    try:
        import asyncpg

        conn = await asyncio.wait_for(
            asyncpg.connect(host=pg.host, port=pg.port, user=pg.username, database=pg.database), 3
        )
        versions["PostgreSQL"] = (await conn.fetchval("SHOW server_version")).split()[0]
        await conn.close()
    except Exception as exc:
        versions["PostgreSQL"] = f"unavailable ({type(exc).__name__})"
    try:
        import aiomysql

        mconn = await asyncio.wait_for(
            aiomysql.connect(
                host=maria.host, port=maria.port or 3306, user=maria.username, db=maria.database
            ),
            3,
        )
        async with mconn.cursor() as cur:
            await cur.execute("SELECT VERSION()")
            versions["MariaDB"] = str((await cur.fetchone())[0])
        mconn.close()
    except Exception as exc:
        versions["MariaDB"] = f"unavailable ({type(exc).__name__})"
    try:
        import redis.asyncio as redis

        client = redis.Redis.from_url(
            os.environ.get("VIVEKA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
        )
        versions["Redis"] = (await asyncio.wait_for(client.info("server"), 3))["redis_version"]
        await client.aclose()
    except Exception as exc:
        versions["Redis"] = f"unavailable ({type(exc).__name__})"
    return versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


async def machine() -> str:
    import sqlalchemy

    servers = ", ".join(f"{name} {version}" for name, version in (await _server_versions()).items())
    return (
        f"{os.cpu_count()} cores ({_cpu_model()}), {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}; {servers}"
    )


async def main(prefixes: list[str]) -> int:
    scripts = sorted(BENCH_DIR.glob("*_bench.py"))
    if prefixes:
        scripts = [s for s in scripts if any(s.name.startswith(p) for p in prefixes)]
    started = datetime.datetime.now(datetime.UTC)
    description = await machine()
    print(f"# viveka_db benchmarks, {started:%Y-%m-%d %H:%M} UTC\n\n{description}\n", flush=True)
    sections: list[str] = []
    targets: list[list[str]] = []
    profiles: list[str] = []
    failures = 0
    for script in scripts:
        print(f"---- {script.name}", flush=True)
        output, status = await run_script(script)
        for target, lines in split_profiles(output).items():
            profiles.append(f"### {script.stem}: {target}\n\n```\n" + "\n".join(lines) + "\n```\n")
        output, found = split_targets(output)
        targets += [[f"{script.stem}: {row[0]}", *row[1:]] for row in found]
        if not status.startswith("ok"):
            failures += 1
            targets.append([f"{script.stem}: the whole script", "runs", status, "MISSED"])
        print(f"---- {script.name}: {status}\n", flush=True)
        sections.append(
            f"<!-- {script.name} -->\n_`benchmarks/{script.name}`: {status}_\n\n{output.strip()}\n"
        )
    summary = target_table(targets)
    if profiles:
        summary += "\n## Where the time goes (targets missed)\n\n" + "\n".join(profiles)
    print(f"## Targets\n\n{summary}", flush=True)
    if not prefixes:
        total = (datetime.datetime.now(datetime.UTC) - started).total_seconds()
        RESULTS.write_text(
            f"# Benchmark results\n\nRun {started:%Y-%m-%d %H:%M} UTC by `make bench` "
            f"({total:.0f} s in total).\n\nMachine: {description}\n\n"
            "Ratios against a reference arm measured in the same process and run "
            "(interleaved rounds, median, min–max) are what the targets refer to; "
            "absolute numbers depend on the machine.\n\n"
            f"## Targets\n\n{summary}\n" + "\n".join(sections)
        )
        print(f"tables written to {RESULTS.relative_to(ROOT)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
