"""The ASGI interface's types, defined once for every module that speaks ASGI.

Structural aliases (as Starlette's ``starlette.types``), so the package needs no ASGI
framework to type its middleware and endpoints. Only the middleware layer and the layers
above it import them: code below knows nothing of HTTP (an import-linter contract in
``pyproject.toml`` holds it to that).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
