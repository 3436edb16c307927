"""The start-up check that an application gives its requests a transaction.

Without ``DbMiddleware`` or the session dependency (``SessionDep``), every repository call
in a request runs in a transaction of its own: a POST that saves twice keeps the first row
when the second save fails. :func:`warn_without_request_boundary` looks at a Starlette or
FastAPI application at start-up and logs one warning when it finds neither. It reads the
application duck-typed (``user_middleware``, the built middleware chain, FastAPI's
dependency tree), looking for objects that carry
:data:`~viveka_db.transaction.implicit.REQUEST_BOUNDARY_ATTR`, so it needs no framework
import.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from viveka_db.transaction.implicit import REQUEST_BOUNDARY_ATTR

__all__ = ["has_request_boundary", "warn_without_request_boundary"]

logger = logging.getLogger("viveka_db.startup")


def _is_boundary(obj: object) -> bool:
    return bool(getattr(obj, REQUEST_BOUNDARY_ATTR, False))


def _in_middleware(app: Any) -> bool:
    """``DbMiddleware`` added with ``add_middleware`` or in the built chain of wrappers."""
    for entry in getattr(app, "user_middleware", None) or ():
        if _is_boundary(getattr(entry, "cls", None)):
            return True
    seen: set[int] = set()
    layer: object = getattr(app, "middleware_stack", None)
    while layer is not None and id(layer) not in seen:
        seen.add(id(layer))
        if _is_boundary(type(layer)):
            return True
        layer = getattr(layer, "app", None)
    return False


def _depends_on_session(dependant: Any, seen: set[int]) -> bool:
    """Whether a FastAPI dependency tree reaches a session dependency."""
    if dependant is None or id(dependant) in seen:
        return False
    seen.add(id(dependant))
    if _is_boundary(getattr(dependant, "call", None)):
        return True
    children: Iterable[Any] = getattr(dependant, "dependencies", None) or ()
    return any(_depends_on_session(child, seen) for child in children)


def _http_routes(app: Any) -> list[Any]:
    routes: Iterable[Any] = getattr(app, "routes", None) or ()
    return [route for route in routes if getattr(route, "methods", None)]


def has_request_boundary(app: Any) -> bool:
    """Whether ``app`` has ``DbMiddleware``, or a route that depends on a session.

    A route depending on ``SessionDep`` shows the app is wired by dependency (other routes
    may not touch the database at all). An app without HTTP routes counts as wired.
    """
    if _in_middleware(app):
        return True
    routes = _http_routes(app)
    seen: set[int] = set()
    return not routes or any(
        _depends_on_session(getattr(route, "dependant", None), seen) for route in routes
    )


def warn_without_request_boundary(app: Any) -> bool:
    """Log one warning if ``app`` has HTTP routes but no request boundary; ``True`` if it did."""
    if has_request_boundary(app):
        return False
    logger.warning(
        "%s has no DbMiddleware and no route depends on SessionDep: each repository "
        "call in a request then runs in a transaction of its own, so a request that writes "
        "twice can keep the first write when the second fails. Add "
        "app.add_middleware(DbMiddleware) (or a SessionDep parameter to the endpoints that "
        "write); "
        "[database] implicit_transactions = warn or forbid reports each such write",
        type(app).__name__,
    )
    return True
