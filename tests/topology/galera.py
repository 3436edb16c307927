"""A three-node MariaDB Galera cluster on loopback, for the failover and certification tests.

Each node is a ``mariadbd`` of its own (datadir from ``mariadb-install-db``) with the Galera
provider, four ports of its own (SQL, group communication, IST, SST) from
:mod:`tests.topology.ports`, and rsync state transfer. The first node bootstraps the cluster
(``--wsrep-new-cluster``); the others join it. ``kill(node)`` is a crash (SIGKILL), as a
failed machine would be. ``python -m tests.topology.galera`` starts one by hand.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.topology import ports as port_pool
from tests.topology.servers import HOST, TopologyUnavailable

__all__ = ["GaleraCluster", "GaleraNode", "galera_cluster"]

_CLIENT = ("mariadb", "--protocol=tcp", "-h", HOST, "-u", "root", "-N")
_PROVIDERS = ("/usr/lib/galera/libgalera_smm.so", "/usr/lib/libgalera_smm.so")


@dataclass
class GaleraNode:
    index: int
    port: int
    """The SQL port."""
    gcomm_port: int
    ist_port: int
    sst_port: int
    datadir: Path
    pid: int = 0

    @property
    def url(self) -> str:
        return f"mysql+aiomysql://root@{HOST}:{self.port}/viveka"


@dataclass
class GaleraCluster:
    root: Path
    nodes: list[GaleraNode] = field(default_factory=list)

    def sql(self, node: GaleraNode, statement: str) -> str:
        """Run ``statement`` with the mariadb client on ``node``; its tab-separated output."""
        done = subprocess.run(
            [*_CLIENT, "-P", str(node.port), "-e", statement],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"mariadb on node {node.index} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def cluster_size(self, node: GaleraNode) -> int:
        try:
            out = self.sql(node, "SHOW STATUS LIKE 'wsrep_cluster_size'")
        except RuntimeError:
            return 0
        return int(out.split()[-1]) if out else 0

    def kill(self, node: GaleraNode) -> None:
        """Crash ``node`` (SIGKILL): its connections die, the others carry on."""
        if node.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(node.pid, 0)
            node.pid = 0

    def stop(self) -> None:
        for node in self.nodes:
            self.kill(node)
        shutil.rmtree(self.root, ignore_errors=True)
        port_pool.release(
            port
            for node in self.nodes
            for port in (node.port, node.gcomm_port, node.ist_port, node.sst_port)
        )


def _provider() -> str:
    for path in _PROVIDERS:
        if Path(path).exists():
            return path
    raise TopologyUnavailable("the Galera provider (galera-4, libgalera_smm.so) is not installed")


def _binaries() -> tuple[str, str]:
    server, install = shutil.which("mariadbd"), shutil.which("mariadb-install-db")
    if server is None:
        server = "/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None
    if server is None or install is None or shutil.which("rsync") is None:
        raise TopologyUnavailable("mariadbd, mariadb-install-db and rsync are needed for Galera")
    return server, install


def _log_tail(log: Path, lines: int = 20) -> str:
    if not log.exists():
        return f"(no log at {log})"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _start_node(
    cluster: GaleraCluster, node: GaleraNode, server: str, provider: str, *, bootstrap: bool
) -> None:
    addresses = ",".join(f"{HOST}:{other.gcomm_port}" for other in cluster.nodes)
    log = cluster.root / f"node{node.index}.log"
    args = [
        server,
        "--no-defaults",
        f"--datadir={node.datadir}",
        f"--socket={cluster.root}/node{node.index}.sock",
        f"--pid-file={cluster.root}/node{node.index}.pid",
        f"--port={node.port}",
        f"--bind-address={HOST}",
        f"--log-error={log}",
        "--user=mysql",
        "--binlog-format=ROW",
        "--default-storage-engine=InnoDB",
        "--innodb-autoinc-lock-mode=2",
        "--innodb-buffer-pool-size=32M",
        "--innodb-log-file-size=16M",
        "--innodb-flush-log-at-trx-commit=0",
        "--skip-name-resolve",
        "--wsrep-on=ON",
        f"--wsrep-provider={provider}",
        f"--wsrep-cluster-address=gcomm://{addresses}",
        "--wsrep-cluster-name=viveka_test",
        f"--wsrep-node-name=node{node.index}",
        f"--wsrep-node-address={HOST}:{node.gcomm_port}",
        f"--wsrep-sst-receive-address={HOST}:{node.sst_port}",
        "--wsrep-sst-method=rsync",
        f"--wsrep-provider-options=gmcast.listen_addr=tcp://{HOST}:{node.gcomm_port};"
        f"ist.recv_addr={HOST}:{node.ist_port};evs.suspect_timeout=PT3S;"
        "evs.inactive_timeout=PT6S;pc.wait_prim_timeout=PT5S",
    ]
    if bootstrap:
        args.append("--wsrep-new-cluster")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    node.pid = proc.pid
    deadline = time.monotonic() + 90
    while cluster.cluster_size(node) < node.index + 1:
        if proc.poll() is not None or time.monotonic() > deadline:
            state = "exited" if proc.poll() is not None else "timed out"
            raise RuntimeError(
                f"Galera node {node.index} (port {node.port}, gcomm {node.gcomm_port}) "
                f"did not join ({state}); last lines of {log}:\n{_log_tail(log)}"
            )
        time.sleep(0.2)


def galera_cluster(size: int = 3) -> GaleraCluster:
    """Start ``size`` nodes, the first bootstrapping, and create the database ``viveka``."""
    server, install = _binaries()
    provider = _provider()
    root = Path(tempfile.mkdtemp(prefix="viveka_galera_"))
    if os.geteuid() == 0:
        shutil.chown(root, "mysql", "mysql")  # mariadbd runs as mysql and writes below it
    cluster = GaleraCluster(root)
    try:
        for index in range(size):
            sql, gcomm, ist, sst = port_pool.reserve(4)
            datadir = root / f"data{index}"
            cluster.nodes.append(GaleraNode(index, sql, gcomm, ist, sst, datadir))
            done = subprocess.run(
                [
                    install,
                    "--no-defaults",
                    f"--datadir={datadir}",
                    "--user=mysql",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            if done.returncode != 0:
                raise RuntimeError(f"mariadb-install-db failed: {done.stderr[-1500:]}")
        for node in cluster.nodes:
            _start_node(cluster, node, server, provider, bootstrap=node.index == 0)
        cluster.sql(cluster.nodes[0], "CREATE DATABASE IF NOT EXISTS viveka")
    except BaseException:
        cluster.stop()
        raise
    return cluster


if __name__ == "__main__":  # pragma: no cover - manual use
    started = time.monotonic()
    handle = galera_cluster()
    print(f"galera running in {time.monotonic() - started:.1f}s:")
    for member in handle.nodes:
        print(f"  node {member.index}: {member.url}")
    try:
        signal.pause()
    finally:
        handle.stop()
