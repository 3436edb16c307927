"""Read replicas: routing read-only work, replica health, and read-your-writes (the token's
HTTP transport is :mod:`viveka_db.middleware.read_your_writes`)."""

from viveka_db.replicas.consistency import ReadFloor, current_floor
from viveka_db.replicas.replica_set import ReplicaSet, ReplicaState

__all__ = ["ReadFloor", "ReplicaSet", "ReplicaState", "current_floor"]
