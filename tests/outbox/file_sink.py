"""A ``deliver`` for relays run as a subprocess: appends ``id key n`` lines to a file.

``OUTBOX_SINK`` names the file; each line is flushed and fsynced before ``deliver``
returns, so a line exists for every delivery the relay started to record. ``OUTBOX_DELAY``
(seconds) slows each delivery so a test can kill the relay mid-batch.
"""

from __future__ import annotations

import asyncio
import os

from viveka_db import OutboxEvent


def _append(line: str) -> None:
    with open(os.environ["OUTBOX_SINK"], "a", encoding="utf-8") as sink:
        sink.write(line)
        sink.flush()
        os.fsync(sink.fileno())


async def deliver(event: OutboxEvent) -> None:
    await asyncio.sleep(float(os.environ.get("OUTBOX_DELAY", "0")))
    await asyncio.to_thread(_append, f"{event.id} {event.aggregateid} {event.payload['n']}\n")
