"""The validated configuration objects: one per ``[database]`` / ``[cache]`` section.

Pydantic does the validation; :func:`validate_section` turns its errors into one
:class:`~viveka_db.errors.ConfigurationError` that names the section, the key and what is
valid, and never echoes a secret's value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from viveka_db.config.isolation import Isolation
from viveka_db.errors import ConfigurationError

__all__ = [
    "CacheSettings",
    "DatabaseSettings",
    "VivekaSettings",
    "canonical_keys",
    "key_aliases",
    "validate_section",
]

SECRET_KEYS = frozenset(
    {
        "password",
        "url",
        "dsn",
        "read_url",
        "read_urls",
        "failover_urls",
        "read_your_writes_secret",
    }
)


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]
    return value


class DatabaseSettings(BaseModel):
    """The ``[database]`` section: where the database is and how to pool connections."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        defer_build=True,
        coerce_numbers_to_str=True,  # YAML/TOML `password: 123456`, `db: 2024`
    )

    url: str | None = Field(default=None, repr=False, validation_alias=AliasChoices("url", "dsn"))
    """The database's SQLAlchemy async URL; ``dsn`` is another name for it."""
    read_url: str | None = Field(default=None, repr=False)
    """A replica for ``read_only=True`` transactions; defaults to ``url``."""
    read_urls: list[str] = Field(default_factory=list, repr=False)
    """Replicas (comma or newline separated) that ``read_only=True`` work is spread over."""
    replica_retry_after: float = Field(default=5.0, gt=0)
    """Seconds a replica that failed is left out before it is tried again."""
    replica_probe_interval: float = Field(default=1.0, gt=0)
    """Seconds between background checks of each replica's health and replay position."""
    replica_connect_timeout: float = Field(default=2.0, gt=0)
    """Seconds to wait for a replica connection before falling back to the primary."""
    read_your_writes_window: float = Field(default=10.0, ge=0)
    """Seconds a client's later requests read its own writes (0 turns the cookie off)."""
    read_your_writes_secret: SecretStr | None = None
    """Key that signs the read-your-writes cookie; share it between worker processes."""
    failover_urls: list[str] = Field(default_factory=list, repr=False)
    """Other primaries (comma or newline separated): new connections go to the next reachable
    one when the current one cannot be reached (PostgreSQL hosts, MariaDB Galera nodes)."""
    connect_wait: float = Field(default=0.0, ge=0, le=3600)
    """Seconds a new connection keeps trying while the server is down (restarting); work that
    has not sent a statement yet waits that long instead of failing. 0: fail at once."""
    dialect: str | None = None
    driver: str | None = None
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str | None = None
    password: SecretStr | None = None
    database: str | None = Field(default=None, validation_alias="db")
    pool_size: int | None = Field(default=None, ge=1)
    max_overflow: int | None = Field(default=None, ge=0)
    pool_timeout: float | None = Field(default=None, gt=0)
    pool_recycle: int | None = Field(default=None, ge=-1)
    pool_pre_ping: bool = False
    echo: bool = Field(default=False, validation_alias=AliasChoices("echo", "debug"))
    """Log every statement (SQLAlchemy's ``echo``); ``debug`` is another name for it."""
    slow_query_ms: int | None = Field(default=None, ge=0)
    """Log statements slower than this on ``viveka_db.sql.slow`` (WARNING); unset: never."""
    models: list[str] = Field(default_factory=list)
    """Modules whose entities the CLI and migrations load."""
    verify_on_startup: bool = True
    """``viveka_lifespan`` and ``verify_data_sources()`` connect once at start-up and fail
    with a ``ConfigurationError`` naming the cause (unreachable, login refused, no database)."""
    implicit_transactions: Literal["allow", "warn", "forbid"] = "allow"
    """What a write does outside every boundary (a repository call that runs in a transaction
    of its own): ``allow`` it, ``warn`` once per call site, or ``forbid`` it
    (``NoTransactionError``)."""
    isolation_level: Isolation | None = None
    """The default isolation of the write engine's connections (``None``: the database's).

    Set once per connection when it is opened; ``@transactional(isolation=...)`` still
    overrides it per transaction. Read-only transactions run in autocommit regardless.
    """

    tenant_rls: bool = False
    """PostgreSQL only: every transaction sets ``viveka.tenant_id`` (transaction-local) for
    row-level security policies (``viveka-db db rls`` prints them). Read-only work then
    runs in a transaction on the primary instead of autocommit or a replica."""

    @field_validator("isolation_level", mode="before")
    @classmethod
    def _parse_isolation(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            return Isolation.parse(value)
        except ValueError:
            valid = ", ".join(member.value for member in Isolation)
            raise ValueError(f"not an isolation level; valid levels are: {valid}") from None

    @field_validator("models", "read_urls", "failover_urls", mode="before")
    @classmethod
    def _models_from_string(cls, value: object) -> object:
        return _split_list(value)

    @property
    def replica_urls(self) -> list[str]:
        """Every configured replica: ``read_urls``, then ``read_url`` if not among them."""
        urls = list(self.read_urls)
        if self.read_url and self.read_url not in urls:
            urls.append(self.read_url)
        return urls

    @field_validator("database", mode="before")
    @classmethod
    def _empty_database_is_none(cls, value: object) -> object:
        return value or None


class CacheSettings(BaseModel):
    """The ``[cache]`` section: which cache backend the decorators use."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, defer_build=True, coerce_numbers_to_str=True
    )

    url: str | None = Field(default=None, repr=False)
    """``redis://`` / ``rediss://`` for Redis, ``redis+cluster://`` / ``redis+sentinel://``
    (and ``rediss+``) for its topologies, ``memory://`` or empty for the in-process cache."""
    enabled: bool = True
    default_ttl: int = Field(default=3600, ge=1)
    namespace: str = "viveka"
    socket_timeout: float = Field(default=0.25, gt=0)
    max_entries: int = Field(default=10_000, ge=1)
    near: bool = False
    """Keep hot Redis entries in this process too (invalidated across processes by Redis)."""
    near_max_entries: int = Field(default=10_000, ge=1)
    near_ttl: float = Field(default=30.0, gt=0)
    """Seconds a near-cached entry is served before Redis is asked again."""
    max_connections: int = Field(default=64, ge=1)
    """Redis commands in flight per process; more wait for a turn (up to ``pool_timeout``)."""
    pool_timeout: float = Field(default=2.0, gt=0)
    """Seconds a command waits for a turn before it is treated as a miss."""
    lease_wait: float = Field(default=0.0, ge=0)
    """Seconds a miss waits for another process loading the same key (0: no lease)."""
    eviction_journal: str | None = None
    """File recording evictions that could not reach Redis yet, so a restart keeps them."""


class VivekaSettings(BaseModel):
    """The whole configuration: this is "the library's own config object"."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)


def key_aliases(model: type[BaseModel]) -> dict[str, str]:
    """Each other name a key of ``model`` accepts -> the key (``{"dsn": "url", ...}``)."""
    aliases: dict[str, str] = {}
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        for choice in choices:
            if isinstance(choice, str) and choice != name:
                aliases[choice] = name
    return aliases


def canonical_keys(
    model: type[BaseModel], section: str, values: Mapping[Any, Any]
) -> dict[str, Any]:
    """``values`` with every other name of a key replaced by the key (``dsn`` -> ``url``).

    A key given under two of its names in one place is an error: neither silently wins.
    """
    aliases = key_aliases(model)
    result: dict[str, Any] = {}
    given: dict[str, str] = {}
    for raw_key, value in values.items():
        key = str(raw_key)
        name = aliases.get(key, key)
        if name in given:
            raise ConfigurationError(
                f"[{section}] {given[name]!r} and {key!r} are two names of one key; give one"
            )
        given[name] = key
        result[name] = value
    return result


def _valid_keys(model: type[BaseModel]) -> str:
    others = ", ".join(f"{alias} for {name}" for alias, name in sorted(key_aliases(model).items()))
    return ", ".join(sorted(model.model_fields)) + (f" (also {others})" if others else "")


def validate_section(model: type[BaseModel], section: str, values: Mapping[str, Any]) -> Any:
    """Validate ``values`` as ``model``; report every problem in one message without secrets."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        problems: list[str] = []
        for error in exc.errors(include_input=False, include_url=False):
            key = ".".join(str(part) for part in error["loc"]) or "(section)"
            field = str(error["loc"][0]) if error["loc"] else ""
            shown = ""
            if field in values and field not in SECRET_KEYS and error["type"] != "extra_forbidden":
                shown = f" (got {values[field]!r})"
            if error["type"] == "extra_forbidden":
                problems.append(f"unknown key {key!r}; valid keys are: {_valid_keys(model)}")
            else:
                problems.append(f"{key}: {error['msg']}{shown}")
        raise ConfigurationError(f"[{section}] " + "; ".join(problems)) from None
