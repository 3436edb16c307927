"""The connection pools whose sizes ``db.client.connection.count`` reports.

Engines are held weakly and by pool name, so a data source initialised again replaces its
old entry and a disposed, forgotten engine drops out by itself.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Observation
    from sqlalchemy.engine import Engine

__all__ = ["observe_pools", "register_pool"]

_pools: dict[str, weakref.ref[Engine]] = {}


def register_pool(name: str, engine: Engine) -> None:
    """Report ``engine``'s pool as ``db.client.connection.pool.name = name``."""
    _pools[name] = weakref.ref(engine)


def observe_pools(options: CallbackOptions) -> Iterable[Observation]:
    """The used and idle connections of every registered pool that can count them."""
    from opentelemetry.metrics import Observation

    observations: list[Observation] = []
    for name, ref in list(_pools.items()):
        engine = ref()
        if engine is None:
            _pools.pop(name, None)
            continue
        pool: Any = engine.pool
        checked_out = getattr(pool, "checkedout", None)
        checked_in = getattr(pool, "checkedin", None)
        if checked_out is None or checked_in is None:  # StaticPool, NullPool: nothing to count
            continue
        for state, count in (("used", checked_out()), ("idle", checked_in())):
            attributes = {
                "db.client.connection.state": state,
                "db.client.connection.pool.name": name,
            }
            observations.append(Observation(int(count), attributes))
    return observations
