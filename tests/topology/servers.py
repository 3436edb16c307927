"""Start real topologies on loopback for the topology tests, and stop them.

* :func:`postgres_pair`: a PostgreSQL primary and a streaming replica (``initdb`` +
  ``pg_basebackup -R``) from the installed server binaries, run as the ``postgres`` user
  when the tests run as root (``initdb`` refuses root).
* :func:`redis_cluster`: six ``redis-server --cluster-enabled yes`` nodes joined with
  ``redis-cli --cluster create ... --cluster-replicas 1``.
* :func:`redis_sentinels`: a Redis master, its replica and three Sentinels watching them.

Each returns a handle whose ``stop()`` kills what it started (by process id), deletes its
directory and gives its ports back. Ports come from :mod:`tests.topology.ports`: below the
kernel's ephemeral range and held for the server's lifetime, so no client socket and no other
test run can take them; a server that does not come up names its port, says whether something
else held it, and shows the end of its own log.
``python -m tests.topology.servers pg|cluster|sentinel`` starts one by hand and waits for
Ctrl-C. A missing binary raises :class:`TopologyUnavailable` with the reason.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.topology import ports as port_pool

__all__ = [
    "PostgresPair",
    "RedisProcesses",
    "TopologyUnavailable",
    "postgres_pair",
    "redis_cli",
    "redis_cluster",
    "redis_sentinels",
    "redis_standalone",
]

HOST = "127.0.0.1"
REDIS_SERVER = os.environ.get("VIVEKA_TEST_REDIS_SERVER", "redis-server")
REDIS_CLI = os.environ.get("VIVEKA_TEST_REDIS_CLI", "redis-cli")
"""The server and client binaries: ``valkey-server`` / ``valkey-cli`` run the same suite on
Valkey (``.ci/run`` does)."""
CLUSTER_BUS_OFFSET = 10_000  # a cluster node's bus port is its port + 10000


class TopologyUnavailable(RuntimeError):
    """The binaries a topology needs are not installed (the tests skip with this reason)."""


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def _wait(predicate: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def _log_tail(log: Path, lines: int = 15) -> str:
    if not log.exists():
        return f"(no log at {log})"
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return f"last lines of {log}:\n" + "\n".join(tail)


def _refuse_taken(port: int) -> None:
    if port_pool.port_taken(port) and port not in port_pool.held():
        raise RuntimeError(f"port {port} is already taken by another process; stop what uses it")


def _kill(pid: int, sig: int = signal.SIGTERM) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


# -- PostgreSQL ----------------------------------------------------------------------------


def _pg_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise TopologyUnavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed")


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser") is None:
        raise TopologyUnavailable("running as root without runuser to drop to the postgres user")
    return ["runuser", "-u", "postgres", "--", *cmd]


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-2000:]}")


@dataclass
class PostgresPair:
    """A running primary and streaming replica; URLs use the asyncpg driver, user postgres."""

    root: Path
    bin: Path
    primary_port: int
    replica_port: int

    @property
    def primary_url(self) -> str:
        return f"postgresql+asyncpg://postgres@{HOST}:{self.primary_port}/postgres"

    @property
    def replica_url(self) -> str:
        return f"postgresql+asyncpg://postgres@{HOST}:{self.replica_port}/postgres"

    def _ctl(self, data: str, *args: str) -> None:
        try:
            _run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.root / data), *args]))
        except RuntimeError as exc:
            log = self.root / f"{data}.log"
            tail = log.read_text()[-1500:] if log.exists() else ""
            raise RuntimeError(f"{exc}\n--- {log.name} ---\n{tail}") from None

    def stop_primary(self) -> None:
        """Stop the primary (fast shutdown: its sessions are ended, as in a restart)."""
        self._ctl("primary", "-m", "fast", "-w", "stop")

    def start_primary(self) -> None:
        self._ctl("primary", "-l", str(self.root / "primary.log"), "-w", "-t", "60", "start")

    def stop_replica(self) -> None:
        """Stop the replica server (fast shutdown: its connections are closed)."""
        self._ctl("replica", "-m", "immediate", "-w", "stop")

    def start_replica(self) -> None:
        log = str(self.root / "replica.log")
        try:
            self._ctl("replica", "-l", log, "-w", "-t", "60", "start")
        except RuntimeError:  # on a loaded machine a start occasionally fails: once more
            time.sleep(1)
            self._ctl("replica", "-l", log, "-w", "-t", "60", "start")

    def psql(self, port: int, sql: str) -> str:
        """Run ``sql`` with psql on ``port`` and return its unaligned output."""
        cmd = [str(self.bin / "psql"), "-h", HOST, "-p", str(port), "-U", "postgres", "-XAtc", sql]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def stop(self) -> None:
        for data in ("replica", "primary"):
            with contextlib.suppress(Exception):
                self._ctl(data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        port_pool.release((self.primary_port, self.replica_port))


def postgres_pair() -> PostgresPair:
    """Start a primary and a streaming replica of it, on two reserved ports.

    Tried twice: on a loaded machine a server occasionally fails its first start.
    """
    try:
        return _postgres_pair(*port_pool.reserve(2))
    except RuntimeError:
        time.sleep(1)
        return _postgres_pair(*port_pool.reserve(2))


def _postgres_pair(primary_port: int, replica_port: int) -> PostgresPair:
    binaries = _pg_bin()
    for port in (primary_port, replica_port):
        _refuse_taken(port)
    root = Path(tempfile.mkdtemp(prefix="viveka_pg_topology_"))
    os.chmod(root, 0o777)  # the postgres user writes below it
    pair = PostgresPair(root, binaries, primary_port, replica_port)
    try:
        primary = root / "primary"
        _run(
            _as_postgres(
                [str(binaries / "initdb"), "-D", str(primary), "-U", "postgres", "-A", "trust"]
            )
        )
        settings = {
            "listen_addresses": f"'{HOST}'",
            "port": str(primary_port),
            "unix_socket_directories": f"'{root}'",
            "wal_level": "replica",
            "max_wal_senders": "5",
            "hot_standby": "on",
            "fsync": "off",
            "synchronous_commit": "on",
            "full_page_writes": "off",
            "shared_buffers": "16MB",
            "max_connections": "60",
        }
        conf = "".join(f"{key} = {value}\n" for key, value in settings.items())
        (primary / "postgresql.auto.conf").write_text(conf)
        with (primary / "pg_hba.conf").open("a") as hba:
            hba.write(f"host replication all {HOST}/32 trust\n")
        pair._ctl("primary", "-l", str(root / "primary.log"), "-w", "-t", "60", "start")
        replica = root / "replica"
        _run(
            _as_postgres(
                [
                    str(binaries / "pg_basebackup"),
                    "-h",
                    HOST,
                    "-p",
                    str(primary_port),
                    "-U",
                    "postgres",
                    "-D",
                    str(replica),
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                ]
            )
        )
        auto = (replica / "postgresql.auto.conf").read_text()
        auto = auto.replace(f"port = {primary_port}", f"port = {replica_port}")
        (replica / "postgresql.auto.conf").write_text(auto + f"port = {replica_port}\n")
        pair.start_replica()
        _wait(
            lambda: pair.psql(replica_port, "select pg_is_in_recovery()") == "t",
            "the replica to enter recovery",
        )
    except BaseException:
        pair.stop()
        raise
    return pair


# -- Redis ---------------------------------------------------------------------------------


@dataclass
class RedisProcesses:
    """Redis servers (and Sentinels) started by the tests, by port."""

    root: Path
    pids: dict[int, int] = field(default_factory=dict)
    ports: tuple[int, ...] = ()
    """The data nodes' ports, in the order they were started (a master before its replica)."""
    sentinel_ports: tuple[int, ...] = ()
    service_name: str = "viveka"
    reserved: tuple[int, ...] = ()
    """Every port held for these servers (cluster bus ports included), given back on stop."""

    @property
    def url(self) -> str:
        """``redis://`` at the first server (a standalone server's URL)."""
        return f"redis://{HOST}:{self.ports[0]}/0"

    @property
    def cluster_url(self) -> str:
        """``redis+cluster://`` naming the first three nodes (the rest are discovered)."""
        return "redis+cluster://" + ",".join(f"{HOST}:{port}" for port in self.ports[:3])

    @property
    def sentinel_url(self) -> str:
        nodes = ",".join(f"{HOST}:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{nodes}/{self.service_name}"

    def pause(self, port: int) -> None:
        """Freeze one server (``SIGSTOP``): connections stay open but nothing answers."""
        _kill(self.pids[port], signal.SIGSTOP)

    def resume(self, port: int) -> None:
        _kill(self.pids[port], signal.SIGCONT)

    def kill(self, port: int) -> None:
        pid = self.pids.pop(port)
        _kill(pid, signal.SIGCONT)
        _kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)

    def stop(self) -> None:
        for port in list(self.pids):
            self.kill(port)
        shutil.rmtree(self.root, ignore_errors=True)
        port_pool.release(self.reserved)


def _redis_server() -> str:
    found = shutil.which(REDIS_SERVER)
    if found is None or shutil.which(REDIS_CLI) is None:
        raise TopologyUnavailable(f"{REDIS_SERVER} / {REDIS_CLI} are not installed")
    return found


def redis_cli(port: int, *args: str) -> str:
    """``redis-cli -p port args...``'s output (raises if it fails)."""
    done = subprocess.run(
        [REDIS_CLI, "-h", HOST, "-p", str(port), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.strip()


def _cli(port: int, *args: str) -> str:
    done = subprocess.run(
        [REDIS_CLI, "-h", HOST, "-p", str(port), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return done.stdout.strip()


def _start_redis(procs: RedisProcesses, port: int, *extra: str, config: Path | None = None) -> None:
    _refuse_taken(port)
    workdir = procs.root / str(port)
    workdir.mkdir()
    # a Sentinel's (rewritable) config file comes first
    cmd = [_redis_server()] if config is None else [_redis_server(), str(config), "--sentinel"]
    cmd += [
        "--port",
        str(port),
        "--bind",
        HOST,
        "--dir",
        str(workdir),
        "--protected-mode",
        "no",
        *extra,
    ]
    if config is None:
        cmd += ["--save", "", "--appendonly", "no"]
    log_path = workdir / "log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    procs.pids[port] = proc.pid
    deadline = time.monotonic() + 30
    while not _port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            state = f"exited with {proc.returncode}" if proc.returncode is not None else "timed out"
            held = "held by another process" if port_pool.port_taken(port) else "free"
            raise RuntimeError(
                f"redis on port {port} did not come up ({state}; the port is now {held})\n"
                + _log_tail(log_path)
            )
        time.sleep(0.05)


def redis_standalone() -> RedisProcesses:
    """One plain Redis server of our own (safe to pause or kill, unlike the shared one)."""
    (port,) = port_pool.reserve(1)
    procs = RedisProcesses(
        Path(tempfile.mkdtemp(prefix="viveka_redis_")), ports=(port,), reserved=(port,)
    )
    try:
        _start_redis(procs, port)
    except BaseException:
        procs.stop()
        raise
    return procs


def redis_cluster(nodes: int = 6) -> RedisProcesses:
    """Six cluster nodes (three masters with one replica each), ready to serve every slot."""
    ports = tuple(port_pool.reserve(nodes, companion_offset=CLUSTER_BUS_OFFSET))
    procs = RedisProcesses(
        Path(tempfile.mkdtemp(prefix="viveka_cluster_")),
        ports=ports,
        reserved=ports + tuple(port + CLUSTER_BUS_OFFSET for port in ports),
    )
    try:
        for port in ports:
            _start_redis(
                procs,
                port,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-node-timeout",
                "2000",
            )
        addresses = [f"{HOST}:{port}" for port in ports]
        done = subprocess.run(
            [
                REDIS_CLI,
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout[-2000:]}")
        _wait(
            lambda: all("cluster_state:ok" in _cli(p, "cluster", "info") for p in ports),
            "the cluster to serve every slot",
        )
        replicas = len(ports) // 2
        _wait(
            lambda: all(_cli(p, "cluster", "nodes").count("slave") == replicas for p in ports),
            "every node to know every replica",
        )
    except BaseException:
        procs.stop()
        raise
    return procs


def redis_sentinels(sentinels: int = 3, service_name: str = "viveka") -> RedisProcesses:
    """A master, its replica and Sentinels monitoring them under ``service_name``."""
    master_port, replica_port, *sentinel_ports = port_pool.reserve(2 + sentinels)
    procs = RedisProcesses(
        Path(tempfile.mkdtemp(prefix="viveka_sentinel_")),
        ports=(master_port, replica_port),
        sentinel_ports=tuple(sentinel_ports),
        service_name=service_name,
        reserved=(master_port, replica_port, *sentinel_ports),
    )
    try:
        _start_redis(procs, master_port)
        _start_redis(procs, replica_port, "--replicaof", HOST, str(master_port))
        for port in sentinel_ports:
            conf = procs.root / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind {HOST}\nprotected-mode no\n"
                f"sentinel monitor {service_name} {HOST} {master_port} 2\n"
                f"sentinel down-after-milliseconds {service_name} 1000\n"
                f"sentinel failover-timeout {service_name} 5000\n"
                f"sentinel parallel-syncs {service_name} 1\n"
            )
            _start_redis(procs, port, config=conf)
        _wait(
            lambda: "master_link_status:up" in _cli(replica_port, "info", "replication"),
            "the Redis replica to sync",
        )
    except BaseException:
        procs.stop()
        raise
    return procs


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    which = sys.argv[1] if len(sys.argv) > 1 else "pg"
    handle: PostgresPair | RedisProcesses
    if which == "pg":
        handle = postgres_pair()
    elif which == "cluster":
        handle = redis_cluster()
    else:
        handle = redis_sentinels()
    print(f"{which} running; Ctrl-C stops it")
    try:
        signal.pause()
    finally:
        handle.stop()
