"""Loopback ports for the servers the tests start: outside the ephemeral range, never shared.

Linux hands every outgoing connection a local port from ``ip_local_port_range`` (32768-60999
by default). A test server listening on a port inside that range loses a race whenever any
client socket on the machine (the suite's own included) happens to be given that port first,
so servers are placed below the range, where the kernel never assigns ports by itself.

Below the range only other listeners can collide: a port is taken only if binding it works,
and it is then held with an exclusive lock file until the server that uses it is stopped, so
two test runs on one machine (a developer's and CI's, say) never pick the same port.
"""

from __future__ import annotations

import contextlib
import fcntl
import random
import socket
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

__all__ = [
    "LOWEST_PORT",
    "PortsExhausted",
    "allowed_ports",
    "ephemeral_range",
    "port_taken",
    "release",
    "reserve",
]

HOST = "127.0.0.1"
LOWEST_PORT = 15_000
"""Nothing below this: well-known services of the machine live lower (and 10000 + a Redis
Cluster node's port is its bus port, which must fit below the range too)."""
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL = (32_768, 60_999)
_LOCK_DIR = Path(tempfile.gettempdir()) / "viveka-test-ports"
_held: dict[int, IO[bytes]] = {}


class PortsExhausted(RuntimeError):
    """No free port was left below the ephemeral range."""


def ephemeral_range(source: Path = _RANGE_FILE) -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (inclusive)."""
    try:
        low, high = (int(part) for part in source.read_text().split())
    except (OSError, ValueError):
        return _DEFAULT_EPHEMERAL
    return low, high


def allowed_ports(ephemeral: tuple[int, int] | None = None) -> Sequence[int]:
    """Ports a test server may listen on: from :data:`LOWEST_PORT` up to the ephemeral range."""
    low, _ = ephemeral or ephemeral_range()
    return range(LOWEST_PORT, min(low, 32_768))


def port_taken(port: int) -> bool:
    """Whether something already listens on (or holds) ``port`` on the loopback address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


def _lock(port: int) -> IO[bytes] | None:
    _LOCK_DIR.mkdir(mode=0o777, exist_ok=True)
    handle = (_LOCK_DIR / f"{port}.lock").open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def _claim(port: int) -> bool:
    if port in _held or port_taken(port):
        return False
    handle = _lock(port)
    if handle is None:  # another test run on this machine holds it
        return False
    if port_taken(port):  # bound between the check and the lock
        handle.close()
        return False
    _held[port] = handle
    return True


def reserve(count: int, *, companion_offset: int | None = None) -> list[int]:
    """``count`` free ports below the ephemeral range, held until :func:`release`.

    ``companion_offset`` also claims ``port + offset`` for each port (a Redis Cluster node's
    bus port is its port + 10000); the returned list holds the main ports only.
    """
    allowed = allowed_ports()
    offset = companion_offset or 0
    candidates = [p for p in allowed if not offset or p + offset in allowed]
    start = random.randrange(len(candidates))  # spread concurrent runs apart
    chosen: list[int] = []
    for port in candidates[start:] + candidates[:start]:
        if len(chosen) == count:
            break
        if not _claim(port):
            continue
        if offset and not _claim(port + offset):
            release([port])
            continue
        chosen.append(port)
    if len(chosen) < count:
        release(chosen)
        if offset:
            release(p + offset for p in chosen)
        raise PortsExhausted(
            f"only {len(chosen)} of {count} free ports in {allowed[0]}-{allowed[-1]}"
        )
    return chosen


def release(ports: Iterable[int]) -> None:
    """Give ``ports`` back (their servers have stopped)."""
    for port in ports:
        handle = _held.pop(port, None)
        if handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()


def held() -> frozenset[int]:
    """The ports this process holds now (for tests)."""
    return frozenset(_held)
