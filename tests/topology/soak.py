"""Run the topology suite several times while another process churns loopback connections.

``python -m tests.topology.soak --runs 10 [pytest selection]`` starts a churner (a process
that opens and closes loopback TCP connections as fast as it can, so the kernel keeps handing
out ephemeral ports), runs pytest on the selection (default ``tests/topology``) ``--runs``
times in a row, and prints each run's result and the number of connections churned. It exits
non-zero if any run failed. The churner only talks to a listener of its own on 127.0.0.1,
stops after ``--max-seconds`` and is killed at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

_CHURNER = """
import socket, sys, time
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))  # itself on an ephemeral port, like any client's peer
listener.listen(512)
deadline = time.monotonic() + float(sys.argv[1])
count = 0
while time.monotonic() < deadline:
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    client.close()
    server.close()
    count += 1
    if count % 10000 == 0:
        print(count, flush=True)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    parser.add_argument(
        "select", nargs="*", default=["tests/topology"], help="what pytest runs each time"
    )
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[2]
    churner = subprocess.Popen(
        [sys.executable, "-c", _CHURNER, str(args.max_seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    failures = 0
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args.select],
                cwd=root,
                capture_output=True,
                text=True,
                env={**os.environ, "CI": "true"},
                check=False,
            )
            summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "?"
            failures += done.returncode != 0
            took = time.monotonic() - started
            print(f"run {run}: exit {done.returncode} in {took:.0f}s: {summary}")
            if done.returncode != 0:
                print(done.stdout[-3000:])
    finally:
        churner.kill()
        out, _ = churner.communicate()
    churned = out.split()[-1] if out.split() else "<10000"
    print(f"{args.runs - failures}/{args.runs} runs passed; at least {churned} connections churned")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
