"""The port chooser for test-started servers: below the ephemeral range, free, held, explained.

These run everywhere (no server of their own but the one Redis in the last test), so a
change that lets a topology server land on a port a client socket may be given fails here
first, not as a flaky timeout deep in a topology fixture.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.topology import ports, servers


@pytest.fixture
def chosen() -> Iterator[list[int]]:
    """Ports this test reserves; whatever it holds at the end is given back."""
    mine: list[int] = []
    yield mine
    ports.release(mine)


def test_reserved_ports_lie_below_the_ephemeral_range(chosen: list[int]) -> None:
    low, _ = ports.ephemeral_range()
    chosen += ports.reserve(20)
    assert len(set(chosen)) == 20
    assert all(ports.LOWEST_PORT <= port < min(low, 32_768) for port in chosen)
    assert set(chosen) <= ports.held()


def test_cluster_bus_ports_are_held_below_the_range_too(chosen: list[int]) -> None:
    low, _ = ports.ephemeral_range()
    nodes = ports.reserve(6, companion_offset=servers.CLUSTER_BUS_OFFSET)
    chosen += nodes + [port + servers.CLUSTER_BUS_OFFSET for port in nodes]
    assert all(port + servers.CLUSTER_BUS_OFFSET < min(low, 32_768) for port in nodes)
    assert set(chosen) <= ports.held()


def test_the_range_follows_the_kernel_setting(tmp_path: Path) -> None:
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("20000\t60999\n")
    assert ports.ephemeral_range(setting) == (20_000, 60_999)
    assert max(ports.allowed_ports((20_000, 60_999))) == 19_999
    setting.write_text("garbage")
    assert ports.ephemeral_range(setting) == (32_768, 60_999)  # Linux's default


def _small_pool(monkeypatch: pytest.MonkeyPatch, size: int) -> list[int]:
    """Restrict the chooser to ``size`` ports that are free now."""
    pool = ports.reserve(size)
    ports.release(pool)
    monkeypatch.setattr(ports, "allowed_ports", lambda: sorted(pool))
    return sorted(pool)


def test_a_port_something_listens_on_is_never_chosen(
    monkeypatch: pytest.MonkeyPatch, chosen: list[int]
) -> None:
    pool = _small_pool(monkeypatch, 3)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", pool[1]))
        listener.listen()
        chosen += ports.reserve(2)
        assert sorted(chosen) == [pool[0], pool[2]]
        ports.release(chosen)
        chosen.clear()
        with pytest.raises(ports.PortsExhausted, match="only 2 of 3 free ports"):
            ports.reserve(3)
    assert not ports.held() & set(pool)  # a failed reservation holds nothing


_HOLDER = """
import sys, time
from tests.topology import ports
ports.allowed_ports = lambda: [int(p) for p in sys.argv[1:]]
print(*ports.reserve(1), flush=True)
time.sleep(60)
"""


def test_a_port_another_test_run_holds_is_never_chosen(
    monkeypatch: pytest.MonkeyPatch, chosen: list[int]
) -> None:
    pool = _small_pool(monkeypatch, 2)
    root = Path(__file__).resolve().parents[2]
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, *map(str, pool)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        taken = int(holder.stdout.readline())
        chosen += ports.reserve(1)  # nothing listens on ``taken``: only the lock says it is held
        assert chosen == [port for port in pool if port != taken]
    finally:
        holder.kill()
        holder.wait()


def test_a_server_that_cannot_bind_names_its_port_and_shows_its_log(chosen: list[int]) -> None:
    try:
        servers._redis_server()
    except servers.TopologyUnavailable as exc:
        require_service("redis-server binary", str(exc))
    (port,) = ports.reserve(1)
    chosen.append(port)
    procs = servers.RedisProcesses(Path(tempfile.mkdtemp(prefix="viveka_port_test_")))
    with socket.socket() as squatter:  # bound after the reservation: a lost race, simulated
        squatter.bind(("127.0.0.1", port))
        try:
            with pytest.raises(RuntimeError) as failure:
                servers._start_redis(procs, port)
        finally:
            procs.stop()
    message = str(failure.value)
    assert f"redis on port {port} did not come up (exited with" in message
    assert "the port is now held by another process" in message
    assert "last lines of" in message and "Address already in use" in message
