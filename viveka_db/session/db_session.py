"""``DatabaseSessionFactory``: the engines and session makers of one data source.

One instance per data source name, process-wide. Constructing it again with the same
configuration returns the existing instance (so start-up code may run twice); with a
different configuration it raises, because silently swapping the engine under running
code would leak the old pool.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from typing import Any, ClassVar

from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.schema import sort_tables

from viveka_db.config.settings import VivekaSettings
from viveka_db.config.sources import ConfigSource, load_settings
from viveka_db.config.urls import build_url, mask_url
from viveka_db.errors import ConfigurationError, NotInitializedError
from viveka_db.replicas.consistency import ON_REPLICA_KEY, current_floor, track_writes
from viveka_db.replicas.replica_set import ReplicaSet, ReplicaState
from viveka_db.session.connect_policy import install_connect_policy, replace_closed_on_checkout
from viveka_db.session.engine import (
    READ_ONLY_KEY,
    create_read_engine,
    create_write_engine,
    is_plain_select,
    sessionmaker_for,
)
from viveka_db.session.listeners import notify_started
from viveka_db.session.shared_connection import SharedConnection
from viveka_db.session.verify import DEFAULT_VERIFY_TIMEOUT, Target, verify_targets
from viveka_db.telemetry.statements import instrument_engine
from viveka_db.tenancy.rls import rls_enabled

__all__ = ["DatabaseSessionFactory"]

logger = logging.getLogger("viveka_db.session")


class DatabaseSessionFactory:
    """Builds and owns the engine and session factory of one named data source.

    ``config_service`` may be a :class:`~viveka_db.config.VivekaSettings`, a mapping like
    ``{"database": {"url": ...}}``, a path to an ini file, or any object with a ``get``
    method (a ``ConfigService``); ``None`` means ``$VIVEKA_CONFIG``,
    ``./config.ini`` or, failing both, the embedded SQLite default. Keyword arguments are
    passed to :func:`~sqlalchemy.ext.asyncio.create_async_engine` and win over the config.
    """

    _instances: ClassVar[dict[str, DatabaseSessionFactory]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    data_source: str
    settings: VivekaSettings
    url: URL
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    _engine_options: dict[str, Any]
    replicas: ReplicaSet | None
    """The replicas of ``read_url``/``read_urls``, or ``None`` without replicas."""
    _read_engine: AsyncEngine | None
    _read_session_factory: async_sessionmaker[AsyncSession] | None
    _replica_session_factories: dict[int, async_sessionmaker[AsyncSession]]
    tenant_rls: bool
    """``[database] tenant_rls``: every transaction sets its tenant for row-level security."""
    shared_connection: SharedConnection | None = None
    """While set (by the ``db_session`` test fixture), every new session joins this connection's
    transaction through a SAVEPOINT (see :mod:`viveka_db.session.shared_connection`)."""

    def __new__(
        cls,
        config_service: ConfigSource = None,
        *,
        data_source: str = "default",
        **engine_options: Any,
    ) -> DatabaseSessionFactory:
        if not isinstance(data_source, str) or not data_source:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ConfigurationError(f"data_source must be a non-empty string, got {data_source!r}")
        settings = load_settings(config_service, data_source=data_source)
        url = build_url(settings.database)
        with cls._lock:
            existing = cls._instances.get(data_source)
            if existing is not None:
                if existing._same_config(settings, url, engine_options):
                    return existing
                raise ConfigurationError(
                    f"data source {data_source!r} is already initialised with "
                    f"{mask_url(existing.url)!r}; call `await DatabaseSessionFactory.close_all()` "
                    f"(or `await DatabaseSessionFactory.get_instance({data_source!r}).dispose()`) "
                    f"before initialising it again with {mask_url(url)!r}"
                )
            self = super().__new__(cls)
            self._setup(data_source, settings, url, engine_options)
            cls._instances[data_source] = self
        logger.info("data source %r initialised: %s", data_source, mask_url(url))
        if settings.database.url is None and not (
            settings.database.driver or settings.database.dialect
        ):
            _announce_embedded_default(data_source, url)
        notify_started(data_source, settings)
        return self

    def __init__(
        self,
        config_service: ConfigSource = None,
        *,
        data_source: str = "default",
        **engine_options: Any,
    ) -> None:
        """Everything happens in ``__new__`` (which may return the existing instance)."""

    def _setup(
        self, data_source: str, settings: VivekaSettings, url: URL, engine_options: dict[str, Any]
    ) -> None:
        self.data_source = data_source
        self.settings = settings
        self.url = url
        self._engine_options = dict(engine_options)
        self.engine = create_write_engine(settings.database, url, self._engine_options)
        self._connect_policy(self.engine)
        instrument_engine(
            self.engine, data_source=data_source, slow_query_ms=settings.database.slow_query_ms
        )
        self.tenant_rls = rls_enabled(settings.database.tenant_rls, url.get_backend_name())
        self.session_factory = sessionmaker_for(
            self.engine, read_only=False, tenant_rls=self.tenant_rls
        )
        self._read_engine = None
        self._read_session_factory = None
        self._replica_session_factories = {}
        self.replicas = None
        if settings.database.replica_urls:

            def replica_engine(replica_url: URL) -> AsyncEngine:
                engine = create_read_engine(
                    settings.database, replica_url, self.engine, self._engine_options, replica=True
                )
                instrument_engine(
                    engine,
                    data_source=data_source,
                    role="read",
                    slow_query_ms=settings.database.slow_query_ms,
                )
                return engine

            self.replicas = ReplicaSet(settings.database, url, replica_engine)
            track_writes(self.engine, data_source, is_plain_select)

    def _connect_policy(self, engine: AsyncEngine) -> None:
        """How ``engine`` (of the primary) makes new connections: ``connect_wait`` and
        ``failover_urls``; a pooled connection the server closed is replaced at checkout."""
        install_connect_policy(engine, self.settings.database, self.url)
        replace_closed_on_checkout(engine)

    def _same_config(
        self, settings: VivekaSettings, url: URL, engine_options: dict[str, Any]
    ) -> bool:
        try:
            return bool(
                settings == self.settings
                and url == self.url
                and engine_options == self._engine_options
            )
        except Exception:  # options that cannot be compared are treated as different
            return False

    def __repr__(self) -> str:
        return (
            f"DatabaseSessionFactory(data_source={self.data_source!r}, url={mask_url(self.url)!r})"
        )

    # -- access ---------------------------------------------------------------------------

    @classmethod
    def get_instance(cls, name: str | None = None) -> DatabaseSessionFactory:
        """The factory of data source ``name`` (default ``"default"``)."""
        key = name or "default"
        instance = cls._instances.get(key)
        if instance is None:
            configured = ", ".join(repr(n) for n in cls._instances) or "none"
            how = (
                "DatabaseSessionFactory(config_service=config)"
                if key == "default"
                else f"DatabaseSessionFactory(config_service=config, data_source={key!r})"
            )
            raise NotInitializedError(
                f"data source {key!r} is not initialised (initialised: {configured}); call "
                f"{how} at start-up, with config being a config.ini path, a mapping like "
                "{'database': {'url': ...}}, or your ConfigService"
            )
        return instance

    @classmethod
    def is_initialised(cls, name: str | None = None) -> bool:
        return (name or "default") in cls._instances

    @property
    def active(self) -> bool:
        """Whether this is still the initialised factory of its data source (not disposed)."""
        return self._instances.get(self.data_source) is self

    @classmethod
    def instances(cls) -> dict[str, DatabaseSessionFactory]:
        return dict(cls._instances)

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> DatabaseSessionFactory | None:
        """The factory that owns ``engine`` (write or read engine), if any."""
        for factory in cls._instances.values():
            if engine is factory.engine or engine is factory._read_engine:
                return factory
            if factory.replicas is not None and engine in factory.replicas.engines():
                return factory
        return None

    @property
    def read_engine(self) -> AsyncEngine:
        """The engine of read-only transactions: the first replica's, else the primary's."""
        if self.replicas is not None:
            return self.replicas.replicas[0].engine
        return self.primary_read_engine

    @property
    def primary_read_engine(self) -> AsyncEngine:
        """The autocommit, read-only engine on the primary (also the replicas' fallback)."""
        if self._read_engine is None:
            self._read_engine = create_read_engine(
                self.settings.database, self.url, self.engine, self._engine_options
            )
            if self._read_engine is not self.engine:
                self._connect_policy(self._read_engine)
            instrument_engine(
                self._read_engine,
                data_source=self.data_source,
                role="read",
                slow_query_ms=self.settings.database.slow_query_ms,
            )
        return self._read_engine

    def new_session(self, *, read_only: bool = False) -> AsyncSession:
        """A new session the caller owns (lazily connected, ``expire_on_commit=False``).

        A read-only session goes to a healthy replica that satisfies read-your-writes
        (see :mod:`viveka_db.replicas`), else to the primary. While a test shares its
        connection, every session joins that connection instead.
        """
        if self.shared_connection is not None:
            return self.shared_connection.new_session(read_only=read_only)
        if not read_only:
            return self.session_factory()
        if self.tenant_rls:  # autocommit has no transaction to hold the tenant setting
            session = self.session_factory()
            self.mark_read_only(session)
            return session
        engine, on_replica = self.pick_read_engine()
        if on_replica:
            makers = self._replica_session_factories
            maker = makers.get(id(engine))
            if maker is None:
                maker = makers[id(engine)] = sessionmaker_for(engine, read_only=True)
            session = maker()
            session.info[ON_REPLICA_KEY] = True
            return session
        if self._read_session_factory is None:
            self._read_session_factory = sessionmaker_for(engine, read_only=True)
        return self._read_session_factory()

    def pick_read_engine(self) -> tuple[AsyncEngine, bool]:
        """The engine of the next read-only session and whether it is a replica's: a healthy
        replica that satisfies read-your-writes, else the primary's read engine."""
        if self.replicas is not None:
            engine = self.replicas.pick(current_floor(self.data_source))
            if engine is not None:
                return engine, True
        return self.primary_read_engine, False

    def replica_states(self) -> list[ReplicaState]:
        """Each replica's health, replay position and last probe (empty without replicas)."""
        return [] if self.replicas is None else self.replicas.states()

    def targets(self) -> list[Target]:
        """``(role, engine, url)`` of every engine worth checking: the primary, and each
        replica (``read_urls``, ``read_url``) as ``replica 1``, ``replica 2``...

        Without replicas the read engine is a second pool on the primary, which the
        primary's check covers.
        """
        targets: list[Target] = [("primary", self.engine, self.url)]
        if self.replicas is not None:
            for number, replica in enumerate(self.replicas.replicas, start=1):
                # the probe engine: the replica's own pool falls back to the primary when down
                targets.append((f"replica {number}", replica.probe_engine, replica.url))
        return targets

    async def verify(self, *, timeout: float = DEFAULT_VERIFY_TIMEOUT) -> None:  # noqa: ASYNC109
        """Connect once to the primary and each replica; raise if any cannot be used.

        Raises :class:`~viveka_db.errors.ConfigurationError` naming the data source, each
        failing engine (password masked) and the cause: unreachable, login refused, database
        missing, or no answer within ``timeout`` seconds. ``viveka_lifespan`` calls it at
        start-up unless ``[database] verify_on_startup = false``; elsewhere call
        :func:`viveka_db.verify_data_sources`.
        """
        await verify_targets(self.data_source, self.targets(), timeout=timeout)

    @staticmethod
    def mark_read_only(session: AsyncSession) -> None:
        """Refuse flushes and writes in ``session`` (read-only work on the write engine)."""
        session.info[READ_ONLY_KEY] = True
        session.sync_session.autoflush = False

    # -- schema ---------------------------------------------------------------------------

    async def create_all(self, entities: Iterable[type[Any]] | None = None) -> list[str]:
        """Create missing tables (never drops or alters); returns the names it created.

        ``entities`` defaults to every mapped entity of :class:`VivekaDbBase`.
        """
        from sqlalchemy import inspect as sa_inspect

        from viveka_db.base.db_base import VivekaDbBase

        metadata = VivekaDbBase.metadata
        tables = (
            list(metadata.sorted_tables)
            if entities is None
            else [entity.__table__ for entity in entities]
        )
        async with self.engine.begin() as conn:
            existing = await conn.run_sync(lambda sync: set(sa_inspect(sync).get_table_names()))
            missing = [table for table in tables if table.name not in existing]
            await conn.run_sync(
                lambda sync: metadata.create_all(sync, tables=missing, checkfirst=True)
            )
        return [table.name for table in missing]

    async def drop_all(self, entities: Iterable[type[Any]] | None = None) -> None:
        """Drop the tables of ``entities`` (default: every mapped table except viveka_db's own,
        such as the outbox, which may hold undelivered events). For tests and tools."""
        from viveka_db.base.db_base import VivekaDbBase, application_tables

        metadata = VivekaDbBase.metadata
        if entities is None:
            tables = application_tables(metadata)
            async with self.engine.begin() as conn:
                await conn.run_sync(
                    lambda sync: metadata.drop_all(sync, tables=tables, checkfirst=True)
                )
            return
        # Table by table: a metadata-level drop would also drop the metadata's shared types
        # (PostgreSQL enums) that other, untouched tables still use.
        tables = sort_tables([entity.__table__ for entity in entities])

        def drop(sync: Connection) -> None:
            for table in reversed(tables):
                table.drop(sync, checkfirst=True)

        async with self.engine.begin() as conn:
            await conn.run_sync(drop)

    # -- shutdown -------------------------------------------------------------------------

    async def dispose(self) -> None:
        """Close every pooled connection and forget this data source."""
        with self._lock:
            if self._instances.get(self.data_source) is self:
                del self._instances[self.data_source]
        if self.replicas is not None:
            await self.replicas.dispose()
        if self._read_engine is not None and self._read_engine is not self.engine:
            await self._read_engine.dispose()
        await self.engine.dispose()

    @classmethod
    async def close_all(cls) -> None:
        """Dispose every data source's engines and forget every instance (tests start over)."""
        for factory in list(cls._instances.values()):
            await factory.dispose()


def _announce_embedded_default(data_source: str, url: URL) -> None:
    """Say where the embedded SQLite file is (once per initialisation of the data source)."""
    database = url.database or ""
    path = database if database in ("", ":memory:") else os.path.abspath(database)
    logger.warning(
        "data source %r has no configuration (no config_service, $VIVEKA_CONFIG or "
        "./config.ini): using the embedded SQLite database %s; pass a config (or set "
        "VIVEKA_DATABASE__URL) to use another database",
        data_source,
        path or "in memory",
    )
