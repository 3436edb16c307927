"""``verify_data_sources()``: the start-up check for applications without ``viveka_lifespan``.

Plain Starlette apps, workers and scripts call it once after creating their
``DatabaseSessionFactory`` instances; it runs :meth:`DatabaseSessionFactory.verify` on each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from viveka_db.session.db_session import DatabaseSessionFactory
from viveka_db.session.verify import DEFAULT_VERIFY_TIMEOUT

__all__ = ["verify_data_sources"]


async def verify_data_sources(
    data_sources: Iterable[str] | None = None,
    *,
    timeout: float = DEFAULT_VERIFY_TIMEOUT,  # noqa: ASYNC109 - a bound for each engine
) -> None:
    """Check that every initialised data source (or those named) can be used, concurrently.

    Each data source's primary and replicas must answer one ``SELECT 1`` within ``timeout``
    seconds with the configured credentials; otherwise
    :class:`~viveka_db.errors.ConfigurationError` names the data source and the cause
    (unreachable, login refused, database missing), never the password. Data sources whose
    ``verify_on_startup`` is ``false`` are skipped; a name that is not initialised raises
    :class:`~viveka_db.errors.NotInitializedError`.
    """
    names = DatabaseSessionFactory.instances() if data_sources is None else list(data_sources)
    factories = [DatabaseSessionFactory.get_instance(name) for name in names]
    checks = [
        factory.verify(timeout=timeout)
        for factory in factories
        if factory.settings.database.verify_on_startup
    ]
    results = await asyncio.gather(*checks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
