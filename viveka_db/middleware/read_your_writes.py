"""The read-your-writes token on the wire: a cookie and a header of every HTTP exchange.

:mod:`viveka_db.replicas.consistency` decides what a token says and whether it holds; this
module only carries it. A request may send it in the ``x-viveka-ryw`` header or the
``viveka_ryw`` cookie (``x-viveka-ryw-<name>`` / ``viveka_ryw_<name>`` for a named data
source; the header wins). The response of a request that wrote gets a fresh one in both:
the cookie ``HttpOnly; SameSite=Lax``, ``Secure`` when the request came over https, and
``Max-Age`` the token's window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from viveka_db.replicas.consistency import enter_request, issue_token, token_window

if TYPE_CHECKING:
    from collections.abc import Callable

    from viveka_db.middleware.types import Message, Scope, Send
    from viveka_db.replicas.consistency import DatabaseSessionFactory

__all__ = ["COOKIE", "HEADER", "read_your_writes"]

COOKIE = "viveka_ryw"
HEADER = "x-viveka-ryw"


def _cookie_name(data_source: str) -> str:
    return COOKIE if data_source == "default" else f"{COOKIE}_{data_source}"


def _header_name(data_source: str) -> str:
    return HEADER if data_source == "default" else f"{HEADER}-{data_source}"


def _incoming_token(scope: Scope, data_source: str) -> str | None:
    name = _cookie_name(data_source).encode()
    header = _header_name(data_source).encode()
    found: str | None = None
    for key, value in scope.get("headers", ()):
        if key == header:
            return bytes(value).decode("latin-1").strip()
        if key == b"cookie":
            for part in bytes(value).split(b";"):
                k, _, v = part.strip().partition(b"=")
                if k == name:
                    found = v.decode("latin-1").strip('"')
    return found


def _noop() -> None:
    return None


def read_your_writes(
    factory: DatabaseSessionFactory, scope: Scope, send: Send
) -> tuple[Send, Callable[[], None]]:
    """The hook ``DbMiddleware`` calls per HTTP request: ``send, done = read_your_writes(...)``.

    It installs the floor the client's token carries, and returns a ``send`` that, when a
    response starts after this request committed a write, attaches a fresh token (cookie
    and header); ``done()`` restores the previous floors (call it in ``finally``). Without
    replicas it changes nothing; with ``read_your_writes_window = 0`` no token is read or
    sent.
    """
    window = token_window(factory)
    if window is None:
        return send, _noop
    data_source = factory.data_source
    done = enter_request(factory, _incoming_token(scope, data_source) if window > 0 else None)
    if window <= 0:
        return send, done

    async def send_with_token(message: Message) -> None:
        if message["type"] == "http.response.start":
            value = await issue_token(factory, window)
            if value is not None:  # this request wrote
                cookie = f"{_cookie_name(data_source)}={value}; Max-Age={int(window) or 1}; Path=/"
                cookie += "; HttpOnly; SameSite=Lax"
                if scope.get("scheme") == "https":
                    cookie += "; Secure"
                headers = list(message.get("headers", ()))
                headers.append((b"set-cookie", cookie.encode("latin-1")))
                headers.append((_header_name(data_source).encode(), value.encode("latin-1")))
                message["headers"] = headers
        await send(message)

    return send_with_token, done
