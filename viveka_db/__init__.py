"""viveka_db: async, decorator-driven, Spring-Data-style persistence for Python services."""

from viveka_db._version import __version__
from viveka_db.base.db_base import VivekaDbBase
from viveka_db.base.db_repo import DbRepo, Page, Slice
from viveka_db.base.entity_registry import entity, get_registered_entities, table
from viveka_db.base.mixins import (
    IntPKMixin,
    SoftDeleteMixin,
    TimestampMixin,
    UUIDPKMixin,
    VersionMixin,
)
from viveka_db.base.types import UTCDateTime
from viveka_db.cache.db_cache import (
    CacheBackend,
    CacheStats,
    MemoryCache,
    NullCache,
    RedisCache,
    get_cache,
    use_cache,
)
from viveka_db.codegen import schema_for
from viveka_db.config import CacheSettings, DatabaseSettings, VivekaSettings, load_settings
from viveka_db.context.db_context import bind_session, current_session, get_current_session
from viveka_db.decorator.cache import cache_evict, cacheable
from viveka_db.decorator.query import query
from viveka_db.decorator.repository import get_registered_repositories, repository
from viveka_db.decorator.transactional import transactional
from viveka_db.dialects import translate_error
from viveka_db.errors import (
    CheckViolationError,
    ConfigurationError,
    ConstraintViolationError,
    DatabaseError,
    DeadlockError,
    DerivedQueryError,
    DuplicateKeyError,
    EntityDefinitionError,
    EntityNotFoundError,
    ForeignKeyViolationError,
    IllegalTransactionStateError,
    InvalidCursorError,
    LazyLoadError,
    LockTimeoutError,
    NoSessionError,
    NoTenantError,
    NotInitializedError,
    NotNullViolationError,
    NoTransactionError,
    OptimisticLockError,
    PaginationError,
    ReadOnlyTransactionError,
    RetryableTransactionError,
    SchemaError,
    SerializationFailureError,
    TenantMismatchError,
    TransactionError,
    TransactionRequiredError,
    TransactionTimeoutError,
    UnexpectedRollbackError,
    UnknownFieldError,
    VivekaDbError,
)
from viveka_db.health import check_health, health_endpoint
from viveka_db.locks import AdvisoryLock, advisory_lock
from viveka_db.middleware.db_middleware import DbMiddleware
from viveka_db.outbox import OutboxEvent, OutboxRelay, on_event, publish
from viveka_db.replicas import ReplicaState
from viveka_db.repository.loading import LoadSpec
from viveka_db.repository.row_locks import LockMode
from viveka_db.repository.spec import Spec
from viveka_db.session.db_session import DatabaseSessionFactory
from viveka_db.session.startup import verify_data_sources
from viveka_db.tenancy import (
    AuditMixin,
    TenantMixin,
    acting_as,
    all_tenants,
    current_actor,
    current_tenant,
    include_deleted,
    tenant,
)
from viveka_db.transaction.concurrent import run_concurrently
from viveka_db.transaction.definition import Isolation, Propagation
from viveka_db.transaction.hooks import (
    after_commit,
    after_completion,
    after_rollback,
    current_transaction,
    in_transaction,
)

__all__ = [
    "AdvisoryLock",
    "AuditMixin",
    "CacheBackend",
    "CacheSettings",
    "CacheStats",
    "CheckViolationError",
    "ConfigurationError",
    "ConstraintViolationError",
    "DatabaseError",
    "DatabaseSessionFactory",
    "DatabaseSettings",
    "DbMiddleware",
    "DbRepo",
    "DeadlockError",
    "DerivedQueryError",
    "DuplicateKeyError",
    "EntityDefinitionError",
    "EntityNotFoundError",
    "ForeignKeyViolationError",
    "IllegalTransactionStateError",
    "IntPKMixin",
    "InvalidCursorError",
    "Isolation",
    "LazyLoadError",
    "LoadSpec",
    "LockMode",
    "LockTimeoutError",
    "MemoryCache",
    "NoSessionError",
    "NoTenantError",
    "NoTransactionError",
    "NotInitializedError",
    "NotNullViolationError",
    "NullCache",
    "OptimisticLockError",
    "OutboxEvent",
    "OutboxRelay",
    "Page",
    "PaginationError",
    "Propagation",
    "ReadOnlyTransactionError",
    "RedisCache",
    "ReplicaState",
    "RetryableTransactionError",
    "SchemaError",
    "SerializationFailureError",
    "Slice",
    "SoftDeleteMixin",
    "Spec",
    "TenantMismatchError",
    "TenantMixin",
    "TimestampMixin",
    "TransactionError",
    "TransactionRequiredError",
    "TransactionTimeoutError",
    "UTCDateTime",
    "UUIDPKMixin",
    "UnexpectedRollbackError",
    "UnknownFieldError",
    "VersionMixin",
    "VivekaDbBase",
    "VivekaDbError",
    "VivekaSettings",
    "__version__",
    "acting_as",
    "advisory_lock",
    "after_commit",
    "after_completion",
    "after_rollback",
    "all_tenants",
    "bind_session",
    "cache_evict",
    "cacheable",
    "check_health",
    "current_actor",
    "current_session",
    "current_tenant",
    "current_transaction",
    "entity",
    "get_cache",
    "get_current_session",
    "get_registered_entities",
    "get_registered_repositories",
    "health_endpoint",
    "in_transaction",
    "include_deleted",
    "load_settings",
    "on_event",
    "publish",
    "query",
    "repository",
    "run_concurrently",
    "schema_for",
    "table",
    "tenant",
    "transactional",
    "translate_error",
    "use_cache",
    "verify_data_sources",
]
