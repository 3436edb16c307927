#!/usr/bin/env bash
# The cache suite (near-cache invalidation included) and the Redis topology suite (Cluster,
# Sentinel, a server of our own frozen and thawed) again on Valkey instead of Redis.
# Installs valkey-server from the distribution's backports when it is missing, starts one on a
# free port below the ephemeral range with nothing kept on disk, and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

install_valkey() {
  command -v valkey-server >/dev/null 2>&1 && return 0
  echo "valkey: installing valkey-server from ${VERSION_CODENAME}-backports"
  local uris
  uris=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
  [ -n "$uris" ] || uris=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
  cat > /etc/apt/sources.list.d/viveka-backports.sources <<EOF
Types: deb
URIs: ${uris}
Suites: ${VERSION_CODENAME}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t "${VERSION_CODENAME}-backports" \
    valkey-server >/dev/null
}

free_port() {  # the first port from $1 that nothing listens on
  local port=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; do port=$((port + 1)); done
  echo "$port"
}

. /etc/os-release
install_valkey
PORT=$(free_port "${VALKEY_PORT:-16379}")
DIR=$(mktemp -d /tmp/viveka_valkey_XXXX)
valkey-server --daemonize yes --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no \
  --dir "$DIR" --logfile "$DIR/log" --pidfile "$DIR/pid"
trap 'valkey-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
for _ in $(seq 1 50); do valkey-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "valkey: $(valkey-server --version | cut -d' ' -f1-3) on 127.0.0.1:${PORT}"

VIVEKA_TEST_BACKENDS=sqlite \
VIVEKA_TEST_REDIS_URL="redis://127.0.0.1:${PORT}/15" \
VIVEKA_TEST_REDIS_SERVER=valkey-server \
VIVEKA_TEST_REDIS_CLI=valkey-cli \
  make test PYTEST_ARGS="-q tests/cache tests/telemetry/test_cache_telemetry.py tests/topology/test_redis_topologies.py tests/topology/test_ports.py"
