"""``outbox init``, ``outbox relay``, ``outbox status`` and ``outbox requeue``."""

from __future__ import annotations

import asyncio
import importlib
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer

from viveka_db.cli.errors import CliError
from viveka_db.cli.output import escape, out
from viveka_db.cli.state import STATE

if TYPE_CHECKING:
    from viveka_db.session.db_session import DatabaseSessionFactory

__all__ = ["load_callable", "register"]

T = TypeVar("T")


def load_callable(spec: str) -> Callable[..., Any]:
    """``package.module:function`` imported (from the working directory too)."""
    from viveka_db.base.discovery import ensure_cwd_on_path

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CliError(f"--deliver takes module:function (e.g. myapp.events:deliver), got {spec!r}")
    ensure_cwd_on_path()
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise CliError(f"{module_name} has no attribute {attribute!r}")
    if not callable(target):
        raise CliError(f"{spec} is not callable")
    return cast("Callable[..., Any]", target)


def _with_factory(work: Callable[[DatabaseSessionFactory], Awaitable[T]]) -> T:
    from viveka_db.cache.setup import close_cache
    from viveka_db.session.db_session import DatabaseSessionFactory

    async def run() -> T:
        factory = DatabaseSessionFactory(STATE.settings())
        try:
            return await work(factory)
        finally:
            await factory.dispose()
            await close_cache()

    return asyncio.run(run())


def init() -> None:
    """Create the outbox table (viveka_outbox) if it does not exist (never drops)."""
    from viveka_db.outbox.table import OutboxRecord

    created = _with_factory(lambda factory: factory.create_all([OutboxRecord]))
    name = OutboxRecord.__tablename__
    out.print(f"{'created' if created else 'already existed'}: {name}")


def relay(
    deliver: Annotated[
        str, typer.Option(help="The async function delivering one event, as module:function.")
    ],
    batch_size: Annotated[int, typer.Option(help="Events claimed per transaction.")] = 100,
    concurrency: Annotated[int, typer.Option(help="Keys delivered at the same time.")] = 8,
    max_attempts: Annotated[int, typer.Option(help="Attempts before an event is dead.")] = 10,
    retry_backoff: Annotated[float, typer.Option(help="Seconds before the first retry.")] = 1.0,
    max_backoff: Annotated[float, typer.Option(help="Longest wait between attempts.")] = 300.0,
    delivery_timeout: Annotated[float, typer.Option(help="Seconds per delivery.")] = 30.0,
    poll_interval: Annotated[float, typer.Option(help="Seconds between idle polls.")] = 1.0,
    delete_delivered_after: Annotated[
        float | None,
        typer.Option(help="Delete delivered rows after this many seconds (0: at once)."),
    ] = 7 * 24 * 3600.0,
    listen: Annotated[bool, typer.Option(help="Wake up on PostgreSQL NOTIFY.")] = True,
) -> None:
    """Deliver outbox events until SIGINT/SIGTERM (the batch in hand is finished first)."""
    from viveka_db.outbox import OutboxRelay

    function = load_callable(deliver)
    worker = OutboxRelay(
        function,
        batch_size=batch_size,
        concurrency=concurrency,
        max_attempts=max_attempts,
        retry_backoff=retry_backoff,
        max_backoff=max_backoff,
        delivery_timeout=delivery_timeout,
        poll_interval=poll_interval,
        delete_delivered_after=delete_delivered_after,
        listen=listen,
    )

    async def run(factory: DatabaseSessionFactory) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stop)
        out.print(f"outbox relay: delivering with {escape(deliver)}; stop with Ctrl-C")
        await worker.run()
        out.print("outbox relay: stopped")

    _with_factory(run)


def status() -> None:
    """Count the outbox events by status; show the oldest pending one's age."""
    from viveka_db.outbox.admin import outbox_status

    report = _with_factory(outbox_status)
    for name in ("pending", "delivered", "dead"):
        out.print(f"{name}: {report.counts.get(name, 0)}")
    if report.oldest_pending_seconds is not None:
        out.print(f"oldest pending: {report.oldest_pending_seconds:.1f} s")


def requeue() -> None:
    """Make every dead event pending again (attempts reset), to be delivered anew."""
    from viveka_db.outbox.admin import requeue_dead_events

    count = _with_factory(requeue_dead_events)
    out.print(f"requeued: {count}")


def register(group: typer.Typer) -> None:
    """Add the outbox commands to the ``outbox`` group."""
    group.command("init")(init)
    group.command("relay")(relay)
    group.command("status")(status)
    group.command("requeue")(requeue)
