"""The entities of rows ``insert_all`` inserted past the unit of work, left as a flush
leaves them: built (from dicts) or completed (generated keys and defaults written into
them), persistent in the session, and transient again if the transaction rolls back.

Attaching without a flush has no public SQLAlchemy API at bulk speed: the public route
(:func:`~sqlalchemy.orm.make_transient_to_detached` + ``Session.add``, plus a session
event that makes the entities transient again on rollback, :func:`attach_public`) costs
about 20 us per entity, more than ``COPY`` spends on a row. So on the SQLAlchemy versions
it was verified against (:data:`viveka_db.compat.FAST_ATTACH`) the same state SQLAlchemy's
flush writes is written directly (:func:`viveka_db.compat.attach_states`), and entities of
dicts are built a batch at a time (:func:`viveka_db.compat.new_entities`); any other
version takes the public route. ``tests/repository/test_attach.py`` checks that both leave
the session in the same state.
"""

from __future__ import annotations

import asyncio
import gc
from collections import deque
from collections.abc import Callable, Generator
from contextlib import contextmanager
from itertools import repeat
from operator import attrgetter
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import (
    InstanceState,
    Mapper,
    Session,
    SessionTransaction,
    make_transient,
    make_transient_to_detached,
)
from sqlalchemy.orm.attributes import instance_state

from viveka_db import compat
from viveka_db.repository.bulk_plan import BulkPlan
from viveka_db.repository.rows import ColumnBatch

__all__ = [
    "ATTACH_CHUNK",
    "GC_PAUSE_ROWS",
    "attach_alongside",
    "attach_persistent",
    "attach_public",
    "build_entities",
    "collector_paused",
    "detach_attached",
    "materialize",
    "track_rollback",
]

_Row = dict[str, Any]
_set: Callable[[_Row, str, Any], None] = _Row.__setitem__
_getitem: Callable[[_Row, str], Any] = _Row.__getitem__
_update: Callable[[_Row, _Row], None] = _Row.update
_dict_of = attrgetter("__dict__")
_consume = deque[Any](maxlen=0).extend
"""Runs an iterator to its end at C speed (for ``map`` over ``dict.__setitem__`` etc.)."""
GC_PAUSE_ROWS = 2_000
"""From this many rows on, :func:`collector_paused` pauses the cyclic garbage collector."""
ATTACH_CHUNK = 5_000
"""Rows :func:`attach_alongside` handles between two chances for the ``COPY`` to run."""


def materialize(plan: BulkPlan, batch: ColumnBatch) -> list[Any]:
    """The entities of inserted rows: given ones get their generated values, mappings
    become entities built the way a query result builds them (no ``__init__``)."""
    if batch.mappings:  # those built already get their keys, the others are built
        built = batch.built
        _write_back(plan, batch, 0, built)
        rest = [column[built:] for column in batch.columns]
        batch.instances[built:] = compat.new_entities(plan.mapper, plan.keys, rest)
        return batch.instances
    if batch.dicts is not None:  # entities only: write what they lack, column by column
        _write_back(plan, batch, 0, len(batch))
        return batch.instances
    keys = plan.keys
    manager = plan.mapper.class_manager
    out: list[Any] = []
    for instance, values in zip(batch.instances, zip(*batch.columns, strict=True), strict=True):
        built = manager.new_instance() if instance is None else instance
        built.__dict__.update(zip(keys, values, strict=True))
        out.append(built)
    return out


async def build_entities(plan: BulkPlan, batch: ColumnBatch, until: asyncio.Future[Any]) -> None:
    """Build entities of a batch of dicts now, before their keys are known, until ``until``
    (the server drawing the keys for ``COPY``) is done.

    The client would only wait for the draw, and building 100,000 entities takes about as
    long; what is left is built alongside the ``COPY`` (:func:`attach_alongside`). Built a
    chunk at a time, with the event loop let in between: the draw needs a few turns of it
    (its statement is prepared, then run) and would otherwise start only once all are
    built. Built entities get their key with the other generated values
    (:meth:`ColumnBatch.fill_keys`); a path that turns the batch down leaves them to the
    unit of work as they are.
    """
    if not batch.mappings:
        return
    batch.dicts, batch.states = [], []
    batch.written = [False] * len(batch.columns)  # built entities hold every value
    while batch.built < len(batch) and not until.done():
        start, stop = batch.built, min(batch.built + ATTACH_CHUNK, len(batch))
        with collector_paused(stop - start):
            part = [column[start:stop] for column in batch.columns]
            built = compat.new_entities(plan.mapper, plan.keys, part)
            batch.instances[start:stop] = built
            batch.dicts += map(_dict_of, built)
            batch.states += map(instance_state, built)
        batch.built = stop
        await asyncio.sleep(0)


def _write_back(plan: BulkPlan, batch: ColumnBatch, start: int, stop: int) -> None:
    """Give the entities ``start:stop`` of an entity batch the values they lack."""
    dicts = (batch.dicts or [])[start:stop]
    if batch.shared:
        _consume(map(_update, dicts, repeat(batch.shared)))
    for key, column, written in zip(plan.keys, batch.columns, batch.written, strict=True):
        if written:
            _consume(map(_set, dicts, repeat(key), column[start:stop]))


async def attach_alongside(session: AsyncSession, plan: BulkPlan, batch: ColumnBatch) -> None:
    """:func:`materialize` + :func:`attach_persistent` of a batch, in chunks, while its
    ``COPY`` runs.

    The ``COPY`` is streamed by this same thread, which waits whenever the server has not
    yet taken what was sent (flow control) and at the end for the server to finish. This
    task fills those waits with the bookkeeping the entities need anyway, a chunk at a
    time: completing given entities, or building those of dicts. The entities of a failed
    ``COPY`` are made transient again (:func:`detach_attached`). Not for a mix of entities
    and dicts; keys must be known (drawn from the sequence) before the ``COPY`` starts.
    """
    key_columns = batch.key_columns(plan)
    if key_columns is None or (batch.dicts is None and not batch.mappings):
        return
    built = batch.built if batch.mappings else len(batch)
    total = len(batch)
    # the keys are unique (the table's primary key); only a pre-existing entry can clash,
    # so an identity map empty at the start needs no check per chunk
    new_keys = not session.sync_session.identity_map
    for start in range(0, total, ATTACH_CHUNK):
        stop = min(start + ATTACH_CHUNK, total)
        with collector_paused(stop - start):
            states: list[InstanceState[Any]] | None = None
            if start >= built:
                part = [column[start:stop] for column in batch.columns]
                batch.instances[start:stop] = compat.new_entities(plan.mapper, plan.keys, part)
            else:
                _write_back(plan, batch, start, stop)
                states = None if batch.states is None else batch.states[start:stop]
            attach_persistent(
                session,
                plan.mapper,
                batch.instances[start:stop],
                states=states,
                key_columns=[values[start:stop] for values in key_columns],
                new_keys=new_keys,
            )
        batch.attached = stop
        await asyncio.sleep(0)


def detach_attached(session: AsyncSession, batch: ColumnBatch) -> None:
    """Undo :func:`attach_alongside` (its ``COPY`` failed): the entities become transient."""
    sync = session.sync_session
    for instance in batch.instances[: batch.attached]:
        if instance_state(instance).session_id is not None:
            sync.expunge(instance)
        make_transient(instance)
    batch.attached = 0


@contextmanager
def collector_paused(rows: int) -> Generator[None]:
    """Keep Python's cyclic garbage collector out of the bookkeeping of a large batch.

    Attaching 100,000 entities allocates some 400,000 container objects (instance-state
    dicts, identity keys, weak references). With the collector running, every 700 of them
    start a young-generation collection and every tenth of those moves the fresh objects
    on, until a full collection of the whole heap runs; merely pausing it instead leaves
    one young collection that traverses all 400,000 at once (50-170 ms, as long as the
    rest of the bookkeeping). None of these objects is cyclic garbage (reference counting
    frees whatever dies) and they live as long as the session holds the entities, so they
    are handed straight to the oldest generation: ``gc.freeze()`` moves everything tracked
    so far to the permanent generation and ``gc.unfreeze()`` moves it into the oldest one,
    both O(1). Only when nothing else is frozen (an application that froze its start-up
    heap before forking keeps it frozen: then the collector is just re-enabled). Never
    spans an ``await``; leaves the collector alone if it was off.
    """
    if rows < GC_PAUSE_ROWS or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def attach_persistent(
    session: AsyncSession,
    mapper: Mapper[Any],
    instances: list[Any],
    *,
    states: list[InstanceState[Any]] | None = None,
    key_columns: list[list[Any]] | None = None,
    new_keys: bool = False,
) -> None:
    """Make freshly inserted ``instances`` persistent in ``session``, as a flush does.

    Their current values become the committed state (later changes are tracked as
    updates), they enter the identity map, and a rollback turns them transient again.
    ``states`` and ``key_columns`` (the primary key values, one list per key column) save
    reading them again; ``new_keys=True``: the caller checked that no key is in the
    identity map yet. On a SQLAlchemy version the direct route was not verified against
    (:data:`~viveka_db.compat.FAST_ATTACH`), the public :func:`attach_public` does it.
    """
    sync = session.sync_session
    if not compat.FAST_ATTACH:
        attach_public(sync, instances)
        return
    if states is None:
        states = list(map(instance_state, instances))
    if key_columns is None:
        dicts: list[_Row] = list(map(_dict_of, instances))
        pk_keys = [mapper.get_property_by_column(col).key for col in mapper.primary_key]
        key_columns = [list(map(_getitem, dicts, repeat(key))) for key in pk_keys]
    keys = compat.identity_keys(mapper, key_columns)
    compat.attach_states(sync, states, keys, new_keys=new_keys)
    track_rollback(sync, instances)


def attach_public(session: Session, instances: list[Any]) -> None:
    """:func:`attach_persistent` on public APIs only (about 20 us per entity).

    ``make_transient_to_detached`` + ``Session.add`` make each entity persistent with its
    current values as the loaded state; a rollback of the transaction (or savepoint) that
    was current makes them transient again, as it does to flushed entities.
    """
    for instance in instances:
        make_transient_to_detached(instance)
        session.add(instance)
    track_rollback(session, instances)


_ATTACHED = "viveka_db.bulk_attached"
"""``Session.info`` key: the attached batches and the transaction each belongs to."""


def track_rollback(session: Session, instances: list[Any]) -> None:
    """Make ``instances`` transient again if their transaction rolls back, as a flush's are.

    What ``SessionTransaction._new`` does for flushed entities, on public session events
    (installed once, for every session): ``after_rollback`` fires before the session
    expires what it holds; if the transaction the batch was attached in (or one it is
    nested in) is the one rolling back, the batch is expunged and made transient, its
    values kept. A released savepoint hands its batches to its parent; the end of the
    outermost transaction forgets them (closing without a rollback leaves them detached,
    as it leaves flushed entities).
    """
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None or not instances:
        return
    _install_listeners()
    batches: list[list[Any]] = session.info.setdefault(_ATTACHED, [])
    batches.append([transaction, instances])


_listening = False


def _install_listeners() -> None:
    global _listening
    if not _listening:
        event.listen(Session, "after_rollback", _rolled_back)
        event.listen(Session, "after_transaction_end", _transaction_ended)
        _listening = True


def _rolled_back(session: Session) -> None:
    batches: list[list[Any]] | None = session.info.get(_ATTACHED)
    if not batches:
        return
    kept: list[list[Any]] = []
    for batch in batches:
        transaction: SessionTransaction = batch[0]
        if transaction.is_active:  # a savepoint inside it rolled back, not it
            kept.append(batch)
            continue
        for instance in batch[1]:
            if instance_state(instance).session_id is not None:
                session.expunge(instance)
            make_transient(instance)
    batches[:] = kept


def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    batches: list[list[Any]] | None = session.info.get(_ATTACHED)
    if not batches:
        return
    parent = transaction.parent
    for batch in batches:
        if batch[0] is transaction:
            batch[0] = parent
    batches[:] = [batch for batch in batches if batch[0] is not None]
