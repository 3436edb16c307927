"""A relay killed mid-batch (``viveka-db outbox relay`` in a subprocess, SIGKILL) loses
nothing: the batch it never recorded is delivered again by the next relay, in key order."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.outbox.events import outbox_rows
from tests.outbox.test_relay import eventually, first_deliveries_in_order, publish_numbered
from tests.tooling.cli import ROOT, cli_env
from viveka_db import DatabaseSessionFactory, OutboxEvent, OutboxRelay


def _lines(sink: Path) -> list[str]:
    return sink.read_text().splitlines() if sink.exists() else []


async def test_a_relay_killed_mid_batch_loses_nothing(
    db: DatabaseSessionFactory, backend_url: str, tmp_path: Path
) -> None:
    ids = await publish_numbered(keys=5, per_key=40)
    sink = tmp_path / "delivered.txt"
    env = cli_env(backend_url, OUTBOX_SINK=str(sink), OUTBOX_DELAY="0.01")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "viveka_db.cli", "outbox", "relay",
        "--deliver", "tests.outbox.file_sink:deliver", "--batch-size", "50",
        "--concurrency", "1", "--poll-interval", "0.1",
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(_lines(sink)) < 70:  # the first batch recorded, the second one half done
            assert process.returncode is None, await process.communicate()
            assert time.monotonic() < deadline, "the relay delivered too little"
            await asyncio.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        await asyncio.wait_for(process.wait(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    before_restart = _lines(sink)
    statuses = [row.status for row in await outbox_rows(db)]
    assert statuses.count("delivered") % 50 == 0  # whole batches only: the killed one is pending
    assert statuses.count("pending") > len(ids) - len(before_restart)  # some delivered twice

    after: list[str] = []

    async def deliver(event: OutboxEvent) -> None:
        after.append(f"{event.id} {event.aggregateid} {event.payload['n']}")

    async with OutboxRelay(deliver, poll_interval=0.05):

        async def done() -> bool:
            return all(row.status == "delivered" for row in await outbox_rows(db))

        await eventually(done)
    lines = before_restart + after
    assert {uuid.UUID(line.split()[0]) for line in lines} == set(ids)  # nothing lost
    assert len(lines) > len(ids)  # the killed batch's deliveries were repeated
    first_deliveries_in_order([(line.split()[1], int(line.split()[2])) for line in lines])
