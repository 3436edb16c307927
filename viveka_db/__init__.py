"""viveka_db: async, decorator-driven, Spring-Data-style persistence for Python services."""

from viveka_db._version import __version__
from viveka_db.base.db_base import VivekaDbBase
from viveka_db.base.db_repo import DbRepo
from viveka_db.base.entity_registry import entity, get_registered_entities, table
from viveka_db.config import CacheSettings, DatabaseSettings, VivekaSettings, load_settings
from viveka_db.context.db_context import bind_session, current_session, get_current_session
from viveka_db.decorator.repository import get_registered_repositories, repository
from viveka_db.decorator.transactional import transactional
from viveka_db.errors import (
    ConfigurationError,
    EntityDefinitionError,
    IllegalTransactionStateError,
    NoSessionError,
    NotInitializedError,
    ReadOnlyTransactionError,
    TransactionError,
    TransactionRequiredError,
    TransactionTimeoutError,
    UnexpectedRollbackError,
    UnknownFieldError,
    VivekaDbError,
)
from viveka_db.middleware.db_middleware import DbMiddleware
from viveka_db.session.db_session import DatabaseSessionFactory
from viveka_db.transaction.concurrent import run_concurrently
from viveka_db.transaction.definition import Isolation, Propagation
from viveka_db.transaction.hooks import after_commit, current_transaction, in_transaction

__all__ = [
    "CacheSettings",
    "ConfigurationError",
    "DatabaseSessionFactory",
    "DatabaseSettings",
    "DbMiddleware",
    "DbRepo",
    "EntityDefinitionError",
    "IllegalTransactionStateError",
    "Isolation",
    "NoSessionError",
    "NotInitializedError",
    "Propagation",
    "ReadOnlyTransactionError",
    "TransactionError",
    "TransactionRequiredError",
    "TransactionTimeoutError",
    "UnexpectedRollbackError",
    "UnknownFieldError",
    "VivekaDbBase",
    "VivekaDbError",
    "VivekaSettings",
    "__version__",
    "after_commit",
    "bind_session",
    "current_session",
    "current_transaction",
    "entity",
    "get_current_session",
    "get_registered_entities",
    "get_registered_repositories",
    "in_transaction",
    "load_settings",
    "repository",
    "run_concurrently",
    "table",
    "transactional",
]
