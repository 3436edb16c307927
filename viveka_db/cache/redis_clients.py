"""Redis clients from a URL: one server, a Redis Cluster, or a master found through Sentinel.

``redis://`` / ``rediss://`` / ``unix://``
    One server, on redis-py's ``ConnectionPool``. A burst larger than ``max_connections``
    waits for a turn in the cache's command gate (:mod:`~viveka_db.cache.redis_gate`), not
    in the pool, so the pool itself never blocks. Its own cap is twice ``max_connections``
    plus :data:`POOL_SLACK`: the commands in flight, the connections reads keep between
    commands (:mod:`~viveka_db.cache.redis_connections`), and room for the near-cache's
    listener, health pings and connections still closing after a timeout.
``redis+cluster://[user:password@]host:port[,host:port...][?options]``
    redis-py's ``RedisCluster``; the nodes listed are where it discovers the cluster.
``redis+sentinel://[user:password@]host:port[,host:port...]/service_name[/db][?options]``
    redis-py's ``Sentinel``, and the client of the master it names (found again after a
    failover). The password is the data nodes'; ``?sentinel_password=`` sets the
    Sentinels' own.

``rediss+cluster://`` and ``rediss+sentinel://`` use TLS. A plain ``redis://`` URL that
points at a cluster node is refused at start-up (every command on a cluster node may answer
``MOVED``): the error names ``redis+cluster://``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from viveka_db.errors import ConfigurationError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["CLUSTER_SCHEMES", "SENTINEL_SCHEMES", "TopologyUrl", "client_from_url", "parse_url"]

POOL_SLACK = 16
"""Connections a single-server pool may open beyond what the gate lets through and holds."""

CLUSTER_SCHEMES = frozenset({"redis+cluster", "rediss+cluster"})
SENTINEL_SCHEMES = frozenset({"redis+sentinel", "rediss+sentinel"})


@dataclass(frozen=True)
class TopologyUrl:
    """The parts of a ``redis+cluster://`` or ``redis+sentinel://`` URL."""

    scheme: str
    nodes: list[tuple[str, int]]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    service_name: str | None = None
    db: int = 0
    options: dict[str, str] = field(default_factory=dict[str, str], repr=False)

    @property
    def tls(self) -> bool:
        return self.scheme.startswith("rediss+")


def parse_url(url: str) -> TopologyUrl:
    """Split a multi-host URL (``urllib`` cannot: its netloc has several hosts)."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in CLUSTER_SCHEMES | SENTINEL_SCHEMES:
        raise ConfigurationError(f"not a redis+cluster:// or redis+sentinel:// URL: {scheme!r}")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    nodes = [_host_port(part, scheme) for part in hosts.split(",") if part.strip()]
    if not nodes:
        raise ConfigurationError(f"[cache] url ({scheme}://...) names no host:port")
    segments = [unquote(s) for s in path.split("/") if s]
    service = None
    db = 0
    if scheme in SENTINEL_SCHEMES:
        if not segments:
            raise ConfigurationError(
                f"[cache] url {scheme}://host:port[,host:port...]/service_name needs the "
                "service name Sentinel monitors"
            )
        service = segments[0]
        segments = segments[1:]
    if segments:
        try:
            db = int(segments[0])
        except ValueError:
            raise ConfigurationError(
                f"[cache] url: database number must be an integer, got {segments[0]!r}"
            ) from None
        if scheme in CLUSTER_SCHEMES and db != 0:
            raise ConfigurationError("[cache] url: a Redis Cluster has only database 0")
    options = dict(parse_qsl(query))
    return TopologyUrl(scheme, nodes, username, password, service, db, options)


def _host_port(part: str, scheme: str) -> tuple[str, int]:
    part = part.strip()
    if part.startswith("["):  # [::1]:6379
        host, _, port = part[1:].partition("]:")
    else:
        host, _, port = part.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigurationError(f"[cache] url ({scheme}://...): {part!r} is not host:port")
    return host, int(port)


def client_from_url(
    url: str,
    *,
    connect_timeout: float,
    max_connections: int,
    options: dict[str, Any],
) -> Redis | RedisCluster:
    """The redis-py client ``url`` describes (see the module docstring)."""
    try:
        from redis.asyncio import ConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            'RedisCache needs the redis package: pip install "viveka-db[redis]"'
        ) from exc

    scheme = url.partition("://")[0].lower()
    # Each command is bounded by the command gate's deadlines; redis-py's own
    # socket_timeout would add a timer to every read.
    options.setdefault("socket_timeout", None)
    options.setdefault("socket_connect_timeout", connect_timeout)
    if scheme in CLUSTER_SCHEMES:
        return _cluster(parse_url(url), max_connections, options)
    options.setdefault("retry", Retry(NoBackoff(), 0))
    if scheme in SENTINEL_SCHEMES:
        return _sentinel(parse_url(url), options)
    pool = ConnectionPool.from_url(  # pyright: ignore[reportUnknownMemberType]
        url, max_connections=2 * max_connections + POOL_SLACK, **options
    )
    refuse_cluster_node(url, connect_timeout)
    return Redis.from_pool(pool)  # the client owns (closes) the pool


def _cluster(parts: TopologyUrl, max_connections: int, options: dict[str, Any]) -> RedisCluster:
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    options.setdefault("max_connections", max_connections)
    options.setdefault("ssl", parts.tls)
    kwargs: dict[str, Any] = {**parts.options, **options}
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parts.nodes],
        username=parts.username,
        password=parts.password,
        **kwargs,
    )


def _sentinel(parts: TopologyUrl, options: dict[str, Any]) -> Redis:
    from redis.asyncio.sentinel import Sentinel

    extra = dict(parts.options)
    sentinel_password = extra.pop("sentinel_password", None)
    sentinel_kwargs: dict[str, Any] = {
        "socket_connect_timeout": options["socket_connect_timeout"],
        "socket_timeout": options["socket_connect_timeout"],
        "ssl": parts.tls,
    }
    if sentinel_password:
        sentinel_kwargs["password"] = sentinel_password
    connection_kwargs: dict[str, Any] = {**extra, **options}  # typed from redis-py 8.2 on
    sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]
        parts.nodes,
        sentinel_kwargs=sentinel_kwargs,
        username=parts.username,
        password=parts.password,
        ssl=parts.tls,
        db=parts.db,
        **connection_kwargs,
    )
    assert parts.service_name is not None
    client: Redis = sentinel.master_for(parts.service_name)  # pyright: ignore[reportUnknownMemberType]
    return client


def refuse_cluster_node(url: str, timeout: float) -> None:
    """Raise if the single-server ``url`` is a Redis Cluster node (checked once, at start-up).

    An unreachable server is not an error here: the cache fails open and the first reply
    of a cluster node (``MOVED``) is logged as an error naming the right scheme.
    """
    import redis as sync_redis

    try:
        with sync_redis.Redis.from_url(  # pyright: ignore[reportUnknownMemberType]
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        ) as probe:
            info: dict[str, Any] = probe.info("cluster")  # pyright: ignore[reportUnknownMemberType]
    except sync_redis.RedisError:
        return
    if str(info.get("cluster_enabled", "0")) == "1":
        raise ConfigurationError(misconfigured_cluster_message())


def misconfigured_cluster_message() -> str:
    return (
        "[cache] url points at a Redis Cluster node with a single-server scheme; use "
        "redis+cluster://host:port[,host:port...] (rediss+cluster:// for TLS)"
    )
