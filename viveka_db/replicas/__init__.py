"""Read replicas: routing read-only work, replica health, and read-your-writes (the token's
HTTP transport is :mod:`viveka_db.middleware.read_your_writes`).

Users see replicas through configuration (``[database] read_urls``) and
:meth:`~viveka_db.DatabaseSessionFactory.replica_states`, whose items are
:class:`ReplicaState`; routing and the read-your-writes tokens are internal.
"""

from viveka_db.replicas.replica_set import ReplicaState

__all__ = ["ReplicaState"]
