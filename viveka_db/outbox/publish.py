"""``publish(event, *, key=None)``: store an event in the outbox, in the current transaction.

The row is added to the transaction's session, so it is written by the same COMMIT as the
rest of the work (or by the next flush), and disappears with a rollback. On PostgreSQL the
transaction also sends ``NOTIFY viveka_outbox`` (delivered by the server at commit, dropped
on rollback), which wakes the relays at once; elsewhere they poll.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from typing import Any, Final

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.orm import Session

from viveka_db.context.db_context import DEFAULT, active_scope
from viveka_db.dialects import adapter_for
from viveka_db.errors import NoTransactionError, ReadOnlyTransactionError
from viveka_db.outbox.events import event_parts, key_text
from viveka_db.outbox.listeners import dispatch, listeners_for
from viveka_db.outbox.table import OutboxRecord
from viveka_db.telemetry.outbox import trace_headers

__all__ = ["CHANNEL", "Published", "publish"]

CHANNEL: Final = "viveka_outbox"
"""The PostgreSQL ``LISTEN``/``NOTIFY`` channel that wakes the relays."""
_NOTIFY = "viveka_outbox_notify"
"""``Session.info`` flag: this transaction published, so notify the relays at commit."""


class Published:
    """What :func:`publish` returns: the event's ``id``; awaiting it flushes the row now.

    ``publish(event)`` alone is enough (the row is written with the transaction);
    ``await publish(event)`` also sends the INSERT at once, so a problem with the outbox
    table surfaces at that line.
    """

    __slots__ = ("_record", "_session", "id")

    def __init__(self, record: OutboxRecord, session: Any) -> None:
        self.id: uuid.UUID = record.id
        self._record = record
        self._session = session

    def __await__(self) -> Generator[Any, None, uuid.UUID]:
        return self._flush().__await__()

    async def _flush(self) -> uuid.UUID:
        await self._session.flush()
        return self.id

    def __repr__(self) -> str:
        return f"Published(id={self.id})"


def publish(
    event: object,
    *,
    key: str | int | uuid.UUID | None = None,
    event_type: str | None = None,
    aggregate_type: str | None = None,
    data_source: str = DEFAULT,
) -> Published:
    """Store ``event`` in the outbox as part of the current transaction.

    ``key`` (the ``aggregateid``: e.g. the order id) orders delivery: the relay never
    delivers an event while an earlier event of the same key is undelivered. Without a key
    the event is ordered with no other. ``event_type`` / ``aggregate_type`` override the
    names taken from the event's class (see :mod:`viveka_db.outbox.events`). Listeners
    registered with :func:`~viveka_db.on_event` run after the commit.

    Raises :class:`~viveka_db.NoTransactionError` outside a transaction (there would be no
    commit to tie the event to) and :class:`~viveka_db.ReadOnlyTransactionError` in
    read-only work.
    """
    scope = active_scope(data_source)
    if scope is None:
        raise NoTransactionError(
            "publish() needs an active transaction, so the event commits or rolls back with "
            "the work it describes; call it inside a @transactional method or a request "
            "handled by DbMiddleware"
        )
    if scope.read_only:
        raise ReadOnlyTransactionError("publish() writes the outbox: not in read-only work")
    parts = event_parts(event, event_type=event_type, aggregate_type=aggregate_type)
    event_id = uuid.uuid4()
    record = OutboxRecord(
        id=event_id,
        aggregatetype=parts.aggregatetype,
        aggregateid=key_text(key, event_id),
        type=parts.type,
        payload=parts.payload,
        headers=trace_headers(),
    )
    session = scope.session
    session.add(record)
    session.sync_session.info[_NOTIFY] = True
    listeners = listeners_for(type(event))
    if listeners:
        scope.hooks.after_commit(lambda: dispatch(event, listeners))
    return Published(record, session)


@sa_event.listens_for(Session, "before_commit")
def _notify_relays(session: Session) -> None:
    """Send ``NOTIFY`` in a PostgreSQL transaction that published (delivered at commit)."""
    if not session.info.pop(_NOTIFY, False):
        return
    connection = session.connection()
    if adapter_for(connection.dialect).has_notify:
        connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
